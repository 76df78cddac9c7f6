"""How many documented blocks are run, checked or marked not runnable here, and why."""

from __future__ import annotations

from collections import Counter

from tests.docs.blocks import Document

RUN = {"run", "file"}
CHECKED = {"output", "manifest", "json", "synopsis", "paths"}


def summary_lines(docs: list[Document]) -> list[str]:
    blocks = [b for d in docs for b in d.blocks]
    run = sum(b.kind in RUN for b in blocks)
    checked = sum(b.kind in CHECKED for b in blocks)
    marked = [b for b in blocks if b.kind == "skip"]
    unmarked = [b for b in blocks if b.kind is None]
    lines = [f"{len(blocks)} blocks: {run} run, {checked} checked (outputs compared, manifests, JSON, synopses, "
             f"listings), {len(marked)} marked not runnable here, {len(unmarked)} neither run nor marked"]
    by_reason = Counter(b.reason.split(":")[0] if b.needs_cluster else b.reason for b in marked)
    for reason, n in by_reason.most_common():
        lines.append(f"  not runnable ({n}): {reason}")
    lines += [f"  needs-cluster: {b.where}" for b in marked if b.needs_cluster]
    lines += [f"  NEITHER RUN NOR MARKED: {b.where}" for b in unmarked]
    return lines

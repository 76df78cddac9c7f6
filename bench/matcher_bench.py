"""Matcher throughput on one core: the compiled RE2 set vs a naive loop over every pattern.

    PYTHONPATH=. .venv/bin/python bench/matcher_bench.py [--seconds 3]

(from the checkout's root: it imports the test support code; ``bash bench/run`` sets the path itself)

The message mix is what a backend reports: mostly library messages (the real-world table of
tests/unit/catalog_messages.py and the polyglot corpus tests/unit/corpus/polyglot.yaml:
gRPC, Go, Node, Java, Kubernetes, LLM providers, tool calls, datastores), some bare codes and
aliases, and ~20 % messages the catalog does not know (the slowest case for a loop: every
pattern is tried). The naive baseline is what a first version does:
``for pattern in patterns: pattern.search(message)`` keeping the most specific hit; it gives
the same answers, which the script checks before timing.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rollguard.catalog import load_default_catalog
from rollguard.catalog.patterns import PY_FLAGS
from rollguard.sdk.matcher import Matcher
from tests.unit.catalog_messages import MESSAGES, MUST_NOT

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "unit" / "corpus" / "polyglot.yaml"


@functools.cache
def corpus_messages() -> list[str]:
    doc: dict[str, list[list[object]]] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    return [str(item[0]) for items in doc.values() for item in items]

UNKNOWN = [
    "worker 7 finished step 3 of run 8f2c in 412 ms",
    "ValueErrorish: the widget frobnicated unexpectedly at stage 4 (code W-17)",
    "upstream returned HTTP 418 I'm a teapot for /v1/brew",
    "scheduler: no eligible node for task 4411 after 3 attempts",
    "lint: trailing whitespace on line 12 of plan.yaml",
    "gRPC status UNAVAILABLE_LEGACY_MODE from payments-v2",
]


def message_mix(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    spec = load_default_catalog()
    codes = [e.code for e in spec.entries]
    aliases = [a for e in spec.entries for a in e.match.aliases]
    library = ([m for m, _ in MESSAGES] + [m for m, _w, _r in MUST_NOT if "UNKNOWN" not in _r]
               + corpus_messages())
    out = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.65:
            out.append(rnd.choice(library))
        elif r < 0.72:
            out.append(rnd.choice(codes))
        elif r < 0.80:
            out.append(rnd.choice(aliases))
        else:
            out.append(rnd.choice(UNKNOWN))
    return out


def naive_matcher() -> Callable[[str], str]:
    """The per-call Python loop over every compiled pattern, same precedence as Matcher."""
    ref = Matcher.default(metrics=False)
    st = ref._state  # same entries, aliases and pattern ranks: only the search differs
    compiled = [(re.compile(p, PY_FLAGS), e.code, rank) for e, p, _c, rank in st.patterns]

    def match(text: str) -> str:
        key = text.strip()
        if key in st.by_code:
            return key
        e = st.by_alias.get(key.casefold())
        if e is not None:
            return e.code
        best: tuple[int, int] | None = None
        code = "UNKNOWN_ERROR"
        for rx, c, rank in compiled:
            if (best is None or rank > best) and rx.search(text[:4096]):
                best, code = rank, c
        return code

    return match


def rate(fn: Callable[[str], object], msgs: list[str], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for m in msgs:
            fn(m)
        done += len(msgs)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per contender (default 3)")
    ap.add_argument("--messages", type=int, default=2000, help="size of the message mix (default 2000)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):  # one core, as the target says
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    msgs = message_mix(args.messages)
    fast = Matcher.default(metrics=False)
    with_metrics = Matcher.default(metrics=True)
    fallback = Matcher.default(engine="re", metrics=False)
    naive = naive_matcher()
    n_patterns = len(fast._state.patterns)

    disagree = [m for m in msgs if fast.match(m).code != naive(m)]
    assert not disagree, f"matcher and naive loop disagree on {len(disagree)} messages, e.g. {disagree[0]!r}"
    unknown = sum(1 for m in msgs if not fast.match(m).matched) / len(msgs)

    print(f"catalog: {len(fast.codes)} codes, {n_patterns} patterns; mix: {len(msgs)} messages, "
          f"{unknown:.0%} unknown; engine: {fast.engine}; one core (single thread)")
    r_fast = rate(lambda m: fast.match(m), msgs, args.seconds)
    r_metrics = rate(lambda m: with_metrics.match(m), msgs, args.seconds)
    r_naive = rate(naive, msgs, args.seconds)
    r_fallback = rate(lambda m: fallback.match(m), msgs[:200], min(args.seconds, 2.0))
    print(f"Matcher (RE2 set)             : {r_fast:12,.0f} msg/s")
    print(f"Matcher (RE2 set) + metrics   : {r_metrics:12,.0f} msg/s")
    print(f"Matcher (re fallback)         : {r_fallback:12,.0f} msg/s")
    print(f"naive per-pattern loop (re)   : {r_naive:12,.0f} msg/s")
    print(f"ratio Matcher / naive loop    : {r_fast / r_naive:12.1f}x   (target >= 10x)")
    print(f"target >= 100,000 msg/s       : {'met' if r_fast >= 100_000 else 'NOT met'}")


if __name__ == "__main__":
    main()

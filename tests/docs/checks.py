"""Checks of blocks that are not commands: manifests, JSON, command synopses, directory listings,
and the comparison of a shown output with what a command printed."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import click
import yaml
from pydantic import ValidationError

from tests.docs.blocks import REPO, Block

ELLIPSIS = "..."


def check_manifest(block: Block) -> list[str]:
    """Problems of a YAML block: every document a complete manifest; rollguard's kinds valid for
    rollguard's own models (the CLI's and, kept in step by a test, the CRDs' rules); a FeatureFlag's
    sign-off valid now, as a reader applying the example today would need it."""
    from rollguard.flags.evaluate import signoff_verdict
    from rollguard.models.canary import CanaryRollout
    from rollguard.models.catalog import FailureCatalog
    from rollguard.models.flag import FeatureFlag

    models: dict[str, Any] = {"CanaryRollout": CanaryRollout, "FailureCatalog": FailureCatalog,
                              "FeatureFlag": FeatureFlag}
    problems: list[str] = []
    try:
        docs = [d for d in yaml.safe_load_all(block.code) if d is not None]
    except yaml.YAMLError as e:
        return [f"not YAML: {e}"]
    if not docs:
        return ["empty YAML block"]
    for i, d in enumerate(docs):
        if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind"):
            problems.append(f"document {i}: not a complete manifest (apiVersion and kind): a reader cannot apply "
                            "it as shown")
            continue
        if not str(d["apiVersion"]).startswith("rollguard.io/"):
            continue  # another project's kind (Argo CD ...): its own schema is not installed here
        model = models.get(str(d["kind"]))
        if model is None:
            problems.append(f"document {i}: unknown rollguard kind {d['kind']!r}")
            continue
        try:
            obj = model.model_validate(d)
        except ValidationError as e:
            problems += [f"document {i} ({d['kind']}): {'.'.join(map(str, err['loc']))}: {err['msg']}"
                         for err in e.errors()]
            continue
        if isinstance(obj, FeatureFlag) and obj.spec.signoff is not None:
            verdict = signoff_verdict(obj.spec, dt.datetime.now(dt.UTC))
            if not verdict.allows_enable:
                problems.append(f"document {i} (FeatureFlag): the example's sign-off is not valid today "
                                f"({verdict.state}: {verdict.message})")
    return problems


def check_json(block: Block) -> list[str]:
    try:
        json.loads(block.code)
    except ValueError as e:
        return [f"not JSON: {e}"]
    return []


def check_paths(block: Block) -> list[str]:
    """Each line of a directory listing names (first) a path of this repository."""
    problems = []
    for line in block.code.splitlines():
        if not line.strip():
            continue
        path = line.split()[0]
        if not (REPO / path).exists():
            problems.append(f"{path}: no such file or directory in the repository")
    return problems


def _tree(cmd: click.Command, ctx: click.Context) -> tuple[set[str], set[str]]:
    """(command names and choice values, option names) of a command and everything under it."""
    words, opts = {cmd.name or ""}, set()
    for p in cmd.params:
        if isinstance(p, click.Option):
            opts |= {o for o in (*p.opts, *p.secondary_opts)}
            if isinstance(p.type, click.Choice):
                words |= {str(c) for c in p.type.choices}
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None:
                w, o = _tree(sub, ctx)
                words |= w
                opts |= o
    return words, opts


def check_synopsis(block: Block) -> list[str]:
    """Every command, sub-command and option a synopsis names exists in the real CLI."""
    from rollguard.cli.main import cli

    ctx = click.Context(cli)
    problems: list[str] = []
    lines: list[list[str]] = []
    for raw in block.code.splitlines():
        text = raw.split("#", 1)[0]
        if text.startswith("rollguard "):
            lines.append(text.split())
        elif text.strip() and lines:
            lines[-1] += text.split()  # a continuation of the command above
    if not lines:
        return ["no `rollguard ...` line in a synopsis block"]
    for tokens in lines:
        group = cli.get_command(ctx, tokens[1])
        if group is None:
            problems.append(f"rollguard {tokens[1]}: no such command")
            continue
        words, opts = _tree(group, ctx)
        for tok in tokens[2:]:
            for part in re.split(r"[|\[\]]", tok):
                part = part.rstrip(".,")
                if not part or part == ELLIPSIS:
                    continue
                if part.startswith("-"):
                    if part not in opts:
                        problems.append(f"rollguard {tokens[1]}: no option {part}")
                elif re.fullmatch(r"[a-z][a-z-]*", part) and part not in words:
                    problems.append(f"rollguard {tokens[1]}: no sub-command or value {part!r}")
    return problems


def _normalise(text: str) -> str:
    # columns are aligned with runs of spaces, which depend on the widest value: compare words
    return "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in text.strip().splitlines())


def output_matches(expected: str, actual: str) -> bool:
    """The shown output appears in what the command printed; ``...`` in it stands for anything."""
    # "a ... b" and "a...b" alike: the ellipsis also stands for the spaces around it
    shown = re.sub(r" ?\.\.\. ?", ELLIPSIS, _normalise(expected))
    parts = [re.escape(p) for p in shown.split(ELLIPSIS)]
    return re.search(r"(?s)" + ".*?".join(parts), _normalise(actual)) is not None


def lines_match(expected: str, actual: str) -> bool:
    """Each shown line appears in what the command printed, in any order (for tools that print a
    set of problems in an order of their own, as helm does with schema errors)."""
    printed = _normalise(actual).splitlines()
    return all(any(output_matches(line, p) for p in printed) for line in _normalise(expected).splitlines())


def json_matches(expected: Any, actual: Any) -> bool:
    """A JSON value shown in the docs against the real one: "..." stands for any value."""
    if expected == ELLIPSIS:
        return True
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(json_matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(json_matches(e, a) for e, a in zip(expected, actual, strict=True))
    return bool(expected == actual)

"""Every kubectl command the docs, the chart and the CLI tell a reader to type names rollguard's
resources so that no other installed tool can answer: `featureflags.rollguard.io` or `rgflag`,
never a bare `featureflags`, `ff` or `canary` (the OpenFeature operator's, Flagger's).
The other tools' names: tests/support/other_tools.py."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.docs.blocks import DOCS, REPO
from tests.support.other_tools import CORE_KUBERNETES, OTHER_TOOLS_NAMES, owners

# Where a reader is told to type kubectl: the docs, the chart's notes and alert texts, the
# dashboards, the CLI's messages and help, the scripts that print instructions.
SOURCES = sorted({
    *DOCS,
    *(REPO / "charts" / "rollguard" / "templates").glob("*.txt"),
    *(REPO / "charts" / "rollguard" / "files").glob("*.yaml"),
    *(REPO / "charts" / "rollguard" / "files").glob("*.json"),
    *(REPO / "deploy").rglob("*.yaml"),
    *(REPO / "deploy").rglob("*.json"),
    *(REPO / "rollguard").rglob("*.py"),
    *(REPO / "operator").rglob("*.py"),
    *(REPO / "hack").glob("*.sh"),
    *(REPO / "examples").rglob("*.md"),
})

# A bare word another tool's group also answers to (core Kubernetes' own names win in kubectl
# and are not rollguard's to avoid).
AMBIGUOUS = OTHER_TOOLS_NAMES - CORE_KUBERNETES
# Verbs whose first argument is a resource type (or TYPE/NAME).
RESOURCE_VERBS = {"get", "describe", "edit", "delete", "patch", "label", "annotate", "wait", "explain", "scale"}
# Options that take their value as the next word.
VALUE_OPTIONS = {"-n", "--namespace", "-l", "--selector", "-o", "--output", "-p", "--patch", "--type",
                 "-f", "--filename", "--context", "--kubeconfig", "--field-selector", "--for", "--timeout",
                 "-c", "--container", "--sort-by", "--subresource"}
COMMAND = re.compile(r"\bkubectl\s+([^`|;&\n()\"]*)")


def resource_words(command: str) -> list[str]:
    """The resource types a `kubectl ...` command line names, as typed (``fcat/x`` -> ``fcat``)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        words = command.split()
    it = iter(words)
    verb = None
    for w in it:
        if w.startswith("-"):
            if w in VALUE_OPTIONS:
                next(it, None)
            continue
        if verb is None:
            verb = w
            if verb not in RESOURCE_VERBS:
                return []
            continue
        if w.startswith(("$", "{")):
            return []
        return [t for t in w.split("/")[0].split(",") if t]
    return []


def bare_clashes(text: str) -> list[tuple[int, str, str]]:
    """(line, command, word) for each kubectl command naming a resource by a bare ambiguous word."""
    found = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in COMMAND.finditer(line):
            for word in resource_words(m.group(1)):
                if "." not in word and word.lower() in AMBIGUOUS:
                    found.append((lineno, f"kubectl {m.group(1).strip()}", word))
    return found


def test_the_check_sees_what_a_reader_would_type() -> None:
    assert resource_words("-n staging get featureflags") == ["featureflags"]
    assert resource_words("-n prod wait ff/agents --for=condition=Valid --timeout=60s") == ["ff"]
    assert resource_words("get --namespace prod canary,rgflag -o wide") == ["canary", "rgflag"]
    assert resource_words("apply -f featureflag.yaml") == []
    assert [w for _, _, w in bare_clashes("run `kubectl -n shop get featureflags` then")] == ["featureflags"]
    assert [w for _, _, w in bare_clashes("kubectl -n prod wait canary/web --for=create")] == ["canary"]
    assert bare_clashes("kubectl -n shop get featureflags.rollguard.io rgflag") == []
    assert bare_clashes("kubectl get services,deployments -A") == []  # core Kubernetes' names
    assert len(SOURCES) > 20 and REPO / "docs" / "flags.md" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_kubectl_commands_name_rollguard_resources_unambiguously(path: Path) -> None:
    problems = [f"{path.relative_to(REPO)}:{n}: `{cmd}`: `{word}` is also {owners(word)}'s; "
                f"type the group-qualified name (e.g. featureflags.rollguard.io) or rollguard's short name"
                for n, cmd, word in bare_clashes(path.read_text())]
    assert not problems, "\n".join(problems)

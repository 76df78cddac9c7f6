"""rollguard's CRD short names collide with nothing a platform team runs next to it.

`kubectl get canary` in a cluster with Flagger, or `kubectl get ff` with the OpenFeature operator,
must not be a coin toss between two tools. The short names live in crds/ (CanaryRollout's is
generated from rollguard.operator.canary.crd); tests/support/other_tools.py is the list of the
other tools' names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.other_tools import CORE_KUBERNETES, RESOURCES, owners

REPO = Path(__file__).resolve().parents[2]
CRD_FILES = sorted((REPO / "crds").glob("*.rollguard.io.yaml"))


def _names(path: Path) -> dict[str, Any]:
    names: dict[str, Any] = yaml.safe_load(path.read_text())["spec"]["names"]
    return names


def test_there_are_three_rollguard_crds() -> None:
    assert {_names(p)["kind"] for p in CRD_FILES} == {"FailureCatalog", "FeatureFlag", "CanaryRollout"}


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda p: p.name)
def test_short_names_collide_with_no_other_tool(path: Path) -> None:
    names = _names(path)
    shorts = [s.lower() for s in names.get("shortNames", [])]
    assert shorts, f"{path.name}: no short names"
    clashes = {s: owners(s) for s in shorts if owners(s)}
    assert not clashes, f"{names['kind']}'s short names are other tools' too: {clashes}"
    core = sorted(set(shorts) & CORE_KUBERNETES)
    assert not core, f"{names['kind']}'s short names {core} are core Kubernetes names"


def test_short_names_are_rollguards_own() -> None:
    """One name, one kind: no short name is another rollguard kind's name, and each says rollguard."""
    seen: dict[str, str] = {}
    for path in CRD_FILES:
        names = _names(path)
        for n in [names["plural"], names["singular"], *names["shortNames"]]:
            assert n.lower() not in seen, f"{n} names both {seen[n.lower()]} and {names['kind']}"
            seen[n.lower()] = names["kind"]
        for s in names["shortNames"]:
            assert s.startswith("rg"), f"{names['kind']}: short name {s} does not say it is rollguard's"


def test_a_plural_another_tool_has_is_explained_in_the_readme() -> None:
    """rollguard's kinds keep their names (FeatureFlag is also OpenFeature's); where a plural or
    singular is another tool's, the README tells the reader to type the group-qualified name."""
    readme = (REPO / "README.md").read_text()
    ambiguous = []
    for path in CRD_FILES:
        names = _names(path)
        for n in (names["plural"], names["singular"]):
            if owners(n):
                ambiguous.append(n)
                assert f"{names['plural']}.rollguard.io" in readme, (
                    f"`{n}` is also {owners(n)}: the README must say to type {names['plural']}.rollguard.io")
        shorts = ", ".join(f"`{s}`" for s in names["shortNames"])
        row = f"| {names['kind']} | `{names['plural']}.rollguard.io` | {shorts} |"
        assert row in readme.splitlines(), f"the README's table of names has no row {row}"
    # the list of other tools is what makes this test fail: FeatureFlag is a known clash
    assert "featureflags" in ambiguous


def test_the_list_of_other_tools_finds_the_known_clashes() -> None:
    """The names rollguard used to have, each of which is (or was about to be) another tool's."""
    assert owners("canary") == ["Flagger Canary"]
    assert owners("ff") == ["OpenFeature operator FeatureFlag"]
    assert owners("featureflags") == ["OpenFeature operator FeatureFlag"]
    assert "Argo Rollouts Rollout" in owners("ro")
    assert len({r[3] for r in RESOURCES}) > 50

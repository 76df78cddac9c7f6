"""The Argo CD health check for CanaryRollout, run in Lua 5.1 (the dialect Argo CD's gopher-lua speaks)."""

from __future__ import annotations

from typing import Any

import lupa.lua51 as lua51  # type: ignore[import-untyped]
import pytest
import yaml

from tests.support.helm import REPO

HEALTH = REPO / "deploy" / "argocd" / "health.lua"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)

    def to_lua(v: Any) -> Any:
        if isinstance(v, dict):
            return lua.table_from({k: to_lua(x) for k, x in v.items()})
        if isinstance(v, list):
            return lua.table_from([to_lua(x) for x in v])
        return v

    lua.globals().obj = to_lua(obj)
    hs = lua.execute(HEALTH.read_text())
    return str(hs["status"]), str(hs["message"])


def rollout(phase: str | None, generation: int = 2, observed: int | None = 2, **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "rollguard.io/v1alpha1", "kind": "CanaryRollout",
                           "metadata": {"name": "m4", "namespace": "aos", "generation": generation}}
    if phase is not None:
        obj["status"] = {"phase": phase, **status}
        if observed is not None:
            obj["status"]["observedGeneration"] = observed
    return obj


@pytest.mark.parametrize(("phase", "expected"), [
    ("Pending", "Progressing"), ("Initializing", "Progressing"), ("Progressing", "Progressing"),
    ("Promoting", "Progressing"), ("Paused", "Suspended"), ("Succeeded", "Healthy"),
    ("Blocked", "Degraded"), ("RollingBack", "Degraded"), ("RolledBack", "Degraded"), ("Failed", "Degraded"),
])
def test_every_phase_maps_to_an_argo_health(phase: str, expected: str) -> None:
    assert health(rollout(phase))[0] == expected


def test_phases_cover_the_crd_enum() -> None:
    # Every phase the CRD allows has a mapping other than Unknown.
    crd = yaml.safe_load((REPO / "crds" / "canaryrollouts.rollguard.io.yaml").read_text()) \
        if (REPO / "crds" / "canaryrollouts.rollguard.io.yaml").exists() else None
    phases = (crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
              ["properties"]["phase"]["enum"]) if crd else [
        "Pending", "Blocked", "Initializing", "Progressing", "Paused", "Promoting", "Succeeded",
        "RollingBack", "RolledBack", "Failed"]
    for p in phases:
        assert health(rollout(p))[0] != "Unknown", p


def test_messages_carry_step_weight_and_reason() -> None:
    status, msg = health(rollout("Progressing", currentStep=2, canaryWeight=25))
    assert (status, msg) == ("Progressing", "Progressing step 2, canary weight 25%")
    status, msg = health(rollout("RolledBack", message="error rate delta 73% > 50%"))
    assert (status, msg) == ("Degraded", "Rolled back: error rate delta 73% > 50%")
    assert health(rollout("Blocked", reason="SignOffMissing"))[1] == "Blocked: SignOffMissing"


def test_unobserved_spec_change_is_progressing_even_after_success() -> None:
    assert health(rollout("Succeeded", generation=3, observed=2)) == (
        "Progressing", "Waiting for the operator to observe generation 3")
    assert health(rollout("Succeeded", generation=3, observed=None))[0] == "Progressing"


def test_no_status_yet_and_unknown_phase() -> None:
    assert health(rollout(None))[0] == "Progressing"
    assert health(rollout("Exploded")) == ("Unknown", "Unknown phase Exploded")


def test_argocd_cm_snippet_embeds_health_lua_verbatim() -> None:
    cm = yaml.safe_load((REPO / "deploy" / "argocd" / "argocd-cm-health.yaml").read_text())
    assert cm["metadata"] == {"name": "argocd-cm", "namespace": "argocd"}
    assert cm["data"]["resource.customizations.health.rollguard.io_CanaryRollout"] == HEALTH.read_text()

"""The operator shell's observations: who changed a flag, what a Deployment has mounted."""

from __future__ import annotations

from typing import Any

from rollguard.operator.flags.reconcile import actor_of, deployment_obs, parse_flag


def test_actor_is_latest_spec_writer_not_status_or_kopf() -> None:
    obj = {"metadata": {"managedFields": [
        {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-11-23T10:00:00Z"},
        {"manager": "argocd-controller", "operation": "Apply", "time": "2026-11-23T11:00:00Z"},
        {"manager": "kopf", "operation": "Update", "time": "2026-11-23T11:00:05Z"},
        {"manager": "OpenAPI-Generator", "operation": "Update", "subresource": "status",
         "time": "2026-11-23T12:00:00Z"},
    ]}}
    assert actor_of(obj) == "argocd-controller"


def test_actor_from_cli_annotation_only_when_the_cli_wrote_last() -> None:
    fields = [{"manager": "rollguard-cli", "operation": "Update", "time": "2026-11-23T11:00:00Z"}]
    obj = {"metadata": {"annotations": {"rollguard.io/changed-by": "alice"}, "managedFields": fields}}
    assert actor_of(obj) == "alice (via rollguard-cli)"
    fields.append({"manager": "kubectl-patch", "operation": "Update", "time": "2026-11-23T12:00:00Z"})
    assert actor_of(obj) == "kubectl-patch"  # a stale annotation does not claim a later kubectl change
    assert actor_of({"metadata": {}}) == "unknown"


def test_deployment_obs_reads_our_volume() -> None:
    d: dict[str, Any] = {"metadata": {"name": "backend", "labels": {"app": "backend"}},
         "spec": {"template": {"spec": {
             "containers": [{"name": "app"}, {"name": "sidecar"}],
             "volumes": [{"name": "data", "emptyDir": {}},
                         {"name": "rollguard-flags", "configMap": {"name": "rollguard-flags-staging"}}]}}}}
    obs = deployment_obs(d)
    assert obs.containers == ("app", "sidecar") and obs.mounted_environment == "staging"
    d["spec"]["template"]["spec"]["volumes"] = []
    assert deployment_obs(d).mounted_environment is None


def test_parse_flag_reports_what_is_wrong() -> None:
    bad = parse_flag({"metadata": {"name": "x"}, "spec": {"owner": "o", "defaultValue": "yes"}})
    assert isinstance(bad, str) and "spec.defaultValue" in bad
    good = parse_flag({"metadata": {"name": "x"}, "spec": {"owner": "o", "defaultValue": True}})
    assert not isinstance(good, str) and good.key == "x"

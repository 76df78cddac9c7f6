"""The flags controller's planner (pure) and its clock's choice of namespaces, without a cluster."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rollguard.flags.evaluate import CLOCK_SKEW
from rollguard.operator.flags.actions import ApplyConfigMap, DeleteConfigMap, Mount, Unmount, WriteStatus
from rollguard.operator.flags.reconcile import Observed, plan, transition_times
from rollguard.operator.handlers.flags import due

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def flag(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag",
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}", "generation": 1,
                         "creationTimestamp": "2026-11-23T10:00:00Z"},
            "spec": {"owner": "team", "defaultValue": False, **spec}}


def deployment(name: str, mounted: str | None = None) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "app"}]}
    if mounted:
        pod["volumes"] = [{"name": "rollguard-flags", "configMap": {"name": f"rollguard-flags-{mounted}"}}]
        pod["containers"][0]["volumeMounts"] = [{"name": "rollguard-flags", "mountPath": "/etc/rollguard/flags"}]
    return {"metadata": {"name": name, "labels": {"app": name}}, "spec": {"template": {"spec": pod}}}


def cm(env: str) -> dict[str, Any]:
    return {"metadata": {"name": f"rollguard-flags-{env}", "labels": {"rollguard.io/flags-environment": env}}}


def test_plan_orders_files_mounts_then_statuses_and_reports_an_invalid_flag_first() -> None:
    obs = Observed(
        flags=(flag("checkout", environments={"staging": True},
                    targets=[{"environment": "staging", "deployments": ["api"]}]),
               flag("broken", defaultValue="yes")),
        deployments=(deployment("api"), deployment("old", mounted="production")),
        config_maps=(cm("production"),))
    ns_plan, actions = plan(obs, "shop", NOW)
    kinds = [type(a) for a in actions]
    assert kinds == [WriteStatus, ApplyConfigMap, DeleteConfigMap, Mount, Unmount, WriteStatus]
    invalid, apply, delete, mount, unmount, status = actions
    assert isinstance(invalid, WriteStatus) and invalid.name == "broken" and not invalid.isolated
    assert invalid.status is not None and invalid.status["phase"] == "Invalid"
    assert [e[:2] for e in invalid.events] == [("Warning", "InvalidSpec")]
    assert isinstance(apply, ApplyConfigMap) and apply.name == "rollguard-flags-staging"
    assert [o["metadata"]["name"] for o in apply.owners] == ["checkout"]
    assert delete == DeleteConfigMap("rollguard-flags-production")
    assert mount == Mount("api", "rollguard-flags-staging", ("app",))
    assert unmount == Unmount("old", ("app",))
    assert isinstance(status, WriteStatus) and status.name == "checkout" and status.isolated
    assert list(ns_plan.flags) == ["checkout"]


def test_plan_again_from_its_own_result_writes_and_posts_nothing() -> None:
    f = flag("broken", defaultValue="yes")
    _, actions = plan(Observed((f,), (), ()), "shop", NOW)
    assert isinstance(actions[0], WriteStatus) and actions[0].status is not None
    f["status"] = dict(actions[0].status)
    assert plan(Observed((f,), (), ()), "shop", NOW + dt.timedelta(minutes=1))[1] == []


def test_transition_times_are_the_signoff_start_and_expiry() -> None:
    at, expires = NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1)
    signoff = {"by": "sre", "at": iso(at), "expiresAt": iso(expires), "evidence": {"kind": "Manual"}}
    assert transition_times(flag("f", requiresSignoff=True, signoff=signoff)["spec"]) == (at - CLOCK_SKEW, expires)
    assert transition_times(flag("f", signoff=signoff)["spec"]) == ()  # no gate: nothing changes by itself
    assert transition_times({"defaultValue": "yes"}) == ()


def test_the_clock_wakes_a_namespace_once_its_instant_has_passed() -> None:
    index = {"shop": [(NOW,), ()], "other": [()]}
    assert due(index, NOW - dt.timedelta(seconds=1), NOW, False) == ["shop"]  # type: ignore[arg-type]
    assert due(index, NOW, NOW + dt.timedelta(seconds=1), False) == []  # type: ignore[arg-type]
    assert due(index, NOW, NOW + dt.timedelta(seconds=1), True) == ["other", "shop"]  # type: ignore[arg-type]


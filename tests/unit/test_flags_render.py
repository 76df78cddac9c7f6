"""flags.json / flagd.json rendering and the namespace plan (pure core, no cluster)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rollguard.flags import DeploymentObs, build_status, plan_namespace, signoff_verdict
from rollguard.flags.render import FLAGD_FILE, FLAGD_SCHEMA, FLAGS_FILE
from rollguard.models.flag import FeatureFlag

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def flag(name: str, created: str = "2026-11-01T00:00:00Z", **spec: Any) -> FeatureFlag:
    raw: dict[str, Any] = {"owner": "platform", "defaultValue": False}
    raw.update(spec)
    return FeatureFlag.model_validate({"metadata": {"name": name, "generation": 1, "creationTimestamp": created},
                                       "spec": raw})


GATED: dict[str, Any] = dict(
             key="failure_catalog_runtime_integration", requiresSignoff=True, envVar="AOS_FEATURE_FAILURE_CATALOG",
             environments={"staging": True, "production": True},
             targets=[{"environment": "staging", "deployments": ["backend-staging"]},
                      {"environment": "production", "selector": {"matchLabels": {"tier": "prod"}}}])
DEPLOYMENTS = [DeploymentObs("backend-staging", {"app": "backend"}, ("app",)),
               DeploymentObs("backend", {"app": "backend", "tier": "prod"}, ("app",)),
               DeploymentObs("unrelated", {}, ("app",), mounted_environment="staging")]


def files(plan: Any, env: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return json.loads(plan.files[env][FLAGS_FILE]), json.loads(plan.files[env][FLAGD_FILE])


def test_two_environments_get_their_own_values_and_blocked_flag_says_why() -> None:
    evidence = {"kind": "ShadowRun", "mismatches": 0}
    signed: dict[str, Any] = dict(GATED, signoff={"by": "sre", "at": "2026-11-22T00:00:00Z", "evidence": evidence})
    plan = plan_namespace([flag("failure-catalog", **GATED), flag("cost-sim", defaultValue=True,
                                                                  environments={"production": False})],
                          DEPLOYMENTS, "shop", NOW)
    assert plan.environments == ["production", "staging"]
    fj, fd = files(plan, "staging")
    entry = fj["flags"]["failure_catalog_runtime_integration"]
    assert (entry["value"], entry["enabled"], entry["blocked"], entry["reason"]) == (False, False, True,
                                                                                     "SignoffMissing")
    assert "AOS_FEATURE_FAILURE_CATALOG" in entry["envVars"]
    assert fj["flags"]["cost-sim"]["value"] is True
    assert json.loads(plan.files["production"][FLAGS_FILE])["flags"]["cost-sim"]["value"] is False
    assert fd["$schema"] == FLAGD_SCHEMA
    assert fd["flags"]["failure_catalog_runtime_integration"]["defaultVariant"] == "off"
    assert fd["flags"]["cost-sim"] == {"state": "ENABLED", "variants": {"on": True, "off": False},
                                       "defaultVariant": "on", "metadata": fd["flags"]["cost-sim"]["metadata"]}
    # targets: by name and by selector; a Deployment we mounted before and nobody targets now is unmounted
    assert plan.mounts == {"backend-staging": "staging", "backend": "production"}
    assert plan.unmounts == ["unrelated"]

    signed_plan = plan_namespace([flag("failure-catalog", **signed)], DEPLOYMENTS, "shop", NOW)
    fj, fd = files(signed_plan, "production")
    assert fj["flags"]["failure_catalog_runtime_integration"]["value"] is True
    assert fd["flags"]["failure_catalog_runtime_integration"]["defaultVariant"] == "on"


def test_rendering_is_deterministic() -> None:
    a = plan_namespace([flag("a", environments={"x": True}), flag("b")], DEPLOYMENTS, "ns", NOW)
    b = plan_namespace([flag("b"), flag("a", environments={"x": True})], list(reversed(DEPLOYMENTS)), "ns", NOW)
    assert a.files == b.files


def test_duplicate_key_newer_flag_is_invalid_and_not_delivered() -> None:
    old = flag("old", created="2026-01-01T00:00:00Z", key="k", defaultValue=True, environments={"dev": True})
    new = flag("new", created="2026-02-01T00:00:00Z", key="k", defaultValue=False)
    plan = plan_namespace([new, old], [], "ns", NOW)
    assert plan.flags["new"].problems[0][0] == "DuplicateKey"
    assert plan.flags["old"].valid
    assert json.loads(plan.files["dev"][FLAGS_FILE])["flags"]["k"]["resource"] == "old"


def test_deployment_claimed_by_two_environments_gets_nothing() -> None:
    a = flag("a", targets=[{"environment": "staging", "deployments": ["backend"]}])
    b = flag("b", targets=[{"environment": "production", "deployments": ["backend"]}])
    plan = plan_namespace([a, b], DEPLOYMENTS, "ns", NOW)
    assert "backend" not in plan.mounts and plan.conflicts == {"backend": ["production", "staging"]}
    assert plan.flags["a"].problems[0][0] == "TargetConflict"
    # already mounted for one of the claimed environments: it keeps that one, nothing is unmounted
    mounted = [DeploymentObs("backend", {}, ("app",), mounted_environment="staging")]
    plan2 = plan_namespace([a, b], mounted, "ns", NOW)
    assert plan2.mounts == {"backend": "staging"} and plan2.unmounts == []
    assert "keeps staging" in plan2.flags["b"].problems[0][1]
    assert plan2.flags["a"].deployments == {"staging": ["backend"]} and plan2.flags["b"].deployments == {
        "production": []}


def test_status_history_and_events_only_on_change() -> None:
    f = flag("failure-catalog", **GATED)
    plan = plan_namespace([f], DEPLOYMENTS, "shop", NOW)
    st1, ev1 = build_status(plan.flags["failure-catalog"], None, 1, "alice", NOW)
    assert st1.phase == "Blocked" and st1.summary == "production=false(blocked) staging=false(blocked)"
    assert [e.type for e in ev1] == ["Normal", "Warning"] and ev1[1].reason == "SignoffMissing"
    blocked = {c.type: c for c in st1.conditions or []}["Blocked"]
    assert blocked.status == "True" and blocked.reason == "SignoffMissing"
    assert st1.history and st1.history[0].actor == "alice"
    # same inputs again (e.g. operator restart): nothing new recorded, no Event
    st2, ev2 = build_status(plan.flags["failure-catalog"], st1, 1, "alice", NOW + dt.timedelta(minutes=1))
    assert ev2 == [] and st2.history == st1.history
    assert {c.type: c for c in st2.conditions or []}["Blocked"].last_transition_time == NOW
    # sign-off given: values flip, history records who and what
    signed = flag("failure-catalog", **dict(GATED, signoff={"by": "sre", "at": "2026-11-23T11:00:00Z",
                                                            "evidence": {"kind": "Manual"}}))
    plan3 = plan_namespace([signed], DEPLOYMENTS, "shop", NOW)
    st3, ev3 = build_status(plan3.flags["failure-catalog"], st2, 2, "bob", NOW)
    assert st3.phase == "Ready" and st3.summary == "production=true staging=true"
    assert st3.history and "staging: false -> true (Override)" in st3.history[-1].change
    assert "signoff: Missing -> Valid" in st3.history[-1].change and st3.history[-1].actor == "bob"
    assert [e.reason for e in ev3] == ["FlagChanged"]
    # a renewed sign-off (new approver and expiry, state stays Valid) is audited too
    renewed = flag("failure-catalog", **dict(GATED, signoff={"by": "carol", "at": "2026-11-23T11:30:00Z",
                                                             "expiresAt": "2026-12-23T00:00:00Z",
                                                             "evidence": {"kind": "Manual"}}))
    st4, ev4 = build_status(plan_namespace([renewed], DEPLOYMENTS, "shop", NOW).flags["failure-catalog"],
                            st3, 3, "carol", NOW)
    assert st4.history and st4.history[-1].change.startswith("signoff renewed: signed off by carol")
    assert [e.reason for e in ev4] == ["FlagChanged"]


# -- property: whatever the flags, no file ever carries a gated flag as true without a valid sign-off ------
ENVS = st.sampled_from(["staging", "production", "dev"])


@st.composite
def flag_specs(draw: st.DrawFn, index: int) -> FeatureFlag:
    spec: dict[str, Any] = {
        "key": draw(st.sampled_from(["a", "b", "c", f"k{index}"])),
        "defaultValue": draw(st.booleans()),
        "environments": draw(st.dictionaries(ENVS, st.booleans(), max_size=3)),
        "requiresSignoff": draw(st.booleans()),
        "targets": [{"environment": draw(ENVS), "deployments": [draw(st.sampled_from(["web", "worker"]))]}],
    }
    if draw(st.booleans()):
        at = NOW + dt.timedelta(hours=draw(st.integers(-48, 2)))
        s: dict[str, Any] = {"by": "sre", "at": at.isoformat(),
                             "evidence": {"kind": "ShadowRun", "mismatches": draw(st.integers(0, 2))}}
        if draw(st.booleans()):
            s["expiresAt"] = (at + dt.timedelta(hours=draw(st.integers(1, 72)))).isoformat()
        spec["signoff"] = s
    return flag(f"flag-{index}", created=f"2026-11-0{index + 1}T00:00:00Z", **spec)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=5, unique=True).flatmap(
    lambda ids: st.tuples(*[flag_specs(i) for i in ids])))
def test_no_file_ever_enables_a_gated_flag_without_valid_signoff(flags: tuple[FeatureFlag, ...]) -> None:
    deployments = [DeploymentObs("web", containers=("app",)), DeploymentObs("worker", containers=("app",))]
    plan = plan_namespace(list(flags), deployments, "ns", NOW)
    by_name = {f.name: f for f in flags}
    for env, content in plan.files.items():
        fj, fd = json.loads(content[FLAGS_FILE]), json.loads(content[FLAGD_FILE])
        assert set(fj["flags"]) == set(fd["flags"])
        for key, entry in fj["flags"].items():
            f = by_name[entry["resource"]]
            gate_ok = signoff_verdict(f.spec, NOW).allows_enable
            desired = (f.spec.environments or {}).get(env, f.spec.default_value)
            assert entry["value"] == (desired and gate_ok), (env, key, entry)
            assert fd["flags"][key]["defaultVariant"] == ("on" if entry["value"] else "off")
    # each key is delivered once, by its oldest flag
    for env in plan.files:
        delivered = json.loads(plan.files[env][FLAGS_FILE])["flags"]
        for key, entry in delivered.items():
            owners = sorted((f.metadata["creationTimestamp"], f.name) for f in flags if f.key == key)
            assert entry["resource"] == owners[0][1]
    # a Deployment is mounted for at most one environment, and only if some flag targets it there
    for dep, env in plan.mounts.items():
        assert any(t.environment == env and dep in (t.deployments or []) for f in flags for t in f.spec.targets or [])
        assert dep not in plan.conflicts  # none was mounted before, so a conflicted one gets nothing

"""The canary engine under edits, a second rollout, a lost status write, deleted objects and an
outage: what a user sees in status, Events and traffic, tick by tick without a cluster."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from rollguard.models.canary import CanaryRolloutSpec
from rollguard.operator.canary.actions import ApplyChangeToStable, DeleteCanary, RestoreStable, SetWeight
from rollguard.operator.canary.engine import TargetState, running_spec, spec_hash
from rollguard.operator.metrics.base import MetricObservation, QueryError
from tests.unit.test_canary_engine import Run, make_spec

IMAGE = {"image": {"container": "web", "image": "web:2"}}
STEPS = [{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 50}, {"setWeight": 100}]


def image_spec(**over: Any) -> CanaryRolloutSpec:
    return make_spec(**{"change": IMAGE, "steps": STEPS, **over})


def edited(spec: CanaryRolloutSpec, **over: Any) -> CanaryRolloutSpec:
    raw = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    raw.update(over)
    return CanaryRolloutSpec.model_validate(raw)


def to_step_2(r: Run) -> None:
    """Progressing at step 2 (weight 50 %): the canary runs the change and takes traffic."""
    r.to_progressing()
    r.check()                                  # pass at 20 % -> the pause
    while r.st.current_step < 2:
        r.check()
    assert r.phase == "Progressing" and r.world.weight == 50


def finish(r: Run, ticks: int = 60) -> None:
    for _ in range(ticks):
        if r.phase in ("Succeeded", "RolledBack"):
            return
        if r.phase in ("Pending", "Blocked", "Initializing", "RollingBack", "Promoting"):
            r.tick(1)
        else:
            r.check()


def attempt_image(r: Run) -> str:
    assert r.st.attempt_spec is not None
    image: str = json.loads(r.st.attempt_spec)["change"]["image"]["image"]
    return image


def stable_changed(r: Run) -> bool:
    return r.world.stable_has_change  # read through a call: no narrowing carried between ticks


def reason(r: Run) -> str | None:
    return r.st.reason


def waiting_since(r: Run) -> dt.datetime | None:
    return r.st.analysis_waiting_since


# --------------------------------------------------------------------------- a spec edited mid-rollout

def test_an_image_edited_at_step_2_starts_over_and_only_the_analysed_image_is_promoted() -> None:
    r = Run(image_spec())
    to_step_2(r)
    r.spec = edited(r.spec, change={"image": {"container": "web", "image": "web:3"}})
    r.tick(1)
    assert r.phase in ("RollingBack", "Pending") and r.st.reason == "SpecChanged"
    assert not any(isinstance(a, ApplyChangeToStable) for a in r.actions)
    assert r.world.weight == 0 and not r.world.canary_exists
    changed = r.events("SpecChanged")
    assert changed and "change.image" in changed[0].message and "step 2" in changed[0].message
    finish(r)
    assert r.phase == "Succeeded", r.st.message
    assert r.st.attempt == 2 and r.st.restarted_for is not None and "change.image" in r.st.restarted_for
    assert attempt_image(r) == "web:3" and r.st.spec_hash == spec_hash(r.spec)
    # the promotion of attempt 2 came after checks at weight 100 % of attempt 2
    assert r.st.checks_passed > 0 and r.world.stable_has_change


@pytest.mark.parametrize(("field", "value", "named"), [
    ("analysis", {"interval": "10s", "prometheus": {"address": "http://prom:9090"}, "profile": "permissive",
                  "metrics": [{"name": "error-rate", "query": "e", "rule": {"fromProfile": "errorRate"}}]},
     "analysis.metrics"),
    ("steps", [{"setWeight": 50}, {"setWeight": 100}], "steps"),
    ("traffic", {"provider": "nginx", "ingress": {"name": "shop"}}, "traffic.ingress"),
    ("targetRef", {"name": "api"}, "targetRef.name"),
    ("smoke", {"http": {"url": "http://web-canary/healthz"}}, "smoke"),
    ("watch", "5m", "watch"),
    ("dryRun", True, "dryRun"),
])
def test_every_judged_field_edited_mid_rollout_restarts_naming_the_field(field: str, value: Any,
                                                                         named: str) -> None:
    r = Run(image_spec())
    to_step_2(r)
    old = r.spec
    r.spec = edited(r.spec, **{field: value})
    r.tick(1)
    assert r.st.reason == "SpecChanged" and r.st.restart_pending is not None and named in r.st.restart_pending
    # the teardown runs with the spec the attempt ran with: the old target's canary, the old route
    assert running_spec(r.spec, r.st).target_ref == old.target_ref
    assert running_spec(r.spec, r.st).traffic == old.traffic
    r.tick(1)
    assert r.phase == "Pending" and r.st.attempt == 2 and named in (r.st.restarted_for or "")
    assert running_spec(r.spec, r.st) == r.spec


def test_a_deadline_edit_applies_live_without_restarting() -> None:
    r = Run(image_spec())
    to_step_2(r)
    r.spec = edited(r.spec, progressDeadlineSeconds=900)
    r.check()
    assert r.st.attempt == 1 and r.st.reason != "SpecChanged" and r.st.restart_pending is None
    assert running_spec(r.spec, r.st).progress_deadline_seconds == 900


def test_an_edit_while_promoting_undoes_the_promotion_and_starts_over() -> None:
    r = Run(image_spec(steps=[{"setWeight": 100}]))
    r.to_progressing()
    r.check()
    assert r.phase == "Promoting" and r.world.stable_has_change
    r.spec = edited(r.spec, change={"image": {"container": "web", "image": "web:3"}})
    r.tick(1)
    assert any(isinstance(a, RestoreStable) for a in r.last) and not stable_changed(r)
    r.tick(1)
    assert r.phase == "Pending" and r.st.attempt == 2 and "phase Promoting" in (r.st.restarted_for or "")


def test_an_edit_before_the_rollout_starts_is_simply_its_spec() -> None:
    r = Run(image_spec())
    r.tick(target=TargetState(available=False, message="0/1 replicas available"))
    assert r.phase == "Blocked"
    r.spec = edited(r.spec, change={"image": {"container": "web", "image": "web:3"}})
    r.to_progressing()
    assert r.st.attempt == 1 and attempt_image(r) == "web:3" and r.st.restarted_for is None


def test_an_edit_during_a_rollback_lets_the_rollback_finish() -> None:
    r = Run(image_spec())
    r.to_progressing()
    r.tick(1, request="abort")
    r.spec = edited(r.spec, change={"image": {"container": "web", "image": "web:3"}})
    finish(r)
    assert r.phase == "RolledBack" and r.st.attempt == 1 and r.st.restart_pending is None


# --------------------------------------------------------------------------- two rollouts, one Deployment

def test_a_second_rollout_of_a_running_target_is_blocked_naming_the_first() -> None:
    r = Run(image_spec())
    for seconds in (0, 1, 400):   # waiting for the other rollout is not stuck: no deadline
        r.tick(seconds, other_rollout="web-a")
        assert r.phase == "Blocked" and r.st.reason == "TargetBusy"
        assert "CanaryRollout web-a is already rolling out Deployment web" in (r.st.message or "")
    assert not r.mutations()           # the first one's canary and traffic are untouched
    r.to_progressing()                 # the first one finished: this one starts
    assert r.st.attempt == 1


def test_the_other_rollouts_canary_route_does_not_hide_that_the_target_is_busy() -> None:
    r = Run(image_spec())
    r.tick(0, other_rollout="web-a",
           router_error="traffic.ingress.name: the canary Ingress web-canary exists and is not this rollout's")
    assert r.phase == "Blocked" and r.st.reason == "TargetBusy"
    assert "CanaryRollout web-a is already rolling out Deployment web" in (r.st.message or "")


def test_a_rollout_that_finds_the_canary_taken_while_initializing_goes_back_to_blocked() -> None:
    r = Run(image_spec())
    r.tick()
    assert r.phase == "Initializing"
    r.tick(1, other_rollout="web-a")
    assert r.phase == "Blocked" and "web-a" in (r.st.message or "") and not r.last_mutations()


@pytest.mark.parametrize("how", ["abort", "deadline"])
def test_a_blocked_rollout_that_gives_up_touches_nothing(how: str) -> None:
    r = Run(image_spec())
    unavailable = TargetState(available=False, message="rolling update")
    r.tick(0, other_rollout="web-a", target=unavailable)
    if how == "abort":
        r.tick(1, request="abort", other_rollout="web-a", target=unavailable)
    else:
        r.tick(400, other_rollout="web-a", target=unavailable)
    assert r.phase == "RolledBack" and not r.mutations()


# --------------------------------------------------------------------------- a lost status write

def test_a_weight_set_but_not_recorded_is_adopted_never_set_lower() -> None:
    r = Run(image_spec())
    r.to_progressing()
    r.check()
    assert r.st.current_step == 1
    recorded = r.st.model_copy(deep=True)      # the last status that reached the apiserver
    while r.world.weight < 50:
        r.check()
    r.st = recorded                            # the tick that set 50 % was not recorded
    r.check()
    assert not [a for a in r.last if isinstance(a, SetWeight) and a.weight < 50], r.last
    assert r.world.weight == 50 and r.st.canary_weight == 50 and r.st.current_step == 2
    assert r.events("WeightAdopted")


def test_a_weight_no_step_of_this_rollout_sets_is_not_adopted() -> None:
    r = Run(image_spec())
    r.to_progressing()
    r.world.weight = 37                        # someone else's edit of the canary route
    r.check()
    assert r.st.canary_weight == 20 and r.world.weight == 20 and not r.events("WeightAdopted")


# --------------------------------------------------------------------------- objects deleted mid-rollout

@pytest.mark.parametrize(("obs", "named"), [
    ({"target": TargetState(exists=False, available=False, message="not found")},
     "targetRef.name: Deployment web not found"),
    ({"stable_service_exists": False}, "targetRef.name: Service web not found"),
    ({"router_error": "traffic.ingress.name: Ingress web not found"}, "traffic.ingress.name: Ingress web not found"),
    ({"canary_exists": False, "canary_ready": False}, "canary Deployment web-canary not found"),
])
def test_an_object_deleted_mid_rollout_rolls_back_at_once_naming_it(obs: dict[str, Any], named: str) -> None:
    r = Run(image_spec())
    to_step_2(r)
    r.tick(1, **obs)                           # well before any deadline
    assert r.phase in ("RollingBack", "RolledBack") and r.st.reason == "ObjectMissing"
    assert named in (r.st.rollback_reason or ""), r.st.rollback_reason
    assert not any(isinstance(a, ApplyChangeToStable) for a in r.actions)


def test_a_target_deleted_while_promoting_rolls_back_at_once_without_restoring_it() -> None:
    r = Run(image_spec(steps=[{"setWeight": 100}]))
    r.to_progressing()
    r.check()
    assert r.phase == "Promoting"
    gone = TargetState(exists=False, available=False, message="not found")
    r.tick(1, target=gone)
    assert r.phase in ("RollingBack", "RolledBack")
    assert "Deployment web not found" in (r.st.rollback_reason or "")
    r.tick(1, target=gone)
    assert r.phase == "RolledBack" and not r.st.change_applied_to_stable
    assert not any(isinstance(a, RestoreStable) for a in r.actions[-4:])


def test_a_target_deleted_while_the_canary_starts_rolls_back_at_once() -> None:
    r = Run(image_spec())
    r.tick()
    assert r.phase == "Initializing"
    r.tick(1, target=TargetState(exists=False, available=False))
    assert r.phase in ("RollingBack", "RolledBack") and "Deployment web not found" in (r.st.rollback_reason or "")
    assert any(isinstance(a, DeleteCanary) for a in r.last)


# --------------------------------------------------------------------------- Prometheus down

def down(r: Run) -> dict[str, MetricObservation]:
    err = QueryError("connection refused")
    return {m.name: MetricObservation(err, err) for m in r.spec.analysis.metrics}


def test_an_outage_shows_at_the_top_of_the_status_with_since_when() -> None:
    r = Run(image_spec())
    r.to_progressing()
    r.check(down(r))
    since = r.now
    for _ in range(3):
        r.check(down(r))
    assert r.phase == "Progressing" and r.st.reason == "WaitingForPrometheus"
    assert r.st.analysis_waiting_since == since
    message = r.st.message or ""
    assert "analysis waiting for Prometheus at http://prom:9090 since " + f"{since:%Y-%m-%dT%H:%M:%SZ}" in message
    assert "canary ready" not in message and r.st.current_step == 0
    r.check()                                  # Prometheus is back
    assert waiting_since(r) is None and reason(r) != "WaitingForPrometheus"
    assert "waiting for Prometheus" not in (r.st.message or "") and r.events("MetricsAvailable")


def test_an_outage_while_paused_keeps_the_pause_and_says_it_waits() -> None:
    r = Run(image_spec(steps=[{"setWeight": 20}, {"pause": {"untilResumed": True}}, {"setWeight": 100}]))
    r.to_progressing()
    r.check()
    assert r.phase == "Paused"
    r.check(down(r))
    assert r.st.reason == "WaitingForResume" and "paused until resumed" in (r.st.message or "")
    assert "waiting for Prometheus" in (r.st.message or "") and r.st.analysis_waiting_since is not None


def test_an_outage_outlasts_a_pause_and_a_resume() -> None:
    """A resume while Prometheus is still away: the status goes on saying that analysis waits,
    since when the outage began (not "Resumed" over an outage)."""
    r = Run(image_spec())
    r.to_progressing()
    r.check(down(r))
    since = r.now
    r.tick(1, request="pause")
    assert r.phase == "Paused" and r.st.analysis_waiting_since == since
    r.tick(1, request="resume")
    assert r.phase == "Progressing" and r.st.reason == "WaitingForPrometheus"
    assert r.st.analysis_waiting_since == since
    assert f"since {since:%Y-%m-%dT%H:%M:%SZ}" in (r.st.message or "") and r.events("Progressing")
    r.check()                                  # Prometheus is back
    assert waiting_since(r) is None and reason(r) != "WaitingForPrometheus"


# --------------------------------------------------------------------------- state left behind

def test_paused_manually_is_cleared_by_a_promotion() -> None:
    r = Run(image_spec())
    r.to_progressing()
    r.tick(1, request="pause")
    assert r.st.paused_manually
    r.tick(1, request="promote")
    finish(r)
    assert r.phase == "Succeeded" and not r.st.paused_manually


def test_paused_manually_is_cleared_by_an_abort() -> None:
    r = Run(image_spec())
    r.to_progressing()
    r.tick(1, request="pause")
    r.tick(1, request="abort")
    finish(r)
    assert r.phase == "RolledBack" and not r.st.paused_manually and not r.st.change_applied_to_stable



def test_kubectl_get_shows_how_long_analysis_has_waited() -> None:
    """`kubectl get canaryrollouts` shows the reason (WaitingForPrometheus) and, in its own
    column, how long analysis has been waiting; `-o wide` adds the message."""
    import yaml

    from tests.unit.test_canary_model import CRD_FILE
    crd = yaml.safe_load(CRD_FILE.read_text())
    columns = {c["name"]: c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Reason"]["jsonPath"] == ".status.reason"
    assert columns["Waiting"] == {"name": "Waiting", "type": "date", "jsonPath": ".status.analysisWaitingSince"}
    assert columns["Message"]["jsonPath"] == ".status.message"

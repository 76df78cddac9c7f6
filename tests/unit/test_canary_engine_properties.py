"""Property tests of the canary engine (hypothesis): whatever the observations, never promote
after a breach that triggered a rollback, and never promote without evidence."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollguard.models.canary import LIVE_PHASES, TERMINAL_PHASES, CanaryRolloutSpec, CanaryRolloutStatus, Metric
from rollguard.operator.canary.actions import ApplyChangeToStable, SetWeight
from rollguard.operator.canary.analysis import MetricObservation, rule_of
from rollguard.operator.canary.engine import ManualRequest, SmokeResult, analysis_due, decide
from rollguard.operator.canary.simulate import World, passing_observation
from rollguard.operator.metrics.base import NoData, QueryError, Value

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
OUTCOMES = ("pass", "breach", "nodata", "error", "nonfinite")


def breaching_observation(metric: Metric, profile: Any) -> MetricObservation:
    kind, t = rule_of(metric, profile)
    if kind == "maxDeltaPercent":
        return MetricObservation(Value(2.0 + t / 50.0, 100), Value(1.0, 100), Value(1e6, 1))
    if kind in ("maxIncrease", "maxDeltaMs"):
        return MetricObservation(Value(10.0 + t + 1.0, 100), Value(10.0, 100), Value(1e6, 1))
    if kind == "max":
        return MetricObservation(Value(t + 1.0, 100), Value(t, 100), Value(1e6, 1))
    return MetricObservation(Value(t - 1.0, 100), Value(t, 100), Value(1e6, 1))


def observation(metric: Metric, profile: Any, outcome: str) -> MetricObservation:
    if outcome == "pass":
        return passing_observation(metric, profile)
    if outcome == "breach":
        return breaching_observation(metric, profile)
    if outcome == "nodata":
        return MetricObservation(NoData(), NoData(), None)
    if outcome == "nonfinite":   # +Inf on both tracks: a NaN delta that must not read as a pass
        return MetricObservation(Value(math.inf, 100), Value(math.inf, 100), Value(1e6, 1), Value(1e6, 1))
    return MetricObservation(QueryError("connection refused"), QueryError("connection refused"), None)


rules = st.sampled_from([{"maxIncrease": 0}, {"maxDeltaPercent": 50}, {"maxDeltaMs": 500}, {"max": 5},
                         {"min": 1}, {"fromProfile": "errorRate"}, {"fromProfile": "latencyP95"}])


@st.composite
def specs(draw: st.DrawFn) -> CanaryRolloutSpec:
    n = draw(st.integers(1, 3))
    metrics = [{"name": f"m{i}", "query": "q", "rule": draw(rules), "failureLimit": draw(st.integers(0, 3)),
                "consecutiveFailureLimit": draw(st.none() | st.integers(0, 2)), "immediate": draw(st.booleans())}
               for i in range(n)]
    weights = [*sorted(set(draw(st.lists(st.integers(1, 99), max_size=3)))), 100]
    steps: list[dict[str, Any]] = []
    for w in weights:
        steps.append({"setWeight": w})
        pause = draw(st.sampled_from([None, {"duration": "20s"}, {"untilResumed": True}]))
        if pause is not None and w != 100:
            steps.append({"pause": pause})
    raw = {
        "targetRef": {"name": "web"},
        "change": {"image": {"container": "web", "image": "web:2"}},
        "traffic": {"provider": "nginx", "ingress": {"name": "web"}},
        "steps": steps,
        "watch": draw(st.sampled_from(["0s", "15s"])),
        "progressDeadlineSeconds": draw(st.sampled_from([60, 600])),
        "analysis": {"interval": "10s", "prometheus": {"address": "http://p:9090"}, "profile": "moderate",
                     "onUnavailable": draw(st.sampled_from(["continue", "rollback"])),
                     "onNoData": draw(st.sampled_from(["continue", "fail", "rollback"])), "metrics": metrics},
    }
    if draw(st.booleans()):
        raw["smoke"] = {"http": {"url": "http://web-canary/"}, "timeoutSeconds": 30}
    return CanaryRolloutSpec.model_validate(raw)


tick_st = st.tuples(
    st.sampled_from([1, 5, 10, 10, 10, 30]),                       # seconds until this tick
    st.one_of(st.just(["pass"] * 3), st.just(["pass"] * 3),                      # one outcome per metric
              st.lists(st.sampled_from(OUTCOMES), min_size=3, max_size=3)),
    st.sampled_from([None, None, None, None, "pause", "resume", "abort"]),
)


def run(spec: CanaryRolloutSpec, ticks: list[tuple[int, list[str], str | None]], smoke_ok: bool) -> dict[str, Any]:
    world = World(smoke_result=SmokeResult("Passed", 0) if smoke_ok else SmokeResult("Failed", 1))
    status, now = CanaryRolloutStatus(), T0
    rollback_seen = promoted_after_rollback = False
    evidence = False
    applied_without_evidence = False
    breach_not_rolled_back = False
    nonfinite_passed = False
    for i, (secs, outcomes, request) in enumerate(ticks):
        now += dt.timedelta(seconds=secs)
        metrics = None
        if analysis_due(spec, status, now):
            metrics = {m.name: observation(m, spec.analysis.profile, outcomes[j])
                       for j, m in enumerate(spec.analysis.metrics)}
        req = ManualRequest(request, f"r{i}") if request else None  # type: ignore[arg-type]
        weight_before = status.canary_weight
        status, actions = decide(spec, status, world.observe(metrics=metrics, request=req), now)
        for a in actions:
            world.apply(a)
        if metrics is not None and status.last_check_verdict == "pass" and weight_before == 100:
            evidence = True
        if metrics is not None:
            # Judged at this tick (a check skipped for another reason keeps its last verdict).
            judged_now = {ms.name: ms.verdict for ms in status.metrics if ms.last_checked_at == now}
            if any(outcomes[j] == "nonfinite" and judged_now.get(m.name) == "pass"
                   for j, m in enumerate(spec.analysis.metrics)):
                nonfinite_passed = True
        if any(isinstance(a, ApplyChangeToStable) for a in actions):
            if rollback_seen:
                promoted_after_rollback = True
            if not evidence and status.phase == "Promoting":
                applied_without_evidence = True
        if status.phase in ("RollingBack", "RolledBack", "Failed"):
            rollback_seen = True
        if rollback_seen and status.phase in ("Succeeded", "Promoting"):
            promoted_after_rollback = True
        # a failure limit of 0 means: the first counted breach rolls back in the same tick
        if metrics is not None and any(
                ms.verdict == "breach" and ms.last_checked_at == now and ms.failures > 0
                and next(m for m in spec.analysis.metrics if m.name == ms.name).failure_limit == 0
                for ms in status.metrics) and status.phase not in ("RollingBack", "RolledBack", "Failed"):
            breach_not_rolled_back = True
        for a in actions:
            if isinstance(a, SetWeight) and a.weight > 0 and status.smoke is not None:
                assert status.smoke.state == "Passed", "traffic reached a canary whose smoke test had not passed"
    return {"status": status, "world": world, "rollback": rollback_seen, "evidence": evidence,
            "promoted_after_rollback": promoted_after_rollback, "applied_without_evidence": applied_without_evidence,
            "breach_not_rolled_back": breach_not_rolled_back, "nonfinite_passed": nonfinite_passed}


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(spec=specs(), ticks=st.lists(tick_st, min_size=10, max_size=80), smoke_ok=st.booleans())
def test_never_promotes_after_a_rollback(spec: CanaryRolloutSpec, ticks: Any, smoke_ok: bool) -> None:
    out = run(spec, ticks, smoke_ok)
    assert not out["promoted_after_rollback"]


@SETTINGS
@given(spec=specs(), ticks=st.lists(tick_st, min_size=10, max_size=80), smoke_ok=st.booleans())
def test_never_promotes_without_evidence(spec: CanaryRolloutSpec, ticks: Any, smoke_ok: bool) -> None:
    out = run(spec, ticks, smoke_ok)
    assert not out["applied_without_evidence"]
    if out["status"].phase == "Succeeded":
        assert out["evidence"], "promoted without a passing check at weight 100"
        assert not out["rollback"]


@SETTINGS
@given(spec=specs(), ticks=st.lists(tick_st, min_size=10, max_size=80), smoke_ok=st.booleans())
def test_a_breach_beyond_a_zero_limit_always_rolls_back(spec: CanaryRolloutSpec, ticks: Any, smoke_ok: bool) -> None:
    assert not run(spec, ticks, smoke_ok)["breach_not_rolled_back"]


@SETTINGS
@given(spec=specs(), ticks=st.lists(tick_st, min_size=10, max_size=80), smoke_ok=st.booleans())
def test_a_check_with_a_non_finite_value_is_never_a_pass(spec: CanaryRolloutSpec, ticks: Any, smoke_ok: bool) -> None:
    assert not run(spec, ticks, smoke_ok)["nonfinite_passed"]


@SETTINGS
@given(spec=specs(), ticks=st.lists(tick_st, min_size=10, max_size=80), smoke_ok=st.booleans())
def test_a_finished_rollout_leaves_the_world_consistent(spec: CanaryRolloutSpec, ticks: Any, smoke_ok: bool) -> None:
    out = run(spec, ticks, smoke_ok)
    phase, world = out["status"].phase, out["world"]
    if phase == "RolledBack":
        assert world.weight == 0 and not world.canary_exists and not world.stable_has_change
    if phase == "Succeeded":
        assert world.weight == 0 and not world.canary_exists and world.stable_has_change


def test_an_all_passing_run_does_promote() -> None:
    """The properties above would hold for an engine that never promotes; this one must."""
    raw_spec = CanaryRolloutSpec.model_validate({
        "targetRef": {"name": "web"}, "change": {"image": {"container": "web", "image": "web:2"}},
        "traffic": {"provider": "nginx", "ingress": {"name": "web"}},
        "steps": [{"setWeight": 20}, {"pause": {"duration": "20s"}}, {"setWeight": 100}],
        "analysis": {"interval": "10s", "prometheus": {"address": "http://p:9090"},
                     "metrics": [{"name": "m0", "query": "q", "rule": {"max": 5}}]},
    })
    out = run(raw_spec, [(10, ["pass"] * 3, None)] * 20, True)
    assert out["status"].phase == "Succeeded" and out["evidence"]


# --------------------------------------------------------------------------- status truthful, weights rising

def audit(spec: CanaryRolloutSpec, st: CanaryRolloutStatus, world: World | None) -> list[str]:
    """What in ``st`` does not mean what it says in its phase (``world``: the cluster after the
    tick's actions, when the status was recorded)."""
    bad: list[str] = []
    phase = st.phase
    finished = phase in TERMINAL_PHASES
    rolling_back = phase in ("RollingBack", "RolledBack", "Failed")
    if st.paused_manually and phase != "Paused":
        bad.append(f"pausedManually in phase {phase}")
    if st.analysis_waiting_since is not None and phase not in LIVE_PHASES:
        bad.append(f"analysisWaitingSince in phase {phase}")
    if (st.reason == "WaitingForPrometheus") != (st.analysis_waiting_since is not None and phase == "Progressing"):
        bad.append(f"reason {st.reason} with analysisWaitingSince {st.analysis_waiting_since} in phase {phase}")
    if (st.finished_at is not None) != finished or (st.report is not None) != finished:
        bad.append(f"finishedAt/report {st.finished_at}/{st.report is not None} in phase {phase}")
    if (st.rollback_reason is not None) != rolling_back:
        bad.append(f"rollbackReason {st.rollback_reason!r} in phase {phase}")
    if st.restart_pending is not None and phase not in ("RollingBack", "Failed"):
        bad.append(f"restartPending in phase {phase}")
    if phase in ("Pending", "Blocked", "RolledBack") and (st.canary_weight or st.change_applied_to_stable):
        bad.append(f"weight {st.canary_weight} / changeAppliedToStable {st.change_applied_to_stable} in {phase}")
    if phase == "Succeeded" and (st.canary_weight or not st.change_applied_to_stable):
        bad.append(f"weight {st.canary_weight} / changeAppliedToStable {st.change_applied_to_stable} in Succeeded")
    # an attempt that never left Pending/Blocked may finish (abort, deadline) without ever starting
    if (st.attempt_spec is None and phase in ("Initializing", "Progressing", "Paused", "Promoting")) \
            or (st.attempt_spec is not None and phase in ("Pending", "Blocked")):
        bad.append(f"attemptSpec {'absent' if st.attempt_spec is None else 'present'} in phase {phase}")
    if st.current_step > len(spec.steps):
        bad.append(f"currentStep {st.current_step} past the {len(spec.steps)} steps")
    progressing = next((c for c in st.conditions if c.type == "Progressing"), None)
    if progressing is not None and (progressing.status == "True") != (not finished and phase != "Failed"):
        bad.append(f"condition Progressing={progressing.status} in phase {phase}")
    blocked = next((c for c in st.conditions if c.type == "Blocked"), None)
    if blocked is not None and blocked.status == "True" and phase != "Blocked":
        bad.append(f"condition Blocked=True in phase {phase}")
    if world is not None and phase in LIVE_PHASES and world.weight != st.canary_weight:
        bad.append(f"canaryWeight {st.canary_weight} while the route sends {world.weight}%")
    return bad


crash_tick_st = st.tuples(tick_st, st.sampled_from([False, False, False, True]))  # True: the status write is lost


def run_audited(spec: CanaryRolloutSpec, ticks: list[tuple[tuple[int, list[str], str | None], bool]],
                smoke_ok: bool) -> tuple[list[str], list[str]]:
    """Drive ``decide``; some ticks act but their status is never recorded (the operator is
    killed between acting and writing). Returns (status faults, weights moved backwards)."""
    world = World(smoke_result=SmokeResult("Passed", 0) if smoke_ok else SmokeResult("Failed", 1))
    status, now = CanaryRolloutStatus(), T0
    faults: list[str] = []
    backwards: list[str] = []
    for i, ((secs, outcomes, request), lost) in enumerate(ticks):
        now += dt.timedelta(seconds=secs)
        metrics = None
        if analysis_due(spec, status, now):
            metrics = {m.name: observation(m, spec.analysis.profile, outcomes[j])
                       for j, m in enumerate(spec.analysis.metrics)}
        req = ManualRequest(request, f"r{i}") if request else None  # type: ignore[arg-type]
        new, actions = decide(spec, status, world.observe(metrics=metrics, request=req), now)
        for a in actions:
            if isinstance(a, SetWeight) and a.weight < world.weight and new.phase in (
                    "Initializing", "Progressing", "Paused"):
                backwards.append(f"tick {i}: {world.weight}% -> {a.weight}% in phase {new.phase}")
            world.apply(a)
        if not lost:
            status = new
            faults += [f"tick {i}: {f}" for f in audit(spec, status, world)]
    return faults, backwards


@SETTINGS
@given(spec=specs(), ticks=st.lists(tick_st, min_size=10, max_size=80), smoke_ok=st.booleans())
def test_every_status_field_means_what_it_says_in_every_phase(spec: CanaryRolloutSpec, ticks: Any,
                                                             smoke_ok: bool) -> None:
    faults, _ = run_audited(spec, [(t, False) for t in ticks], smoke_ok)
    assert not faults, faults[:5]


@SETTINGS
@given(spec=specs(), ticks=st.lists(crash_tick_st, min_size=10, max_size=80), smoke_ok=st.booleans())
def test_weights_only_rise_until_promotion_or_rollback_even_when_status_writes_are_lost(
        spec: CanaryRolloutSpec, ticks: Any, smoke_ok: bool) -> None:
    _, backwards = run_audited(spec, ticks, smoke_ok)
    assert not backwards, backwards[:5]

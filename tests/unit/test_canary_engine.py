"""The canary engine, driven tick by tick without a cluster: every rule it decides by (docs/canary.md,
"How a rollout runs")."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rollguard.models.canary import CanaryRolloutSpec, CanaryRolloutStatus
from rollguard.operator.canary.actions import (
    Action,
    ApplyChangeToStable,
    CreateCanary,
    DeleteCanary,
    EmitEvent,
    RestoreStable,
    RunSmoke,
    SetWeight,
    WriteReport,
)
from rollguard.operator.canary.analysis import MetricObservation
from rollguard.operator.canary.engine import ManualRequest, Observations, SmokeResult, analysis_due, decide
from rollguard.operator.canary.simulate import World, passing_metrics
from rollguard.operator.metrics.base import NoData, QueryError, Value

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)

GOLDEN = {"name": "golden-mismatch", "query": "g{track='{{track}}'}", "rule": {"maxIncrease": 0},
          "immediate": True, "failureLimit": 0}
ERRORS = {"name": "error-rate", "query": "e{track='{{track}}'}", "rule": {"fromProfile": "errorRate"},
          "failureLimit": 0}
LATENCY = {"name": "latency-p95", "query": "l{track='{{track}}'}", "rule": {"fromProfile": "latencyP95"},
           "failureLimit": 0}


def make_spec(**over: Any) -> CanaryRolloutSpec:
    raw: dict[str, Any] = {
        "targetRef": {"name": "web"},
        "change": {"flags": {"environment": "staging", "values": {"failure_catalog_runtime_integration": True}}},
        "traffic": {"provider": "nginx", "ingress": {"name": "web"}},
        "steps": [{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"setWeight": 50}, {"setWeight": 100}],
        "analysis": {"interval": "10s", "prometheus": {"address": "http://prom:9090"}, "profile": "moderate",
                     "metrics": [dict(GOLDEN), dict(ERRORS), dict(LATENCY)]},
        "progressDeadlineSeconds": 300,
    }
    analysis_over = over.pop("analysis", {})
    raw["analysis"].update(analysis_over)
    raw.update(over)
    return CanaryRolloutSpec.model_validate(raw)


def ok(value: float = 1.0, samples: int = 100) -> MetricObservation:
    return MetricObservation(Value(value, samples), Value(value, samples))


def m(canary: Any, baseline: Any = None, traffic: Any = None, baseline_traffic: Any = None) -> MetricObservation:
    """Numbers become Values; ``traffic``: the canary's sampleQuery result (the baseline's defaults
    to 1000 requests when the canary's is given)."""
    def wrap(x: Any) -> Any:
        return Value(float(x), 100) if isinstance(x, int | float) else x
    if traffic is not None and baseline_traffic is None:
        baseline_traffic = 1000
    return MetricObservation(wrap(canary), wrap(0.0 if baseline is None else baseline), wrap(traffic),
                             wrap(baseline_traffic))


class Run:
    """A rollout against the simulated world; the test supplies metrics and requests."""

    def __init__(self, spec: CanaryRolloutSpec, **world: Any) -> None:
        self.spec = spec
        self.st = CanaryRolloutStatus()
        self.world = World(**world)
        self.now = T0
        self.actions: list[Action] = []
        self.last: list[Action] = []
        self.requests = 0
        self.obs_over: dict[str, Any] = {}

    def tick(self, seconds: float = 0.0, metrics: dict[str, MetricObservation] | None = None,
             request: str | None = None, by: str | None = None, **obs_over: Any) -> list[Action]:
        self.now += dt.timedelta(seconds=seconds)
        req = None
        if request:
            self.requests += 1
            req = ManualRequest(request, f"r{self.requests}", by)  # type: ignore[arg-type]
        obs = self.world.observe(metrics=metrics, request=req)
        fields = {**obs.__dict__, **self.obs_over, **obs_over}
        self.st, self.last = decide(self.spec, self.st, Observations(**fields), self.now)
        for a in self.last:
            self.world.apply(a)
        self.actions += self.last
        return self.last

    @property
    def phase(self) -> str:
        return str(self.st.phase)  # a plain str: mypy must not narrow it between ticks

    def check(self, metrics: dict[str, MetricObservation] | None = None, **kw: Any) -> list[Action]:
        """Wait one analysis interval and analyse with ``metrics`` (default: everything passes)."""
        due = analysis_due(self.spec, self.st, self.now + dt.timedelta(seconds=10))
        chosen = metrics if metrics is not None else passing_metrics(self.spec)
        return self.tick(10, metrics=chosen if due else None, **kw)

    def to_progressing(self) -> None:
        self.tick()
        assert self.phase in ("Initializing", "Progressing"), self.st.message
        self.tick()
        if self.phase == "Initializing":
            self.tick()
        assert self.phase == "Progressing", self.st.message

    def metrics_with(self, **named: MetricObservation) -> dict[str, MetricObservation]:
        base = passing_metrics(self.spec)
        base.update({k.replace("_", "-"): v for k, v in named.items()})
        return base

    def events(self, reason: str | None = None) -> list[EmitEvent]:
        return [a for a in self.actions if isinstance(a, EmitEvent) and (reason is None or a.reason == reason)]

    def mutations(self) -> list[Action]:
        return [a for a in self.actions if a.mutating]

    def last_mutations(self) -> list[Action]:
        return [a for a in self.last if a.mutating]


# --------------------------------------------------------------------------- happy path

def test_promotes_when_every_check_passes() -> None:
    r = Run(make_spec())
    r.to_progressing()
    assert r.st.canary_weight == 10 and r.world.weight == 10
    r.check()                       # pass at 10 % -> pause step
    assert r.st.current_step == 1
    r.check()
    assert r.st.current_step == 1   # the pause lasts 1m
    for _ in range(5):
        r.check()
    assert r.st.current_step == 2 and r.world.weight == 50
    r.check()                       # pass at 50 %
    assert r.world.weight == 100
    assert r.phase == "Progressing"
    r.check()                       # pass at 100 % -> promoting (no watch window)
    assert r.phase == "Promoting"
    r.tick(1)
    r.tick(1)
    assert r.phase == "Succeeded", r.st.message
    assert r.st.report is not None and r.st.report.success and not r.st.report.rollback_triggered
    assert isinstance(r.actions[-1], WriteReport)
    kinds = [type(a).__name__ for a in r.mutations()]
    assert kinds.index("ApplyChangeToStable") < len(kinds) - 2
    assert kinds[-2:] == ["SetWeight", "DeleteCanary"]
    assert [a.weight for a in r.mutations() if isinstance(a, SetWeight)] == [10, 50, 100, 0]
    assert set(r.st.report.metrics_delta) == {"golden-mismatch", "error-rate", "latency-p95"}
    assert [s.kind for s in r.st.report.steps] == ["setWeight", "pause", "setWeight", "setWeight"]
    assert [s.outcome for s in r.st.report.steps] == ["completed"] * 4


def test_first_check_at_a_new_weight_waits_a_full_interval() -> None:
    r = Run(make_spec())
    r.to_progressing()
    assert not analysis_due(r.spec, r.st, r.now + dt.timedelta(seconds=9))
    assert analysis_due(r.spec, r.st, r.now + dt.timedelta(seconds=10))


def test_watch_window_needs_a_passing_check_before_promotion() -> None:
    r = Run(make_spec(steps=[{"setWeight": 100}], watch="30s"))
    r.to_progressing()
    r.check()
    assert r.st.watch_started_at is not None and r.phase == "Progressing"
    r.tick(31)                      # window elapsed but no check in it yet
    assert r.phase == "Progressing"
    r.check()
    assert r.phase == "Promoting"


# --------------------------------------------------------------------------- rollback triggers

def test_golden_mismatch_any_increase_rolls_back_at_once() -> None:
    spec = make_spec()
    spec.analysis.metrics[0].failure_limit = 5   # even a generous limit does not save it
    spec.analysis.metrics[0].immediate = False
    r = Run(spec)
    r.to_progressing()
    r.check(r.metrics_with(golden_mismatch=m(1, 0)))
    # the first sighting waits for the next check: an event on both tracks at one moment reads
    # as the canary ahead until both are scraped; the step does not advance meanwhile
    assert r.phase == "Progressing" and r.st.current_step == 0
    assert r.st.metrics[0].reason == "Unconfirmed" and r.events("AnalysisUnconfirmed")
    r.check(r.metrics_with(golden_mismatch=m(1, 0)))
    assert r.phase == "RolledBack" or r.phase == "RollingBack"
    reason = r.st.rollback_reason or ""
    for text in ("golden-mismatch", "canary 1", "baseline 0", "delta +1", "maxIncrease 0", "step 0", "weight 10%"):
        assert text in reason, (text, reason)
    assert r.actions.index(SetWeight(0)) < r.actions.index(DeleteCanary())


@pytest.mark.parametrize(("profile", "canary", "rolled_back"), [
    ("moderate", 0.0151, True), ("moderate", 0.0149, False),
    ("conservative", 0.0111, True), ("conservative", 0.0109, False),
    ("permissive", 0.0201, True), ("permissive", 0.0199, False),
])
def test_error_rate_delta_percent_per_profile(profile: str, canary: float, rolled_back: bool) -> None:
    r = Run(make_spec(analysis={"profile": profile}))
    r.to_progressing()
    r.check(r.metrics_with(error_rate=m(canary, 0.01)))
    assert (r.phase in ("RollingBack", "RolledBack")) == rolled_back, r.st.message
    if rolled_back:
        assert "error-rate" in (r.st.rollback_reason or "") and "maxDeltaPercent" in (r.st.rollback_reason or "")


@pytest.mark.parametrize(("profile", "delta_ms", "rolled_back"), [
    ("moderate", 501, True), ("moderate", 499, False),
    ("conservative", 101, True), ("conservative", 99, False),
    ("permissive", 1001, True), ("permissive", 999, False),
])
def test_latency_p95_delta_ms_per_profile(profile: str, delta_ms: float, rolled_back: bool) -> None:
    r = Run(make_spec(analysis={"profile": profile}))
    r.to_progressing()
    r.check(r.metrics_with(latency_p95=m(200 + delta_ms, 200)))
    assert (r.phase in ("RollingBack", "RolledBack")) == rolled_back
    if rolled_back:
        reason = r.st.rollback_reason or ""
        assert f"canary {200 + delta_ms}" in reason and "baseline 200" in reason and "ms" in reason


def test_verdict_message_names_everything() -> None:
    r = Run(make_spec())
    r.to_progressing()
    r.check(r.metrics_with(error_rate=m(0.03, 0.01)))
    reason = r.st.rollback_reason or ""
    for text in ("error-rate", "canary 0.03", "baseline 0.01", "delta +200%", "threshold maxDeltaPercent 50%",
                 "step 0", "weight 10%"):
        assert text in reason, (text, reason)
    breach_events = r.events("AnalysisBreach")
    assert breach_events and "canary 0.03" in breach_events[0].message


def test_smoke_failure_rolls_back_with_its_exit_code() -> None:
    spec = make_spec(smoke={"http": {"url": "http://web-canary/healthz"}, "timeoutSeconds": 60})
    r = Run(spec, smoke_result=SmokeResult("Failed", 3, "HTTP 503"))
    r.tick()
    assert RunSmoke() in r.actions or r.phase == "Initializing"
    for _ in range(3):
        r.tick(1)
    r.tick(1)
    assert r.phase == "RolledBack", r.st.message
    assert r.st.report is not None and r.st.report.smoke_returncode == 3
    assert r.st.report.rollback_reason == "smoke test failed: exit 3 (HTTP 503)"
    assert not any(isinstance(a, SetWeight) and a.weight > 0 for a in r.actions)


def test_smoke_timeout_rolls_back() -> None:
    spec = make_spec(smoke={"http": {"url": "http://web-canary/healthz"}, "timeoutSeconds": 30})
    r = Run(spec, smoke_result=SmokeResult("Running"))
    r.tick()
    r.tick(1)
    assert r.st.smoke is not None and r.st.smoke.state == "Running"
    r.tick(31)
    assert r.phase in ("RollingBack", "RolledBack")
    assert "timed out after 30s" in (r.st.rollback_reason or "")


def test_smoke_pass_records_returncode_zero() -> None:
    r = Run(make_spec(smoke={"http": {"url": "http://web-canary/healthz"}}))
    r.tick()
    r.tick(1)
    r.tick(1)
    assert r.phase == "Progressing"
    assert r.st.smoke is not None and r.st.smoke.returncode == 0


def test_prometheus_unavailable_continue_warns_and_does_not_advance() -> None:
    r = Run(make_spec())
    r.to_progressing()
    down = {n: MetricObservation(QueryError("connection refused"), QueryError("connection refused"))
            for n in ("golden-mismatch", "error-rate", "latency-p95")}
    r.check(down)
    assert r.phase == "Progressing" and r.st.current_step == 0
    assert r.st.last_check_verdict == "inconclusive"
    assert r.events("MetricsUnavailable")
    assert all(ms.verdict == "inconclusive" and ms.reason == "QueryError" for ms in r.st.metrics)
    r.check()
    assert r.st.current_step == 1


def test_prometheus_unavailable_rollback_policy() -> None:
    r = Run(make_spec(analysis={"onUnavailable": "rollback"}))
    r.to_progressing()
    r.check(r.metrics_with(error_rate=MetricObservation(QueryError("timeout"), Value(0.1, 10))))
    assert r.phase in ("RollingBack", "RolledBack")
    assert "onUnavailable: rollback" in (r.st.rollback_reason or "")


def test_prometheus_unreachable_at_start_blocks_only_under_rollback_policy() -> None:
    r = Run(make_spec())
    r.tick(prometheus_online=False)
    assert r.phase in ("Initializing", "Progressing")
    assert r.events("MetricsUnavailable")
    r2 = Run(make_spec(analysis={"onUnavailable": "rollback"}))
    r2.tick(prometheus_online=False)
    assert r2.phase == "Blocked" and "unreachable" in (r2.st.message or "")


# --------------------------------------------------------------------------- no data is not a pass

def test_step_never_advances_when_every_metric_is_inconclusive() -> None:
    r = Run(make_spec())
    r.to_progressing()
    for _ in range(5):
        r.check({n: MetricObservation(NoData(), NoData()) for n in ("golden-mismatch", "error-rate", "latency-p95")})
    assert r.st.current_step == 0 and r.phase == "Progressing"
    assert r.events("AnalysisInconclusive")


def test_step_does_not_advance_when_one_metric_has_no_data() -> None:
    r = Run(make_spec())
    r.to_progressing()
    r.check(r.metrics_with(latency_p95=MetricObservation(NoData(), Value(100, 10))))
    assert r.st.current_step == 0


def test_too_few_samples_is_inconclusive() -> None:
    spec = make_spec()
    spec.analysis.metrics[1].sample_query = "sum(requests{track='{{track}}'})"
    spec.analysis.metrics[1].min_sample_count = 50
    r = Run(spec)
    r.to_progressing()
    r.check(r.metrics_with(error_rate=m(0.5, 0.01, traffic=Value(3, 1))))   # a breach, on 3 requests
    assert r.phase == "Progressing" and r.st.current_step == 0
    ms = next(x for x in r.st.metrics if x.name == "error-rate")
    assert ms.verdict == "inconclusive" and ms.reason == "TooFewSamples" and "3 samples < minSampleCount 50" in (
        ms.message or "")


def test_on_no_data_fail_counts_toward_the_limit() -> None:
    spec = make_spec(analysis={"onNoData": "fail"})
    spec.analysis.metrics[1].failure_limit = 1
    r = Run(spec)
    r.to_progressing()
    nodata = r.metrics_with(error_rate=MetricObservation(NoData(), Value(0.1, 10)))
    r.check(nodata)
    assert r.phase == "Progressing"
    r.check(nodata)
    assert r.phase in ("RollingBack", "RolledBack")
    assert "onNoData: fail" in (r.st.rollback_reason or "")


def test_on_no_data_rollback() -> None:
    r = Run(make_spec(analysis={"onNoData": "rollback"}))
    r.to_progressing()
    r.check(r.metrics_with(latency_p95=MetricObservation(Value(1, 1), NoData())))
    assert r.phase in ("RollingBack", "RolledBack")
    assert "no data for baseline" in (r.st.rollback_reason or "")


# --------------------------------------------------------------------------- limits

def test_total_failure_limit() -> None:
    spec = make_spec()
    spec.analysis.metrics[1].failure_limit = 2
    r = Run(spec)
    r.to_progressing()
    bad = r.metrics_with(error_rate=m(0.5, 0.01))
    r.check(bad)
    r.check()                       # a pass in between
    assert r.st.current_step == 1
    r.check(bad)
    assert r.phase == "Progressing"
    r.check(bad)
    assert r.phase in ("RollingBack", "RolledBack")
    assert "failures 3 > failureLimit 2" in (r.st.rollback_reason or "")


def test_consecutive_failure_limit() -> None:
    spec = make_spec(steps=[{"setWeight": 10}, {"pause": {"duration": "10m"}}, {"setWeight": 100}])
    spec.analysis.metrics[1].failure_limit = 10
    spec.analysis.metrics[1].consecutive_failure_limit = 1
    r = Run(spec)
    r.to_progressing()
    bad = r.metrics_with(error_rate=m(0.5, 0.01))
    for _ in range(3):              # breach, pass, breach, pass ... never two in a row
        r.check(bad)
        r.check()
    assert r.phase == "Progressing"
    r.check(bad)
    r.check(bad)
    assert r.phase in ("RollingBack", "RolledBack")
    assert "consecutive failures 2 > consecutiveFailureLimit 1" in (r.st.rollback_reason or "")


def test_immediate_metric_ignores_its_failure_limit() -> None:
    spec = make_spec()
    spec.analysis.metrics[2].failure_limit = 10
    spec.analysis.metrics[2].immediate = True
    r = Run(spec)
    r.to_progressing()
    r.check(r.metrics_with(latency_p95=m(2000, 100)))
    assert "immediate metric" in (r.st.rollback_reason or "")


# --------------------------------------------------------------------------- pause, resume, promote, abort, retry

def test_pause_until_resumed_keeps_analysing_and_resume_advances() -> None:
    spec = make_spec(steps=[{"setWeight": 10}, {"pause": {"untilResumed": True}}, {"setWeight": 100}])
    r = Run(spec)
    r.to_progressing()
    r.check()
    assert r.phase == "Paused" and r.st.current_step == 1
    for _ in range(10):
        r.check()
    assert r.phase == "Paused" and r.st.analysis_runs == 11
    r.tick(1, request="resume")
    assert r.phase == "Progressing" and r.st.current_step == 2 and r.world.weight == 100
    assert r.st.manual_actions[-1].action == "resume" and r.st.manual_actions[-1].accepted


def test_breach_while_paused_rolls_back() -> None:
    spec = make_spec(steps=[{"setWeight": 10}, {"pause": {"untilResumed": True}}, {"setWeight": 100}])
    r = Run(spec)
    r.to_progressing()
    r.check()
    r.check(r.metrics_with(error_rate=m(0.9, 0.01)))
    assert r.phase in ("RollingBack", "RolledBack")


def test_manual_pause_and_resume() -> None:
    r = Run(make_spec())
    r.to_progressing()
    r.tick(1, request="pause")
    assert r.phase == "Paused" and r.st.paused_manually
    r.check()
    r.check()
    assert r.st.current_step == 0           # passes do not advance a paused rollout
    r.tick(1, request="resume")
    assert r.phase == "Progressing" and r.st.current_step == 0
    r.check()
    assert r.st.current_step == 1
    assert [e.reason for e in r.events() if e.reason.startswith("Manual")] == ["ManualPause", "ManualResume"]


def test_manual_promote_skips_the_remaining_steps() -> None:
    r = Run(make_spec())
    r.to_progressing()
    r.tick(1, request="promote")
    assert r.phase == "Promoting"
    r.tick(1)
    r.tick(1)
    assert r.phase == "Succeeded" and r.world.stable_has_change and not r.world.canary_exists
    assert r.st.manual_actions[-1].accepted


def _no_data(r: Run) -> dict[str, MetricObservation]:
    return {m.name: MetricObservation(NoData(), NoData()) for m in r.spec.analysis.metrics}


def test_manual_promote_without_a_passing_check_is_reported_as_promoted_by_hand_without_evidence() -> None:
    r = Run(make_spec())
    r.to_progressing()
    for _ in range(3):
        r.check(_no_data(r))                  # every check inconclusive: nothing shows the change is safe
    r.tick(1, request="promote", by="alice")
    r.tick(1)
    r.tick(1)
    assert r.phase == "Succeeded" and r.world.stable_has_change  # the change is live: the phase says so
    report = r.st.report
    assert report is not None
    assert report.promotion == "manual" and report.promoted_by == "alice" and report.checks_passed == 0
    assert not report.success and not report.rollback_triggered and report.rollback_reason is None
    assert r.st.reason == "PromotedManually"
    assert "by alice" in (r.st.message or "") and "no analysis check passed" in (r.st.message or "")
    assert r.events("Succeeded")[0].type == "Warning"
    action = r.st.manual_actions[-1]
    assert action.accepted and action.by == "alice" and "without evidence" in action.message


def test_manual_promote_after_passing_checks_says_how_many_passed() -> None:
    r = Run(make_spec())
    r.to_progressing()
    r.check()                                 # one full pass at 10 %
    r.tick(1, request="promote", by="bob")
    r.tick(1)
    r.tick(1)
    report = r.st.report
    assert r.phase == "Succeeded" and report is not None
    assert report.success and report.promotion == "manual" and report.promoted_by == "bob"
    assert report.checks_passed == 1
    assert "1 analysis check(s) passed" in (r.st.message or "")


def test_automatic_promotion_is_reported_as_automatic() -> None:
    r = Run(make_spec(steps=[{"setWeight": 100}]))
    r.to_progressing()
    r.check()
    r.tick(1)
    r.tick(1)
    report = r.st.report
    assert r.phase == "Succeeded" and report is not None
    assert report.success and report.promotion == "automatic" and report.promoted_by is None
    assert report.checks_passed >= 1 and r.st.reason == "Promoted"


def test_a_manual_promote_request_without_a_name_is_recorded_as_unknown() -> None:
    r = Run(make_spec())
    r.to_progressing()
    r.tick(1, request="promote")              # plain `kubectl annotate`, no rollguard.io/request-by
    r.tick(1)
    r.tick(1)
    assert r.st.report is not None and r.st.report.promoted_by == "unknown"


def test_promote_refused_outside_progressing() -> None:
    r = Run(make_spec(requiresSignoff=True))
    r.tick(signoff=None)
    r.tick(1, request="promote", signoff=None)
    assert r.phase == "Blocked"
    assert not r.st.manual_actions[-1].accepted and "promote ignored" in r.st.manual_actions[-1].message
    assert r.events("ManualPromote")[0].type == "Warning"


def _at_phase(phase: str) -> Run:
    spec = make_spec(requiresSignoff=True, smoke={"http": {"url": "http://x/"}, "timeoutSeconds": 60})
    r = Run(spec, smoke_result=SmokeResult("Running"))
    if phase == "Pending":
        return r
    if phase == "Blocked":
        r.tick(signoff=None)
        return r
    r.tick()
    if phase == "Initializing":
        return r
    r.world.smoke_result = SmokeResult("Passed", 0)
    r.tick(1)
    r.tick(1)
    assert r.phase == "Progressing"
    if phase == "Paused":
        r.tick(1, request="pause")
    if phase == "Promoting":
        r.tick(1, request="promote")
        assert r.phase == "Promoting"
    return r


@pytest.mark.parametrize("phase", ["Pending", "Blocked", "Initializing", "Progressing", "Paused", "Promoting"])
def test_abort_works_in_every_phase(phase: str) -> None:
    r = _at_phase(phase)
    assert r.phase == phase
    r.tick(1, request="abort", signoff=None if phase == "Blocked" else "x")
    assert r.phase in ("RollingBack", "RolledBack")
    r.tick(1)
    assert r.phase == "RolledBack", r.st.message
    assert r.world.weight == 0 and not r.world.canary_exists and not r.world.stable_has_change
    assert r.st.report is not None and r.st.report.rollback_triggered
    assert f"aborted manually in phase {phase}" in (r.st.report.rollback_reason or "")
    if phase == "Promoting":
        assert any(isinstance(a, RestoreStable) for a in r.actions)


def test_abort_after_the_end_is_refused() -> None:
    r = Run(make_spec())
    r.to_progressing()
    r.tick(1, request="abort")
    r.tick(1)
    assert r.phase == "RolledBack"
    r.tick(1, request="abort")
    assert r.phase == "RolledBack" and not r.st.manual_actions[-1].accepted


def test_rollback_never_touches_the_stable_unless_the_change_reached_it() -> None:
    r = Run(make_spec())
    r.to_progressing()
    r.check(r.metrics_with(error_rate=m(0.9, 0.01)))
    r.tick(1)
    assert r.phase == "RolledBack"
    assert not any(isinstance(a, RestoreStable | ApplyChangeToStable) for a in r.actions)


def test_retry_restarts_a_rolled_back_rollout() -> None:
    r = Run(make_spec(steps=[{"setWeight": 100}]))
    r.to_progressing()
    r.check(r.metrics_with(error_rate=m(0.9, 0.01)))
    r.tick(1)
    assert r.phase == "RolledBack"
    r.tick(1, request="retry")
    assert r.st.attempt == 2 and r.phase in ("Initializing", "Progressing")
    assert r.st.metrics == [] and r.st.rollback_reason is None
    r.tick(1)
    r.check()
    r.tick(1)
    r.tick(1)
    assert r.phase == "Succeeded"
    assert [a.action for a in r.st.manual_actions] == ["retry"]


def test_a_request_is_handled_once() -> None:
    r = Run(make_spec())
    r.to_progressing()
    req = ManualRequest("pause", "same")
    for _ in range(3):
        obs = r.world.observe(request=req)
        r.st, _ = decide(r.spec, r.st, obs, r.now)
    assert len(r.st.manual_actions) == 1


# --------------------------------------------------------------------------- deadlines, preconditions

def test_blocked_without_signoff_waits_for_it() -> None:
    r = Run(make_spec(requiresSignoff=True))
    r.tick(signoff=None)
    assert r.phase == "Blocked" and r.st.reason == "SignoffRequired"
    r.tick(3600, signoff=None)                 # a missing sign-off is not "stuck"
    assert r.phase == "Blocked"
    r.tick(1, signoff="alice")
    assert r.phase == "Initializing"


def test_target_never_available_rolls_back_at_the_deadline() -> None:
    from rollguard.operator.canary.engine import TargetState
    r = Run(make_spec())
    r.tick(target=TargetState(available=False, message="0/3 replicas available"))
    assert r.phase == "Blocked" and "0/3 replicas available" in (r.st.message or "")
    r.tick(301, target=TargetState(available=False, message="0/3 replicas available"))
    assert r.phase == "RolledBack"
    assert "progress deadline exceeded" in (r.st.rollback_reason or "")


def test_canary_never_ready_rolls_back_at_the_deadline() -> None:
    r = Run(make_spec())
    r.obs_over = {"canary_ready": False}
    r.tick()
    assert r.phase == "Initializing"
    assert isinstance(r.last[-1], CreateCanary)
    r.tick(301)
    r.tick(1)
    assert r.phase == "RolledBack"
    assert "canary not ready after 300s" in (r.st.rollback_reason or "")


def test_no_passing_check_rolls_back_at_the_deadline() -> None:
    r = Run(make_spec())
    r.to_progressing()
    for _ in range(31):
        r.check({n: MetricObservation(NoData(), NoData()) for n in ("golden-mismatch", "error-rate", "latency-p95")})
    assert r.phase in ("RollingBack", "RolledBack")
    assert "no passing check at step 0 (weight 10%)" in (r.st.rollback_reason or "")


def test_rollback_that_cannot_complete_becomes_failed_and_keeps_trying() -> None:
    r = Run(make_spec())
    r.to_progressing()
    r.check(r.metrics_with(error_rate=m(0.9, 0.01)))
    r.world.canary_exists = True
    r.obs_over = {"canary_exists": True, "action_error": "deployments.apps is forbidden"}
    r.tick(301)
    assert r.phase == "Failed" and "deployments.apps is forbidden" in (r.st.message or "")
    assert DeleteCanary() in r.last
    r.obs_over = {}
    r.world.canary_exists = False
    r.tick(1)
    r.tick(1)
    assert r.phase == "RolledBack"


# --------------------------------------------------------------------------- dry run, purity, restart

def test_dry_run_describes_every_action_and_applies_none() -> None:
    r = Run(make_spec(dryRun=True))
    actions = r.tick()
    assert r.phase == "Succeeded" and r.st.reason == "DryRun"
    assert not any(a.mutating for a in actions)
    plan = r.st.planned_actions
    assert any("set canary traffic weight to 10%" in p for p in plan)
    assert any("apply the change to the stable target" in p for p in plan)
    assert plan[-1].endswith("delete the canary Deployment, Service and canary route")
    assert r.st.report is not None and r.st.report.dry_run


def test_decide_is_pure() -> None:
    r = Run(make_spec())
    r.to_progressing()
    obs = r.world.observe(metrics=r.metrics_with(error_rate=m(0.9, 0.01)))
    before = r.st.model_dump()
    a1 = decide(r.spec, r.st, obs, r.now)
    a2 = decide(r.spec, r.st, obs, r.now)
    assert a1[0] == a2[0] and a1[1] == a2[1]
    assert r.st.model_dump() == before


def test_status_round_trip_resumes_to_the_same_outcome() -> None:
    """What a restarted operator sees: the status as stored by the apiserver (JSON), nothing else."""
    r = Run(make_spec())
    r.to_progressing()
    r.check()
    r.check()
    stored = r.st.to_k8s()
    r.st = CanaryRolloutStatus.model_validate(stored)
    for _ in range(10):
        r.check()
    r.tick(1)
    r.tick(1)
    assert r.phase == "Succeeded"
    assert sum(isinstance(a, ApplyChangeToStable) for a in r.actions) == 1


def test_observations_default_is_harmless() -> None:
    st, actions = decide(make_spec(), CanaryRolloutStatus(), Observations(), T0)
    assert st.phase == "Initializing" and any(isinstance(a, CreateCanary) for a in actions)


def test_quiet_between_checks_but_not_when_something_is_due() -> None:
    from rollguard.operator.canary.engine import quiet
    r = Run(make_spec())
    assert not quiet(r.spec, r.st, r.now)                      # Pending: preconditions to check
    r.to_progressing()
    assert quiet(r.spec, r.st, r.now + dt.timedelta(seconds=5))
    assert not quiet(r.spec, r.st, r.now + dt.timedelta(seconds=10))   # analysis due
    r.check()                                                  # -> pause 1m
    assert quiet(r.spec, r.st, r.now + dt.timedelta(seconds=5))
    r.st.last_analysis_at = r.now + dt.timedelta(seconds=60)    # pretend a check just ran
    assert not quiet(r.spec, r.st, r.now + dt.timedelta(seconds=61))   # the pause ends


def test_promote_refused_right_after_a_breach() -> None:
    spec = make_spec()
    spec.analysis.metrics[1].failure_limit = 3
    r = Run(spec)
    r.to_progressing()
    r.check(r.metrics_with(error_rate=m(0.5, 0.01)))       # tolerated breach
    r.tick(1, request="promote")
    assert r.phase == "Progressing" and not r.st.manual_actions[-1].accepted
    assert "breached" in r.st.manual_actions[-1].message


def test_missing_stable_route_blocks_and_a_route_lost_mid_rollout_rolls_back_at_once() -> None:
    r = Run(make_spec())
    r.tick(router_error="traffic.ingress.name: Ingress web not found")
    assert r.phase == "Blocked" and "Ingress web not found" in (r.st.message or "")
    r2 = Run(make_spec())
    r2.to_progressing()
    r2.check(router_error="traffic.httpRoute.name: HTTPRoute web not found")
    assert r2.phase in ("RollingBack", "RolledBack") and r2.st.current_step == 0
    assert "traffic.httpRoute.name: HTTPRoute web not found" in (r2.st.rollback_reason or "")


def test_missing_reference_blocks_then_rolls_back_at_the_deadline() -> None:
    r = Run(make_spec())
    msg = "change.catalog.name: FailureCatalog aos not found in ns"
    r.tick(references_ok=False, references_message=msg)
    assert r.phase == "Blocked" and msg in (r.st.message or "") and r.st.reason == "PreconditionsNotMet"
    r.tick(301, references_ok=False, references_message=msg)
    assert r.phase == "RolledBack" and msg in (r.st.rollback_reason or "")


def test_errors_against_a_clean_baseline_read_as_infinite_increase() -> None:
    """A baseline with 0 errors makes any canary error an infinite relative increase: shown once-signed."""
    r = Run(make_spec())
    r.to_progressing()
    r.check(r.metrics_with(error_rate=m(0.2, 0.0)))
    reason = r.st.rollback_reason or ""
    assert "delta +inf%" in reason and "++" not in reason, reason

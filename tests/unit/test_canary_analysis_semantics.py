"""What the analysis makes of Prometheus' answers, as a user running the shipped configs sees it:
zero errors with traffic is 0 and no traffic is no data, the baseline at 100 %, windows that fit
the scrape, non-finite values, and "any increase" judged since the canary started."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from rollguard.models.canary import Analysis, BaselineValue, CanaryRolloutSpec, CanaryRolloutStatus, Metric
from rollguard.operator.canary.analysis import evaluate, rule_of
from rollguard.operator.canary.engine import ManualRequest, analysis_due, decide
from rollguard.operator.canary.simulate import World
from rollguard.operator.metrics.base import MetricObservation, NoData, QueryError, QueryResult, Value
from rollguard.operator.metrics.collect import collect
from rollguard.operator.metrics.window import analysis_window, since_canary

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "canary-configs").glob("*.yaml"))
T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
EMPTY = NoData("empty result")


def shipped(path: Path) -> CanaryRolloutSpec:
    return CanaryRolloutSpec.model_validate(yaml.safe_load(path.read_text())["spec"])


# --------------------------------------------------------------------------- a world of two tracks

class Tracks:
    """What Prometheus answers for each metric of a shipped config, per track.

    ``errors``: the track's 5xx ratio (0: the 5xx series does not exist, the query is empty, as
    on a stable that never failed); ``traffic``: requests in a window; ``since_traffic``: requests
    since the canary became ready; ``latency`` in ms (None: no requests, the quantile is empty);
    ``mismatches``: golden mismatches since the canary became ready (0: never exported, empty).
    """

    def __init__(self, **kw: Any) -> None:
        self.errors = kw.get("errors", 0.0)
        self.traffic = kw.get("traffic", 500.0)
        self.since_traffic = kw.get("since_traffic", 5000.0)
        self.latency = kw.get("latency", 120.0)
        self.mismatches = kw.get("mismatches", 0.0)

    def main(self, metric: Metric, profile: Any) -> QueryResult:
        kind, _ = rule_of(metric, profile)
        if kind == "maxIncrease":
            return Value(self.mismatches) if self.mismatches else EMPTY
        if kind == "maxDeltaPercent":
            if self.traffic <= 0:
                return EMPTY  # empty / empty
            return Value(self.errors) if self.errors else EMPTY
        return EMPTY if self.latency is None else Value(self.latency)

    def sample(self, metric: Metric) -> QueryResult | None:
        if metric.sample_query is None:
            return None
        n = self.since_traffic if "sinceCanary" in metric.sample_query else self.traffic
        return Value(n) if n > 0 else EMPTY


def observe(spec: CanaryRolloutSpec, canary: Tracks, stable: Tracks) -> dict[str, MetricObservation]:
    p = spec.analysis.profile
    return {m.name: MetricObservation(canary.main(m, p), stable.main(m, p), canary.sample(m), stable.sample(m))
            for m in spec.analysis.metrics}


def drive(spec: CanaryRolloutSpec, canary: Tracks, stable_at: Any, limit_s: float = 4 * 3600) -> CanaryRolloutStatus:
    """Run the rollout to its end; ``stable_at(weight)`` gives the stable's Tracks at a weight.
    A Paused step is resumed, a sign-off is given: the analysis alone decides."""
    world, st, now = World(), CanaryRolloutStatus(), T0
    resumes = 0
    while (now - T0).total_seconds() < limit_s and st.phase not in ("Succeeded", "RolledBack", "Failed"):
        metrics = None
        if analysis_due(spec, st, now):
            metrics = observe(spec, canary, stable_at(st.canary_weight))
        req = None
        if st.phase == "Paused" and not st.paused_manually:
            resumes += 1
            req = ManualRequest("resume", f"resume-{resumes}")
        st, actions = decide(spec, st, world.observe(metrics=metrics, request=req), now)
        for a in actions:
            world.apply(a)
        now += dt.timedelta(seconds=5)
    return st


def ingress_only(weight: int) -> Tracks:
    """A healthy stable reached only through the route: no requests at 100 %; requests since the
    canary became ready stay > 0 (the earlier steps)."""
    return Tracks(traffic=0.0 if weight >= 100 else 500.0, latency=None if weight >= 100 else 118.0)


# --------------------------------------------------------------------------- 2 + 3: shipped configs

@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_healthy_canary_that_never_errs_is_promoted_also_with_no_stable_traffic_at_100(path: Path) -> None:
    spec = shipped(path)
    st = drive(spec, Tracks(), ingress_only)
    assert st.phase == "Succeeded", st.message
    assert st.report is not None and st.report.success
    stood_in = [ms for ms in st.metrics if "last measured with traffic" in (ms.message or "")]
    relative = [m for m in spec.analysis.metrics if rule_of(m, spec.analysis.profile)[0] != "max"
                and rule_of(m, spec.analysis.profile)[0] != "maxIncrease"]
    assert len(stood_in) == len(relative), [ms.message for ms in st.metrics]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_canary_failing_a_quarter_of_its_requests_against_a_stable_that_never_errs_rolls_back(path: Path) -> None:
    spec = shipped(path)
    st = drive(spec, Tracks(errors=0.25), lambda w: Tracks())
    assert st.phase == "RolledBack"
    reason = st.rollback_reason or ""
    assert "breach" in reason and "+inf%" in reason and "deadline" not in reason, reason
    # on the analysis, within its failure limits (a breach at every check), not at the progress deadline
    assert st.analysis_runs <= 3 and st.current_step == 0


def error_rate_metric(**over: Any) -> Metric:
    raw = {"name": "error-rate", "query": 'sum(rate(e{code=~"5..", t="{{track}}"}[{{interval}}]))',
           "sampleQuery": 'sum(increase(r{t="{{track}}"}[{{interval}}]))', "rule": {"maxDeltaPercent": 50}}
    raw.update(over)
    return Metric.model_validate(raw)


def test_zero_errors_with_traffic_is_zero_on_both_tracks() -> None:
    m = error_rate_metric()
    ev = evaluate(m, MetricObservation(EMPTY, EMPTY, Value(400), Value(3600)), None, 2, 10)
    assert ev.verdict == "pass" and ev.canary == 0 and ev.baseline == 0
    ev = evaluate(m, MetricObservation(Value(0.25), EMPTY, Value(400), Value(3600)), None, 2, 10)
    assert ev.verdict == "breach" and ev.baseline == 0 and "+inf%" in ev.message
    ev = evaluate(m, MetricObservation(EMPTY, Value(0.01), Value(400), Value(3600)), None, 2, 10)
    assert ev.verdict == "pass" and ev.canary == 0


@pytest.mark.parametrize(("canary_traffic", "baseline_traffic", "side"), [
    (Value(0), Value(3600), "canary"),
    (NoData("empty result", query='sum(increase(r{t="canary"}[30s]))'), Value(3600), "canary"),
    (Value(400), Value(0), "baseline"),
    (Value(400), NoData("empty result", query='sum(increase(r{t="stable"}[30s]))'), "baseline"),
])
def test_no_traffic_is_no_data_naming_the_empty_query(canary_traffic: QueryResult, baseline_traffic: QueryResult,
                                                      side: str) -> None:
    ev = evaluate(error_rate_metric(), MetricObservation(EMPTY, EMPTY, canary_traffic, baseline_traffic),
                  None, 2, 50)
    assert ev.verdict == "inconclusive" and ev.reason == "NoData"
    assert f"no traffic on {side}" in ev.message and "sampleQuery" in ev.message
    if isinstance(canary_traffic, NoData) or isinstance(baseline_traffic, NoData):
        assert "increase(r{t=" in ev.message   # the query as sent


def test_a_failing_traffic_query_is_a_query_error_and_nan_with_traffic_is_no_data() -> None:
    m = error_rate_metric()
    ev = evaluate(m, MetricObservation(EMPTY, EMPTY, QueryError("timeout"), Value(1)), None, 0, 10)
    assert ev.reason == "QueryError" and "traffic query" in ev.message
    ev = evaluate(m, MetricObservation(NoData("NaN", kind="nan"), EMPTY, Value(5), Value(5)), None, 0, 10)
    assert ev.reason == "NoData" and "NaN" in ev.message


def test_without_a_traffic_query_an_empty_result_is_no_data_and_says_why() -> None:
    m = error_rate_metric(sampleQuery=None)
    ev = evaluate(m, MetricObservation(NoData("empty result", query="q_canary"), Value(0.1)), None, 0, 10)
    assert ev.reason == "NoData" and "`q_canary`" in ev.message and "without a sampleQuery" in ev.message


class Recorder:
    def __init__(self, answers: dict[str, QueryResult] | None = None) -> None:
        self.queries: list[str] = []
        self.answers = answers or {}

    def run_query(self, query: str) -> QueryResult:
        self.queries.append(query)
        return self.answers.get(query, EMPTY)

    def is_online(self) -> bool:
        return True

    def scrape_interval(self, namespace: str) -> float | None:
        return None

    def close(self) -> None:
        pass


def test_the_traffic_query_is_rendered_for_both_tracks_and_an_empty_answer_carries_its_query() -> None:
    spec = shipped(REPO / "canary-configs" / "agent_flags_canary.yaml")
    rec = Recorder()
    out = collect(rec, spec, "staging", CanaryRolloutStatus(canary_ready_at=T0), T0 + dt.timedelta(minutes=10))
    traffic = [q for q in rec.queries if q.startswith("sum(increase(http_requests_total")]
    assert any('rollguard_io_track="canary"' in q for q in traffic)
    assert any('rollguard_io_track="stable"' in q for q in traffic)
    er = out["error-rate"]
    assert isinstance(er.baseline_traffic, NoData) and er.baseline_traffic.query is not None
    assert 'rollguard_io_track="stable"' in er.baseline_traffic.query


def test_shipped_configs_docs_and_demo_leave_zero_to_the_engine() -> None:
    from rollguard.demo.manifests import rollout
    texts = {p.name: p.read_text() for p in [*CONFIGS, REPO / "README.md"]}
    texts["demo"] = repr(rollout("x", "k", prometheus_url="http://p:9090"))
    for name, text in texts.items():
        assert "or vector(0)" not in text, name
    for path in CONFIGS:
        for m in shipped(path).analysis.metrics:
            kind = rule_of(m, shipped(path).analysis.profile)[0]
            if kind in ("maxIncrease", "maxDeltaPercent"):   # counts and ratios of requests know their traffic
                assert m.sample_query, (path.name, m.name)
            if kind == "maxIncrease":                        # any increase: since the canary started
                assert "{{sinceCanary}}" in m.query and "{{sinceCanary}}" in (m.sample_query or ""), path.name


# --------------------------------------------------------------------------- 3: the baseline at 100 %

LAST = BaselineValue(value=0.01, time=T0, step=4, weight=50)


def test_at_100_a_baseline_without_traffic_is_its_last_measured_value() -> None:
    m = error_rate_metric()
    no_stable = MetricObservation(Value(0.012), EMPTY, Value(900), Value(0))
    ev = evaluate(m, no_stable, None, 6, 100, LAST)
    assert ev.verdict == "pass" and ev.baseline == 0.01 and "step 4, weight 50%" in ev.message
    ev = evaluate(m, MetricObservation(Value(0.4), EMPTY, Value(900), Value(0)), None, 6, 100, LAST)
    assert ev.verdict == "breach"                      # a canary that degrades at 100 % is still caught
    ev = evaluate(m, no_stable, None, 6, 100, None)
    assert ev.verdict == "inconclusive" and "no earlier check measured the baseline" in ev.message
    ev = evaluate(m, no_stable, None, 4, 50, LAST)     # below 100 the stable must have traffic
    assert ev.verdict == "inconclusive" and ev.reason == "NoData"


def test_at_100_without_a_traffic_query_an_empty_baseline_stands_in_and_absolute_rules_judge_as_usual() -> None:
    lat = Metric.model_validate({"name": "latency", "query": "l", "rule": {"maxDeltaMs": 500}})
    ev = evaluate(lat, MetricObservation(Value(300), EMPTY), None, 6, 100, BaselineValue(
        value=250, time=T0, step=4, weight=50))
    assert ev.verdict == "pass" and ev.delta == 50
    ceiling = Metric.model_validate({"name": "latency", "query": "l", "rule": {"max": 750}})
    assert evaluate(ceiling, MetricObservation(Value(300), EMPTY), None, 6, 100).verdict == "pass"
    assert evaluate(ceiling, MetricObservation(Value(800), EMPTY), None, 6, 100).verdict == "breach"


def test_the_engine_keeps_the_last_measured_baseline_in_status() -> None:
    spec = shipped(REPO / "canary-configs" / "staging_soft_canary.yaml")
    st = drive(spec, Tracks(), ingress_only)
    er = next(ms for ms in st.metrics if ms.name == "error-rate")
    assert er.last_baseline is not None and er.last_baseline.weight == 50 and er.last_baseline.value == 0


# --------------------------------------------------------------------------- 4: windows and scrapes

def analysis(**over: Any) -> Analysis:
    raw = {"interval": "30s", "prometheus": {"address": "http://p:9090"},
           "metrics": [{"name": "x", "query": "q", "rule": {"max": 1}}]}
    raw.update(over)
    return Analysis.model_validate(raw)


def test_a_window_shorter_than_four_scrapes_is_widened_and_says_why() -> None:
    w = analysis_window(analysis(), 30.0)                 # the Prometheus Operator's default scrape
    assert w.range == "120s" and w.scrape_source == "prometheus"
    assert w.reason is not None and "analysis.interval 30s" in w.reason and "120s" in w.reason
    w = analysis_window(analysis(scrapeInterval="15s"), 30.0)   # the spec wins
    assert w.range == "60s" and w.scrape_source == "spec" and "analysis.scrapeInterval 15s" in (w.reason or "")
    w = analysis_window(analysis(interval="2m"), 30.0)
    assert w.range == "2m" and w.reason is None
    w = analysis_window(analysis(interval="5s"), 1.5)
    assert w.range == "6s"
    w = analysis_window(analysis(), None)
    assert w.range == "30s" and "scrape interval unknown" in (w.reason or "") and "analysis.scrapeInterval" in (
        w.reason or "")


def test_the_engine_fixes_the_window_at_the_start_and_queries_use_it() -> None:
    spec = shipped(REPO / "canary-configs" / "agent_flags_canary.yaml")
    world = World()
    st, actions = decide(spec, CanaryRolloutStatus(), world.observe(metrics=None).__class__(
        **{**world.observe(metrics=None).__dict__, "scrape_interval": 30.0}), T0)
    assert st.analysis_window == "120s" and st.scrape_interval == "30s" and st.scrape_interval_source == "prometheus"
    assert "widened to 120s" in (st.analysis_window_reason or "")
    assert any(getattr(a, "reason", None) == "AnalysisWindowWidened" for a in actions)
    rec = Recorder()
    collect(rec, spec, "staging", st, T0)
    assert any("[120s]" in q for q in rec.queries) and not any("[30s]" in q for q in rec.queries)


def test_no_check_before_the_canary_could_fill_a_window() -> None:
    """A canary's series start at its first scrape: the first check waits for the canary to be
    ready a window plus two scrape intervals (its first scrape, and the scrape bringing in the
    window's last requests), also when the weight was set at once (no smoke test). Before, an
    empty canary window under ``onNoData: fail`` rolled back a golden-mismatch rollout that
    requests reached."""
    spec = shipped(REPO / "canary-configs" / "catalog_version_canary.yaml")
    spec.analysis.interval, spec.analysis.scrape_interval = "20s", "5s"
    world, st, now = World(), CanaryRolloutStatus(), T0
    while st.canary_weight == 0:
        st, actions = decide(spec, st, world.observe(metrics=None), now)
        for a in actions:
            world.apply(a)
        now += dt.timedelta(seconds=1)
    ready = st.canary_ready_at
    assert ready is not None and st.weight_changed_at is not None and (st.weight_changed_at - ready).total_seconds() < 5
    assert not analysis_due(spec, st, ready + dt.timedelta(seconds=29))
    assert analysis_due(spec, st, ready + dt.timedelta(seconds=30))  # 20 s window + 2 x 5 s
    # later weights wait their interval as before: the canary is old enough by then
    st.weight_changed_at = ready + dt.timedelta(seconds=60)
    assert analysis_due(spec, st, ready + dt.timedelta(seconds=80))


def test_a_no_data_verdict_names_the_window_when_the_scrape_interval_is_unknown() -> None:
    spec = shipped(REPO / "canary-configs" / "staging_soft_canary.yaml")
    world, st, now = World(), CanaryRolloutStatus(), T0
    for _ in range(4):
        metrics = None
        if analysis_due(spec, st, now):
            metrics = {m.name: MetricObservation(EMPTY, EMPTY, EMPTY if m.sample_query else None,
                                                 EMPTY if m.sample_query else None) for m in spec.analysis.metrics}
        st, actions = decide(spec, st, world.observe(metrics=metrics), now)
        for a in actions:
            world.apply(a)
        now += dt.timedelta(seconds=31)
    er = next(ms for ms in st.metrics if ms.name == "error-rate")
    assert er.verdict == "inconclusive"
    assert "shorter than four scrape intervals" in (er.message or "") and "analysis.scrapeInterval" in (
        er.message or "")


# --------------------------------------------------------------------------- 5: non-finite values

RULES = [{"maxIncrease": 0}, {"maxIncrease": 2}, {"maxDeltaPercent": 50}, {"maxDeltaMs": 500}, {"max": 750},
         {"min": 0.5}]
BAD = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: next(iter(r)))
@pytest.mark.parametrize("bad", BAD, ids=["nan", "+inf", "-inf"])
@pytest.mark.parametrize("where", ["canary", "baseline", "both"])
@pytest.mark.parametrize("traffic", [False, True])
def test_a_non_finite_value_is_never_a_pass(rule: dict[str, float], bad: float, where: str, traffic: bool) -> None:
    m = Metric.model_validate({"name": "m", "query": "q", "rule": rule,
                               **({"sampleQuery": "t"} if traffic else {})})
    good = 1.0
    c = Value(bad) if where in ("canary", "both") else Value(good)
    b = Value(bad) if where in ("baseline", "both") else Value(good)
    t = Value(100) if traffic else None
    for weight in (10, 100):
        ev = evaluate(m, MetricObservation(c, b, t, t), None, 1, weight, LAST)
        if where == "baseline" and next(iter(rule)) in ("max", "min"):
            assert ev.verdict == "pass"                  # absolute rules do not read the baseline
            continue
        assert ev.verdict != "pass", ev.message
        if ev.verdict == "breach":                       # only where the canary is the infinitely worse side
            absolute = next(iter(rule)) in ("max", "min")    # (and a relative rule's baseline is finite)
            assert where == "canary" or (absolute and where == "both"), ev.message
            assert (bad == math.inf and "min" not in rule) or (bad == -math.inf and "min" in rule), ev.message


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan], ids=["+inf", "-inf", "nan"])
def test_non_finite_traffic_is_never_a_pass(bad: float) -> None:
    ev = evaluate(error_rate_metric(), MetricObservation(Value(0.01), Value(0.01), Value(bad), Value(100)),
                  None, 1, 10)
    assert ev.verdict == "inconclusive"


@pytest.mark.parametrize("rule", [{"maxDeltaMs": 500}, {"maxDeltaPercent": 50}, {"fromProfile": "latencyP95"}])
def test_infinity_on_both_tracks_at_every_check_is_never_promoted(rule: dict[str, Any]) -> None:
    spec = CanaryRolloutSpec.model_validate({
        "targetRef": {"name": "web"}, "change": {"image": {"container": "web", "image": "web:2"}},
        "traffic": {"provider": "nginx", "ingress": {"name": "web"}},
        "steps": [{"setWeight": 50}, {"setWeight": 100}], "progressDeadlineSeconds": 120,
        "analysis": {"interval": "10s", "prometheus": {"address": "http://p:9090"}, "profile": "moderate",
                     "metrics": [{"name": "latency", "query": "q", "rule": rule}]}})
    world, st, now = World(), CanaryRolloutStatus(), T0
    for _ in range(100):
        metrics = {"latency": MetricObservation(Value(math.inf), Value(math.inf))} if analysis_due(
            spec, st, now) else None
        st, actions = decide(spec, st, world.observe(metrics=metrics), now)
        for a in actions:
            world.apply(a)
        now += dt.timedelta(seconds=5)
    assert st.phase == "RolledBack" and st.checks_passed == 0
    assert st.metrics[0].reason == "NonFinite" and "never a pass" in (st.metrics[0].message or "")


@pytest.mark.parametrize("field", ["max", "min", "maxDeltaMs", "maxDeltaPercent", "maxIncrease"])
def test_a_non_finite_threshold_is_refused_naming_the_field(field: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        Metric.model_validate({"name": "m", "query": "q", "rule": {field: yaml.safe_load(".inf")}})


# --------------------------------------------------------------------------- 6: any increase

def golden_spec(**analysis_over: Any) -> CanaryRolloutSpec:
    spec = shipped(REPO / "canary-configs" / "agent_flags_canary.yaml")
    spec.analysis = spec.analysis.model_copy(update=analysis_over)
    return spec


def test_since_canary_renders_the_range_since_the_canary_became_ready() -> None:
    a = analysis()
    st = CanaryRolloutStatus(canary_ready_at=T0, analysis_window="120s")
    assert since_canary(a, st, T0 + dt.timedelta(minutes=10, seconds=0.2)) == "601s"
    assert since_canary(a, st, T0 + dt.timedelta(seconds=5)) == "120s"    # at least the window
    assert since_canary(a, CanaryRolloutStatus(), T0) == "30s"
    rec = Recorder()
    spec = golden_spec()
    collect(rec, spec, "staging", st, T0 + dt.timedelta(minutes=10))
    golden = [q for q in rec.queries if "nova_golden_mismatch_total" in q]
    assert golden and all("[600s]" in q for q in golden)


class Golden:
    """Drives the shipped agent_flags_canary to its first analysis, then feeds golden readings."""

    def __init__(self, scrape: float | None = None) -> None:
        self.spec = golden_spec()
        self.world, self.st, self.now = World(), CanaryRolloutStatus(), T0
        obs = self.world.observe(metrics=None)
        self.tick(obs.__class__(**{**obs.__dict__, "scrape_interval": scrape}))
        while self.st.phase != "Progressing":
            self.tick(self.world.observe(metrics=None))

    def tick(self, obs: Any) -> None:
        self.st, actions = decide(self.spec, self.st, obs, self.now)
        for a in actions:
            self.world.apply(a)

    def check(self, canary: float, baseline: float, after: float = 30.0) -> None:
        self.now += dt.timedelta(seconds=after)
        assert analysis_due(self.spec, self.st, self.now)
        metrics = observe(self.spec, Tracks(), Tracks())
        t = Value(5000)
        metrics["golden-mismatch"] = MetricObservation(Value(canary) if canary else EMPTY,
                                                       Value(baseline) if baseline else EMPTY, t, t)
        self.tick(self.world.observe(metrics=metrics))

    @property
    def golden(self) -> Any:
        return next(ms for ms in self.st.metrics if ms.name == "golden-mismatch")


def test_a_plus_one_on_both_tracks_read_in_a_race_is_not_a_rollback() -> None:
    g = Golden()
    g.check(1.23, 0)          # a read in the race: the canary's +1 scraped, the baseline's not yet
    assert g.st.phase == "Progressing" and g.golden.reason == "Unconfirmed"
    assert g.st.current_step == 0                          # not a pass either: the step waits
    g.check(1.01, 1.02)       # one interval later both were scraped: the same event on both tracks
    assert g.st.phase == "Progressing" and g.golden.verdict == "pass" and g.golden.unconfirmed_since is None
    assert g.st.current_step == 1


def test_a_canary_only_plus_one_is_never_missed() -> None:
    g = Golden()
    g.check(0, 0)
    g.check(1.23, 0)
    assert g.golden.reason == "Unconfirmed"
    g.check(1.01, 0)          # since the canary started: the +1 is in every later reading
    assert g.st.phase in ("RollingBack", "RolledBack")
    assert "golden-mismatch" in (g.st.rollback_reason or "") and "confirmed" in (g.st.rollback_reason or "")


def test_extrapolation_noise_is_whole_events() -> None:
    g = Golden()
    g.check(1.014, 1.01)      # increase() over a long range: one event on each side
    assert g.golden.verdict == "pass"
    g.check(2.4, 1.01)        # two on the canary, one on the baseline
    g.check(2.02, 1.0)
    assert g.st.phase in ("RollingBack", "RolledBack")


def test_confirmation_waits_at_least_one_scrape_interval() -> None:
    g = Golden(scrape=60.0)   # analysis every 30s (the window widens to 240s), scrapes every 60s
    g.check(1, 0, after=360)  # the first check: the canary ready a window and two scrapes
    g.check(1, 0)             # 30s later: the baseline may not have been scraped yet
    assert g.st.phase == "Progressing" and g.golden.reason == "Unconfirmed"
    g.check(1, 0)             # 60s after the first sighting
    assert g.st.phase in ("RollingBack", "RolledBack")

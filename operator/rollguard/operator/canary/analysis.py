"""One metric, one check: canary and baseline results in, a verdict that says why out. Pure.

How a side's value is read (``_read``):

- a query error (the main query or the traffic query) is ``QueryError``;
- with a traffic query (``sampleQuery``): traffic 0 or empty is *no traffic*, no data; traffic
  > 0 and an empty main query is 0 (no errors with traffic); a value is that value;
- without one: an empty result is no data (the engine cannot tell "zero" from "nothing");
- NaN is no data; ±Inf is a value, but never a pass (``evaluate``).

At a weight where the stable gets no traffic through the route (the highest, 100 %), relative
rules compare with the baseline's last value measured with traffic during this attempt
(``MetricStatus.lastBaseline``); absolute rules (``max``, ``min``) as usual.

``maxIncrease`` compares counts of events (the ``increase()`` of a counter): both sides are
rounded to whole events first, because ``increase()`` extrapolates to the range's edges
(https://prometheus.io/docs/prometheus/latest/querying/functions/#increase) and one event reads
as 1.23. The engine confirms a maxIncrease breach at a later check (``engine._confirm``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rollguard.models.canary import BaselineValue, Metric, Profile, Verdict
from rollguard.operator.canary.profiles import profile_threshold
from rollguard.operator.metrics.base import MetricObservation, NoData, QueryError, QueryResult, Value

# MetricObservation is the input of `evaluate`; its home is metrics.base, next to the query results.
__all__ = ["Evaluation", "MetricObservation", "Reason", "RuleKind", "evaluate", "is_golden", "rule_of"]

RuleKind = Literal["maxIncrease", "maxDeltaPercent", "maxDeltaMs", "max", "min"]
Reason = Literal["Pass", "Breach", "NoData", "QueryError", "TooFewSamples", "NonFinite", "Unconfirmed"]
RELATIVE: frozenset[RuleKind] = frozenset({"maxIncrease", "maxDeltaPercent", "maxDeltaMs"})
HIGHEST_WEIGHT = 100  # the model requires the last setWeight to be 100


@dataclass(frozen=True)
class Evaluation:
    metric: str
    verdict: Verdict
    reason: Reason
    message: str
    canary: float | None = None
    baseline: float | None = None
    delta: float | None = None
    threshold: float | None = None
    sample_count: float | None = None
    # the baseline measured with traffic at this check (finite), to keep as the stand-in
    measured_baseline: float | None = None
    kind: RuleKind = "max"


def rule_of(metric: Metric, profile: Profile | None) -> tuple[RuleKind, float]:
    r = metric.rule
    if r.from_profile is not None:
        assert profile is not None, "the model refuses fromProfile without analysis.profile"
        kind: RuleKind = "maxDeltaPercent" if r.from_profile == "errorRate" else "maxDeltaMs"
        return kind, profile_threshold(profile, r.from_profile)
    for kind, value in (("maxIncrease", r.max_increase), ("maxDeltaPercent", r.max_delta_percent),
                        ("maxDeltaMs", r.max_delta_ms), ("max", r.max), ("min", r.min)):
        if value is not None:
            return kind, value
    raise AssertionError("the model guarantees exactly one rule")


def is_golden(metric: Metric) -> bool:
    """`maxIncrease: 0` means "any increase": a golden mismatch, where one more wrong answer is one too many."""
    return metric.rule.max_increase == 0


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


_UNIT = {"maxIncrease": "", "maxDeltaPercent": "%", "maxDeltaMs": " ms", "max": "", "min": ""}


@dataclass(frozen=True)
class _Side:
    """One track's reading: a value, or why there is none."""

    value: float | None = None
    reason: Reason | None = None  # None: a value
    why: str = ""
    no_traffic: bool = False
    note: str = ""  # how the value was read, when not plainly (an empty result with traffic: 0)


def _quoted(query: str | None) -> str:
    return f" `{query}`" if query else ""


def _read(side: str, result: QueryResult, traffic: QueryResult | None, has_traffic_query: bool,
          window_hint: str) -> _Side:
    track = "canary" if side == "canary" else "stable"
    if isinstance(traffic, QueryError):
        return _Side(reason="QueryError", why=f"{side} traffic query (sampleQuery) failed: {traffic.message}")
    if isinstance(result, QueryError):
        return _Side(reason="QueryError", why=f"{side} query failed: {result.message}")
    if has_traffic_query:
        t = traffic.value if isinstance(traffic, Value) else None
        if t is not None and not math.isnan(t) and math.isinf(t):
            return _Side(reason="NonFinite", why=f"{side} traffic (sampleQuery) is {_fmt(t)}")
        if t is None or math.isnan(t) or t <= 0:
            got = "an empty result" if t is None or math.isnan(t) else _fmt(t)
            q = traffic.query if isinstance(traffic, NoData) else None
            return _Side(reason="NoData", no_traffic=True,
                         why=f"no traffic on {side}: sampleQuery{_quoted(q)} returned {got} (likely cause: "
                             f"no requests reach the {track} track in the window, or its labels select "
                             f"nothing{window_hint})")
        if isinstance(result, NoData):
            if result.kind == "nan":
                return _Side(reason="NoData", why=f"no data for {side}: query{_quoted(result.query)} returned NaN "
                                                  f"with traffic {_fmt(t)} (a ratio whose denominator is 0?)")
            return _Side(value=0.0, note=f"{side} 0: empty result with traffic {_fmt(t)}")
        return _Side(value=result.value)
    if isinstance(result, NoData):
        return _Side(reason="NoData", no_traffic=True,
                     why=f"no data for {side}: query{_quoted(result.query)} returned "
                         f"{'NaN' if result.kind == 'nan' else 'an empty result'} (likely cause: no traffic on "
                         f"the {track} track, a label that selects nothing{window_hint}; without a sampleQuery "
                         "an empty result cannot be read as 0)")
    return _Side(value=result.value)


def evaluate(metric: Metric, obs: MetricObservation, profile: Profile | None, step: int, weight: int,
             last_baseline: BaselineValue | None = None, window_hint: str = "") -> Evaluation:
    """Judge one metric at one check.

    ``last_baseline``: the baseline's last value measured with traffic (status), used at the
    highest weight when the stable has no traffic. ``window_hint``: text naming the window and the
    scrape interval, added to a no-data verdict's likely causes.
    """
    kind, threshold = rule_of(metric, profile)
    where = f"step {step} (weight {weight}%)"
    rule_text = f"{kind} {_fmt(threshold)}{_UNIT[kind]}"
    needs_baseline = kind in RELATIVE
    has_traffic_query = metric.sample_query is not None

    c = _read("canary", obs.canary, obs.canary_traffic, has_traffic_query, window_hint)
    b = _read("baseline", obs.baseline, obs.baseline_traffic, has_traffic_query, window_hint)
    measured = b.value if _finite(b.value) else None
    cval, bval = c.value, b.value
    notes = [n for n in (c.note, b.note) if n]

    def inconclusive(reason: Reason, why: str, samples: float | None = None) -> Evaluation:
        return Evaluation(metric.name, "inconclusive", reason,
                          f"{metric.name}: inconclusive at {where}: {why}; canary {_fmt(cval)}, "
                          f"baseline {_fmt(bval)}, delta n/a, threshold {rule_text}",
                          cval, bval, None, threshold, samples, measured, kind)

    sides = [("canary", c), ("baseline", b)] if needs_baseline else [("canary", c)]
    for reason in ("QueryError", "NonFinite"):
        for _, s in sides:
            if s.reason == reason:
                return inconclusive(s.reason, s.why)
    if c.reason is not None:
        return inconclusive(c.reason, c.why)
    if needs_baseline and b.reason is not None:
        if not (b.no_traffic and weight >= HIGHEST_WEIGHT):
            return inconclusive(b.reason, b.why)
        if last_baseline is None:
            return inconclusive("NoData", f"{b.why}; at weight {weight}% the stable gets no traffic and no "
                                          "earlier check measured the baseline with traffic")
        bval = last_baseline.value
        notes.append(f"baseline {_fmt(bval)} is the last measured with traffic (step {last_baseline.step}, "
                     f"weight {last_baseline.weight}%, {last_baseline.time:%Y-%m-%dT%H:%M:%SZ}): the stable "
                     f"has no traffic at weight {weight}%")
    assert cval is not None

    sample_count: float | None = None
    if has_traffic_query:
        t = obs.canary_traffic
        sample_count = t.value if isinstance(t, Value) else 0.0
    elif isinstance(obs.canary, Value):
        sample_count = float(obs.canary.samples)
    if metric.min_sample_count and (sample_count or 0.0) < metric.min_sample_count:
        return inconclusive("TooFewSamples", f"{_fmt(sample_count)} samples < minSampleCount "
                            f"{metric.min_sample_count}", sample_count)

    # NaN compares false everywhere, and a non-finite baseline leaves nothing to compare with
    if math.isnan(cval):
        return inconclusive("NonFinite", "canary is NaN: a non-finite value is never a pass", sample_count)
    if needs_baseline and not _finite(bval):
        return inconclusive("NonFinite", f"baseline is {_fmt(bval)}: a non-finite value is never a pass",
                            sample_count)
    delta: float | None
    if kind == "maxIncrease":
        assert bval is not None
        # counts of events: whole events on each side (increase() extrapolates: 1 event reads 1.23)
        delta = _whole(cval) - _whole(bval)
        breach = delta > threshold
    elif kind == "maxDeltaPercent":
        assert bval is not None
        if bval == 0:
            delta = 0.0 if cval == 0 else math.copysign(math.inf, cval)
        else:
            delta = (cval - bval) / abs(bval) * 100.0
        breach = delta > threshold
    elif kind == "maxDeltaMs":
        assert bval is not None
        delta = cval - bval
        breach = delta > threshold
    elif kind == "max":
        delta = cval - bval if bval is not None and math.isfinite(bval) and math.isfinite(cval) else None
        breach = cval > threshold
    else:  # min
        delta = cval - bval if bval is not None and math.isfinite(bval) and math.isfinite(cval) else None
        breach = cval < threshold
    # Never a pass on a non-finite value. A breach stays one where the comparison is well defined
    # and the canary is the infinitely worse side (+inf over a max or a finite baseline, -inf under
    # a min, a non-zero canary over a zero baseline): NaN compares false and never breaches.
    if not breach and (not math.isfinite(cval) or (delta is not None and not math.isfinite(delta))):
        return inconclusive("NonFinite", f"canary {_fmt(cval)}, delta {_fmt(delta)}: a non-finite value is "
                                         "never a pass", sample_count)
    unit = "%" if kind == "maxDeltaPercent" else (" ms" if kind == "maxDeltaMs" else "")
    # _fmt signs infinities itself ("+inf"): add "+" only to finite non-negative deltas
    sign = "+" if delta is not None and delta >= 0 and not math.isinf(delta) else ""
    delta_text = "n/a" if delta is None else sign + _fmt(delta) + unit
    if kind == "min":
        cmp = "<" if breach else ">="
        subject = f"canary {_fmt(cval)}"
    elif kind == "max":
        cmp = ">" if breach else "<="
        subject = f"canary {_fmt(cval)}"
    else:
        cmp = ">" if breach else "<="
        subject = f"delta {delta_text}"
    if kind == "maxIncrease":
        subject += " whole events"
    verdict: Verdict = "breach" if breach else "pass"
    message = (f"{metric.name}: {verdict} at {where}: canary {_fmt(cval)}, baseline {_fmt(bval)}, "
               f"delta {delta_text}, threshold {rule_text} ({subject} {cmp} {_fmt(threshold)}{_UNIT[kind]})")
    if sample_count is not None:
        message += f", samples {_fmt(sample_count)}"
    if notes:
        message += f" [{'; '.join(notes)}]"
    return Evaluation(metric.name, verdict, "Breach" if breach else "Pass", message, cval, bval, delta,
                      threshold, sample_count, measured, kind)


def _whole(x: float) -> float:
    """A count of events read through increase(): the nearest whole number (half up); ±inf stays."""
    return x if not math.isfinite(x) else float(math.floor(x + 0.5))

"""One metric, one check: canary and baseline results in, a verdict that says why out. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rollguard.models.canary import Metric, Profile, Verdict
from rollguard.operator.canary.profiles import profile_threshold
from rollguard.operator.metrics.base import MetricObservation, NoData, QueryError, Value

# MetricObservation is the input of `evaluate`; its home is metrics.base, next to the query results.
__all__ = ["Evaluation", "MetricObservation", "Reason", "RuleKind", "evaluate", "is_golden", "rule_of"]

RuleKind = Literal["maxIncrease", "maxDeltaPercent", "maxDeltaMs", "max", "min"]
Reason = Literal["Pass", "Breach", "NoData", "QueryError", "TooFewSamples"]


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
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{x:.6g}"


_UNIT = {"maxIncrease": "", "maxDeltaPercent": "%", "maxDeltaMs": " ms", "max": "", "min": ""}


def evaluate(metric: Metric, obs: MetricObservation, profile: Profile | None, step: int, weight: int) -> Evaluation:
    kind, threshold = rule_of(metric, profile)
    where = f"step {step} (weight {weight}%)"
    rule_text = f"{kind} {_fmt(threshold)}{_UNIT[kind]}"
    needs_baseline = kind in ("maxIncrease", "maxDeltaPercent", "maxDeltaMs")

    def inconclusive(reason: Reason, why: str, canary: float | None = None, baseline: float | None = None,
                     samples: float | None = None) -> Evaluation:
        return Evaluation(metric.name, "inconclusive", reason,
                          f"{metric.name}: inconclusive at {where}: {why}; canary {_fmt(canary)}, "
                          f"baseline {_fmt(baseline)}, delta n/a, threshold {rule_text}",
                          canary, baseline, None, threshold, samples)

    c, b = obs.canary, obs.baseline
    cval = c.value if isinstance(c, Value) else None
    bval = b.value if isinstance(b, Value) else None
    for side, res in (("canary", c), ("baseline", b)):
        if side == "baseline" and not needs_baseline:
            continue
        if isinstance(res, QueryError):
            return inconclusive("QueryError", f"{side} query failed: {res.message}", cval, bval)
    for side, res in (("canary", c), ("baseline", b)):
        if side == "baseline" and not needs_baseline:
            continue
        if isinstance(res, NoData):
            return inconclusive("NoData", f"no data for {side} ({res.reason})", cval, bval)
    assert cval is not None

    sample_count: float | None = None
    if metric.sample_query is not None:
        s = obs.samples
        if isinstance(s, QueryError):
            return inconclusive("QueryError", f"sample query failed: {s.message}", cval, bval)
        sample_count = s.value if isinstance(s, Value) else 0.0
    elif isinstance(c, Value):
        sample_count = float(c.samples)
    if metric.min_sample_count and (sample_count or 0.0) < metric.min_sample_count:
        return inconclusive("TooFewSamples", f"{_fmt(sample_count)} samples < minSampleCount "
                            f"{metric.min_sample_count}", cval, bval, sample_count)

    delta: float | None
    if kind == "maxDeltaPercent":
        assert bval is not None
        if bval == 0:
            delta = 0.0 if cval == 0 else math.copysign(math.inf, cval)
        else:
            delta = (cval - bval) / abs(bval) * 100.0
        breach = delta > threshold
    elif kind in ("maxIncrease", "maxDeltaMs"):
        assert bval is not None
        delta = cval - bval
        breach = delta > threshold
    elif kind == "max":
        delta = None if bval is None else cval - bval
        breach = cval > threshold
    else:  # min
        delta = None if bval is None else cval - bval
        breach = cval < threshold
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
    verdict: Verdict = "breach" if breach else "pass"
    message = (f"{metric.name}: {verdict} at {where}: canary {_fmt(cval)}, baseline {_fmt(bval)}, "
               f"delta {delta_text}, threshold {rule_text} ({subject} {cmp} {_fmt(threshold)}{_UNIT[kind]})")
    if sample_count is not None:
        message += f", samples {_fmt(sample_count)}"
    return Evaluation(metric.name, verdict, "Breach" if breach else "Pass", message, cval, bval, delta,
                      threshold, sample_count)

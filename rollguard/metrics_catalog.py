"""Every Prometheus metric rollguard exports, in one place.

The Grafana dashboard, the alert rules and the code that registers the metrics all name these
series; tests check the dashboard and the rules against this list, so renaming a metric here
without updating them (or the other way round) fails CI instead of leaving an empty panel.
Names and labels are the ones existing dashboards and alerts query (``failure_match_*``),
plus the operator's own.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

MetricType = Literal["counter", "gauge", "histogram"]


class MetricSpec(NamedTuple):
    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str
    exported_by: Literal["sdk", "api", "aggregation", "operator"]


METRICS: tuple[MetricSpec, ...] = (
    # Backends (rollguard.sdk) matching failures against the mounted catalog.
    MetricSpec("failure_match_hits_total", "counter", ("error_code", "category"),
               "Failures matched to a catalog entry.", "sdk"),
    # No label: an unknown code or message is never a label value (callers send any string:
    # unbounded cardinality). The top unknown codes come from failure_unmatched_top.
    MetricSpec("failure_match_misses_total", "counter", (),
               "Failures no catalog entry matched.", "sdk"),
    MetricSpec("failure_unmatched_top", "gauge", ("error_code",),
               "Unmatched failures of the last 24 h, for the 10 most frequent error codes only.", "api"),
    MetricSpec("recovery_success_total", "counter", ("recovery_mode", "error_code"),
               "Recoveries that succeeded.", "sdk"),
    MetricSpec("recovery_failure_total", "counter", ("recovery_mode", "error_code"),
               "Recoveries that failed.", "sdk"),
    MetricSpec("failure_persist_dropped_total", "counter", (),
               "Failure records dropped before reaching the failures API.", "sdk"),
    # The nightly aggregation job.
    MetricSpec("failure_agg_upload_attempt_total", "counter", ("status",),
               "Uploads of the aggregation result, by outcome.", "aggregation"),
    # The operator.
    MetricSpec("rollguard_canary_rollouts", "gauge", ("phase",),
               "CanaryRollouts currently in each phase.", "operator"),
    MetricSpec("rollguard_canary_rollbacks_total", "counter", ("reason",),
               "Canary rollbacks, by reason.", "operator"),
    MetricSpec("rollguard_canary_analysis_runs_total", "counter", ("result",),
               "Canary analysis runs, by result.", "operator"),
    MetricSpec("rollguard_reconcile_duration_seconds", "histogram", ("kind",),
               "Time one reconciliation took, by resource kind.", "operator"),
)

EXPORTED_METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def series_names() -> frozenset[str]:
    """The series names a query can use: histograms expose _bucket, _sum and _count."""
    names: set[str] = set()
    for m in METRICS:
        if m.type == "histogram":
            names.update(m.name + s for s in _HISTOGRAM_SUFFIXES)
        else:
            names.add(m.name)
    return frozenset(names)


_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-zA-Z_$]+")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                       "group_left", "group_right", "inf", "nan", "atan2"})


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords excluded).

    Good enough for the project's own queries; it is not a PromQL parser (`promtool check
    rules` is the syntax check).
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names: set[str] = set()
    for m in _IDENT.finditer(text):
        word = m.group(0)
        before = text[m.start() - 1] if m.start() > 0 else " "
        if before.isdigit() or before in ".$":  # 1e3, 0.5e2, Grafana $variables
            continue
        if re.match(r"\s*\(", text[m.end():]) or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names

"""The MetricProvider interface and the three things a query can return.

Unlike Flagger's ``RunQuery(query) (float64, error)``, a result says which of three things
happened: a value (with how many samples it rests on), no data, or an error. Treating "no
data" as zero, or as a failure, is what hurts canary users most; the engine decides per policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Value:
    """A number, and how many series (or observations) it rests on. May be ±Inf (never NaN from
    a provider: NaN is :class:`NoData`); the engine never counts a non-finite value as a pass."""

    value: float
    samples: int = 1  # series (or observations) the value rests on


@dataclass(frozen=True)
class NoData:
    """The query ran and found nothing (no traffic yet, a label that selects nothing).

    ``kind``: ``empty`` (no series matched), ``nan`` (the result was NaN, e.g. ``0/0``).
    ``query``: the query as sent, filled in by :func:`~rollguard.operator.metrics.collect.collect`,
    so that a verdict can name the query that came back empty.
    """

    reason: str = "empty result"
    kind: Literal["empty", "nan"] = "empty"
    query: str | None = None


@dataclass(frozen=True)
class QueryError:
    """The query could not run (backend down, bad PromQL): not a breach, not a pass."""

    message: str


QueryResult = Value | NoData | QueryError


@dataclass(frozen=True)
class MetricObservation:
    """One metric's query results for one analysis round: canary and baseline side.

    ``canary_traffic`` / ``baseline_traffic``: the metric's ``sampleQuery`` (its traffic: how
    many requests the window holds) rendered for that track, or None when the metric has none.
    """

    canary: QueryResult
    baseline: QueryResult
    canary_traffic: QueryResult | None = None
    baseline_traffic: QueryResult | None = None


class MetricProvider(Protocol):
    """One implementation per metrics backend (Prometheus first); see the registry in __init__."""

    def run_query(self, query: str) -> QueryResult: ...

    def is_online(self) -> bool: ...

    def scrape_interval(self, namespace: str) -> float | None:
        """The longest scrape interval (seconds) of the targets in ``namespace``; None if unknown."""
        ...

    def close(self) -> None: ...

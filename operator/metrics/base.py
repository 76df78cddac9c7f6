"""The MetricProvider interface and the three things a query can return.

Unlike Flagger's ``RunQuery(query) (float64, error)``, a result says which of three things
happened: a value (with how many samples it rests on), no data, or an error. Treating "no
data" as zero, or as a failure, is what hurts canary users most; the engine decides per policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Value:
    """A number, and how many series (or observations) it rests on."""

    value: float
    samples: int = 1  # series (or observations) the value rests on


@dataclass(frozen=True)
class NoData:
    """The query ran and found nothing (no traffic yet, a label that selects nothing)."""

    reason: str = "empty result"


@dataclass(frozen=True)
class QueryError:
    """The query could not run (backend down, bad PromQL): not a breach, not a pass."""

    message: str


QueryResult = Value | NoData | QueryError


@dataclass(frozen=True)
class MetricObservation:
    """One metric's query results for one analysis round: canary and baseline side."""

    canary: QueryResult
    baseline: QueryResult
    samples: QueryResult | None = None  # the sampleQuery rendered for the canary, if any


class MetricProvider(Protocol):
    """One implementation per metrics backend (Prometheus first); see the registry in __init__."""

    def run_query(self, query: str) -> QueryResult: ...

    def is_online(self) -> bool: ...

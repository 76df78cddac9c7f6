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
    value: float
    samples: int = 1  # series (or observations) the value rests on

    kind = "value"


@dataclass(frozen=True)
class NoData:
    reason: str = "empty result"

    kind = "nodata"


@dataclass(frozen=True)
class QueryError:
    message: str

    kind = "error"


QueryResult = Value | NoData | QueryError


class MetricProvider(Protocol):
    """One implementation per metrics backend (Prometheus first); see the registry in __init__."""

    def run_query(self, query: str) -> QueryResult: ...

    def is_online(self) -> bool: ...

"""The failures service's Prometheus counters, on a registry per app (several apps per test process).

Their names and labels are fixed: the chart's dashboard and alert rules query them."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from rollguard.api import rollup
from rollguard.api.orm import FailureMatch, FailurePatternExport, FailureStatsHourly

log = logging.getLogger(__name__)
_CODE_LIKE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def code_label(error_code: str) -> str:
    """A label value for a caller-controlled code: code-shaped values only, anything else "other"."""
    return error_code if _CODE_LIKE.match(error_code) else "other"


UNMATCHED_TOP_N = 10
UNMATCHED_WINDOW = timedelta(hours=24)
UNMATCHED_CACHE_SECONDS = 30.0


class _UnmatchedTop(Collector):
    """failure_unmatched_top{error_code}: the most frequent unmatched codes of the last 24 h.

    A misses counter with the unmatched code as a label would have unbounded cardinality
    (callers send any string). Here an unknown code is never a counter label: this
    gauge exports at most UNMATCHED_TOP_N series per scrape, read from the stored failures (the
    hourly roll-up on PostgreSQL), so the dashboard's "Top 10 Unknown Error Classes" keeps
    working and the series count stays bounded whatever callers send. Cached so a scrape
    every few seconds costs one small query per UNMATCHED_CACHE_SECONDS."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._cached: tuple[float, list[tuple[str, int]]] | None = None

    def _query(self) -> list[tuple[str, int]]:
        since = datetime.now(UTC) - UNMATCHED_WINDOW
        with self._factory() as s:
            if rollup.enabled(s):
                n = func.sum(FailureStatsHourly.failures)
                q = (select(FailureStatsHourly.error_code, n).where(~FailureStatsHourly.matched)
                     .where(FailureStatsHourly.hour >= rollup.hour_of(since)))
                q = q.group_by(FailureStatsHourly.error_code).order_by(n.desc()).limit(UNMATCHED_TOP_N)
            else:
                c = func.count()
                q = (select(FailureMatch.error_code, c).where(FailureMatch.catalog_entry_id.is_(None))
                     .where(FailureMatch.created_at >= since))
                q = q.group_by(FailureMatch.error_code).order_by(c.desc()).limit(UNMATCHED_TOP_N)
            return [(str(code), int(count)) for code, count in s.execute(q)]

    def collect(self) -> Iterable[Metric]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > UNMATCHED_CACHE_SECONDS:
            try:
                self._cached = (now, self._query())
            except Exception as exc:  # a scrape must not fail because the DB is down
                log.warning("failure_unmatched_top unavailable: %s", exc)
                return []
        fam = GaugeMetricFamily("failure_unmatched_top",
                                f"Unmatched failures of the last 24 h, top {UNMATCHED_TOP_N} error codes",
                                labels=["error_code"])
        merged: dict[str, int] = {}
        for code, count in self._cached[1]:
            label = code_label(code)  # two long/odd codes may both read "other": add them up
            merged[label] = merged.get(label, 0) + count
        for label, count in merged.items():
            fam.add_metric([label], count)
        return [fam]


class _ExportAttempts(Collector):
    """failure_agg_upload_attempt_total{status}: the aggregation job runs in another process
    (a CronJob), so the count comes from its audit table rather than from memory."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def collect(self) -> Iterable[Metric]:
        fam = CounterMetricFamily("failure_agg_upload_attempt", "Export attempts of candidate failure patterns",
                                  labels=["status"])
        counts = {"success": 0, "failure": 0, "fallback": 0}
        try:
            with self._factory() as s:
                for st, n in s.execute(select(FailurePatternExport.status, func.count())
                                       .group_by(FailurePatternExport.status)):
                    counts[st] = int(n)
        except Exception as exc:  # a scrape must not fail because the DB is down
            log.warning("failure_agg_upload_attempt_total unavailable: %s", exc)
            return []
        for st, n in counts.items():
            fam.add_metric([st], n)
        return [fam]


class ApiMetrics:
    def __init__(self, factory: sessionmaker[Session] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # Same names and labels as rollguard.metrics_catalog (what the dashboard and alerts use).
        # The matcher's own counters (rollguard.sdk.catalog_metrics, default registry) stay off in
        # the service: these count each stored event once, whether its code or message matched.
        self.hits = Counter("failure_match_hits", "Failures matched to a catalog entry",
                            ["error_code", "category"], registry=r)
        # No label: an unknown code is never a label value (see _UnmatchedTop for the top codes).
        self.misses = Counter("failure_match_misses", "Failures not in the catalog", registry=r)
        self.recovery_success = Counter("recovery_success", "Recoveries marked successful",
                                        ["recovery_mode", "error_code"], registry=r)
        self.recovery_failure = Counter("recovery_failure", "Recoveries marked failed",
                                        ["recovery_mode", "error_code"], registry=r)
        # The service itself never drops an accepted event (it answers 5xx and the SDK spools);
        # the counter is exported so that dashboards and alerts see one series everywhere.
        self.persist_dropped = Counter("failure_persist_dropped", "Failure events dropped", registry=r)
        if factory is not None:
            r.register(_ExportAttempts(factory))
            r.register(_UnmatchedTop(factory))

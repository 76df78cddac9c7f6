"""The seeds' Prometheus counters, on a registry per app (several apps per test process)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from rollguard.api.orm import FailurePatternExport

log = logging.getLogger(__name__)
_CODE_LIKE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def code_label(error_code: str) -> str:
    """Unmatched error codes are caller-controlled: keep the label set bounded (seed known issue #2)."""
    return error_code if _CODE_LIKE.match(error_code) else "other"


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
        self.misses = Counter("failure_match_misses", "Failures not in the catalog", ["error_code"], registry=r)
        self.recovery_success = Counter("recovery_success", "Recoveries marked successful",
                                        ["recovery_mode", "error_code"], registry=r)
        self.recovery_failure = Counter("recovery_failure", "Recoveries marked failed",
                                        ["recovery_mode", "error_code"], registry=r)
        # The service itself never drops an accepted event (it answers 5xx and the SDK spools);
        # the counter is exported so that dashboards and alerts see one series everywhere.
        self.persist_dropped = Counter("failure_persist_dropped", "Failure events dropped", registry=r)
        if factory is not None:
            r.register(_ExportAttempts(factory))

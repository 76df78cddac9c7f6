"""Prometheus counters of the catalog matcher (names listed in ``rollguard.metrics_catalog``).

Label cardinality is bounded by the catalog: ``error_code`` and ``category`` only ever take
values of a catalog entry (at most 500 per catalog); an unrecognised code or message is
counted in ``failure_match_misses_total``, which has no label, never as a new label value.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter


def _counter(name: str, doc: str, labels: tuple[str, ...], registry: CollectorRegistry) -> Counter:
    # Another module of the same process (e.g. the failures service) may have registered the
    # same metric: share it instead of failing on a duplicate registration.
    existing: Any = getattr(registry, "_names_to_collectors", {}).get(name)
    if isinstance(existing, Counter):
        return existing
    return Counter(name, doc, labels, registry=registry)


HITS = _counter("failure_match_hits_total", "Failures recognised by the catalog.", ("error_code", "category"),
                REGISTRY)
MISSES = _counter("failure_match_misses_total", "Failures the catalog did not recognise.", (), REGISTRY)

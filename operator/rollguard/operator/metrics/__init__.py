"""Metric providers, one module per backend; :func:`provider_for` is the registry.

Adding a provider: write ``operator/metrics/<name>.py`` implementing
:class:`~rollguard.operator.metrics.base.MetricProvider` and add one branch here.
"""

from __future__ import annotations

from rollguard.models.canary import CanaryRolloutSpec
from rollguard.operator.metrics.base import MetricProvider, NoData, QueryError, QueryResult, Value


def provider_for(spec: CanaryRolloutSpec) -> MetricProvider:
    from rollguard.operator.metrics.prometheus import PrometheusProvider
    return PrometheusProvider(spec.analysis.prometheus.address)


__all__ = ["MetricProvider", "NoData", "QueryError", "QueryResult", "Value", "provider_for"]

"""Render a CanaryRollout's PromQL templates per track and collect one analysis round."""

from __future__ import annotations

import re

from rollguard.kube.names import TRACK_CANARY, canary_name
from rollguard.models.canary import CanaryRolloutSpec
from rollguard.operator.metrics.base import MetricObservation, MetricProvider, QueryError, QueryResult

_VAR = re.compile(r"\{\{\s*([a-zA-Z_]+)\s*\}\}")


def render(template: str, *, track: str, namespace: str, target: str, interval: str) -> str:
    """Fill ``{{track}}`` (canary|stable), ``{{namespace}}``, ``{{target}}``, ``{{workload}}``
    (the Deployment of that track) and ``{{interval}}`` (the analysis interval, a PromQL range)."""
    values = {"track": track, "namespace": namespace, "target": target, "interval": interval,
              "workload": canary_name(target) if track == TRACK_CANARY else target}

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise ValueError(f"unknown template variable {{{{{m.group(1)}}}}}; known: {', '.join(sorted(values))}")
        return values[m.group(1)]

    return _VAR.sub(sub, template)


def collect(provider: MetricProvider, spec: CanaryRolloutSpec, namespace: str) -> dict[str, MetricObservation]:
    out: dict[str, MetricObservation] = {}
    for m in spec.analysis.metrics:
        def q(template: str, track: str) -> QueryResult:
            try:
                query = render(template, track=track, namespace=namespace, target=spec.target_ref.name,
                               interval=spec.analysis.interval)
            except ValueError as e:
                return QueryError(str(e))
            return provider.run_query(query)
        samples = q(m.sample_query, "canary") if m.sample_query else None
        out[m.name] = MetricObservation(q(m.query, "canary"), q(m.query, "stable"), samples)
    return out

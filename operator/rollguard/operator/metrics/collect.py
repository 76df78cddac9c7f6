"""Render a CanaryRollout's PromQL templates per track and collect one analysis round."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from rollguard.kube.names import TRACK_CANARY, canary_name
from rollguard.models.canary import CanaryRolloutSpec, CanaryRolloutStatus
from rollguard.operator.metrics.base import MetricObservation, MetricProvider, NoData, QueryError, QueryResult
from rollguard.operator.metrics.window import since_canary, window_of

_VAR = re.compile(r"\{\{\s*([a-zA-Z_]+)\s*\}\}")
TRACKS = (TRACK_CANARY, "stable")


def render(template: str, *, track: str, namespace: str, target: str, interval: str,
           since_canary: str | None = None) -> str:
    """Fill ``{{track}}`` (canary|stable), ``{{namespace}}``, ``{{target}}``, ``{{workload}}``
    (the Deployment of that track), ``{{interval}}`` (the analysis window, a PromQL range) and
    ``{{sinceCanary}}`` (the range since the canary became ready; the window when not given)."""
    values = {"track": track, "namespace": namespace, "target": target, "interval": interval,
              "sinceCanary": since_canary or interval,
              "workload": canary_name(target) if track == TRACK_CANARY else target}

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in values:
            raise ValueError(f"unknown template variable {{{{{m.group(1)}}}}}; known: {', '.join(sorted(values))}")
        return values[m.group(1)]

    return _VAR.sub(sub, template)


def collect(provider: MetricProvider, spec: CanaryRolloutSpec, namespace: str,
            status: CanaryRolloutStatus | None = None,
            now: dt.datetime | None = None) -> dict[str, MetricObservation]:
    """Every metric's query, and its ``sampleQuery`` (its traffic), for both tracks.

    An empty result carries the query as sent (``NoData.query``), so that a verdict names it.
    """
    st = status or CanaryRolloutStatus()
    window = window_of(spec.analysis, st)
    since = since_canary(spec.analysis, st, now) if now is not None else window
    out: dict[str, MetricObservation] = {}
    for m in spec.analysis.metrics:
        def q(template: str, track: str) -> QueryResult:
            try:
                query = render(template, track=track, namespace=namespace, target=spec.target_ref.name,
                               interval=window, since_canary=since)
            except ValueError as e:
                return QueryError(str(e))
            r = provider.run_query(query)
            return dataclasses.replace(r, query=query) if isinstance(r, NoData) else r

        traffic = {t: q(m.sample_query, t) if m.sample_query else None for t in TRACKS}
        out[m.name] = MetricObservation(q(m.query, TRACK_CANARY), q(m.query, "stable"),
                                        traffic[TRACK_CANARY], traffic["stable"])
    return out

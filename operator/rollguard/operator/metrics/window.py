"""Query windows: the PromQL ranges a rollout's templates render to. Pure.

A range vector function (``rate``, ``increase``) needs at least two samples of a series inside
its range, and a range only a little longer than the scrape interval holds two samples only some
of the time. Prometheus' guidance and Grafana's ``$__rate_interval`` use at least four scrape
intervals (https://grafana.com/blog/2020/09/28/new-in-grafana-7.2-__rate_interval-for-prometheus-rate-queries-that-just-work/);
so does rollguard: ``{{interval}}`` renders to ``max(analysis.interval, 4 * scrape interval)``.

``{{sinceCanary}}`` renders to the range from when the canary became ready to now (at least the
window): "any increase" rules judged on everything since the canary started, not on disjoint
windows, so a canary-only event is never missed between two windows.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

from rollguard.models.canary import Analysis, CanaryRolloutStatus, parse_duration

MIN_SCRAPES = 4


@dataclass(frozen=True)
class Window:
    range: str  # what {{interval}} renders to, a PromQL duration
    seconds: float
    scrape_interval: float | None  # seconds; None: unknown
    scrape_source: Literal["spec", "prometheus"] | None
    reason: str | None  # why range differs from analysis.interval, or why it could not be checked


def duration(seconds: float) -> str:
    """Seconds as a PromQL duration: whole seconds (``90s``), or milliseconds below one second or
    when not whole (``500ms``, ``1500ms``)."""
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{math.ceil(seconds * 1000)}ms"


def analysis_window(analysis: Analysis, discovered: float | None) -> Window:
    """The window ``{{interval}}`` renders to. ``discovered``: the scrape interval Prometheus
    reported for the rollout's namespace (seconds), if any; ``analysis.scrapeInterval`` wins."""
    interval = parse_duration(analysis.interval)
    source: Literal["spec", "prometheus"] | None
    if analysis.scrape_interval is not None:
        scrape: float | None = parse_duration(analysis.scrape_interval)
        source, where = "spec", f"analysis.scrapeInterval {analysis.scrape_interval}"
    elif discovered is not None and discovered > 0:
        scrape, source = discovered, "prometheus"
        where = f"the scrape interval Prometheus reports for the target's namespace, {duration(discovered)}"
    else:
        return Window(analysis.interval, interval, None, None,
                      "scrape interval unknown (set analysis.scrapeInterval): queries use analysis.interval "
                      f"{analysis.interval} as written; a range shorter than {MIN_SCRAPES} scrapes is empty")
    assert scrape is not None
    least = MIN_SCRAPES * scrape
    if interval >= least:
        return Window(analysis.interval, interval, scrape, source, None)
    widened = duration(least)
    return Window(widened, least, scrape, source,
                  f"analysis.interval {analysis.interval} is shorter than {MIN_SCRAPES} scrape intervals "
                  f"({where}): {{{{interval}}}} widened to {widened}")


def window_of(analysis: Analysis, status: CanaryRolloutStatus) -> str:
    """The range ``{{interval}}`` renders to for this rollout: fixed in status when it started."""
    if status.analysis_window is not None:
        return status.analysis_window
    scrape = parse_duration(status.scrape_interval) if status.scrape_interval else None
    return analysis_window(analysis, scrape).range


def since_canary(analysis: Analysis, status: CanaryRolloutStatus, now: dt.datetime) -> str:
    """The range from ``status.canaryReadyAt`` to ``now`` in whole seconds, at least the window."""
    least = parse_duration(window_of(analysis, status))
    if status.canary_ready_at is None:
        return duration(least)
    age = math.ceil((now - status.canary_ready_at).total_seconds())
    return duration(max(float(age), least))


def confirmation_gap(status: CanaryRolloutStatus) -> float:
    """Seconds between a maxIncrease breach's first sighting and its confirmation: one scrape
    interval, so that both tracks were scraped since (0 when unknown: the next check confirms)."""
    return parse_duration(status.scrape_interval) if status.scrape_interval else 0.0

"""Threshold profiles: named sets of metric thresholds, so a rollout says how strict it is once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rollguard.models.canary import Profile


@dataclass(frozen=True)
class Thresholds:
    error_rate_delta_pct: float
    latency_p95_delta_ms: float


PROFILES: dict[Profile, Thresholds] = {
    "conservative": Thresholds(error_rate_delta_pct=10.0, latency_p95_delta_ms=100.0),   # production
    "moderate": Thresholds(error_rate_delta_pct=50.0, latency_p95_delta_ms=500.0),       # staging
    "permissive": Thresholds(error_rate_delta_pct=100.0, latency_p95_delta_ms=1000.0),   # development
}


def profile_threshold(profile: Profile, which: Literal["errorRate", "latencyP95"]) -> float:
    t = PROFILES[profile]
    return t.error_rate_delta_pct if which == "errorRate" else t.latency_p95_delta_ms

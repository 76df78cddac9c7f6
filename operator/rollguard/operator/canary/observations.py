"""What the canary reconciler observes and hands to :func:`~rollguard.operator.canary.engine.decide`.

Plain immutable values: object states, the smoke result, metric query results, a manual request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rollguard.models.canary import RequestAction
from rollguard.operator.metrics.base import MetricObservation


@dataclass(frozen=True)
class TargetState:
    exists: bool = True
    available: bool = True
    has_change: bool = False  # the stable target already carries the change
    snapshot: dict[str, Any] = field(default_factory=dict)  # what the change will touch, as it is now
    message: str = ""


@dataclass(frozen=True)
class SmokeResult:
    state: Literal["Running", "Passed", "Failed"]  # the SmokeState values a result can have
    returncode: int | None = None
    message: str = ""


@dataclass(frozen=True)
class ManualRequest:
    action: RequestAction
    request_id: str
    by: str | None = None  # who asked, when the request says so


@dataclass(frozen=True)
class Observations:
    generation: int | None = None
    target: TargetState = field(default_factory=TargetState)
    references_ok: bool = True
    references_message: str = ""
    signoff: str | None = None
    prometheus_online: bool = True
    scrape_interval: float | None = None  # seconds, as Prometheus reports it for the namespace; None: unknown
    canary_exists: bool = False
    canary_ready: bool = False
    traffic_weight: int | None = None  # what the router reports; None: not observed
    router_error: str | None = None  # the stable route (Ingress / HTTPRoute) is missing or unusable
    stable_service_exists: bool = True  # the Service the stable route sends traffic to
    # another CanaryRollout already rolling out this target, or owning its canary Deployment
    other_rollout: str | None = None
    smoke: SmokeResult | None = None
    metrics: dict[str, MetricObservation] | None = None  # None: no analysis this call
    request: ManualRequest | None = None
    action_error: str | None = None  # the reconciler's last failed action, if any

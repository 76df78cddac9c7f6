"""A simulated world for the engine: carries out actions on an in-memory model of the cluster.

Used by dry runs (``spec.dryRun`` and ``rollguard canary run --dry-run``, through
:func:`rollguard.operator.canary.engine.plan`) to list every action a rollout would take when
every check passes, and by the tests to drive ``decide`` through whole rollouts without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rollguard.models.canary import CanaryRolloutSpec, Metric
from rollguard.operator.canary.actions import (
    Action,
    ApplyChangeToStable,
    CreateCanary,
    DeleteCanary,
    RestoreStable,
    RunSmoke,
    SetWeight,
)
from rollguard.operator.canary.analysis import rule_of
from rollguard.operator.canary.observations import ManualRequest, Observations, SmokeResult, TargetState
from rollguard.operator.metrics.base import MetricObservation, Value


@dataclass
class World:
    weight: int = 0
    canary_exists: bool = False
    stable_has_change: bool = False
    smoke_started: bool = False
    smoke_result: SmokeResult | None = None
    log: list[Action] = field(default_factory=list)

    def apply(self, action: Action) -> None:
        self.log.append(action)
        if isinstance(action, SetWeight):
            self.weight = action.weight
        elif isinstance(action, CreateCanary):
            self.canary_exists = True
        elif isinstance(action, DeleteCanary):
            self.canary_exists = False
        elif isinstance(action, ApplyChangeToStable):
            self.stable_has_change = True
        elif isinstance(action, RestoreStable):
            self.stable_has_change = False
        elif isinstance(action, RunSmoke):
            self.smoke_started = True

    def observe(self, *, metrics: dict[str, MetricObservation] | None = None,
                request: ManualRequest | None = None, signoff: str | None = "simulated") -> Observations:
        smoke = (self.smoke_result or SmokeResult("Passed", 0)) if self.smoke_started else None
        return Observations(
            target=TargetState(has_change=self.stable_has_change), signoff=signoff,
            canary_exists=self.canary_exists, canary_ready=self.canary_exists, traffic_weight=self.weight,
            smoke=smoke, metrics=metrics, request=request)


def passing_observation(metric: Metric, profile: str | None) -> MetricObservation:
    kind, threshold = rule_of(metric, profile)  # type: ignore[arg-type]
    value = threshold if kind in ("max", "min") else 1.0
    traffic = Value(float(max(metric.min_sample_count, 1)), 1) if metric.sample_query else None
    return MetricObservation(Value(value, max(metric.min_sample_count, 1)), Value(value, 1), traffic, traffic)


def passing_metrics(spec: CanaryRolloutSpec) -> dict[str, MetricObservation]:
    return {m.name: passing_observation(m, spec.analysis.profile) for m in spec.analysis.metrics}

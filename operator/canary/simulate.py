"""A simulated world for the engine: carries out actions on an in-memory model of the cluster.

Used by dry runs (``spec.dryRun`` and ``rollguard canary run --dry-run``) to list every action
a rollout would take when every check passes, and by the tests to drive :func:`decide` through
whole rollouts without a cluster.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from rollguard.models.canary import CanaryRolloutSpec, CanaryRolloutStatus, Metric, parse_duration
from rollguard.operator.canary.actions import (
    Action,
    ApplyChangeToStable,
    CreateCanary,
    DeleteCanary,
    RestoreStable,
    RunSmoke,
    SetWeight,
)
from rollguard.operator.canary.analysis import MetricObservation, rule_of
from rollguard.operator.canary.engine import TERMINAL, ManualRequest, Observations, SmokeResult, TargetState
from rollguard.operator.metrics.base import Value


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
        smoke = (self.smoke_result or SmokeResult("passed", 0)) if self.smoke_started else None
        return Observations(
            target=TargetState(has_change=self.stable_has_change), signoff=signoff,
            canary_exists=self.canary_exists, canary_ready=self.canary_exists, traffic_weight=self.weight,
            smoke=smoke, metrics=metrics, request=request)


def passing_observation(metric: Metric, profile: str | None) -> MetricObservation:
    kind, threshold = rule_of(metric, profile)  # type: ignore[arg-type]
    value = threshold if kind in ("max", "min") else 1.0
    samples = Value(float(max(metric.min_sample_count, 1)), 1) if metric.sample_query else None
    return MetricObservation(Value(value, max(metric.min_sample_count, 1)), Value(value, 1), samples)


def passing_metrics(spec: CanaryRolloutSpec) -> dict[str, MetricObservation]:
    return {m.name: passing_observation(m, spec.analysis.profile) for m in spec.analysis.metrics}


def plan(spec: CanaryRolloutSpec, now: dt.datetime, max_ticks: int = 20000) -> list[tuple[str, Action]]:
    """Every mutating action of a rollout in which every check passes, with where it happens."""
    from rollguard.operator.canary.engine import analysis_due, decide

    live = spec.model_copy(update={"dry_run": False})
    world = World()
    st = CanaryRolloutStatus()
    tick = max(1.0, min(parse_duration(spec.analysis.interval), 60.0))
    out: list[tuple[str, Action]] = []
    resumes = 0
    for _ in range(max_ticks):
        metrics = passing_metrics(live) if analysis_due(live, st, now) else None
        request = None
        if st.phase == "Paused":
            resumes += 1
            request = ManualRequest("resume", f"dry-run-resume-{resumes}")
        st, actions = decide(live, st, world.observe(metrics=metrics, request=request), now)
        where = f"{st.phase} step {st.current_step}"
        for a in actions:
            world.apply(a)
            if a.mutating and (not out or out[-1][1] != a):
                out.append((where, a))
        if st.phase in TERMINAL:
            break
        now += dt.timedelta(seconds=tick)
    return out

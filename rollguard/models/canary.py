"""CanaryRollout: a change to a Deployment, tried on a canary copy, promoted or rolled back on evidence.

The CRD (crds/canaryrollouts.rollguard.io.yaml) is the first validator and mirrors this model
field for field; cross-field rules live there as CEL and are repeated here as validators so
that the CLI refuses the same manifests before they reach the apiserver.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Literal, get_args

from pydantic import Field, model_validator

from rollguard import API_VERSION
from rollguard.models.common import Condition, K8sModel, UtcDateTime

KIND = "CanaryRollout"
PLURAL = "canaryrollouts"

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
FLAG_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """'1m30s' -> 90.0 seconds (the CRD's pattern guarantees the shape)."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: expected e.g. 30s, 5m, 1h30m, 500ms")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


Phase = Literal["Pending", "Blocked", "Initializing", "Progressing", "Paused", "Promoting",
                "Succeeded", "RollingBack", "RolledBack", "Failed"]
# Phases a rollout stays in until a manual request starts it again.
TERMINAL_PHASES: frozenset[Phase] = frozenset({"Succeeded", "RolledBack"})
# Phases in which the canary runs and takes traffic (analysis runs, its flags file is kept current).
LIVE_PHASES: frozenset[Phase] = frozenset({"Progressing", "Paused"})
# What a user may ask of a running rollout (annotation rollguard.io/request, or the CLI).
RequestAction = Literal["abort", "promote", "pause", "resume", "retry"]
REQUEST_ACTIONS: tuple[RequestAction, ...] = get_args(RequestAction)
Verdict = Literal["pass", "breach", "inconclusive"]
Profile = Literal["conservative", "moderate", "permissive"]


# --------------------------------------------------------------------------- spec: target, change

class TargetRef(K8sModel):
    # a one-value enum: pydantic writes it as `const`; the explicit enum keeps the CRD's form too
    kind: Literal["Deployment"] = Field(default="Deployment", json_schema_extra={"enum": ["Deployment"]})
    name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)


class FlagChange(K8sModel):
    """Flag values to set in one environment: FeatureFlag keys (what code asks for) -> enabled.

    ``environment`` is the FeatureFlag environment the target Deployment receives
    (``spec.environments`` key, ConfigMap ``rollguard-flags-<environment>``)."""

    environment: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN)
    values: dict[str, bool] = Field(min_length=1, max_length=64)


class CatalogChange(K8sModel):
    """A FailureCatalog version, by name and content hash (the full hash or a unique prefix of at
    least 10 characters, from the catalog's ``status.history``)."""

    name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)
    hash: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9:._-]+$")


class ImageChange(K8sModel):
    container: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN)
    image: str = Field(min_length=1, max_length=512, pattern=r"^\S+$")


class Change(K8sModel):
    flags: FlagChange | None = None
    catalog: CatalogChange | None = None
    image: ImageChange | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Change:
        if self.flags is None and self.catalog is None and self.image is None:
            raise ValueError("change: at least one of flags, catalog, image is required")
        return self


# --------------------------------------------------------------------------- spec: traffic, steps

class IngressRef(K8sModel):
    name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)


class HTTPRouteRef(K8sModel):
    name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)
    rule_index: int = Field(default=0, ge=0, le=15)
    port: int | None = Field(default=None, ge=1, le=65535)


class Traffic(K8sModel):
    provider: Literal["nginx", "gateway-api"]
    stable_service: str | None = Field(default=None, min_length=1, max_length=63, pattern=NAME_PATTERN)
    ingress: IngressRef | None = None
    http_route: HTTPRouteRef | None = None

    @model_validator(mode="after")
    def _provider_ref(self) -> Traffic:
        if self.provider == "nginx" and self.ingress is None:
            raise ValueError("traffic.ingress is required when traffic.provider is nginx")
        if self.provider == "gateway-api" and self.http_route is None:
            raise ValueError("traffic.httpRoute is required when traffic.provider is gateway-api")
        return self


class Pause(K8sModel):
    duration: str | None = Field(default=None, pattern=DURATION_PATTERN)
    until_resumed: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> Pause:
        if (self.duration is None) == (self.until_resumed is None):
            raise ValueError("steps[].pause: exactly one of duration, untilResumed is required")
        if self.until_resumed is False:
            raise ValueError("steps[].pause.untilResumed must be true when set")
        return self


class Step(K8sModel):
    set_weight: int | None = Field(default=None, ge=0, le=100)
    pause: Pause | None = None

    @model_validator(mode="after")
    def _one(self) -> Step:
        if (self.set_weight is None) == (self.pause is None):
            raise ValueError("steps[]: exactly one of setWeight, pause is required")
        return self


# --------------------------------------------------------------------------- spec: analysis

RULE_KEYS = ("max_increase", "max_delta_percent", "max_delta_ms", "max", "min", "from_profile")


class Rule(K8sModel):
    """How canary and baseline are compared; exactly one field is set."""

    max_increase: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_delta_percent: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_delta_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    min: float | None = Field(default=None, allow_inf_nan=False)
    from_profile: Literal["errorRate", "latencyP95"] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Rule:
        if sum(getattr(self, k) is not None for k in RULE_KEYS) != 1:
            raise ValueError("rule: exactly one of maxIncrease, maxDeltaPercent, maxDeltaMs, max, min, "
                             "fromProfile is required")
        return self


class Metric(K8sModel):
    """One metric: ``query`` rendered per track, compared by ``rule``.

    ``sampleQuery`` is the metric's traffic: how many requests (or events) the query's window
    holds on a track, rendered for both tracks. With it, an empty result on a track with traffic
    is 0 (no errors with traffic), and a track without traffic is no data. Without it, an empty
    result is always no data. ``minSampleCount`` applies to the canary's traffic.
    """

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_-]*$")
    query: str = Field(min_length=1, max_length=4096)
    rule: Rule
    failure_limit: int = Field(default=1, ge=0, le=100)
    consecutive_failure_limit: int | None = Field(default=None, ge=0, le=100)
    min_sample_count: int = Field(default=0, ge=0)
    sample_query: str | None = Field(default=None, min_length=1, max_length=4096)
    immediate: bool = False


class PrometheusRef(K8sModel):
    address: str = Field(min_length=1, max_length=512, pattern=r"^https?://\S+$")


class Analysis(K8sModel):
    """``interval``: how often the analysis runs, and the PromQL range ``{{interval}}`` renders to,
    widened to four scrape intervals when shorter. ``scrapeInterval``: how often
    Prometheus scrapes the target's pods; without it the operator asks Prometheus
    (``/api/v1/targets``) when the rollout starts."""

    interval: str = Field(default="30s", pattern=DURATION_PATTERN)
    scrape_interval: str | None = Field(default=None, pattern=DURATION_PATTERN)
    prometheus: PrometheusRef
    on_unavailable: Literal["continue", "rollback"] = "continue"
    on_no_data: Literal["continue", "fail", "rollback"] = "continue"
    profile: Profile | None = None
    metrics: list[Metric] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _consistent(self) -> Analysis:
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("analysis.metrics[].name must be unique")
        if self.profile is None and any(m.rule.from_profile for m in self.metrics):
            raise ValueError("analysis.profile is required when a metric rule uses fromProfile")
        return self


# --------------------------------------------------------------------------- spec: smoke

class SmokeJob(K8sModel):
    template: dict[str, Any]


class SmokeHTTP(K8sModel):
    url: str = Field(min_length=1, max_length=2048, pattern=r"^https?://\S+$")
    expect_status: int = Field(default=200, ge=100, le=599)


class Smoke(K8sModel):
    job: SmokeJob | None = None
    http: SmokeHTTP | None = None
    timeout_seconds: int = Field(default=120, ge=1, le=3600)

    @model_validator(mode="after")
    def _one(self) -> Smoke:
        if (self.job is None) == (self.http is None):
            raise ValueError("smoke: exactly one of job, http is required")
        return self


class CanaryRolloutSpec(K8sModel):
    target_ref: TargetRef
    change: Change
    requires_signoff: bool = False
    traffic: Traffic
    steps: list[Step] = Field(min_length=1, max_length=32)
    analysis: Analysis
    smoke: Smoke | None = None
    watch: str = Field(default="0s", pattern=DURATION_PATTERN)
    progress_deadline_seconds: int = Field(default=600, ge=10, le=86400)
    dry_run: bool = False

    @model_validator(mode="after")
    def _weights(self) -> CanaryRolloutSpec:
        weights = [s.set_weight for s in self.steps if s.set_weight is not None]
        if not weights or weights[-1] != 100:
            raise ValueError("steps: the last setWeight must be 100")
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError("steps: setWeight values must strictly rise")
        return self


# --------------------------------------------------------------------------- status

class Sample(K8sModel):
    time: UtcDateTime
    step: int
    weight: int
    canary: float | None = None
    baseline: float | None = None
    verdict: Verdict


class BaselineValue(K8sModel):
    """A baseline value measured with traffic on the stable, and where: the stand-in for the
    baseline at a weight where the stable gets no traffic (see docs/canary.md)."""

    value: float
    time: UtcDateTime
    step: int
    weight: int


class MetricStatus(K8sModel):
    name: str
    verdict: Verdict | None = None
    reason: str | None = None
    message: str | None = None
    canary_value: float | None = None
    baseline_value: float | None = None
    delta: float | None = None
    threshold: float | None = None
    sample_count: float | None = None
    failures: int = 0
    consecutive_failures: int = 0
    inconclusive: int = 0
    passes: int = 0
    last_checked_at: UtcDateTime | None = None
    samples: list[Sample] = Field(default_factory=list)
    # the last baseline value measured with traffic on the stable, during this attempt
    last_baseline: BaselineValue | None = None
    # maxIncrease: when the canary was first seen ahead; a breach needs a later check to confirm it
    unconfirmed_since: UtcDateTime | None = None


SmokeState = Literal["Pending", "Running", "Passed", "Failed"]
"""A smoke test's state, in ``status.smoke.state`` and in what the reconciler observes."""


class SmokeStatus(K8sModel):
    state: SmokeState = "Pending"
    returncode: int | None = None
    message: str | None = None
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None


class StepReport(K8sModel):
    index: int
    kind: Literal["setWeight", "pause", "watch"]
    weight: int
    started_at: UtcDateTime
    finished_at: UtcDateTime | None = None
    checks: int = 0
    outcome: Literal["completed", "rolledBack", "promoted", "running"] = "running"


class MetricDelta(K8sModel):
    canary: float | None = None
    baseline: float | None = None
    delta: float | None = None
    verdict: Verdict | None = None


class Report(K8sModel):
    success: bool
    rollback_triggered: bool
    rollback_reason: str | None = None
    smoke_returncode: int | None = None
    metrics_delta: dict[str, MetricDelta] = Field(default_factory=dict)
    steps: list[StepReport] = Field(default_factory=list)
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    duration_seconds: float | None = None
    dry_run: bool = False
    # How the change reached the stable: "automatic" (every step passed its analysis) or "manual"
    # (a `promote` request skipped the remaining steps), who asked, and how many analysis checks
    # passed in full before it. A manual promotion with no passing check has success=false: the
    # change is live, but nothing showed it was safe.
    promotion: Literal["automatic", "manual"] | None = None
    promoted_by: str | None = None
    checks_passed: int = 0
    # what the rollout did outside the canary objects: FailureCatalog pins, FeatureFlag values,
    # the stable Deployment's edits, and what a rollback put back
    applied_changes: list[str] = Field(default_factory=list)


class ManualAction(K8sModel):
    action: RequestAction
    request_id: str
    at: UtcDateTime
    accepted: bool
    phase: Phase
    message: str
    by: str | None = None  # who asked (annotation rollguard.io/request-by; the CLI sets it)


class CanaryRolloutStatus(K8sModel):
    phase: Phase = "Pending"
    reason: str | None = None
    message: str | None = None
    observed_generation: int | None = None
    attempt: int = 1
    current_step: int = 0
    canary_weight: int = 0
    step_started_at: UtcDateTime | None = None
    weight_changed_at: UtcDateTime | None = None
    step_checks: int = 0
    step_passes: int = 0
    watch_started_at: UtcDateTime | None = None
    started_at: UtcDateTime | None = None
    phase_since: UtcDateTime | None = None
    progress_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    last_analysis_at: UtcDateTime | None = None
    # when the canary first reported ready: the start of the range `{{sinceCanary}}` renders to
    canary_ready_at: UtcDateTime | None = None
    # the PromQL range `{{interval}}` renders to, why it differs from analysis.interval if it does,
    # and the scrape interval it rests on (from the spec, or from Prometheus' targets)
    analysis_window: str | None = None
    analysis_window_reason: str | None = None
    scrape_interval: str | None = None
    scrape_interval_source: Literal["spec", "prometheus"] | None = None
    last_check_verdict: Verdict | None = None
    analysis_runs: int = 0
    checks_passed: int = 0  # analysis checks in which every metric passed, over the whole attempt
    promoted_by: str | None = None  # set when a manual `promote` was accepted
    rollback_reason: str | None = None
    change_applied_to_stable: bool = False  # the stable target carries the change now (False again once restored)
    stable_had_change: bool = False  # the stable target already carried the change when the attempt started
    paused_manually: bool = False  # Paused by a `pause` request (only ever true in phase Paused)
    # since when every analysis check has found Prometheus unusable (query errors); None when the
    # last check reached it, and outside the live phases
    analysis_waiting_since: UtcDateTime | None = None
    # The spec this attempt runs with, as canonical JSON (what it changes, where, and how it is
    # judged), recorded when the attempt leaves Pending/Blocked, and its hash. An edit to the
    # object's spec while the attempt runs never reaches it half-way: the engine compares the hash
    # every tick and starts the rollout over with the new spec (`restartPending`, `restartedFor`).
    attempt_spec: str | None = None
    spec_hash: str | None = None
    # set while the canary of an attempt whose spec was edited is being taken out: what changed
    restart_pending: str | None = None
    # why this attempt started over (a spec edit mid-rollout); None for a first attempt or a retry
    restarted_for: str | None = None
    smoke: SmokeStatus | None = None
    metrics: list[MetricStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    history: list[StepReport] = Field(default_factory=list)
    report: Report | None = None
    planned_actions: list[str] = Field(default_factory=list)
    manual_actions: list[ManualAction] = Field(default_factory=list)
    last_request_id: str | None = None
    last_action_error: str | None = None
    stable_snapshot: dict[str, Any] | None = None
    applied_changes: list[str] = Field(default_factory=list)


class CanaryRollout(K8sModel):
    api_version: str = API_VERSION
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: CanaryRolloutSpec
    status: CanaryRolloutStatus | None = None

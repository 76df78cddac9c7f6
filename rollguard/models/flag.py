"""FeatureFlag: a flag with a default, per-environment overrides, an owner and an optional sign-off gate.

Mirrors ``crds/featureflags.rollguard.io.yaml`` field for field; the cross-field rules the CRD
states in CEL are repeated in validators (same messages), so the CLI refuses what the
apiserver would refuse before sending it. v1alpha1 flags are boolean: CEL cannot see untyped
JSON values, and a flag whose type the apiserver cannot check is a flag that breaks at runtime.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, model_validator

from rollguard.models.common import Condition, K8sModel, UtcDateTime

FlagType = Literal["boolean"]
EvidenceKind = Literal["ShadowRun", "GoldenReplay", "Manual"]
ValueSource = Literal["Default", "Override", "Blocked"]
SignoffState = Literal["NotRequired", "Valid", "Missing", "Expired", "NotYetValid", "Invalid"]
FlagPhase = Literal["Ready", "Blocked", "Invalid"]

# An environment name becomes part of a ConfigMap name and a label value: a DNS label.
ENVIRONMENT_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENVIRONMENT_MAX = 40
KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]*$"
ENV_VAR_PATTERN = r"^[A-Z][A-Z0-9_]*$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HISTORY_MAX = 20

# The apiserver refuses "yes" or "1" where a boolean/integer is declared; pydantic's lax mode
# would coerce them. Strict on these fields keeps the model as strict as the CRD.
StrictBool = Annotated[bool, Strict()]
StrictInt = Annotated[int, Strict()]


class SignoffEvidence(K8sModel):
    """What the approval rests on, e.g. a 24 h shadow run with its mismatch count."""

    kind: EvidenceKind
    mismatches: StrictInt | None = Field(default=None, ge=0)
    report_ref: str | None = Field(default=None, min_length=1, max_length=1024)
    summary: str | None = Field(default=None, max_length=4096)


class Signoff(K8sModel):
    """A recorded approval: who, when, on what evidence, until when."""

    by: str = Field(min_length=1, max_length=253)
    at: UtcDateTime
    expires_at: UtcDateTime | None = None
    evidence: SignoffEvidence


class LabelSelector(K8sModel):
    match_labels: dict[str, str]


class FlagTarget(K8sModel):
    """Deployments (in the flag's namespace) that receive the flags of one environment."""

    environment: str = Field(pattern=ENVIRONMENT_PATTERN, max_length=ENVIRONMENT_MAX)
    deployments: list[str] | None = Field(default=None, max_length=100)
    selector: LabelSelector | None = None


class FeatureFlagSpec(K8sModel):
    key: str | None = Field(default=None, pattern=KEY_PATTERN, max_length=128)
    description: str | None = Field(default=None, max_length=2048)
    owner: str = Field(min_length=1, max_length=253)
    type: FlagType = "boolean"
    default_value: StrictBool
    environments: dict[str, StrictBool] | None = Field(default=None, max_length=50)
    env_var: str | None = Field(default=None, pattern=ENV_VAR_PATTERN, max_length=128)
    requires_signoff: StrictBool = False
    signoff: Signoff | None = None
    targets: list[FlagTarget] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _cross_field(self) -> FeatureFlagSpec:
        # Same rules (and messages) as the CRD's x-kubernetes-validations.
        for env in self.environments or {}:
            if not re.match(ENVIRONMENT_PATTERN, env) or len(env) > ENVIRONMENT_MAX:
                raise ValueError("spec.environments keys must be DNS labels (lowercase letters, digits, '-')"
                                 f" of at most 40 characters: {env!r}")
        s = self.signoff
        if s is not None:
            if s.expires_at is not None and s.expires_at <= s.at:
                raise ValueError("spec.signoff.expiresAt must be after spec.signoff.at")
            if s.evidence.kind == "ShadowRun" and s.evidence.mismatches is None:
                raise ValueError("spec.signoff.evidence.mismatches is required for a ShadowRun")
        for t in self.targets or []:
            if not t.deployments and t.selector is None:
                raise ValueError("spec.targets[] needs deployments or selector")
            for d in t.deployments or []:
                if not re.match(DNS1123_SUBDOMAIN, d):
                    raise ValueError(f"spec.targets[].deployments: {d!r} is not a valid Deployment name")
        return self


class EnvironmentStatus(K8sModel):
    """The effective value of the flag in one environment, and why."""

    name: str
    value: bool
    desired: bool
    source: ValueSource
    reason: str | None = None
    message: str | None = None
    config_map: str | None = None
    deployments: list[str] | None = None


class HistoryEntry(K8sModel):
    """One audited change: when, who (best knowledge: annotation or field manager), what."""

    time: UtcDateTime
    actor: str
    generation: int | None = None
    change: str


class SignoffStatus(K8sModel):
    state: SignoffState
    message: str | None = None
    expires_at: UtcDateTime | None = None


class FeatureFlagStatus(K8sModel):
    observed_generation: int | None = None
    phase: FlagPhase | None = None
    key: str | None = None
    summary: str | None = None
    environments: list[EnvironmentStatus] | None = None
    blocked_reasons: list[str] | None = None
    signoff: SignoffStatus | None = None
    history: list[HistoryEntry] | None = None
    conditions: list[Condition] | None = None


class FeatureFlag(K8sModel):
    api_version: Literal["rollguard.io/v1alpha1"] = "rollguard.io/v1alpha1"
    kind: Literal["FeatureFlag"] = "FeatureFlag"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: FeatureFlagSpec
    status: FeatureFlagStatus | None = None

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def key(self) -> str:
        """The name applications ask for: ``spec.key``, else the resource name."""
        return self.spec.key or self.name

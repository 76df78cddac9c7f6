"""FailureCatalog: a versioned list of error codes, their classification and recovery guidance.

Shared by the CRD (``crds/failurecatalogs.rollguard.io.yaml``), the SDK matcher and the
failures service. Field for field the same as the CRD's schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rollguard import API_VERSION
from rollguard.models.common import Condition, K8sModel, UtcDateTime

Category = Literal[
    "TRANSIENT", "TIMEOUT", "RATE_LIMIT", "PERMISSION", "RESOURCE",
    "VALIDATION", "PLANNER", "TOOL", "DEPENDENCY", "INTERNAL",
]
Severity = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
RecoveryMode = Literal[
    "RETRY_EXPONENTIAL", "RETRY_IMMEDIATE", "FALLBACK", "CIRCUIT_BREAK",
    "REPLAN", "ESCALATE", "MANUAL", "ABORT",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
SEVERITIES: tuple[str, ...] = Severity.__args__  # type: ignore[attr-defined]
RECOVERY_MODES: tuple[str, ...] = RecoveryMode.__args__  # type: ignore[attr-defined]
# Modes that retry the failed call itself: they only make sense for a retryable entry.
RETRY_MODES: frozenset[str] = frozenset({"RETRY_EXPONENTIAL", "RETRY_IMMEDIATE"})
# Modes that give up on the call: a retryable entry must not point at them.
TERMINAL_MODES: frozenset[str] = frozenset({"MANUAL", "ABORT"})

CODE_PATTERN = r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$"
HASH_PATTERN = r"^[0-9a-f]{10,64}$"
TargetState = Literal["Mounted", "Pending", "NotFound", "Conflict", "Error"]
Phase = Literal["Pending", "Ready", "Invalid", "Degraded", "Terminating"]


class Backoff(K8sModel):
    """Delay between attempts: initial * multiplier**n, capped at max."""

    initial_seconds: float = Field(default=1.0, ge=0, le=3600)
    max_seconds: float = Field(default=60.0, ge=0, le=86400)
    multiplier: float = Field(default=2.0, ge=1, le=10)
    jitter: bool = True


class Recovery(K8sModel):
    mode: RecoveryMode
    max_attempts: int | None = Field(default=None, ge=0, le=100)
    backoff: Backoff | None = None
    suggestion: str = Field(default="", max_length=1024)


class Match(K8sModel):
    """How a code or a message is recognised: other names for the code, and message regexes."""

    aliases: list[str] = Field(default_factory=list, max_length=32)
    patterns: list[str] = Field(default_factory=list, max_length=32)


class CatalogEntry(K8sModel):
    code: str = Field(pattern=CODE_PATTERN, max_length=64)
    category: Category
    severity: Severity
    retryable: bool
    recovery: Recovery
    match: Match = Field(default_factory=Match)
    description: str = Field(default="", max_length=1024)


class LabelSelector(K8sModel):
    match_labels: dict[str, str] = Field(default_factory=dict)


class CatalogTarget(K8sModel):
    """A Deployment in the catalog's namespace, by name or by label selector (exactly one)."""

    name: str | None = Field(default=None, max_length=253)
    selector: LabelSelector | None = None
    containers: list[str] | None = Field(default=None, max_length=32)


class FailureCatalogSpec(K8sModel):
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$", max_length=63)
    entries: list[CatalogEntry] = Field(min_length=1, max_length=500)
    targets: list[CatalogTarget] = Field(default_factory=list, max_length=50)
    history_limit: int = Field(default=5, ge=1, le=50)
    pinned_hash: str | None = Field(default=None, pattern=HASH_PATTERN)


class HistoryItem(K8sModel):
    hash: str
    version: str
    config_map_name: str
    entry_count: int = Field(ge=0)
    created_at: UtcDateTime


class TargetStatus(K8sModel):
    name: str
    state: TargetState
    hash: str | None = None
    message: str = ""


class FailureCatalogStatus(K8sModel):
    observed_generation: int | None = Field(default=None, ge=0)
    phase: Phase | None = None
    content_hash: str | None = None
    active_hash: str | None = None
    config_map_name: str | None = None
    entry_count: int | None = Field(default=None, ge=0)
    history: list[HistoryItem] = Field(default_factory=list)
    targets: list[TargetStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)


class FailureCatalog(K8sModel):
    api_version: Literal["rollguard.io/v1alpha1"] = API_VERSION  # type: ignore[assignment]
    kind: Literal["FailureCatalog"] = "FailureCatalog"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: FailureCatalogSpec
    status: FailureCatalogStatus | None = None


__all__ = [
    "CATEGORIES", "RECOVERY_MODES", "RETRY_MODES", "SEVERITIES", "TERMINAL_MODES",
    "Backoff", "CatalogEntry", "CatalogTarget", "Category", "FailureCatalog", "FailureCatalogSpec",
    "FailureCatalogStatus", "HistoryItem", "LabelSelector", "Match", "Recovery", "RecoveryMode",
    "Severity", "TargetStatus",
]

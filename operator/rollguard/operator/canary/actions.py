"""What the engine asks the reconciler to do. Small, immutable, idempotent to carry out twice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rollguard.models.canary import Report
from rollguard.models.common import Event


@dataclass(frozen=True)
class SetWeight:
    """Send ``weight`` percent of traffic to the canary (0 = everything to stable)."""

    weight: int
    mutating = True

    def describe(self) -> str:
        return f"set canary traffic weight to {self.weight}%"


@dataclass(frozen=True)
class CreateCanary:
    """Create (or make sure of) the canary Deployment and Service: the target with the change applied."""

    mutating = True

    def describe(self) -> str:
        return "create the canary Deployment and Service (target's pod template with the change applied)"


@dataclass(frozen=True)
class LabelStablePods:
    """Label the stable target's running pods ``rollguard.io/track=stable`` (a patch on each pod's
    metadata, never on the Deployment's template: no pod restarts). Asked on every live tick, so a
    pod the Deployment creates mid-rollout is labelled too; a pod that has the label is not written."""

    mutating = True
    repeated = True  # asked on every tick while the rollout is live: a dry-run plan lists it once

    def describe(self) -> str:
        return "label the stable target's pods rollguard.io/track=stable (pod metadata only, no restart)"


@dataclass(frozen=True)
class RunSmoke:
    mutating = True

    def describe(self) -> str:
        return "run the smoke test against the canary"


@dataclass(frozen=True)
class ApplyChangeToStable:
    mutating = True

    def describe(self) -> str:
        return "apply the change to the stable target"


@dataclass(frozen=True)
class DeleteCanary:
    mutating = True

    def describe(self) -> str:
        return "delete the canary Deployment, Service and canary route"


@dataclass(frozen=True)
class RestoreStable:
    """Put back what the change touched on the stable target, from the snapshot taken at start."""

    snapshot: dict[str, Any] = field(default_factory=dict)
    mutating = True

    def describe(self) -> str:
        return "restore the stable target to its state before the rollout"


class EmitEvent(Event):
    """Post an Event about the rollout (the shared :class:`~rollguard.models.common.Event`)."""

    __slots__ = ()
    mutating = False


@dataclass(frozen=True)
class WriteReport:
    report: Report
    mutating = False

    def describe(self) -> str:
        verdict = "PASSED" if self.report.success else f"FAILED ({self.report.rollback_reason})"
        return f"write the report: {verdict}"


Action = (SetWeight | CreateCanary | LabelStablePods | RunSmoke | ApplyChangeToStable | DeleteCanary
          | RestoreStable | EmitEvent | WriteReport)

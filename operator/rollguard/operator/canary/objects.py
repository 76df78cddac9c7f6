"""The names of a rollout's objects and the owner reference they carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollguard import API_VERSION
from rollguard.kube import names
from rollguard.models.canary import KIND, CanaryRollout


@dataclass
class Names:
    """What a rollout's objects are called: the target, its Service, and their canary copies."""

    namespace: str
    rollout: str
    target: str
    stable_service: str

    @property
    def canary(self) -> str:
        return names.canary_name(self.target)

    @property
    def canary_service(self) -> str:
        return names.canary_name(self.stable_service)

    @property
    def canary_flags(self) -> str:
        return names.canary_flags_config_map(self.canary)

    def smoke_job(self, attempt: int) -> str:
        return names.smoke_job(self.rollout, attempt)


def names_of(cr: CanaryRollout) -> Names:
    """The names of ``cr``'s objects."""
    meta = cr.metadata
    return Names(meta.get("namespace", "default"), meta["name"], cr.spec.target_ref.name,
                 cr.spec.traffic.stable_service or cr.spec.target_ref.name)


def owner_of(cr: CanaryRollout) -> dict[str, Any] | None:
    """The ownerReference the rollout's objects carry (None before the rollout has a uid): the
    garbage collector removes them with the rollout, and never blocks the rollout's deletion."""
    uid = cr.metadata.get("uid")
    if not uid:
        return None
    return {"apiVersion": API_VERSION, "kind": KIND, "name": cr.metadata["name"], "uid": uid,
            "controller": True, "blockOwnerDeletion": False}

"""What the flags planner asks the executor to do in one namespace. Small, immutable, idempotent.

The planner (:func:`rollguard.operator.flags.reconcile.plan`) returns them in the order they are
carried out: the flags that are Invalid first, then the environments' ConfigMaps, the stale
ConfigMaps' deletion, the mounts, the unmounts, and last every valid flag's status with its
Events (an Event after the status it reports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollguard.models.common import Event


@dataclass(frozen=True)
class ApplyConfigMap:
    """Write ``rollguard-flags-<environment>`` (server-side apply): ``files`` (file name -> content),
    ``digest`` (their hash, an annotation) and one ownerReference per flag of ``owners`` (the raw
    FeatureFlag objects: name and uid are read)."""

    name: str
    environment: str
    files: Mapping[str, str]
    digest: str
    owners: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class DeleteConfigMap:
    """Delete a flags ConfigMap whose environment no flag of the namespace has any more."""

    name: str


@dataclass(frozen=True)
class Mount:
    """Mount ConfigMap ``config_map`` at the flags path in each of ``containers`` of ``deployment``."""

    deployment: str
    config_map: str
    containers: tuple[str, ...]


@dataclass(frozen=True)
class Unmount:
    """Take the flags volume and its volumeMounts out of ``deployment`` (each of ``containers``)."""

    deployment: str
    containers: tuple[str, ...]


@dataclass(frozen=True)
class WriteStatus:
    """Write one flag's status and then post its Events.

    ``flag``: the raw FeatureFlag (apiVersion, kind, metadata: what an Event refers to).
    ``status``: the merge patch of ``status`` (a key set to None removes that field), or None when
    the status is unchanged. ``isolated``: a failure of this write is logged and the remaining
    actions go on (a valid flag's status); otherwise it raises and ends the reconcile (an Invalid
    flag: its report is what the next reconcile must retry first).
    """

    flag: Mapping[str, Any]
    status: Mapping[str, Any] | None
    events: tuple[Event, ...] = ()
    isolated: bool = False

    @property
    def name(self) -> str:
        """The flag's resource name."""
        return str(self.flag["metadata"]["name"])


Action = ApplyConfigMap | DeleteConfigMap | Mount | Unmount | WriteStatus

"""The seam between the canary and what a change is: one :class:`ChangeKind` per kind of change.

A CanaryRollout's change has up to three parts (an image, a FailureCatalog version, flag
values). Each part is one module behind this interface, next to its resource's code:

- ``rollguard.operator.canary.image``: the image of one container of the target;
- ``rollguard.operator.catalog.change``: a FailureCatalog version (promoted through its pin);
- ``rollguard.operator.flags.change``: FeatureFlag values in one environment.

The canary reconciler never branches on the kind: it asks every registered kind (the registry is
``rollguard.operator.canary.change.KINDS``) in turn. Each method is pure; a kind's "part" is
what it resolved from the cluster before (its type is the kind's own). Adding a kind touches
its module and the registry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, TypeVar

from rollguard.kube.template import PodTemplate
from rollguard.models.canary import Change

P = TypeVar("P", contravariant=True)


class CatalogPin(TypedDict, total=False):
    name: str
    pinnedHash: str


class FlagValue(TypedDict, total=False):
    environment: str
    value: bool
    signoff: dict[str, Any]


class EnvEntry(TypedDict):
    """One env entry of a container as it was: where it stood and all of it (``value`` or
    ``valueFrom``, whatever the apiserver stored), so it comes back exactly as it was."""

    index: int
    entry: dict[str, Any]


class Snapshot(TypedDict, total=False):
    """What a rollout's change touches, as it was before (``status.stableSnapshot``).

    Whatever the change may touch is recorded whole (an env entry with its ``valueFrom`` and its
    position), never as a projection (its value): a restore puts back exactly what was there.
    Absent things are listed by name (``envAbsent``), never as nulls: the status is stored
    without nulls. ``env`` (variable -> value) only occurs in snapshots written by earlier
    versions; ``annotations``/``annotationsAbsent`` only in snapshots written by versions that
    edited the catalog annotations on the stable themselves."""

    envEntries: dict[str, list[EnvEntry]]  # container -> the override variables it had
    env: dict[str, dict[str, str]]  # earlier versions: container -> override variable -> value
    envAbsent: dict[str, list[str]]  # container -> override variables it did not have
    images: dict[str, str]  # container -> image
    catalogPin: CatalogPin
    featureFlags: dict[str, FlagValue]  # FeatureFlag resource -> its value and sign-off
    annotations: dict[str, str]
    annotationsAbsent: list[str]


@dataclass(frozen=True)
class ObjectPatch:
    """A merge patch of a rollguard resource the change goes through (a FailureCatalog pin,
    FeatureFlag values), and what it does in words (status ``appliedChanges``, Events)."""

    plural: str  # failurecatalogs | featureflags
    name: str
    patch: dict[str, Any]
    message: str


class ChangeKind(Protocol[P]):
    """One kind of change. ``P`` is what the kind resolved from the cluster (None for the image)."""

    name: str
    # Promotion writes this kind's objects before the stable's template (the source of truth
    # first), or after it.
    promote_before_template: bool

    def wanted(self, change: Change) -> bool:
        """Whether ``change`` has a part of this kind."""
        ...

    def canary_template(self, template: PodTemplate, change: Change, part: P) -> None:
        """Apply this part to the canary's pod template (in place)."""
        ...

    def stable_template(self, template: PodTemplate, change: Change, part: P) -> None:
        """Apply what promotion writes on the stable's own template for this part (in place)."""
        ...

    def is_applied(self, template: PodTemplate, change: Change, part: P) -> bool:
        """Beyond the template: whether the stable receives this part already."""
        ...

    def snapshot(self, template: PodTemplate, change: Change, part: P, snap: Snapshot) -> None:
        """Record (into ``snap``) what this part will touch, as it is now."""
        ...

    def restore_template(self, template: PodTemplate, snap: Snapshot) -> None:
        """Put this part of the stable's template back as ``snap`` has it (in place)."""
        ...

    def promote(self, change: Change, part: P, signoff: dict[str, Any] | None) -> list[ObjectPatch]:
        """The resource patches promotion writes for this part; only what differs now."""
        ...

    def restore(self, snap: Snapshot, part: P) -> list[ObjectPatch]:
        """The resource patches that put this part back as ``snap`` has it; only what differs now."""
        ...

    def template_note(self, change: Change, part: P) -> str | None:
        """How promotion changed the stable's template for this part, in words (None: it did not)."""
        ...


def rollout_signoff(by: str, at: dt.datetime, rollout: str) -> dict[str, Any]:
    """A rollout's sign-off as a FeatureFlag ``spec.signoff``: the same approval, recorded where
    the flags controller's gate looks for it."""
    return {"by": by[:253], "at": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "evidence": {"kind": "Manual",
                         "summary": f"sign-off of CanaryRollout {rollout} ({by})"[:4096]}}

"""A CanaryRollout's change as a whole: the registry of change kinds, and what the canary makes of them.

Each kind of change (image, FailureCatalog version, flag values) is one module behind
:class:`~rollguard.operator.changekind.ChangeKind`; :data:`KINDS` lists them. The functions here
apply every kind in turn, so the reconciler never branches on the kind. Pure functions on
Kubernetes JSON; the reconciler does the I/O.

``snapshot`` records what the change will touch (stable template, pin, flag values);
``restore`` and the kinds' ``restore`` patches put it back. That is all a rollback after
promotion needs, and it never scales or restarts anything else.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from rollguard.kube.names import CANARY_OF_LABEL, TRACK_CANARY, TRACK_LABEL, canary_name
from rollguard.kube.template import PodTemplate
from rollguard.models.canary import Change
from rollguard.operator.canary.image import IMAGE
from rollguard.operator.catalog.change import (
    CATALOG,
    CatalogVersion,
    catalog_mounted,
    catalog_pin_patch,
    catalog_restore_patch,
    resolve_catalog,
)
from rollguard.operator.changekind import ChangeKind, ObjectPatch, Snapshot, rollout_signoff
from rollguard.operator.flags.change import (
    FLAGS,
    FlagRef,
    FlagsPart,
    canary_flag_files,
    flag_applied,
    flag_env_name,
    flag_patches,
    flag_restore_patches,
    mounted_flags_environment,
    resolve_flags,
)

# The kinds' own helpers, for callers that work on one kind (the reconciler's resolve step, tests).
__all__ = [
    "KINDS",
    "CatalogVersion",
    "FlagRef",
    "Resolved",
    "canary_deployment",
    "canary_flag_files",
    "canary_labels",
    "canary_service",
    "canary_template",
    "catalog_mounted",
    "catalog_pin_patch",
    "catalog_restore_patch",
    "flag_applied",
    "flag_env_name",
    "flag_patches",
    "flag_restore_patches",
    "mounted_flags_environment",
    "promotion",
    "resolve_catalog",
    "resolve_flags",
    "restoration",
    "restore",
    "rollout_signoff",
    "snapshot",
    "stable_has_change",
    "stable_template",
]


@dataclass(frozen=True)
class Resolved:
    """The rollout's references as they are now. ``flags is None``: the FeatureFlag kind is not
    served, flags are env overrides only."""

    catalog: CatalogVersion | None = None
    flags: tuple[FlagRef, ...] | None = None
    environment: str | None = None
    flag_objects: tuple[dict[str, Any], ...] = ()  # every FeatureFlag of the namespace, as read
    problems: tuple[str, ...] = ()

    def flags_part(self, canary_config_map: str | None = None) -> FlagsPart:
        """The flags kind's part."""
        return FlagsPart(self.flags, self.environment, canary_config_map)


# Every kind, with how to find its part in a Resolved. Order: the order they edit the templates
# in, and the order a rollback restores their resources in.
KINDS: tuple[tuple[ChangeKind[Any], Callable[[Resolved], Any]], ...] = (
    (IMAGE, lambda r: None),
    (CATALOG, lambda r: r.catalog),
    (FLAGS, lambda r: r.flags_part()),
)


def canary_template(template: dict[str, Any], change: Change, resolved: Resolved,
                    flags_config_map: str | None = None) -> dict[str, Any]:
    """The canary's pod template: the target's with the whole change applied."""
    t = cast(PodTemplate, copy.deepcopy(template))
    for kind, part in KINDS:
        kind.canary_template(t, change, resolved.flags_part(flags_config_map) if kind is FLAGS else part(resolved))
    return cast(dict[str, Any], t)


def stable_template(template: dict[str, Any], change: Change, resolved: Resolved) -> dict[str, Any]:
    """The stable's pod template after promotion, for the parts the rollout writes itself: the
    image, and the flag env overrides (taken off, so the FeatureFlag decides; set, without the
    FeatureFlag kind). The catalog mount is the catalog controller's to write."""
    t = cast(PodTemplate, copy.deepcopy(template))
    for kind, part in KINDS:
        kind.stable_template(t, change, part(resolved))
    return cast(dict[str, Any], t)


def stable_has_change(template: dict[str, Any], change: Change, resolved: Resolved) -> bool:
    """Whether the stable carries the whole change already (its template, and what each kind reads)."""
    if stable_template(template, change, resolved) != template:
        return False
    t = cast(PodTemplate, template)
    return all(kind.is_applied(t, change, part(resolved)) for kind, part in KINDS)


def snapshot(template: dict[str, Any], change: Change, resolved: Resolved) -> dict[str, Any]:
    """The current values of everything ``change`` touches (a :class:`~rollguard.operator.changekind.Snapshot`)."""
    snap: Snapshot = {}
    for kind, part in KINDS:
        kind.snapshot(cast(PodTemplate, template), change, part(resolved), snap)
    return cast(dict[str, Any], snap)


def restore(template: dict[str, Any], snap: dict[str, Any]) -> dict[str, Any]:
    """The stable's pod template as the snapshot had it (env overrides, images)."""
    t = cast(PodTemplate, copy.deepcopy(template))
    for kind, _ in KINDS:
        kind.restore_template(t, cast(Snapshot, snap))
    return cast(dict[str, Any], t)


def promotion(change: Change, resolved: Resolved,
              signoff: dict[str, Any] | None) -> tuple[list[ObjectPatch], list[ObjectPatch], list[str]]:
    """What promotion writes: the resource patches before the stable's template edit, those after
    it, and the template edit in words (one note per kind that edits it)."""
    before: list[ObjectPatch] = []
    after: list[ObjectPatch] = []
    notes: list[str] = []
    for kind, part in KINDS:
        (before if kind.promote_before_template else after).extend(kind.promote(change, part(resolved), signoff))
        note = kind.template_note(change, part(resolved))
        if note:
            notes.append(note)
    return before, after, notes


def restoration(snap: dict[str, Any], resolved: Resolved) -> list[ObjectPatch]:
    """The resource patches that put back what promotion wrote (then the template is restored)."""
    return [p for kind, part in KINDS for p in kind.restore(cast(Snapshot, snap), part(resolved))]


# --------------------------------------------------------------------------- canary objects

def canary_labels(labels: dict[str, str], selector: dict[str, str]) -> dict[str, str]:
    """The canary pods' labels: the stable Service and Deployment must not select them, so each
    selector label gets a ``-canary`` suffix; the track label tells the two apart in PromQL."""
    out = {k: (canary_name(v) if k in selector else v) for k, v in labels.items()}
    out[TRACK_LABEL] = TRACK_CANARY
    return out


def canary_deployment(target: dict[str, Any], change: Change, name: str, owner: dict[str, Any] | None,
                      resolved: Resolved | None = None, flags_config_map: str | None = None) -> dict[str, Any]:
    """The canary Deployment: the target's pod template with the change applied, its own selector."""
    spec = target.get("spec", {})
    selector = dict(spec.get("selector", {}).get("matchLabels") or {})
    template = canary_template(spec.get("template", {}), change, resolved or Resolved(), flags_config_map)
    meta = template.setdefault("metadata", {})
    meta["labels"] = canary_labels(meta.get("labels") or {}, selector)
    meta.setdefault("annotations", {})[CANARY_OF_LABEL] = target["metadata"]["name"]
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": target["metadata"].get("namespace"),
                     "labels": {TRACK_LABEL: TRACK_CANARY, CANARY_OF_LABEL: target["metadata"]["name"]}},
        "spec": {"replicas": spec.get("replicas", 1),
                 "selector": {"matchLabels": canary_labels(selector, selector)},
                 "template": template},
    }
    if owner:
        obj["metadata"]["ownerReferences"] = [owner]
    return obj


def canary_service(stable: dict[str, Any], name: str, selector: dict[str, str],
                   owner: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": stable["metadata"].get("namespace"),
                     "labels": {TRACK_LABEL: TRACK_CANARY}},
        "spec": {"selector": canary_labels(stable.get("spec", {}).get("selector") or {}, selector),
                 "ports": [{k: v for k, v in p.items() if k != "nodePort"}
                           for p in stable.get("spec", {}).get("ports", [])]},
    }
    if owner:
        obj["metadata"]["ownerReferences"] = [owner]
    return obj

"""The catalog change kind: a FailureCatalog version, tried on the canary, promoted through the pin.

The canary mounts the requested version (its ConfigMap from the catalog's ``status.history``).
Promotion goes through the FailureCatalog: ``spec.pinnedHash`` is set to the promoted version
(or cleared when that is the spec's own content), and the catalog controller, the one writer of
the stable's catalog mount, mounts it everywhere. A rollback after promotion puts the pin back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from rollguard.kube.names import CATALOG_HASH_ANNOTATION, CATALOG_NAME_ANNOTATION, CATALOG_VOLUME
from rollguard.kube.template import PodTemplate, set_config_map_volume, volume
from rollguard.models.canary import Change
from rollguard.operator.changekind import ObjectPatch, Snapshot

CATALOG_MIN_PREFIX = 10  # a shorter prefix of a content hash is too likely to name two versions
PLURAL = "failurecatalogs"


@dataclass(frozen=True)
class CatalogVersion:
    """The FailureCatalog version a catalog change names, resolved against the catalog's history."""

    catalog: str
    hash: str  # the full content hash
    config_map: str
    spec_hash: str | None = None  # status.contentHash: the version the spec's content renders
    pinned: str | None = None  # spec.pinnedHash as it is now

    @property
    def short(self) -> str:
        """The 10-character form the pod-template annotation and ConfigMap names carry."""
        return self.hash[:10]

    def wanted_pin(self) -> str | None:
        """The pin that makes the catalog controller mount this version: none when it is the spec's own."""
        return None if self.hash == self.spec_hash else self.hash


def resolve_catalog(change: Change, catalog: dict[str, Any] | None, target_template: dict[str, Any],
                    namespace: str, target: str) -> CatalogVersion | str:
    """The requested version, or the precondition problem (naming the field).
    ``target_template`` is the target's pod template (a :class:`~rollguard.kube.template.PodTemplate`)."""
    assert change.catalog is not None
    name, want = change.catalog.name, change.catalog.hash
    if catalog is None:
        return f"change.catalog.name: FailureCatalog {name} not found in {namespace}"
    status = catalog.get("status") or {}
    history = [h for h in status.get("history") or [] if h.get("hash") and h.get("configMapName")]
    found = [h for h in history if h["hash"] == want]
    if not found and len(want) >= CATALOG_MIN_PREFIX:
        found = [h for h in history if h["hash"].startswith(want)]
    known = ", ".join(h["hash"][:10] for h in history) or "none yet"
    if len(want) < CATALOG_MIN_PREFIX and not found:
        return (f"change.catalog.hash: {want} is too short; give the full content hash or a prefix of at least "
                f"{CATALOG_MIN_PREFIX} characters (FailureCatalog {name} versions: {known})")
    if len(found) != 1:
        what = "matches several versions" if found else "is not a version"
        return f"change.catalog.hash: {want} {what} in FailureCatalog {name} status.history (known: {known})"
    ann = (target_template.get("metadata") or {}).get("annotations") or {}
    if ann.get(CATALOG_NAME_ANNOTATION) != name or volume(cast(PodTemplate, target_template), CATALOG_VOLUME) is None:
        return (f"change.catalog.name: Deployment {target} does not mount FailureCatalog {name}; "
                f"make it one of the catalog's spec.targets first")
    h = found[0]
    return CatalogVersion(catalog=name, hash=h["hash"], config_map=h["configMapName"],
                          spec_hash=status.get("contentHash"), pinned=(catalog.get("spec") or {}).get("pinnedHash"))


def catalog_mounted(template: PodTemplate, cv: CatalogVersion) -> bool:
    """Whether ``template`` mounts version ``cv`` (annotation and volume both say so)."""
    ann = (template.get("metadata") or {}).get("annotations") or {}
    v = volume(template, CATALOG_VOLUME) or {}
    return ann.get(CATALOG_HASH_ANNOTATION) == cv.short and (v.get("configMap") or {}).get("name") == cv.config_map


def catalog_pin_patch(cv: CatalogVersion) -> dict[str, Any] | None:
    """The merge patch that makes the catalog controller mount ``cv`` everywhere; None: nothing to do."""
    want = cv.wanted_pin()
    if want is None and not cv.pinned:
        return None
    if want is not None and cv.pinned and want.startswith(cv.pinned) and len(cv.pinned) >= CATALOG_MIN_PREFIX:
        return None  # pinned already, by a prefix
    return {"spec": {"pinnedHash": want}}


def catalog_restore_patch(snap: Snapshot | dict[str, Any],
                          cv: CatalogVersion | None) -> tuple[str, dict[str, Any]] | None:
    """(catalog, merge patch) that puts the pin back as the snapshot had it; None: it is so already."""
    pin = cast(Snapshot, snap).get("catalogPin")
    if not pin:
        return None
    before = pin.get("pinnedHash")
    if cv is not None and cv.catalog == pin["name"] and (cv.pinned or None) == before:
        return None
    return pin["name"], {"spec": {"pinnedHash": before}}


class CatalogKind:
    """:class:`~rollguard.operator.changekind.ChangeKind` for ``change.catalog``; its part is the
    resolved :class:`CatalogVersion` (None while it does not resolve)."""

    name = "catalog"
    promote_before_template = False  # the pin last: the stable's own edits are in place first

    def wanted(self, change: Change) -> bool:
        return change.catalog is not None

    def canary_template(self, template: PodTemplate, change: Change, part: CatalogVersion | None) -> None:
        if change.catalog is None or part is None:
            return
        set_config_map_volume(template, CATALOG_VOLUME, part.config_map, None)
        ann = template.setdefault("metadata", {}).setdefault("annotations", {})
        ann[CATALOG_NAME_ANNOTATION], ann[CATALOG_HASH_ANNOTATION] = part.catalog, part.short

    def stable_template(self, template: PodTemplate, change: Change, part: CatalogVersion | None) -> None:
        pass  # the stable's catalog mount is the catalog controller's to write

    def is_applied(self, template: PodTemplate, change: Change, part: CatalogVersion | None) -> bool:
        return change.catalog is None or (part is not None and catalog_mounted(template, part))

    def snapshot(self, template: PodTemplate, change: Change, part: CatalogVersion | None, snap: Snapshot) -> None:
        if part is not None:
            snap["catalogPin"] = {"name": part.catalog, **({"pinnedHash": part.pinned} if part.pinned else {})}

    def restore_template(self, template: PodTemplate, snap: Snapshot) -> None:
        if snap.get("annotations") or snap.get("annotationsAbsent"):  # snapshots of older rollouts
            ann = template.setdefault("metadata", {}).setdefault("annotations", {})
            ann.update(snap.get("annotations") or {})
            for key in snap.get("annotationsAbsent") or []:
                ann.pop(key, None)

    def promote(self, change: Change, part: CatalogVersion | None, signoff: dict[str, Any] | None) -> list[ObjectPatch]:
        if part is None:
            return []
        pin = catalog_pin_patch(part)
        if pin is None:
            return []
        was = f"was {part.pinned}" if part.pinned else "was unpinned"
        if pin["spec"]["pinnedHash"]:
            message = f"FailureCatalog {part.catalog}: spec.pinnedHash = {part.hash} ({was})"
        else:
            message = (f"FailureCatalog {part.catalog}: spec.pinnedHash cleared, {part.short} is the "
                       f"spec's own content ({was})")
        return [ObjectPatch(PLURAL, part.catalog, pin, message)]

    def restore(self, snap: Snapshot, part: CatalogVersion | None) -> list[ObjectPatch]:
        pin = catalog_restore_patch(snap, part)
        if pin is None:
            return []
        before = pin[1]["spec"]["pinnedHash"]
        return [ObjectPatch(PLURAL, pin[0], pin[1], f"restored FailureCatalog {pin[0]}: "
                            + (f"spec.pinnedHash = {before}" if before else "spec.pinnedHash removed"))]

    def template_note(self, change: Change, part: CatalogVersion | None) -> str | None:
        return None


CATALOG = CatalogKind()

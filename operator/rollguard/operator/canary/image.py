"""The image change kind: the image of one container of the target Deployment.

The canary runs the new image; promotion writes it into the stable's pod template (the one
thing the rollout itself writes there); a rollback after promotion writes the old one back.
"""

from __future__ import annotations

from typing import Any

from rollguard.kube.template import PodTemplate, containers
from rollguard.models.canary import Change
from rollguard.operator.changekind import ObjectPatch, Snapshot


class ImageKind:
    """:class:`~rollguard.operator.changekind.ChangeKind` for ``change.image``; it resolves nothing."""

    name = "image"
    promote_before_template = False

    def wanted(self, change: Change) -> bool:
        return change.image is not None

    def canary_template(self, template: PodTemplate, change: Change, part: None) -> None:
        set_image(template, change)

    def stable_template(self, template: PodTemplate, change: Change, part: None) -> None:
        set_image(template, change)

    def is_applied(self, template: PodTemplate, change: Change, part: None) -> bool:
        return True  # the image is in the template: the template comparison decides

    def snapshot(self, template: PodTemplate, change: Change, part: None, snap: Snapshot) -> None:
        if change.image is not None:
            snap["images"] = {c.get("name", ""): c.get("image") for c  # type: ignore[misc]
                              in (template.get("spec") or {}).get("containers", [])
                              if c.get("name") == change.image.container}

    def restore_template(self, template: PodTemplate, snap: Snapshot) -> None:
        images = snap.get("images", {})
        for c in containers(template):
            if c.get("name", "") in images:
                c["image"] = images[c.get("name", "")]

    def promote(self, change: Change, part: None, signoff: dict[str, Any] | None) -> list[ObjectPatch]:
        return []

    def restore(self, snap: Snapshot, part: None) -> list[ObjectPatch]:
        return []

    def template_note(self, change: Change, part: None) -> str | None:
        return f"image {change.image.image}" if change.image is not None else None


def set_image(template: PodTemplate, change: Change) -> None:
    """The named container's image; ValueError (naming the field) when there is no such container."""
    if change.image is None:
        return
    found = False
    for c in containers(template):
        if c.get("name") == change.image.container:
            c["image"], found = change.image.image, True
    if not found:
        raise ValueError(f"change.image.container: no container named {change.image.container!r} in the target")


IMAGE = ImageKind()

"""FailureCatalog handlers."""

from __future__ import annotations

from typing import Any

import kopf

from rollguard import GROUP, VERSION


@kopf.on.resume(GROUP, VERSION, "failurecatalogs")
@kopf.on.create(GROUP, VERSION, "failurecatalogs")
@kopf.on.update(GROUP, VERSION, "failurecatalogs")
def reconcile(meta: kopf.Meta, patch: kopf.Patch, **_: Any) -> None:
    patch.status["observedGeneration"] = meta.get("generation")

"""A catalog's content hash and the catalog.json document mounted into backend pods."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rollguard.kube.names import CATALOG_FILE as FILE_NAME
from rollguard.kube.names import CATALOG_MOUNT_DIR as MOUNT_DIR
from rollguard.kube.names import CATALOG_MOUNT_PATH as MOUNT_PATH
from rollguard.models.catalog import FailureCatalogSpec

__all__ = ["FILE_NAME", "MOUNT_DIR", "MOUNT_PATH", "config_map_name", "content", "content_hash", "render_document",
           "short_hash"]


def content(spec: FailureCatalogSpec) -> dict[str, Any]:
    """What a version consists of: the label and the entries (targets and history settings
    do not change what backends read, so they do not change the hash)."""
    return {"version": spec.version,
            "entries": [e.model_dump(by_alias=True, exclude_none=True, mode="json") for e in spec.entries]}


def content_hash(spec: FailureCatalogSpec) -> str:
    canonical = json.dumps(content(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def short_hash(full: str) -> str:
    return full[:10]


def config_map_name(catalog_name: str, full_hash: str) -> str:
    return f"{catalog_name}-{short_hash(full_hash)}"


def render_document(name: str, spec: FailureCatalogSpec) -> str:
    """catalog.json: the version, its hash and the entries (sorted keys: byte-stable)."""
    doc = {"kind": "FailureCatalog", "name": name, "contentHash": content_hash(spec), **content(spec)}
    return json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False) + "\n"

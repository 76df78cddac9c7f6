"""The failure catalog: the default catalog shipped with rollguard, the enum of its codes,
validation, content hashing and rendering.

    from rollguard.catalog import load_default_catalog, validate, ErrorCode
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rollguard.catalog.codes import ErrorCode
from rollguard.catalog.render import MOUNT_DIR, MOUNT_PATH, config_map_name, content_hash, render_document
from rollguard.catalog.validation import spec_of, validate
from rollguard.models.catalog import FailureCatalogSpec

DEFAULT_CATALOG_FILE = "default_catalog.yaml"
DEFAULT_NAME = "default"


@functools.cache
def _default_raw() -> str:
    return resources.files(__package__).joinpath(DEFAULT_CATALOG_FILE).read_text(encoding="utf-8")


def load_default_catalog() -> FailureCatalogSpec:
    """The catalog shipped with rollguard (63 codes), as a validated spec (a fresh copy)."""
    return FailureCatalogSpec.model_validate(yaml.safe_load(_default_raw()))


def read_document(path: str | Path) -> dict[str, Any]:
    """A catalog file: a FailureCatalog manifest (YAML/JSON), a bare spec, or a mounted catalog.json."""
    text = Path(path).read_text(encoding="utf-8")
    doc = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping (a FailureCatalog manifest or spec), got {type(doc).__name__}")
    return doc


def load_catalog_file(path: str | Path) -> FailureCatalogSpec:
    return FailureCatalogSpec.model_validate(spec_of(read_document(path)))


def default_manifest(name: str = DEFAULT_NAME, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    spec = load_default_catalog().model_dump(by_alias=True, exclude_none=True, mode="json")
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "FailureCatalog", "metadata": meta, "spec": spec}


__all__ = [
    "MOUNT_DIR", "MOUNT_PATH", "ErrorCode", "config_map_name", "content_hash", "default_manifest",
    "load_catalog_file", "load_default_catalog", "read_document", "render_document", "spec_of", "validate",
]

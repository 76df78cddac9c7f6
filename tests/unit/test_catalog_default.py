"""The shipped default catalog: 63 codes aligned with the ErrorCode enum, valid, complete."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import yaml

from rollguard.catalog import ErrorCode, content_hash, default_manifest, load_default_catalog, validate
from rollguard.models.catalog import CATEGORIES

CRD = Path(__file__).resolve().parents[2] / "crds" / "failurecatalogs.rollguard.io.yaml"


def test_catalog_codes_equal_enum_codes() -> None:
    # every code the SDK can report (the enum) has a catalog entry, and every entry a code
    catalog_codes = {e.code for e in load_default_catalog().entries}
    enum_codes = {c.value for c in ErrorCode}
    assert catalog_codes == enum_codes, (f"missing in catalog: {sorted(enum_codes - catalog_codes)}; "
                                         f"missing in enum: {sorted(catalog_codes - enum_codes)}")


def test_default_catalog_has_63_unique_codes_over_every_category() -> None:
    spec = load_default_catalog()
    codes = [e.code for e in spec.entries]
    assert len(codes) == 63 and len(set(codes)) == 63
    per_category = collections.Counter(e.category for e in spec.entries)
    assert set(per_category) == set(CATEGORIES)


def test_default_catalog_is_valid() -> None:
    assert validate(load_default_catalog()) == []


def test_every_entry_has_recovery_guidance_and_a_way_to_be_recognised() -> None:
    for e in load_default_catalog().entries:
        assert len(e.recovery.suggestion) > 20, e.code
        assert e.description, e.code
        if e.code != "UNKNOWN_ERROR":  # reported when nothing matches; no message is "unknown"
            assert e.match.patterns, e.code


def test_content_hash_is_stable_and_changes_with_content() -> None:
    a, b = load_default_catalog(), load_default_catalog()
    assert content_hash(a) == content_hash(b)
    b.entries[0].recovery.suggestion += " (edited)"
    assert content_hash(a) != content_hash(b)
    c = load_default_catalog()
    c.history_limit = 9  # not content: what backends read does not change
    assert content_hash(c) == content_hash(a)


def _strip_k8s(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_k8s(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if isinstance(node, list):
        return [_strip_k8s(v) for v in node]
    return node


def test_default_manifest_fits_the_crd_schema() -> None:
    crd = yaml.safe_load(CRD.read_text())
    schema = _strip_k8s(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    manifest = default_manifest(namespace="prod")
    jsonschema.validate(manifest, schema)
    manifest["spec"]["entries"][0]["category"] = "NETWORKING"
    try:
        jsonschema.validate(manifest, schema)
    except jsonschema.ValidationError as e:
        assert "NETWORKING" in str(e.message)
    else:
        raise AssertionError("an unknown category fitted the schema")

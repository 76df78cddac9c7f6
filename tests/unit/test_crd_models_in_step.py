"""The CRDs in crds/ and the pydantic models in rollguard.models describe the same objects."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollguard import GROUP, VERSION
from rollguard.models.schema_compare import compare

CRDS = Path(__file__).resolve().parents[2] / "crds"

# kind -> (CRD file, models module)
KINDS = {
    "FailureCatalog": ("failurecatalogs.rollguard.io.yaml", "rollguard.models.catalog"),
    "FeatureFlag": ("featureflags.rollguard.io.yaml", "rollguard.models.flag"),
    "CanaryRollout": ("canaryrollouts.rollguard.io.yaml", "rollguard.models.canary"),
}


def _crd_schema(filename: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / filename).read_text())
    assert crd["spec"]["group"] == GROUP
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == VERSION]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("part", ["spec", "status"])
def test_model_matches_crd(kind: str, part: str) -> None:
    filename, module = KINDS[kind]
    crd = _crd_schema(filename)
    model = getattr(importlib.import_module(module), f"{kind}{part.capitalize()}")
    problems = compare(crd["properties"][part], model.model_json_schema(by_alias=True, mode="validation"),
                       path=f"{kind}.{part}")
    assert not problems, "CRD and model differ:\n" + "\n".join(problems)


def test_compare_reports_drift() -> None:
    """The comparison itself notices a renamed field, a new required field and an enum change."""
    crd = {"type": "object", "required": ["a"], "properties": {
        "a": {"type": "string", "enum": ["x", "y"]}, "b": {"type": "integer"}}}
    model = {"type": "object", "required": ["a", "c"], "properties": {
        "a": {"type": "string", "enum": ["x"]}, "c": {"type": "integer"}}}
    problems = "\n".join(compare(crd, model))
    assert ".b: in the CRD, not in the model" in problems
    assert ".c: in the model, not in the CRD" in problems
    assert "required differs" in problems
    assert "enum differs" in problems


def test_every_crd_is_structural_with_status_and_columns() -> None:
    for filename, _ in KINDS.values():
        crd = yaml.safe_load((CRDS / filename).read_text())
        names = crd["spec"]["names"]
        assert names.get("shortNames"), f"{filename}: no shortNames"
        (version,) = crd["spec"]["versions"]
        assert version["subresources"].get("status") == {}, f"{filename}: no status subresource"
        assert version.get("additionalPrinterColumns"), f"{filename}: no printer columns"
        root = version["schema"]["openAPIV3Schema"]
        assert root["type"] == "object" and {"spec", "status"} <= set(root["properties"])

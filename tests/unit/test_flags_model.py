"""The FeatureFlag model and the CRD schema say the same thing; the model repeats the CRD's CEL rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rollguard.models.flag import FeatureFlag, FeatureFlagSpec, FeatureFlagStatus

CRD = Path(__file__).resolve().parents[2] / "crds" / "featureflags.rollguard.io.yaml"


def crd_schema() -> dict[str, Any]:
    doc = yaml.safe_load(CRD.read_text())
    version = doc["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref and unwrap Optional (anyOf [X, null]) in a pydantic JSON schema."""
    if "$ref" in node:
        return resolve(defs[node["$ref"].split("/")[-1]], defs)
    if "anyOf" in node:
        non_null = [n for n in node["anyOf"] if n.get("type") != "null"]
        assert len(non_null) == 1, node
        return resolve(non_null[0], defs)
    return node


def compare(model: dict[str, Any], crd: dict[str, Any], defs: dict[str, Any], path: str) -> None:
    model = resolve(model, defs)
    assert model.get("type") == crd.get("type"), f"{path}: type {model.get('type')} != {crd.get('type')}"
    if "enum" in crd or "enum" in model:
        assert sorted(model.get("enum", [model.get("const")])) == sorted(crd["enum"]), path
    if crd.get("type") == "object" and "properties" in crd:
        assert set(model["properties"]) == set(crd["properties"]), f"{path}: properties differ"
        assert set(model.get("required", [])) == set(crd.get("required", [])), f"{path}: required differ"
        for name, sub in crd["properties"].items():
            compare(model["properties"][name], sub, defs, f"{path}.{name}")
    elif crd.get("type") == "object" and "additionalProperties" in crd:
        compare(model["additionalProperties"], crd["additionalProperties"], defs, f"{path}[*]")
    elif crd.get("type") == "array":
        compare(model["items"], crd["items"], defs, f"{path}[]")


@pytest.mark.parametrize(("model", "part"), [(FeatureFlagSpec, "spec"), (FeatureFlagStatus, "status")])
def test_model_and_crd_schema_agree(model: type[FeatureFlagSpec | FeatureFlagStatus], part: str) -> None:
    schema = model.model_json_schema(by_alias=True)
    compare(schema, crd_schema()["properties"][part], schema.get("$defs", {}), part)


def spec(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"owner": "platform", "defaultValue": False}
    base.update(over)
    return base


def test_minimal_flag_gets_the_crd_defaults() -> None:
    s = FeatureFlagSpec.model_validate(spec())
    assert s.type == "boolean" and s.requires_signoff is False
    flag = FeatureFlag.model_validate({"metadata": {"name": "new-checkout"}, "spec": spec()})
    assert flag.key == "new-checkout"
    assert flag.to_k8s()["apiVersion"] == "rollguard.io/v1alpha1"


@pytest.mark.parametrize(("over", "message"), [
    ({"environments": {"Prod": True}}, "spec.environments keys must be DNS labels"),
    ({"signoff": {"by": "a", "at": "2026-01-02T00:00:00Z", "expiresAt": "2026-01-01T00:00:00Z",
                  "evidence": {"kind": "Manual"}}}, "spec.signoff.expiresAt must be after spec.signoff.at"),
    ({"signoff": {"by": "a", "at": "2026-01-02T00:00:00Z", "evidence": {"kind": "ShadowRun"}}},
     "spec.signoff.evidence.mismatches is required for a ShadowRun"),
    ({"targets": [{"environment": "staging"}]}, "spec.targets[] needs deployments or selector"),
    ({"envVar": "lower"}, "String should match pattern"),
    ({"enabled": True}, "Extra inputs are not permitted"),
])
def test_model_refuses_what_the_crd_refuses(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FeatureFlagSpec.model_validate(spec(**over))


def test_signoff_round_trips_in_camel_case() -> None:
    raw = spec(requiresSignoff=True, signoff={
        "by": "sre", "at": "2026-11-01T10:00:00Z", "expiresAt": "2026-11-02T10:00:00Z",
        "evidence": {"kind": "ShadowRun", "mismatches": 0, "reportRef": "r.json"}})
    s = FeatureFlagSpec.model_validate(raw)
    assert s.signoff is not None and s.signoff.expires_at == dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
    assert s.model_dump(by_alias=True)["signoff"]["evidence"]["reportRef"] == "r.json"

"""The CanaryRollout model, its CRD (generated from it) and the shipped configs agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from rollguard.models.canary import CanaryRollout, CanaryRolloutSpec, parse_duration
from rollguard.operator.canary import crd as crdgen

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "canaryrollouts.rollguard.io.yaml"


def test_committed_crd_is_generated_from_the_model() -> None:
    assert CRD_FILE.read_text() == crdgen.render(), (
        "crds/canaryrollouts.rollguard.io.yaml is stale: "
        "python -m rollguard.operator.canary.crd > crds/canaryrollouts.rollguard.io.yaml")


def _spec_schema() -> dict[str, Any]:
    doc = yaml.safe_load(CRD_FILE.read_text())
    s: dict[str, Any] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return s


def test_crd_has_the_cross_field_rules() -> None:
    spec = _spec_schema()
    steps_rules = [r["message"] for r in spec["properties"]["steps"]["x-kubernetes-validations"]]
    assert any("strictly rise" in m for m in steps_rules)
    assert any("last setWeight must be 100" in m for m in steps_rules)
    rule = spec["properties"]["analysis"]["properties"]["metrics"]["items"]["properties"]["rule"]
    assert "exactly one of" in rule["x-kubernetes-validations"][0]["message"]
    assert set(spec["required"]) == {"targetRef", "change", "traffic", "steps", "analysis"}


@pytest.mark.parametrize("path", sorted((REPO / "canary-configs").glob("*.yaml")), ids=lambda p: p.name)
def test_configs_parse(path: Path) -> None:
    CanaryRollout.model_validate(yaml.safe_load(path.read_text()))


def _spec(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "targetRef": {"name": "web"},
        "change": {"image": {"container": "web", "image": "web:2"}},
        "traffic": {"provider": "nginx", "ingress": {"name": "web"}},
        "steps": [{"setWeight": 10}, {"setWeight": 100}],
        "analysis": {"prometheus": {"address": "http://p:9090"},
                     "metrics": [{"name": "m", "query": "q", "rule": {"max": 1}}]},
    }
    spec.update(over)
    return spec


@pytest.mark.parametrize(("over", "message"), [
    ({"steps": [{"setWeight": 50}, {"setWeight": 20}, {"setWeight": 100}]}, "strictly rise"),
    ({"steps": [{"setWeight": 10}, {"setWeight": 10}, {"setWeight": 100}]}, "strictly rise"),
    ({"steps": [{"setWeight": 10}]}, "last setWeight must be 100"),
    ({"change": {}}, "at least one of flags, catalog, image"),
    ({"traffic": {"provider": "gateway-api"}}, "traffic.httpRoute is required"),
    ({"steps": [{"pause": {}}, {"setWeight": 100}]}, "exactly one of duration, untilResumed"),
])
def test_model_refuses_what_the_crd_refuses(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CanaryRolloutSpec.model_validate(_spec(**over))


def test_two_rules_refused() -> None:
    bad = _spec()
    bad["analysis"]["metrics"][0]["rule"] = {"max": 1, "min": 0}
    with pytest.raises(ValidationError, match="exactly one of maxIncrease"):
        CanaryRolloutSpec.model_validate(bad)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("soon")

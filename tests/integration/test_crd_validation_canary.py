"""The real kube-apiserver refuses malformed CanaryRollouts, naming the field and the reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kube import Kubectl

pytestmark = pytest.mark.integration

CONFIGS = Path(__file__).resolve().parents[2] / "canary-configs"


def base() -> dict[str, Any]:
    return {
        "apiVersion": "rollguard.io/v1alpha1",
        "kind": "CanaryRollout",
        "metadata": {"name": "bad"},
        "spec": {
            "targetRef": {"name": "web"},
            "change": {"image": {"container": "web", "image": "web:2"}},
            "traffic": {"provider": "nginx", "ingress": {"name": "web"}},
            "steps": [{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"setWeight": 100}],
            "analysis": {
                "prometheus": {"address": "http://prometheus:9090"},
                "metrics": [{"name": "error-rate", "query": "sum(x)", "rule": {"maxDeltaPercent": 50}}],
            },
        },
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        keys = path.split(".")
        node: Any = obj
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


_DELETE = object()

CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("wrong type", _set("spec.steps.0.setWeight", "ten"), ["spec.steps[0].setWeight", "integer"]),
    ("missing target", _set("spec.targetRef", _DELETE), ["spec.targetRef", "Required"]),
    ("missing target name", _set("spec.targetRef.name", _DELETE), ["spec.targetRef.name", "Required"]),
    ("provider enum", _set("spec.traffic.provider", "istio"), ["spec.traffic.provider", "Unsupported value"]),
    ("weight range", _set("spec.steps.0.setWeight", 150), ["spec.steps[0].setWeight", "less than or equal to 100"]),
    ("weights not rising", _set("spec.steps", [{"setWeight": 50}, {"setWeight": 20}, {"setWeight": 100}]),
     ["spec.steps", "strictly rise"]),
    ("last weight not 100", _set("spec.steps", [{"setWeight": 10}, {"setWeight": 50}]),
     ["spec.steps", "last setWeight must be 100"]),
    ("two rules", _set("spec.analysis.metrics.0.rule", {"maxDeltaPercent": 50, "maxDeltaMs": 500}),
     ["spec.analysis.metrics[0].rule", "exactly one of"]),
    ("no rule", _set("spec.analysis.metrics.0.rule", {}), ["spec.analysis.metrics[0].rule", "exactly one of"]),
    ("no change", _set("spec.change", {}), ["spec.change", "at least one of flags, catalog, image"]),
    ("step with both", _set("spec.steps.0", {"setWeight": 10, "pause": {"duration": "1m"}}),
     ["spec.steps[0]", "exactly one of setWeight, pause"]),
    ("pause with neither", _set("spec.steps.1.pause", {}), ["spec.steps[1].pause", "exactly one of duration"]),
    ("bad duration", _set("spec.steps.1.pause", {"duration": "soon"}), ["spec.steps[1].pause.duration"]),
    ("gateway without route", _set("spec.traffic.provider", "gateway-api"),
     ["spec.traffic.httpRoute", "required when traffic.provider is gateway-api"]),
    ("profile enum", _set("spec.analysis.profile", "yolo"), ["spec.analysis.profile", "Unsupported value"]),
    ("fromProfile without profile", _set("spec.analysis.metrics.0.rule", {"fromProfile": "errorRate"}),
     ["spec.analysis.profile", "required when a metric rule uses fromProfile"]),
    ("onUnavailable enum", _set("spec.analysis.onUnavailable", "ignore"),
     ["spec.analysis.onUnavailable", "Unsupported value"]),
    ("negative failure limit", _set("spec.analysis.metrics.0.failureLimit", -1),
     ["spec.analysis.metrics[0].failureLimit", "greater than or equal to 0"]),
    ("no metrics", _set("spec.analysis.metrics", []), ["spec.analysis.metrics", "at least 1"]),
    ("duplicate metric", _set("spec.analysis.metrics.1",
                               {"name": "error-rate", "query": "sum(y)", "rule": {"max": 1}}),
     ["spec.analysis.metrics[1]", "Duplicate value"]),
    ("smoke with both", _set("spec.smoke", {"http": {"url": "http://x/"}, "job": {"template": {}}}),
     ["spec.smoke", "exactly one of job, http"]),
    ("unknown field", _set("spec.canaryWeight", 10), ["spec.canaryWeight", "unknown field"]),
    ("flag value type", _set("spec.change", {"flags": {"environment": "staging", "values": {"x": "yes"}}}),
     ["spec.change.flags.values.x", "boolean"]),
]


def _append_metric(obj: dict[str, Any]) -> None:
    obj["spec"]["analysis"]["metrics"].append({})


@pytest.mark.parametrize(("label", "mutate", "expected"), CASES, ids=[c[0] for c in CASES])
def test_apiserver_refuses(kubectl: Kubectl, namespace: str, label: str,
                           mutate: Callable[[dict[str, Any]], None], expected: list[str]) -> None:
    obj = copy.deepcopy(base())
    if label == "duplicate metric":
        _append_metric(obj)
    mutate(obj)
    proc = kubectl("apply", "--validate=strict", "-f", "-", input=yaml.safe_dump(obj), namespace=namespace,
                   check=False)
    assert proc.returncode != 0, f"{label}: the apiserver accepted it"
    for text in expected:
        assert text in proc.stderr, f"{label}: {text!r} not in:\n{proc.stderr}"


def test_valid_base_is_accepted_and_defaulted(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(base(), namespace=namespace)
    got = kubectl.get_json("canaryrollout", "bad", namespace=namespace)
    assert got["spec"]["analysis"]["interval"] == "30s"
    assert got["spec"]["analysis"]["onUnavailable"] == "continue"
    assert got["spec"]["analysis"]["metrics"][0]["failureLimit"] == 1
    assert got["spec"]["progressDeadlineSeconds"] == 600


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_canary_configs_are_accepted(kubectl: Kubectl, namespace: str, path: Path) -> None:
    kubectl("apply", "-f", str(path), namespace=namespace)
    name = yaml.safe_load(path.read_text())["metadata"]["name"]
    got = kubectl.get_json("canaryrollout", name, namespace=namespace)
    assert got["spec"]["steps"][-1] == {"setWeight": 100} or any(
        s.get("setWeight") == 100 for s in got["spec"]["steps"])

"""Render crds/canaryrollouts.rollguard.io.yaml from the pydantic model plus the CEL rules.

The model is the single source of the field list; this module adds what only the apiserver
enforces (CEL cross-field rules, list map keys, printer columns). Regenerate with
``python -m rollguard.operator.canary.crd > crds/canaryrollouts.rollguard.io.yaml``; a unit test
fails when the committed file is stale.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from rollguard import GROUP, VERSION
from rollguard.models.canary import KIND, PLURAL, CanaryRolloutSpec, CanaryRolloutStatus

_KEEP = ("type", "format", "enum", "pattern", "minLength", "maxLength", "minimum", "maximum",
         "minItems", "maxItems", "minProperties", "maxProperties", "description")

_RULE_FIELDS = ("maxIncrease", "maxDeltaPercent", "maxDeltaMs", "max", "min", "fromProfile")

# path (dotted, `[]` for list items) -> CEL rules
CEL: dict[str, list[dict[str, str]]] = {
    "spec.change": [{
        "rule": "has(self.flags) || has(self.catalog) || has(self.image)",
        "message": "change: at least one of flags, catalog, image is required",
        "reason": "FieldValueRequired",
    }],
    "spec.traffic": [
        {"rule": "self.provider != 'nginx' || has(self.ingress)",
         "message": "traffic.ingress is required when traffic.provider is nginx",
         "fieldPath": ".ingress", "reason": "FieldValueRequired"},
        {"rule": "self.provider != 'gateway-api' || has(self.httpRoute)",
         "message": "traffic.httpRoute is required when traffic.provider is gateway-api",
         "fieldPath": ".httpRoute", "reason": "FieldValueRequired"},
    ],
    "spec.steps": [
        {"rule": "self.exists(s, has(s.setWeight)) && "
                 "self.filter(s, has(s.setWeight))[self.filter(s, has(s.setWeight)).size() - 1].setWeight == 100",
         "message": "steps: the last setWeight must be 100"},
        {"rule": "self.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted() && "
                 "self.filter(s, has(s.setWeight)).map(s, s.setWeight).all(w, "
                 "self.filter(s, has(s.setWeight) && s.setWeight == w).size() == 1)",
         "message": "steps: setWeight values must strictly rise"},
    ],
    "spec.steps[]": [{
        "rule": "has(self.setWeight) != has(self.pause)",
        "message": "steps[]: exactly one of setWeight, pause is required",
    }],
    "spec.steps[].pause": [
        {"rule": "has(self.duration) != has(self.untilResumed)",
         "message": "steps[].pause: exactly one of duration, untilResumed is required"},
        {"rule": "!has(self.untilResumed) || self.untilResumed",
         "message": "steps[].pause.untilResumed must be true when set", "fieldPath": ".untilResumed"},
    ],
    "spec.analysis": [{
        "rule": "has(self.profile) || !self.metrics.exists(m, has(m.rule.fromProfile))",
        "message": "analysis.profile is required when a metric rule uses fromProfile",
        "fieldPath": ".profile", "reason": "FieldValueRequired",
    }],
    "spec.analysis.metrics[].rule": [{
        "rule": "[" + ", ".join(f"has(self.{f})" for f in _RULE_FIELDS) + "].filter(x, x).size() == 1",
        "message": "rule: exactly one of " + ", ".join(_RULE_FIELDS) + " is required",
    }],
    "spec.smoke": [{
        "rule": "has(self.job) != has(self.http)",
        "message": "smoke: exactly one of job, http is required",
    }],
}

# lists whose items are identified by a key: the apiserver refuses duplicates
LIST_MAP_KEYS: dict[str, str] = {"spec.analysis.metrics": "name", "status.metrics": "name"}


def _convert(node: dict[str, Any], defs: dict[str, Any], path: str, with_defaults: bool) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs, path, with_defaults)
    if "anyOf" in node:  # Optional[X]: X, not required
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        assert len(options) == 1, f"{path}: unions other than Optional are not representable"
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        return _convert({**options[0], **rest}, defs, path, with_defaults)
    if "const" in node:
        node = {**node, "enum": [node["const"]]}
    out: dict[str, Any] = {k: node[k] for k in _KEEP if k in node}
    if node.get("format") == "date-time":
        out["format"] = "date-time"
    if with_defaults and node.get("default") is not None:
        out["default"] = node["default"]
    t = node.get("type")
    if t == "object":
        props = node.get("properties")
        if props is not None:
            out["properties"] = {k: _convert(v, defs, f"{path}.{k}", with_defaults) for k, v in props.items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        else:
            extra = node.get("additionalProperties", True)
            if extra is True or extra == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            else:
                out["additionalProperties"] = _convert(extra, defs, f"{path}{{}}", with_defaults)
    elif t == "array":
        out["items"] = _convert(node["items"], defs, f"{path}[]", with_defaults)
        if path in LIST_MAP_KEYS:
            out["x-kubernetes-list-type"] = "map"
            out["x-kubernetes-list-map-keys"] = [LIST_MAP_KEYS[path]]
    if path in CEL:
        out["x-kubernetes-validations"] = CEL[path]
    return out


def _schema(model: type[Any], path: str, with_defaults: bool) -> dict[str, Any]:
    js = model.model_json_schema(by_alias=True)
    return _convert(js, js.get("$defs", {}), path, with_defaults)


def crd() -> dict[str, Any]:
    spec = _schema(CanaryRolloutSpec, "spec", with_defaults=True)
    # status is written by the operator only; defaults there would hide what it really wrote
    status = _schema(CanaryRolloutStatus, "status", with_defaults=False)
    spec.pop("description", None)
    status.pop("description", None)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "plural": PLURAL, "singular": "canaryrollout", "listKind": f"{KIND}List",
                      "shortNames": ["rgcanary"], "categories": ["rollguard"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Step", "type": "integer", "jsonPath": ".status.currentStep"},
                    {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
                    {"name": "Target", "type": "string", "jsonPath": ".spec.targetRef.name", "priority": 1},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    {"name": "Reason", "type": "string", "jsonPath": ".status.reason"},
                    # how long analysis has been waiting for Prometheus; empty while it reaches it
                    {"name": "Waiting", "type": "date", "jsonPath": ".status.analysisWaitingSince"},
                    {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A change to a Deployment (flag values, a FailureCatalog version, an image) "
                                   "tried on a canary copy, promoted or rolled back on Prometheus evidence.",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": status,
                    },
                }},
            }],
        },
    }


def render() -> str:
    # A leading document marker, as every file in crds/ has: files concatenated as they are
    # (`cat crds/*.yaml`, tools that join manifests) stay separate documents.
    header = ("---\n# Generated from rollguard/models/canary.py by `python -m rollguard.operator.canary.crd`; "
              "do not edit by hand.\n")
    return header + yaml.safe_dump(crd(), sort_keys=False, width=120)


if __name__ == "__main__":
    sys.stdout.write(render())

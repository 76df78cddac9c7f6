"""The FailureCatalog CRD schema is the first validator: the real kube-apiserver refuses
malformed catalogs at `kubectl apply`, with a message naming the field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.kube import Kubectl

pytestmark = pytest.mark.integration


def entry(code: str = "RATE_LIMITED", **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "code": code,
        "category": "RATE_LIMIT",
        "severity": "MEDIUM",
        "retryable": True,
        "recovery": {"mode": "RETRY_EXPONENTIAL", "maxAttempts": 5,
                     "backoff": {"initialSeconds": 1, "maxSeconds": 30}},
        "match": {"aliases": ["429"], "patterns": [r"too many requests"]},
    }
    e.update(over)
    return e


def catalog(name: str = "cat", **spec_over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"version": "1.0.0", "entries": [entry()], "targets": [{"name": "api"}]}
    spec.update(spec_over)
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "FailureCatalog",
            "metadata": {"name": name}, "spec": spec}


def with_entry(**over: Any) -> dict[str, Any]:
    return catalog(entries=[entry(**over)])


def mutate(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    obj = catalog()
    fn(obj)
    return obj


def _del_severity(o: dict[str, Any]) -> None:
    del o["spec"]["entries"][0]["severity"]


def _del_recovery_mode(o: dict[str, Any]) -> None:
    del o["spec"]["entries"][0]["recovery"]["mode"]


def _del_version(o: dict[str, Any]) -> None:
    del o["spec"]["version"]


# (id, manifest, substrings that must all appear in kubectl's error)
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("retryable-wrong-type", with_entry(retryable="yes"), ["retryable", "boolean"]),
    ("severity-missing", mutate(_del_severity), ["severity", "Required"]),
    ("version-missing", mutate(_del_version), ["spec.version", "Required"]),
    ("category-enum", with_entry(category="NETWORKING"), ["category", "Unsupported value", "NETWORKING"]),
    ("mode-enum", with_entry(recovery={"mode": "RETRY_FOREVER"}, retryable=True), ["recovery.mode", "RETRY_FOREVER"]),
    ("recovery-mode-missing", mutate(_del_recovery_mode), ["recovery.mode", "Required"]),
    ("code-lowercase", with_entry(code="rate_limited"), ["code", "should match"]),
    ("code-trailing-underscore", with_entry(code="RATE_LIMITED_"), ["code", "should match"]),
    ("history-limit-range", catalog(historyLimit=0), ["historyLimit", "greater than or equal to 1"]),
    ("history-limit-too-big", catalog(historyLimit=500), ["historyLimit", "less than or equal to 50"]),
    ("max-attempts-range", with_entry(recovery={"mode": "RETRY_IMMEDIATE", "maxAttempts": 1000}),
     ["maxAttempts", "less than or equal to 100"]),
    ("duplicate-code", catalog(entries=[entry("RATE_LIMITED"), entry("RATE_LIMITED")]),
     ["spec.entries[1]", "Duplicate value", "RATE_LIMITED"]),
    ("empty-entries", catalog(entries=[]), ["spec.entries", "at least 1"]),
    ("retry-mode-not-retryable", with_entry(retryable=False),
     ["retryable", "RETRY_EXPONENTIAL/RETRY_IMMEDIATE requires retryable: true"]),
    ("retryable-abort", with_entry(retryable=True, recovery={"mode": "ABORT"}),
     ["recovery.mode", "inconsistent with recovery.mode MANUAL or ABORT"]),
    ("backoff-max-below-initial",
     with_entry(recovery={"mode": "RETRY_EXPONENTIAL", "backoff": {"initialSeconds": 30, "maxSeconds": 5}}),
     ["backoff", "maxSeconds must be >= backoff.initialSeconds"]),
    ("target-name-and-selector", catalog(targets=[{"name": "api", "selector": {"matchLabels": {"a": "b"}}}]),
     ["spec.targets[0]", "exactly one of name or selector"]),
    ("target-neither", catalog(targets=[{"containers": ["app"]}]),
     ["spec.targets[0]", "exactly one of name or selector"]),
    ("pinned-hash-pattern", catalog(pinnedHash="NOT-A-HASH"), ["pinnedHash", "should match"]),
    ("unknown-field", with_entry(retry=True), ["unknown field", "retry"]),
    ("name-too-long", catalog(name="c" * 60), ["metadata.name must be at most 52 characters"]),
    ("duplicate-pattern", with_entry(match={"patterns": ["timeout", "timeout"]}), ["patterns[1]", "Duplicate value"]),
]


@pytest.mark.parametrize(("manifest", "expected"), [pytest.param(m, e, id=i) for i, m, e in CASES])
def test_malformed_catalog_is_refused(kubectl: Kubectl, namespace: str, manifest: dict[str, Any],
                                      expected: list[str]) -> None:
    proc = kubectl.apply(copy.deepcopy(manifest), namespace=namespace, check=False)
    assert proc.returncode != 0, f"apiserver accepted a malformed catalog:\n{proc.stdout}"
    for needle in expected:
        assert needle in proc.stderr, f"{needle!r} not in kubectl's error:\n{proc.stderr}"
    assert kubectl("get", "failurecatalogs", "-o", "name", namespace=namespace).stdout.strip() == ""


def test_valid_catalog_is_accepted_with_defaults(kubectl: Kubectl, namespace: str) -> None:
    obj = catalog(entries=[entry(), entry("TOOL_NOT_FOUND", category="TOOL", severity="HIGH", retryable=False,
                                         recovery={"mode": "REPLAN"}, match={})])
    kubectl.apply(obj, namespace=namespace)
    got = kubectl.get_json("failurecatalog", "cat", namespace=namespace)
    assert got["spec"]["historyLimit"] == 5
    backoff = got["spec"]["entries"][0]["recovery"]["backoff"]
    assert backoff["multiplier"] == 2 and backoff["jitter"] is True
    # short name and category work
    names = kubectl("get", "rgcatalog", "-o", "name", namespace=namespace).stdout
    assert "failurecatalog.rollguard.io/cat" in names
    assert "cat" in kubectl("get", "rollguard", namespace=namespace).stdout


def test_shipped_default_catalog_is_accepted(kubectl: Kubectl, namespace: str) -> None:
    from rollguard.catalog import default_manifest

    # as JSON: go-yaml would read the SQLSTATE alias 08006 of a plain YAML dump as an integer
    kubectl.apply(json.dumps(default_manifest()), namespace=namespace)
    got = kubectl.get_json("failurecatalog", "default", namespace=namespace)
    assert len(got["spec"]["entries"]) == len(default_manifest()["spec"]["entries"])

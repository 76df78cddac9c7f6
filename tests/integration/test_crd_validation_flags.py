"""The FeatureFlag CRD refuses malformed flags at `kubectl apply`, naming the field (real kube-apiserver)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.support.kube import Kubectl

pytestmark = pytest.mark.integration


def valid_flag(name: str = "failure-catalog") -> dict[str, Any]:
    return {
        "apiVersion": "rollguard.io/v1alpha1",
        "kind": "FeatureFlag",
        "metadata": {"name": name},
        "spec": {
            "key": "failure_catalog_runtime_integration",
            "description": "Wire FailureCatalog to error classification",
            "owner": "platform-team",
            "defaultValue": False,
            "environments": {"staging": True, "production": False},
            "envVar": "AOS_FEATURE_FAILURE_CATALOG",
            "requiresSignoff": True,
            "signoff": {
                "by": "sre@example.com",
                "at": "2026-11-01T10:00:00Z",
                "expiresAt": "2026-12-01T10:00:00Z",
                "evidence": {"kind": "ShadowRun", "mismatches": 0, "reportRef": "s3://reports/cycle_48.json"},
            },
            "targets": [{"environment": "staging", "deployments": ["backend", "worker"]},
                        {"environment": "production", "selector": {"matchLabels": {"app": "backend"}}}],
        },
    }


def mutate(path: str, value: Any) -> dict[str, Any]:
    """A copy of the valid flag with ``path`` (dot-separated, ints index lists) set; value None deletes it."""
    obj = copy.deepcopy(valid_flag("bad"))
    parts = path.split(".")
    node: Any = obj
    for p in parts[:-1]:
        node = node[int(p)] if p.isdigit() else node[p]
    last = parts[-1]
    if value is None:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return obj


# (case id, manifest, fragments the apiserver's message must contain: field path and reason)
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("missing-owner", mutate("spec.owner", None), ["spec.owner", "Required value"]),
    ("missing-default", mutate("spec.defaultValue", None), ["spec.defaultValue", "Required value"]),
    ("default-not-boolean", mutate("spec.defaultValue", "yes"), ["spec.defaultValue", "boolean"]),
    ("override-not-boolean", mutate("spec.environments.staging", 1), ["spec.environments.staging", "boolean"]),
    ("environment-key-not-dns-label", mutate("spec.environments", {"Prod_EU": True}),
     ["spec.environments", "DNS labels"]),
    ("unsupported-type", mutate("spec.type", "string"), ["spec.type", "Unsupported value"]),
    ("env-var-lowercase", mutate("spec.envVar", "aos_feature_x"), ["spec.envVar", "should match"]),
    ("key-with-space", mutate("spec.key", "failure catalog"), ["spec.key", "should match"]),
    ("empty-owner", mutate("spec.owner", ""), ["spec.owner", "at least 1"]),
    ("signoff-expires-before-given", mutate("spec.signoff.expiresAt", "2026-10-01T00:00:00Z"),
     ["spec.signoff.expiresAt", "must be after spec.signoff.at"]),
    ("signoff-without-by", mutate("spec.signoff.by", None), ["spec.signoff.by", "Required value"]),
    ("signoff-at-not-a-date", mutate("spec.signoff.at", "yesterday"), ["spec.signoff.at", "date-time"]),
    ("shadow-run-without-mismatches", mutate("spec.signoff.evidence.mismatches", None),
     ["spec.signoff.evidence.mismatches", "required for a ShadowRun"]),
    ("negative-mismatches", mutate("spec.signoff.evidence.mismatches", -1),
     ["spec.signoff.evidence.mismatches", "greater than or equal to 0"]),
    ("unknown-evidence-kind", mutate("spec.signoff.evidence.kind", "Vibes"),
     ["spec.signoff.evidence.kind", "Unsupported value"]),
    ("target-without-deployments-or-selector", mutate("spec.targets.0", {"environment": "staging"}),
     ["spec.targets[0]", "needs deployments or selector"]),
    ("target-environment-uppercase", mutate("spec.targets.0.environment", "Staging"),
     ["spec.targets[0].environment", "should match"]),
    ("target-deployment-bad-name", mutate("spec.targets.0.deployments", ["Backend_1"]),
     ["spec.targets[0].deployments[0]", "should match"]),
    ("requires-signoff-not-boolean", mutate("spec.requiresSignoff", "yes"), ["spec.requiresSignoff", "boolean"]),
    ("unknown-field", mutate("spec.enabled", True), ['unknown field "spec.enabled"']),
]


def test_valid_flag_is_accepted_and_defaults_applied(kubectl: Kubectl, namespace: str) -> None:
    flag = valid_flag()
    del flag["spec"]["requiresSignoff"]
    kubectl.apply(flag, namespace=namespace)
    got = kubectl.get_json("featureflag", "failure-catalog", namespace=namespace)
    assert got["spec"]["type"] == "boolean"  # defaulted by the schema
    assert got["spec"]["requiresSignoff"] is False
    # short name and category work
    assert "failure-catalog" in kubectl("get", "rgflag", namespace=namespace).stdout
    assert "failure-catalog" in kubectl("get", "rollguard", namespace=namespace).stdout


@pytest.mark.parametrize(("manifest", "fragments"), [(m, f) for _, m, f in CASES], ids=[c[0] for c in CASES])
def test_malformed_flag_is_refused_naming_the_field(kubectl: Kubectl, namespace: str,
                                                    manifest: dict[str, Any], fragments: list[str]) -> None:
    # --validate=strict is server-side field validation: the apiserver refuses, not kubectl.
    proc = kubectl("apply", "--validate=strict", "-f", "-", input=yaml.safe_dump(manifest),
                   namespace=namespace, check=False)
    assert proc.returncode != 0, f"apiserver accepted a malformed flag: {manifest['spec']}"
    message = proc.stderr
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert not kubectl.exists("featureflag", "bad", namespace=namespace)

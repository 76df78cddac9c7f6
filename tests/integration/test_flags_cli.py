"""`rollguard flags` against the real kube-apiserver and the real operator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rollguard.cli.main import cli
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration


def gated_flag() -> dict[str, Any]:
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag", "metadata": {"name": "failure-catalog"},
            "spec": {"key": "failure_catalog_runtime_integration", "owner": "platform-team", "defaultValue": False,
                     "requiresSignoff": True, "environments": {"staging": False}}}


def test_enable_refused_until_signoff_then_delivered(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                                     operator: OperatorProcess, tmp_path: Path) -> None:
    ns = namespace
    kubectl.apply(gated_flag(), namespace=ns)
    eventually(lambda: (kubectl.get_json("featureflag", "failure-catalog", namespace=ns).get("status") or {})
               .get("observedGeneration") == 1, what="operator to pick up the flag")

    def flags(*args: str) -> tuple[int, str]:
        r = CliRunner().invoke(cli, ["flags", *args, "--kubeconfig", str(kubeconfig), "-n", ns])
        return r.exit_code, r.output

    def spec() -> dict[str, Any]:
        return dict(kubectl.get_json("featureflag", "failure-catalog", namespace=ns)["spec"])

    code, out = flags("enable", "failure-catalog", "--env", "staging", "--by", "alice")
    assert code == 3, out
    assert "requires a sign-off (Missing)" in out
    assert spec()["environments"] == {"staging": False}  # untouched

    code, out = flags("enable", "nope", "--env", "staging")
    assert code == 1 and "not found" in out

    report = tmp_path / "cycle_48.json"
    report.write_text(json.dumps({"shadow": {"mismatches": 0}, "cycles": 48}))
    code, out = flags("signoff", "failure-catalog", "--by", "sre@example.com", "--evidence", str(report),
                      "--expires", "7d")
    assert code == 0, out
    so = spec()["signoff"]
    assert so["by"] == "sre@example.com" and so["evidence"] == {
        "kind": "ShadowRun", "mismatches": 0, "reportRef": str(report), "summary": "cycles=48"}
    assert so["expiresAt"] > so["at"]

    code, out = flags("enable", "failure-catalog", "--env", "staging", "--by", "alice")
    assert code == 0, out
    assert spec()["environments"] == {"staging": True}

    def delivered() -> bool:
        cm = kubectl.get_json("configmap", "rollguard-flags-staging", namespace=ns)
        return json.loads(cm["data"]["flags.json"])["flags"]["failure_catalog_runtime_integration"]["value"] is True
    eventually(delivered, what="operator to deliver the enabled flag")

    def history() -> list[dict[str, Any]]:
        st = kubectl.get_json("featureflag", "failure-catalog", namespace=ns).get("status") or {}
        return list(st.get("history") or [])
    def alice_in_history() -> bool:
        h = history()
        assert any(e["actor"] == "alice (via rollguard-cli)" and "staging: false -> true" in e["change"] for e in h), h
        return True
    eventually(alice_in_history, what="history entry naming alice")

    code, out = flags("list")
    assert code == 0 and "failure-catalog" in out and "staging=true" in out
    code, out = flags("get", "failure-catalog")
    assert code == 0 and "alice (via rollguard-cli)" in out and "Sign-off:     Valid" in out

    code, out = flags("disable", "failure-catalog", "--default")
    assert code == 0 and spec()["defaultValue"] is False

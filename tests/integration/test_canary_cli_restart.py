"""`rollguard canary run/abort/retry` against the real operator, and an operator SIGKILLed mid-rollout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rollguard.localenv.prometheus import Prometheus
from tests.integration import test_canary_rollout as base
from tests.integration.test_canary_rollout import (
    App,
    Watcher,
    image_of,
    rollout,
    setup_target,
    status,
    wait_phase,
)
from tests.support.kube import REPO, Kubectl, OperatorProcess, eventually

apps = base.apps  # the fixture, shared with the rollout tests

pytestmark = pytest.mark.integration


def cli(kubeconfig: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "rollguard.cli.main", "canary", *args, "--kubeconfig",
                           str(kubeconfig)], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def test_cli_run_follows_to_passed_and_writes_the_json_report(
        kubectl: Kubectl, kubeconfig: Path, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess, tmp_path: Path) -> None:
    setup_target(kubectl, namespace)
    manifest = tmp_path / "rollout.yaml"
    manifest.write_text(yaml.safe_dump(rollout(namespace, prometheus)))
    w = Watcher(kubectl, namespace)
    report = tmp_path / "report.json"
    r = cli(kubeconfig, "run", "-f", str(manifest), "-n", namespace, "--watch", "2", "--report", str(report))
    w.close()
    assert r.returncode == 0, r.stdout + r.stderr + operator.output()[-3000:]
    assert "CANARY PROMOTED" in r.stdout
    assert "weight 50%" in r.stdout and "error-rate: pass" in r.stdout
    data = json.loads(report.read_text())
    assert data["success"] is True and data["rollback_triggered"] is False and data["rollback_reason"] is None
    assert set(data["metrics_delta"]) == {"golden-mismatch", "error-rate"}
    assert [s["kind"] for s in data["steps"]] == ["setWeight", "setWeight", "setWeight", "watch"]
    listed = cli(kubeconfig, "list", "-n", namespace)
    assert "web-canary-rollout" in listed.stdout and "Succeeded" in listed.stdout
    # running the same file again is a new rollout, not the old result
    first_uid = kubectl.get_json("canaryrollout", "web-canary-rollout", namespace=namespace)["metadata"]["uid"]
    w = Watcher(kubectl, namespace)
    again = cli(kubeconfig, "run", "-f", str(manifest), "-n", namespace)
    w.close()
    assert again.returncode == 0 and "already finished (Succeeded)" in again.stdout, again.stdout + again.stderr
    assert "step 0 weight 20%" in again.stdout
    assert kubectl.get_json("canaryrollout", "web-canary-rollout", namespace=namespace)["metadata"]["uid"] != first_uid


def test_cli_abort_while_paused_then_retry(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                          prometheus: Prometheus, apps: dict[str, App],
                                          operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    kubectl.apply(rollout(namespace, prometheus, steps=[{"setWeight": 30}, {"pause": {"untilResumed": True}},
                                                        {"setWeight": 100}]), namespace=namespace)
    wait_phase(kubectl, namespace, {"Paused"}, operator)
    r = cli(kubeconfig, "abort", "web-canary-rollout", "-n", namespace)
    assert r.returncode == 0 and "accepted" in r.stdout, r.stdout + r.stderr
    st = wait_phase(kubectl, namespace, {"RolledBack"}, operator)
    assert "aborted manually in phase Paused" in st["report"]["rollbackReason"]
    r = cli(kubeconfig, "abort", "web-canary-rollout", "-n", namespace)
    assert r.returncode == 1 and "refused" in r.stdout
    r = cli(kubeconfig, "retry", "web-canary-rollout", "-n", namespace)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_phase(kubectl, namespace, {"Paused"}, operator)
    assert status(kubectl, namespace)["attempt"] == 2
    r = cli(kubeconfig, "resume", "web-canary-rollout", "-n", namespace)
    assert r.returncode == 0
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack"}, operator)
    weights = w.close()
    assert st["phase"] == "Succeeded"
    assert [x for x in weights if x] == [30, 30, 100], weights
    assert [a["action"] for a in st["manualActions"]] == ["abort", "abort", "retry", "resume"]


@pytest.mark.parametrize("outcome", ["promote", "rollback"])
def test_operator_sigkilled_mid_rollout_resumes_to_the_same_outcome(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess, outcome: str) -> None:
    setup_target(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    pause = "6s" if outcome == "promote" else "1h"
    kubectl.apply(rollout(namespace, prometheus, steps=[{"setWeight": 20}, {"pause": {"duration": pause}},
                                                        {"setWeight": 100}]), namespace=namespace)
    eventually(lambda: status(kubectl, namespace).get("currentStep") == 1, timeout=60, what="the pause step")
    operator.kill()
    if outcome == "rollback":
        apps["canary"].set(error_ratio=0.2, golden=0)   # the breach happens while no operator runs
    time.sleep(3)
    assert status(kubectl, namespace)["phase"] == "Progressing"
    operator.start()
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack", "Failed"}, operator)
    weights = w.close()

    def reasons_with_the_final_event() -> list[str] | None:
        # the Event of the final phase is posted after the status that names it
        events = kubectl.get_json("events", "--field-selector", "involvedObject.name=web-canary-rollout",
                                  namespace=namespace)["items"]
        reasons = [e["reason"] for e in events]
        return reasons if st["phase"] in reasons else None
    reasons: list[str] = eventually(reasons_with_the_final_event, what=f"the {st['phase']} Event")
    if outcome == "promote":
        assert st["phase"] == "Succeeded", st.get("message")
        assert image_of(kubectl, namespace) == "web:2"
        assert reasons.count("Promoting") == 1 and reasons.count("Succeeded") == 1
    else:
        assert st["phase"] == "RolledBack", st.get("message")
        assert "error-rate" in st["report"]["rollbackReason"]
        assert image_of(kubectl, namespace) == "web:1"
        assert "Promoting" not in reasons and reasons.count("RolledBack") == 1
    assert weights[-1] == 0

"""`rollguard canary promote --by WHO` on a rollout that has no evidence, against the real operator.

Every check is inconclusive (the metric has no series): the step never advances on its own. A
promote by hand then puts the change live, and the report says so: promoted by hand, by whom,
no check passed, success false; `rollguard canary status` and the run's banner say the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rollguard.localenv.prometheus import Prometheus
from tests.integration import test_canary_rollout as base
from tests.integration.test_canary_cli_restart import cli
from tests.integration.test_canary_rollout import App, Watcher, image_of, rollout, setup_target, status, wait_phase
from tests.support.kube import REPO, Kubectl, OperatorProcess, eventually

apps = base.apps  # the fixture, shared with the rollout tests

pytestmark = pytest.mark.integration

NO_DATA = [{"name": "error-rate", "rule": {"fromProfile": "errorRate"}, "failureLimit": 0,
            "query": 'max(series_nobody_exports{namespace="{{namespace}}", track="{{track}}"})'}]


def test_a_manual_promote_without_a_passing_check_is_reported_as_such(
        kubectl: Kubectl, kubeconfig: Path, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess, tmp_path: Path) -> None:
    setup_target(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    manifest = rollout(namespace, prometheus)
    manifest["spec"]["analysis"]["metrics"] = NO_DATA
    manifest["spec"]["analysis"]["onNoData"] = "continue"
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(manifest))
    run = subprocess.Popen([sys.executable, "-m", "rollguard.cli.main", "canary", "run", "-f", str(path),
                            "-n", namespace, "--kubeconfig", str(kubeconfig), "--timeout", "170"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    eventually(lambda: status(kubectl, namespace).get("analysisRuns", 0) >= 2, timeout=60,
               what="two analysis checks at the first step")
    assert status(kubectl, namespace)["currentStep"] == 0  # inconclusive checks never advance a step
    r = cli(kubeconfig, "promote", "web-canary-rollout", "-n", namespace, "--by", "alice")
    assert r.returncode == 0 and "accepted" in r.stdout and "without evidence" in r.stdout, r.stdout + r.stderr
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack"}, operator)
    w.close()
    printed, _ = run.communicate(timeout=60)
    assert run.returncode == 0, printed  # promoted: the change is live
    assert "CANARY PROMOTED BY HAND" in printed
    assert "Promoted by: alice; no analysis check passed: promoted without evidence" in printed
    assert st["phase"] == "Succeeded" and st["reason"] == "PromotedManually", st.get("message")
    assert image_of(kubectl, namespace) == "web:2"
    report = st["report"]
    assert (report["promotion"], report["promotedBy"], report["checksPassed"]) == ("manual", "alice", 0)
    assert report["success"] is False and report["rollbackTriggered"] is False
    assert st["manualActions"][-1]["by"] == "alice"
    shown = cli(kubeconfig, "status", "web-canary-rollout", "-n", namespace)
    assert "promotion=manual promoted_by=alice" in shown.stdout and "checks_passed=0" in shown.stdout, shown.stdout

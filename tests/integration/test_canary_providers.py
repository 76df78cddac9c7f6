"""The Prometheus provider against a real Prometheus, and a smoke Job's outcome seen by the operator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rollguard.localenv.prometheus import Prometheus
from rollguard.operator.metrics.base import NoData, QueryError, Value
from rollguard.operator.metrics.prometheus import PrometheusProvider
from tests.integration import test_canary_rollout as base
from tests.integration.test_canary_rollout import App, Watcher, rollout, setup_target, status, wait_phase
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration
apps = base.apps


def test_prometheus_provider_value_nodata_error(prometheus: Prometheus, apps: dict[str, App],
                                                namespace: str) -> None:
    p = PrometheusProvider(prometheus.url)
    assert p.is_online()
    r = p.run_query(f'max(app_error_ratio{{namespace="{namespace}", track="canary"}})')
    assert r == Value(0.01, 1)
    assert isinstance(p.run_query('max(app_error_ratio{track="no-such-track"})'), NoData)
    err = p.run_query("sum(")
    assert isinstance(err, QueryError) and "bad_data" in err.message
    several = p.run_query(f'app_error_ratio{{namespace="{namespace}"}}')
    assert isinstance(several, QueryError) and "2 series" in several.message
    nan = p.run_query(f'max(app_error_ratio{{namespace="{namespace}"}}) / 0 * 0')
    assert isinstance(nan, NoData)


def test_failed_smoke_job_rolls_back_with_its_exit_code(kubectl: Kubectl, namespace: str, prometheus: Prometheus,
                                                        apps: dict[str, App], operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    smoke: dict[str, Any] = {"job": {"template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "smoke", "image": "busybox", "command": ["sh", "-c", "exit 4"]}]}}}, "timeoutSeconds": 60}
    kubectl.apply(rollout(namespace, prometheus, smoke=smoke), namespace=namespace)
    job = "web-canary-rollout-smoke-1"
    eventually(lambda: kubectl("get", "job", job, namespace=namespace, check=False).returncode == 0,
               timeout=60, what="the smoke Job")
    assert status(kubectl, namespace)["smoke"]["state"] == "Running"
    # no kubelet or Job controller here: report what they would
    now = "2026-01-01T00:00:00Z"
    kubectl("patch", "job", job, "--subresource=status", "--type=merge", "-p", json.dumps({"status": {
        "failed": 1, "startTime": now, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": now},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": now}]}}),
        namespace=namespace)
    st = wait_phase(kubectl, namespace, {"RolledBack", "Failed", "Succeeded"}, operator)
    weights = w.close()
    assert st["phase"] == "RolledBack"
    assert st["report"]["smokeReturncode"] == 1   # no pod ran, so no exit code: 1, as the seed's runner
    assert "smoke test failed" in st["report"]["rollbackReason"]
    assert set(weights) == {0}
    assert kubectl("get", "job", job, namespace=namespace, check=False).returncode != 0

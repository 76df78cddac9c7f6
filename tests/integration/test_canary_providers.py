"""The Prometheus provider against a real Prometheus, and a smoke Job's outcome seen by the operator."""

from __future__ import annotations

from typing import Any

import pytest

from rollguard.localenv.podrunner import RUN_LABEL, PodRunner
from rollguard.localenv.prometheus import Prometheus
from rollguard.models.canary import parse_duration
from rollguard.operator.metrics.base import NoData, QueryError, Value
from rollguard.operator.metrics.prometheus import PrometheusProvider
from tests.integration import test_canary_rollout as base
from tests.integration.test_canary_rollout import App, Watcher, rollout, setup_target, wait_phase
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
    assert isinstance(nan, NoData) and nan.kind == "nan"
    # the scrape interval of the namespace's targets, as Prometheus reports it (/api/v1/targets)
    assert p.scrape_interval(namespace) == parse_duration(prometheus.scrape_interval)
    assert p.scrape_interval("no-such-namespace") is None
    p.close()


def test_failed_smoke_job_rolls_back_with_its_exit_code(kubectl: Kubectl, namespace: str, prometheus: Prometheus,
                                                        apps: dict[str, App], operator: OperatorProcess,
                                                        pod_runner: PodRunner) -> None:
    setup_target(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    # The pod runner runs the smoke pod's command; kwok, the Job controller and the operator take
    # its exit code from there.
    smoke: dict[str, Any] = {"job": {"template": {
        "metadata": {"labels": {RUN_LABEL: "true"}},
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "smoke", "image": "busybox", "command": ["sh", "-c", "exit 4"]}]}}}, "timeoutSeconds": 60}
    kubectl.apply(rollout(namespace, prometheus, smoke=smoke), namespace=namespace)
    job = "web-canary-rollout-smoke-1"
    eventually(lambda: kubectl.exists("job", job, namespace=namespace),
               timeout=60, what="the smoke Job")
    st = wait_phase(kubectl, namespace, {"RolledBack", "Failed", "Succeeded"}, operator)
    weights = w.close()
    assert st["phase"] == "RolledBack"
    assert st["report"]["smokeReturncode"] == 4   # the exit code of the smoke pod's container
    assert "smoke test failed" in st["report"]["rollbackReason"]
    assert set(weights) == {0}
    assert not kubectl.exists("job", job, namespace=namespace)

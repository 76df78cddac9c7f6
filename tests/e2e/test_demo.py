"""The demo's scenarios as assertions: the same orchestrator `make demo` runs, on a local cluster,
Prometheus, PostgreSQL, failures API, operator and backend pods of its own."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from rollguard.demo.run import Demo, DemoResult
from tests.support.xdist import DEFAULT_PORTS

pytestmark = [pytest.mark.e2e, DEFAULT_PORTS]  # its module fixture runs once, on one worker

Run = tuple[DemoResult, Demo, list[int], list[str]]
BROKEN_CODES = ("DB_SCHEMA_MISMATCH", "NULL_REFERENCE")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours counts as gone
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    lines: list[str] = []
    demo = Demo(tmp_path_factory.mktemp("demo") / "state", out=lines.append)
    try:
        result = demo.run()
    except BaseException:
        print("\n".join(lines[-80:]))
        demo.keep = True
        raise
    finally:
        pids = [p.pid for p in demo.procs.values()]
        if demo.runner is not None:
            pids += list(demo.runner.processes().values())
        if demo.cp is not None and demo.cp.state is not None:
            st = demo.cp.state
            pids += [st.etcd_pid, st.apiserver_pid, st.kcm_pid, st.scheduler_pid, st.kwok_pid]
        demo.stop()
    return result, demo, pids, lines


def test_the_first_rollout_promotes_the_flag_to_the_stable(demo_run: Run) -> None:
    result, _, _, lines = demo_run
    assert result.phases["enable-failure-catalog"] == "Succeeded", "\n".join(lines[-60:])
    report = result.reports["enable-failure-catalog"]
    assert report["success"] is True and report["rollbackTriggered"] is False and report["smokeReturncode"] == 0
    # promoted into the FeatureFlag: the stable reads it from its flags file, no env override left
    assert result.stable_flags["failure_catalog_runtime_integration"] is True, result.stable_flags
    assert not [k for k in result.stable_env if k.startswith("AOS_FEATURE_")], result.stable_env
    # the load generator followed the operator's Ingress weights up to 100 %, then back to stable
    weights = [w for w in result.weights["enable-failure-catalog"] if w]
    assert weights == sorted(weights) and weights[-1] == 100 and 25 in weights, result.weights
    assert result.weights["enable-failure-catalog"][-1] == 0
    # the catalog flag changed behaviour: the canary retried transient errors instead of failing
    # runs. (<=: at 100 % weight only the in-cluster quarter of the load reaches the baseline, and
    # a 4 s window of it can hold no error at all; that the canary did recover is checked below.)
    assert report["metricsDelta"]["error-rate"]["canary"] <= report["metricsDelta"]["error-rate"]["baseline"]


def test_the_second_rollout_is_rolled_back_on_error_rate(demo_run: Run) -> None:
    result, _, _, lines = demo_run
    assert result.phases["enable-cost-simulator"] == "RolledBack", "\n".join(lines[-60:])
    report = result.reports["enable-cost-simulator"]
    assert report["success"] is False and report["rollbackTriggered"] is True
    assert report["rollbackReason"].startswith("error-rate: breach"), report["rollbackReason"]
    assert report["metricsDelta"]["error-rate"]["verdict"] == "breach"
    assert "AOS_FEATURE_COST_SIMULATOR_RUNTIME_INTEGRATION" not in result.stable_env  # never reached the stable
    assert result.stable_flags["cost_simulator_runtime_integration"] is False, result.stable_flags
    assert 100 not in result.weights["enable-cost-simulator"] and result.weights["enable-cost-simulator"][-1] == 0


def test_the_failures_api_counts_what_the_canary_produced(demo_run: Run) -> None:
    result, demo, _, _ = demo_run
    by_code = {c["error_code"]: c["count"] for c in result.stats["by_code"]}
    canary, stable = result.reported["canary"], result.reported["stable"]
    for code in BROKEN_CODES:
        assert not stable.get(code), f"the stable never runs the broken build, yet reported {code}"
    assert sum(canary.get(c, 0) for c in BROKEN_CODES) > 0, canary
    for code in BROKEN_CODES:
        assert by_code.get(code, 0) == canary.get(code, 0), (code, by_code, canary)
    assert by_code.get("BUDGET_EXCEEDED", 0) == canary.get("BUDGET_EXCEEDED", 0)
    # every failure either track reported is stored, once
    assert result.stats["total"] == sum(canary.values()) + sum(stable.values()), \
        f"{demo.rejected} failures the service refused (set aside in the pods' spools)"
    # retried transient errors were reported as recovered
    assert result.stats["recovery_succeeded"] > 0


def test_the_transcript_shows_the_pods_on_kwok_nodes(demo_run: Run) -> None:
    _, _, _, lines = demo_run
    text = "\n".join(lines)
    assert "kwok-node-0   Ready" in text
    pod_lines = [line for line in text.splitlines() if line.startswith(("agent-runtime-", "failures-api-"))]
    assert any(" canary" in line for line in pod_lines if line.startswith("agent-runtime-canary-")), pod_lines
    # -o wide: loopback pod addresses (127.<net>.<node>.<n>; the network the cluster claimed)
    assert any(re.search(r"\s127\.\d+\.\d+\.\d+\s", line) for line in pod_lines), pod_lines


def test_the_demo_cleans_up_after_itself(demo_run: Run) -> None:
    _, demo, pids, _ = demo_run
    assert pids and not [p for p in pids if _alive(p)]
    assert not Path(demo.workdir).exists()

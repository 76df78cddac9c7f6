"""CanaryRollouts end to end: the real operator, kube-apiserver and Prometheus, and two real
local HTTP processes (stable and canary tracks) whose metrics the test controls."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from rollguard.localenv import _proc
from rollguard.localenv.prometheus import Prometheus
from rollguard.operator.routers.nginx import CANARY_WEIGHT
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration

# A tiny app: /metrics renders the gauges of a JSON state file the test rewrites; /healthz answers
# with the state's "health" status code.
APP = r'''
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
state_file, port = sys.argv[1], int(sys.argv[2])
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        state = json.load(open(state_file))
        if self.path == "/healthz":
            code = state.get("health", 200)
            self.send_response(code); self.end_headers(); self.wfile.write(b"ok\n" if code == 200 else b"bad\n")
            return
        body = "".join(f"{k} {v}\n" for k, v in state.get("metrics", {}).items()).encode()
        self.send_response(200); self.send_header("Content-Type", "text/plain; version=0.0.4"); self.end_headers()
        self.wfile.write(body)
HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


class App:
    def __init__(self, tmp: Path, track: str) -> None:
        self.state = tmp / f"{track}.json"
        self.port = _proc.free_port()
        self.set(error_ratio=0.01, golden=0)
        script = tmp / "app.py"
        script.write_text(APP)
        self.proc = subprocess.Popen([sys.executable, str(script), str(self.state), str(self.port)])
        _proc.wait_for(self._up, timeout=10, what=f"{track} app")

    def _up(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=1):
                return True
        except OSError:
            return False

    def set(self, *, error_ratio: float, golden: int, health: int = 200) -> None:
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"health": health, "metrics": {
            "app_error_ratio": error_ratio, "nova_golden_mismatch_total": golden}}))
        tmp.rename(self.state)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def apps(tmp_path: Path, prometheus: Prometheus, namespace: str) -> Iterator[dict[str, App]]:
    out = {t: App(tmp_path, t) for t in ("stable", "canary")}
    for track, app in out.items():
        prometheus.set_targets(f"{namespace}-{track}", [f"127.0.0.1:{app.port}"],
                               {"track": track, "namespace": namespace})
    eventually(lambda: len(prometheus.query(f'app_error_ratio{{namespace="{namespace}"}}')) == 2,
               timeout=30, what="prometheus scraping both tracks")
    try:
        yield out
    finally:
        for track, app in out.items():
            prometheus.remove_targets(f"{namespace}-{track}")
            app.stop()


def setup_target(kubectl: Kubectl, ns: str, *, min_ready_seconds: int = 0) -> None:
    """Deployment, Service and Ingress ``web``; returns once the Deployment has rolled out.

    ``min_ready_seconds`` makes every rolling update of ``web`` last at least that long (a new
    pod counts as available only after being Ready that long), as a slow rollout would.
    """
    labels = {"app": "web"}
    kubectl.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                   "spec": {"replicas": 1, "minReadySeconds": min_ready_seconds,
                            "selector": {"matchLabels": labels},
                            "template": {"metadata": {"labels": labels},
                                         "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}},
                  namespace=ns)
    wait_rolled_out(kubectl, ns, "web")
    kubectl.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8000}]}}, namespace=ns)
    kubectl.apply({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
                   "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example", "http": {"paths": [
                       {"path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}, namespace=ns)


def wait_rolled_out(kubectl: Kubectl, ns: str, name: str, timeout: float = 90) -> None:
    """Wait as ``kubectl rollout status`` does: the Deployment controller rolled the newest
    template out to every replica, and kwok's nodes run them."""
    kubectl("rollout", "status", f"deployment/{name}", f"--timeout={int(timeout)}s", namespace=ns)


def rollout(ns: str, prometheus: Prometheus, name: str = "web-canary-rollout", **over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "targetRef": {"name": "web"},
        "change": {"image": {"container": "web", "image": "web:2"}},
        "traffic": {"provider": "nginx", "ingress": {"name": "web"}},
        "steps": [{"setWeight": 20}, {"setWeight": 50}, {"setWeight": 100}],
        "progressDeadlineSeconds": 120,
        "analysis": {
            "interval": "2s", "prometheus": {"address": prometheus.url}, "profile": "moderate",
            "metrics": [
                {"name": "golden-mismatch", "rule": {"maxIncrease": 0}, "immediate": True, "failureLimit": 0,
                 "query": 'max(nova_golden_mismatch_total{namespace="{{namespace}}", track="{{track}}"})'},
                {"name": "error-rate", "rule": {"fromProfile": "errorRate"}, "failureLimit": 0,
                 "query": 'max(app_error_ratio{namespace="{{namespace}}", track="{{track}}"})'},
            ]},
    }
    spec.update(over)
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "CanaryRollout", "metadata": {"name": name},
            "spec": spec}


class Watcher:
    """Follows the run: records every canary weight the canary Ingress carries, from a watch (every
    version the apiserver stores, none missed between two reads); 0 while there is none."""

    def __init__(self, kubectl: Kubectl, ns: str, name: str = "web-canary") -> None:
        self.ns, self.name = ns, name
        self.api = client.NetworkingV1Api(kubectl.reader.api_client())
        self.weights: list[int] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        listed = self.api.list_namespaced_ingress(ns, field_selector=f"metadata.name={name}")
        self._record(listed.items[0] if listed.items else None)
        self.thread = threading.Thread(target=self._run, args=(_version(listed),), daemon=True)
        self.thread.start()

    def _record(self, ingress: Any) -> None:
        annotations = (ingress.metadata.annotations or {}) if ingress is not None else {}
        w = int(annotations.get(CANARY_WEIGHT) or 0)
        with self.lock:
            if not self.weights or self.weights[-1] != w:
                self.weights.append(w)

    def _run(self, resource_version: str) -> None:
        while not self.stop.is_set():
            try:
                for ev in watch.Watch().stream(self.api.list_namespaced_ingress, self.ns,
                                               field_selector=f"metadata.name={self.name}",
                                               resource_version=resource_version, timeout_seconds=2):
                    resource_version = ev["object"].metadata.resource_version
                    self._record(None if ev["type"] == "DELETED" else ev["object"])
                    if self.stop.is_set():
                        return
            except ApiException as e:
                if e.status != 410:
                    raise
                listed = self.api.list_namespaced_ingress(self.ns, field_selector=f"metadata.name={self.name}")
                self._record(listed.items[0] if listed.items else None)
                resource_version = _version(listed)

    def close(self) -> list[int]:
        """Stops following; the weights seen, ending with the weight the Ingress carries now."""
        self.stop.set()
        listed = self.api.list_namespaced_ingress(self.ns, field_selector=f"metadata.name={self.name}")
        self._record(listed.items[0] if listed.items else None)
        with self.lock:
            return list(self.weights)


def _version(listed: Any) -> str:
    return str(listed.metadata.resource_version)


def status(kubectl: Kubectl, ns: str, name: str = "web-canary-rollout") -> dict[str, Any]:
    st: dict[str, Any] = kubectl.get_json("canaryrollout", name, namespace=ns).get("status") or {}
    return st


def wait_phase(kubectl: Kubectl, ns: str, phases: set[str], op: OperatorProcess, timeout: float = 90) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        st = status(kubectl, ns)
        return st if st.get("phase") in phases else None
    try:
        result: dict[str, Any] = eventually(check, timeout=timeout, interval=0.5, what=f"phase in {phases}")
        return result
    except AssertionError:
        print(op.output()[-6000:])
        print(json.dumps(status(kubectl, ns), indent=1)[-4000:])
        raise


def image_of(kubectl: Kubectl, ns: str) -> str:
    dep = kubectl.get_json("deployment", "web", namespace=ns)
    image: str = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def test_rollout_promotes_and_weights_follow_the_steps(kubectl: Kubectl, namespace: str, prometheus: Prometheus,
                                                       apps: dict[str, App], operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    obj = rollout(namespace, prometheus)
    kubectl.apply(obj, namespace=namespace)
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack", "Failed"}, operator)
    weights = w.close()
    assert st["phase"] == "Succeeded", st.get("message")
    assert [x for x in weights if x] == [20, 50, 100], weights
    assert weights[-1] == 0
    assert image_of(kubectl, namespace) == "web:2"
    assert st["report"]["appliedChanges"] == ["Deployment web: image web:2"]
    assert not kubectl.exists("deployment", "web-canary", namespace=namespace)
    report = st["report"]
    assert report["success"] and not report["rollbackTriggered"]
    assert report["metricsDelta"]["error-rate"]["canary"] == pytest.approx(0.01)
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=web-canary-rollout",
                     namespace=namespace).stdout
    assert "Promoting" in events and "StepStarted" in events


@pytest.mark.parametrize("trigger", ["error-rate", "golden-mismatch"])
def test_rollout_rolls_back_on_a_breach(kubectl: Kubectl, namespace: str, prometheus: Prometheus,
                                        apps: dict[str, App], operator: OperatorProcess, trigger: str) -> None:
    setup_target(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    obj = rollout(namespace, prometheus, steps=[{"setWeight": 20}, {"pause": {"duration": "1h"}},
                                                {"setWeight": 100}])
    kubectl.apply(obj, namespace=namespace)
    wait_phase(kubectl, namespace, {"Progressing"}, operator)
    eventually(lambda: status(kubectl, namespace).get("currentStep") == 1, timeout=60, what="the pause step")
    if trigger == "error-rate":
        apps["canary"].set(error_ratio=0.05, golden=0)       # +400 % against moderate's 50 %
    else:
        apps["canary"].set(error_ratio=0.01, golden=1)       # any golden mismatch
    breach_at = time.monotonic()
    st = wait_phase(kubectl, namespace, {"RolledBack", "Failed"}, operator)
    elapsed = time.monotonic() - breach_at
    weights = w.close()
    assert st["phase"] == "RolledBack", st.get("message")
    report = st["report"]
    assert report["rollbackTriggered"] and not report["success"]
    assert trigger in report["rollbackReason"] and "step 1 (weight 20%)" in report["rollbackReason"]
    assert weights[-1] == 0 and 100 not in weights
    assert image_of(kubectl, namespace) == "web:1"           # the stable never saw the change
    assert not kubectl.exists("deployment", "web-canary", namespace=namespace)
    assert elapsed < 30, elapsed
    events = kubectl.get_json("events", "--field-selector", "involvedObject.name=web-canary-rollout",
                              namespace=namespace)["items"]
    breach = [e["message"] for e in events if e["reason"] == "AnalysisBreach"]
    expected = "canary 0.05, baseline 0.01" if trigger == "error-rate" else "canary 1, baseline 0"
    assert breach and expected in breach[0] and "weight 20%" in breach[0], breach


def test_rollout_rolls_back_when_the_smoke_test_fails(kubectl: Kubectl, namespace: str, prometheus: Prometheus,
                                                      apps: dict[str, App], operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    apps["canary"].set(error_ratio=0.01, golden=0, health=503)
    w = Watcher(kubectl, namespace)
    obj = rollout(namespace, prometheus, smoke={
        "http": {"url": f"http://127.0.0.1:{apps['canary'].port}/healthz"}, "timeoutSeconds": 30})
    kubectl.apply(obj, namespace=namespace)
    st = wait_phase(kubectl, namespace, {"RolledBack", "Failed", "Succeeded"}, operator)
    weights = w.close()
    assert st["phase"] == "RolledBack"
    assert st["report"]["smokeReturncode"] == 1
    assert "smoke test failed" in st["report"]["rollbackReason"] and "HTTP 503" in st["report"]["rollbackReason"]
    assert set(weights) == {0}                                # no traffic ever reached the canary


def test_deleting_a_running_rollout_takes_the_canary_out_of_traffic(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    kubectl.apply(rollout(namespace, prometheus, steps=[{"setWeight": 40}, {"pause": {"untilResumed": True}},
                                                        {"setWeight": 100}]), namespace=namespace)
    wait_phase(kubectl, namespace, {"Paused"}, operator)
    kubectl("delete", "canaryrollout", "web-canary-rollout", "--timeout=60s", namespace=namespace)
    # the watcher samples every 0.2 s: give it one sample after the delete returned (a busy machine)
    eventually(lambda: w.weights[-1] == 0, timeout=5, what="the watcher seeing weight 0")
    weights = w.close()
    assert weights[-1] == 0 and 40 in weights
    assert not kubectl.exists("ingress", "web-canary", namespace=namespace)
    assert not kubectl.exists("deployment", "web-canary", namespace=namespace)
    assert image_of(kubectl, namespace) == "web:1"


def test_dry_run_rollout_plans_and_touches_nothing(kubectl: Kubectl, namespace: str, prometheus: Prometheus,
                                                    apps: dict[str, App], operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    kubectl.apply(rollout(namespace, prometheus, dryRun=True), namespace=namespace)
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack", "Failed"}, operator)
    assert st["phase"] == "Succeeded" and st["reason"] == "DryRun"
    assert any("set canary traffic weight to 50%" in a for a in st["plannedActions"])
    assert st["report"]["dryRun"] is True
    assert not kubectl.exists("deployment", "web-canary", namespace=namespace)
    assert not kubectl.exists("ingress", "web-canary", namespace=namespace)
    assert image_of(kubectl, namespace) == "web:1"


def test_missing_ingress_blocks_with_the_field_named(kubectl: Kubectl, namespace: str, prometheus: Prometheus,
                                                     apps: dict[str, App], operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    kubectl.apply(rollout(namespace, prometheus, traffic={"provider": "nginx", "ingress": {"name": "nope"}}),
                  namespace=namespace)
    st = wait_phase(kubectl, namespace, {"Blocked"}, operator)
    assert "traffic.ingress.name: Ingress nope not found" in st["message"]
    assert not kubectl.exists("deployment", "web-canary", namespace=namespace)

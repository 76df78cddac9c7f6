"""A CanaryRollout routed through a Gateway API HTTPRoute, with the real HTTPRoute CRD installed
from the Go module sigs.k8s.io/gateway-api (fetched through the Go module proxy, then cached)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from rollguard.localenv.prometheus import Prometheus
from tests.integration import test_canary_rollout as base
from tests.integration.test_canary_rollout import App, rollout, setup_target, wait_phase
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration

GATEWAY_API = "sigs.k8s.io/gateway-api@v1.2.1"
apps = base.apps


@pytest.fixture(scope="session")
def httproute_crd(kubectl: Kubectl) -> None:
    out = subprocess.run(["go", "mod", "download", "-json", GATEWAY_API], capture_output=True, text=True,
                         timeout=300, cwd="/tmp", check=True).stdout
    crd = Path(json.loads(out)["Dir"]) / "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"
    kubectl("apply", "--server-side", "-f", str(crd))
    # `kubectl wait` fails outright while the new CRD has no status yet: ask again until it has one
    eventually(lambda: kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crd),
                               check=False).returncode == 0, timeout=90, interval=1, what="the HTTPRoute CRD")


def backend_weights(kubectl: Kubectl, ns: str) -> dict[str, int]:
    route = kubectl.get_json("httproute", "web", namespace=ns)
    return {r["name"]: r.get("weight", 1) for r in route["spec"]["rules"][0]["backendRefs"]}


def test_gateway_api_rollout_promotes_with_backend_weights(
        httproute_crd: None, kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    kubectl.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
                   "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["web.example"],
                            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}}, namespace=namespace)
    seen: list[dict[str, int]] = []
    stop = threading.Event()

    def follow() -> None:
        while not stop.is_set():
            w = backend_weights(kubectl, namespace)
            if not seen or seen[-1] != w:
                seen.append(w)
            time.sleep(0.2)

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    obj = rollout(namespace, prometheus, traffic={"provider": "gateway-api", "httpRoute": {"name": "web"}})
    kubectl.apply(obj, namespace=namespace)
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack", "Failed"}, operator)
    stop.set()
    t.join(10)
    assert st["phase"] == "Succeeded", st.get("message")
    canary_weights = [w.get("web-canary") for w in seen if "web-canary" in w]
    assert canary_weights == [20, 50, 100], seen
    assert all(w["web"] == 100 - w["web-canary"] for w in seen if "web-canary" in w)
    assert seen[-1] == {"web": 1}   # back to stable only

"""Traffic for canary tests and benches on the local cluster: an ingress controller's part
(read the canary Ingress' weight, send requests to the ready pods a Service selects) and
the demo backend's control endpoint."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import random
import threading
import time
from collections import Counter
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollguard.localenv.ingress import read_nginx_canary

GW = ("gateway.networking.k8s.io", "v1", "httproutes")


def endpoints(core: Any, ns: str, service: str) -> list[str]:
    """Ready endpoints (ip:port) of ``service``, as an EndpointSlice would list them: the
    Running pods its selector picks, on the container port its targetPort names."""
    try:
        svc = core.read_namespaced_service(service, ns)
    except ApiException as e:
        if e.status == 404:
            return []
        raise
    target = svc.spec.ports[0].target_port
    out = []
    selector = ",".join(f"{k}={v}" for k, v in (svc.spec.selector or {}).items())
    for pod in core.list_namespaced_pod(ns, label_selector=selector).items:
        if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running" or not pod.status.pod_ip:
            continue
        ports = [p.container_port for c in pod.spec.containers for p in c.ports or []
                 if p.name == target or p.container_port == target]
        out += [f"{pod.status.pod_ip}:{n}" for n in ports[:1]]
    return sorted(out)


class Gateway:
    """The ingress controller (nginx configs) or the gateway (Gateway API configs) of one
    namespace, with the users behind it: every request enters through the route, split by the
    canary weight the operator wrote (no canary traffic while the canary has no ready pod)."""

    def __init__(self, api: Any, ns: str, provider: str, route: str, stable: str, rps: float) -> None:
        self.core, self.net, self.custom = client.CoreV1Api(api), client.NetworkingV1Api(api), \
            client.CustomObjectsApi(api)
        self.ns, self.provider, self.route, self.stable, self.rps = ns, provider, route, stable, rps
        self.weight, self.canary_service = 0, cast(str | None, None)
        self.eps: dict[str, list[str]] = {}
        self.sent: dict[str, Counter[str]] = {"stable": Counter(), "canary": Counter()}
        self.stable_at_100 = 0  # requests the stable got while the canary weight was 100
        self.counting = True  # the users go on after the rollout ended; what they get then is not counted
        self.weights: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, daemon=True)]
        n = max(2, math.ceil(rps / 15))
        self._threads += [threading.Thread(target=self._users, args=(rps / n,), daemon=True) for _ in range(n)]

    def start(self) -> Gateway:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _read_route(self) -> tuple[int, str | None]:
        if self.provider == "nginx":
            return read_nginx_canary(self.net, self.ns, f"{self.route}-canary")
        route: Any = self.custom.get_namespaced_custom_object(*GW[:2], self.ns, GW[2], self.route)
        refs = route["spec"]["rules"][0].get("backendRefs") or []
        weights = {r["name"]: int(r.get("weight", 1)) for r in refs}
        canary = next((n for n in weights if n != self.stable), None)
        if canary is None:
            return 0, None
        total = sum(weights.values()) or 1
        return round(100 * weights[canary] / total), canary

    def _watch(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                weight, canary = self._read_route()
                eps = {self.stable: endpoints(self.core, self.ns, self.stable)}
                if canary:
                    eps[canary] = endpoints(self.core, self.ns, canary)
                with self._lock:
                    self.eps, self.canary_service = eps, canary
                    self.weight = weight if canary and eps.get(canary) else 0
                    if not self.weights or self.weights[-1] != self.weight:
                        self.weights.append(self.weight)
            self._stop.wait(0.5)

    def _users(self, rps: float) -> None:
        conns: dict[str, http.client.HTTPConnection] = {}
        period = 1.0 / rps
        while not self._stop.is_set():
            t0 = time.monotonic()
            with self._lock:
                weight, canary, eps = self.weight, self.canary_service, self.eps
            to_canary = canary is not None and random.uniform(0, 100) < weight
            track = "canary" if to_canary else "stable"
            targets = eps.get(canary if to_canary and canary else self.stable) or []
            if targets:
                ep = random.choice(targets)
                code = "error"
                try:
                    conn = conns.get(ep) or http.client.HTTPConnection(ep, timeout=5)
                    conns[ep] = conn
                    conn.request("POST", "/run", body=b'{"tokens": 1000}',
                                 headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    code = str(r.status)
                    if answered_by_the_other_track(r.read(), to_canary):
                        code = "misrouted"
                except (OSError, http.client.HTTPException):
                    conns.pop(ep, None)
                with self._lock:
                    if self.counting:
                        self.sent[track][code] += 1
                        if track == "stable" and weight == 100:
                            self.stable_at_100 += 1
            self._stop.wait(max(0.0, period - (time.monotonic() - t0)))


def answered_by_the_other_track(body: bytes, to_canary: bool) -> bool:
    """Whether a backend of the other track answered (its body names its ``track``): a pod
    address the users still held for an instant after the pod went, which kwok had already
    given to another pod (a canary of another namespace, say). Counted apart, not as that
    backend's answer: a real kube-proxy drops the address with the endpoint, and a real CNI
    does not hand it out again at once."""
    try:
        track = json.loads(body).get("track")
    except (ValueError, AttributeError):
        return False
    return bool(track == ("stable" if to_canary else "canary"))


def answers(url: str) -> bool:
    try:
        conn = http.client.HTTPConnection(url, timeout=2)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def control(ep: str, body: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection(ep, timeout=3)
    conn.request("POST", "/control", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    conn.getresponse().read()
    conn.close()



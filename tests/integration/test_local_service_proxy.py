"""The local cluster answers in-cluster addresses and ingress hosts: through the service proxy,
``http://<service>.<namespace>.svc:<port>`` reaches a ready pod of the Service (cluster DNS and
kube-proxy for HTTP clients), and an Ingress' or HTTPRoute's host is routed by the canary weights,
as the cluster's ingress controller and gateway route it."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rollguard.localenv.podrunner import PodRunner
from rollguard.localenv.svcproxy import ADDRESS_ANNOTATION, ServiceProxy
from tests.integration.test_canary_gateway_api import httproute_crd
from tests.integration.test_local_cluster import backend, pods
from tests.support.kube import Kubectl, eventually

pytestmark = pytest.mark.integration
__all__ = ["httproute_crd"]  # the Gateway API CRD fixture, used here by name


def service(name: str, selector: dict[str, str] | None, port: int, target: int | str,
            annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {**({"selector": selector} if selector else {}),
                     "ports": [{"name": "http", "port": port, "targetPort": target}]}}


def get(proxy: ServiceProxy, url: str, body: dict[str, Any] | None = None) -> tuple[int, str]:
    """(status, body) of a GET (a POST of ``body`` as JSON) through the proxy, as a client with
    ``http_proxy`` set sends it."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))
    data = None if body is None else json.dumps(body).encode()
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_services_dns_name_reaches_its_ready_pods(kubectl: Kubectl, namespace: str, pod_runner: PodRunner,
                                                     service_proxy: ServiceProxy) -> None:
    kubectl.apply({**backend("web"), "spec": {**backend("web")["spec"], "replicas": 2}}, namespace=namespace)
    kubectl.apply(service("web", {"app": "web"}, 80, "http"), namespace=namespace)
    # rolled out: both pods Ready, which they are once they answer their readiness probe
    kubectl("rollout", "status", "deployment/web", "--timeout=90s", namespace=namespace)
    for host in (f"web.{namespace}.svc", f"web.{namespace}.svc.cluster.local"):
        assert get(service_proxy, f"http://{host}/healthz") == (200, json.dumps({"ok": True}))
    # a POST's body reaches the pod, and the requests spread over both pods, as kube-proxy spreads
    # connections: each pod's own request counter moved
    for i in range(20):
        status, body = get(service_proxy, f"http://web.{namespace}.svc/run", {"run_id": f"r{i}", "tokens": 10})
        # the backend's own answer (it fails a few runs by design: 500 with the run's id)
        assert status in (200, 500) and json.loads(body)["run_id"] == f"r{i}", (status, body)
    served: dict[str, float] = {}
    for pod in pods(kubectl, namespace, "web"):
        text = urllib.request.urlopen(f"http://{pod['status']['podIP']}:8000/metrics", timeout=5).read().decode()
        served[pod["metadata"]["name"]] = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                                              if line.startswith("http_requests_total{"))
    assert len(served) == 2 and all(n >= 5 for n in served.values()), served


def test_a_name_that_resolves_to_nothing_is_refused_the_way_a_cluster_refuses_it(
        kubectl: Kubectl, namespace: str, service_proxy: ServiceProxy) -> None:
    # no such Service (DNS would not resolve it): an answer from the proxy saying so
    status, body = get(service_proxy, f"http://nothing.{namespace}.svc:8000/healthz")
    assert status == 502 and f"no Service {namespace}/nothing" in body
    # a Service whose selector matches no ready pod: the connection is refused, no HTTP answer
    kubectl.apply(service("idle", {"app": "idle"}, 8000, 8000), namespace=namespace)
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        get(service_proxy, f"http://idle.{namespace}.svc:8000/healthz")
    # a port the Service does not have
    status, body = get(service_proxy, f"http://idle.{namespace}.svc:9999/")
    assert status == 502 and "has no port 9999" in body
    # any other host that refuses: a 502 saying so, as a forward proxy answers (curl --retry retries it)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]  # bound, not listening: refuses
        status, body = get(service_proxy, f"http://127.0.0.1:{free}/healthz")
    assert status == 502 and f"127.0.0.1:{free} refused the connection" in body


def test_a_service_of_a_local_process_and_any_other_host_are_reached(
        kubectl: Kubectl, namespace: str, service_proxy: ServiceProxy) -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = f"local process saw {self.path} for {self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        # the local cluster's own process (its Prometheus) behind a Service without a selector
        kubectl.apply(service("prometheus", None, 9090, 9090, {ADDRESS_ANNOTATION: f"127.0.0.1:{port}"}),
                      namespace=namespace)
        assert get(service_proxy, f"http://prometheus.{namespace}.svc:9090/api/v1/query?query=up") == (
            200, f"local process saw /api/v1/query?query=up for prometheus.{namespace}.svc:9090")
        # not a cluster name: straight to the host, so the proxy can be set for a whole shell
        assert get(service_proxy, f"http://127.0.0.1:{port}/x")[1] == f"local process saw /x for 127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def tracked(name: str, app: str, track: str) -> dict[str, Any]:
    """The demo backend as Deployment ``name`` of ``app``, answering with ``track`` in each run."""
    dep = backend(name)
    labels = {"app": app, "track": track}
    dep["spec"]["selector"] = {"matchLabels": labels}
    dep["spec"]["template"]["metadata"]["labels"].update(labels)
    dep["spec"]["template"]["spec"]["containers"][0]["args"] += ["--track", track, "--transient-rate", "0"]
    return dep


def tracks(proxy: ServiceProxy, url: str, n: int) -> Counter[str]:
    """Which track answered each of ``n`` runs sent to ``url`` through the proxy."""
    seen = Counter[str]()
    for i in range(n):
        status, body = get(proxy, url, {"run_id": f"r{i}", "tokens": 10})
        seen[json.loads(body).get("track", f"HTTP {status}")] += 1
    return seen


@pytest.fixture
def two_tracks(kubectl: Kubectl, namespace: str, pod_runner: PodRunner) -> None:
    """web (stable) and web-canary, each a Deployment and a Service, both answering."""
    for name, track in (("web", "stable"), ("web-canary", "canary")):
        kubectl.apply(tracked(name, "web", track), namespace=namespace)
        kubectl.apply(service(name, {"app": "web", "track": track}, 8000, "http"), namespace=namespace)
    for name in ("web", "web-canary"):  # Ready: answering their readiness probe
        kubectl("rollout", "status", f"deployment/{name}", "--timeout=90s", namespace=namespace)


def test_an_ingress_host_is_routed_by_the_canary_weight(
        kubectl: Kubectl, namespace: str, two_tracks: None, service_proxy: ServiceProxy) -> None:
    host = f"web.{namespace}.example"

    def ingress(name: str, annotations: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "annotations": annotations},
                "spec": {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                    {"path": "/", "pathType": "Prefix",
                     "backend": {"service": {"name": name, "port": {"number": 8000}}}}]}}]}}
    kubectl.apply(ingress("web", {}), namespace=namespace)
    assert tracks(service_proxy, f"http://{host}/run", 10) == {"stable": 10}
    for weight, want in ((100, {"canary": 10}), (0, {"stable": 10})):
        kubectl.apply(ingress("web-canary", {"nginx.ingress.kubernetes.io/canary": "true",
                                             "nginx.ingress.kubernetes.io/canary-weight": str(weight)}),
                      namespace=namespace)
        eventually(lambda want=want: tracks(service_proxy, f"http://{host}/run", 10) == want,  # type: ignore[misc]
                   timeout=10, what=f"weight {weight}: {want}")
    kubectl.apply(ingress("web-canary", {"nginx.ingress.kubernetes.io/canary": "true",
                                         "nginx.ingress.kubernetes.io/canary-weight": "50"}), namespace=namespace)
    eventually(lambda: set(tracks(service_proxy, f"http://{host}/run", 40)) == {"stable", "canary"}, timeout=10,
               what="weight 50: both tracks")


def test_an_httproute_host_is_routed_by_the_backend_weights(
        kubectl: Kubectl, namespace: str, httproute_crd: None, two_tracks: None, service_proxy: ServiceProxy) -> None:
    host = f"web.{namespace}.example"

    def httproute(stable: int, canary: int) -> dict[str, Any]:
        return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
                "spec": {"parentRefs": [{"name": "gw"}], "hostnames": [host],
                         "rules": [{"backendRefs": [{"name": "web", "port": 8000, "weight": stable},
                                                    {"name": "web-canary", "port": 8000, "weight": canary}]}]}}
    for weights, want in (((100, 0), {"stable": 10}), ((0, 100), {"canary": 10})):
        kubectl.apply(httproute(*weights), namespace=namespace)
        eventually(lambda want=want: tracks(service_proxy, f"http://{host}/run", 10) == want,  # type: ignore[misc]
                   timeout=10, what=f"weights {weights}: {want}")

"""The local cluster's cluster DNS and kube-proxy, for HTTP clients: a forward proxy on loopback.

A real cluster answers ``http://<service>.<namespace>.svc:<port>`` in two steps: cluster DNS
gives the Service's cluster IP, and kube-proxy sends the connection to one of the Service's ready
endpoints. The local cluster has neither (its cluster IPs do not answer). This proxy does both
for any process whose HTTP client honours ``http_proxy`` (requests, httpx, urllib, curl): it
reads the Service and picks a ready pod the Service's selector matches, on the container port
its ``targetPort`` names, as an EndpointSlice lists it. So a config that names in-cluster
addresses (``http://prometheus.monitoring.svc:9090``, a smoke test's
``http://<target>-canary.<namespace>.svc:8000/healthz``) works unchanged for an operator run from
the shell, as it does for an operator the Helm chart runs in a cluster.

- Names: ``<service>.<namespace>.svc`` and ``<service>.<namespace>.svc.cluster.local``. A
  process outside the cluster has no search domains: short names are not resolved for it. A
  pod's process (the pod runner sets its ``http_proxy``) names its namespace as the user of
  the proxy credentials (``http://<namespace>:<pod>@127.0.0.1:<port>``), which stands in for
  the pod's DNS search path (``<namespace>.svc.cluster.local svc.cluster.local``): ``<service>``
  is a Service of the pod's namespace, and ``<service>.<namespace>`` is that Service when it
  exists (any other host with one dot is reached directly, as DNS falls through to it).
- The host of an Ingress rule or of an HTTPRoute (``http://shop.example/``, port 80) is
  answered as the cluster's ingress controller and gateway answer it: the route picks the
  Service by host and path, and a canary Ingress' ``canary-weight`` or the backendRefs'
  weights split the requests (:mod:`rollguard.localenv.ingress`), so users' traffic follows the
  weights the operator writes.
- Any other host is connected to directly, so the proxy can be set for a whole shell.
- No ready endpoint: the connection is closed without an answer, as kube-proxy rejects it.
  An unknown Service or port: HTTP 502 with the reason, where DNS would fail to resolve. Any
  other host that refuses the connection: HTTP 502, as any forward proxy answers (clients retry
  it as they retry a refused connection: ``curl --retry``).
- A Service without a selector whose endpoint is one of the local cluster's own processes (its
  Prometheus) names that address in the annotation :data:`ADDRESS_ANNOTATION`; a real cluster
  would list it in an EndpointSlice, which the apiserver refuses for loopback addresses.
- ``CONNECT`` is tunnelled the same way (HTTPS to a Service). One request per connection
  (``Connection: close``): clients open the next one.

    python -m rollguard.localenv.svcproxy --kubeconfig FILE [--port N]

is what ``hack/control-plane.sh up`` starts; ``hack/control-plane.sh env`` prints its
``http_proxy``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import random
import re
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rollguard.localenv.ingress import Backend, route_gateway, route_nginx

ADDRESS_ANNOTATION = "localenv.rollguard.io/address"
SERVICE_NAME = re.compile(r"^(?P<service>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
                          r"\.svc(\.cluster\.local)?\.?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_HEAD = 64 * 1024          # bytes of a request line and headers
IDLE_TIMEOUT = 300.0          # seconds a relayed connection may stay silent
CONNECT_TIMEOUT = 5.0


class Unresolved(LookupError):
    """The name looks like a Service's but names no Service or no port of it (DNS: NXDOMAIN)."""


@dataclass(frozen=True)
class Target:
    """Where a connection goes: the host and port the client named, and the endpoints chosen."""

    host: str
    port: int
    endpoints: tuple[tuple[str, int], ...]
    direct: bool = False  # not a Service: the host itself, as any forward proxy reaches it


def parse_service_host(host: str) -> tuple[str, str] | None:
    """``(service, namespace)`` of a cluster DNS name, ``None`` for any other host."""
    m = SERVICE_NAME.match(host.lower())
    return (m.group("service"), m.group("namespace")) if m else None


def search_namespace(headers: list[tuple[str, str]]) -> str | None:
    """The namespace a pod's client names as the user of its proxy credentials (``Proxy-Authorization:
    Basic``), ``None`` when it names none or no valid namespace (a DNS label)."""
    for key, value in headers:
        if key.lower() != "proxy-authorization":
            continue
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user = base64.b64decode(token.strip(), validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return None
        return user if _DNS_LABEL.match(user) else None
    return None


def ready_endpoints(service: dict[str, Any], pods: list[dict[str, Any]], port: int) -> list[tuple[str, int]]:
    """The ready endpoints of ``service`` (a Service as JSON) for its ``port``, as an EndpointSlice
    lists them: pods that are Running, Ready and not terminating, with an address, on the
    container port the Service port's ``targetPort`` names (a number, or a container port's name).

    ``pods``: the pods the Service's selector matches (the caller lists them). Raises
    :class:`Unresolved` when the Service has no such port.
    """
    spec = service.get("spec") or {}
    ports = [p for p in spec.get("ports") or [] if int(p.get("port", 0)) == port]
    meta = service.get("metadata") or {}
    if not ports:
        raise Unresolved(f"Service {meta.get('namespace')}/{meta.get('name')} has no port {port}")
    target = ports[0].get("targetPort", port)
    address = (meta.get("annotations") or {}).get(ADDRESS_ANNOTATION)
    if not spec.get("selector"):
        if not address:
            return []
        ahost, _, aport = address.rpartition(":")
        return [(ahost, int(aport))]
    out = []
    for pod in pods:
        st = pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
        if pod["metadata"].get("deletionTimestamp") or st.get("phase") != "Running" or not ready \
                or not st.get("podIP"):
            continue
        if isinstance(target, int) or str(target).isdigit():
            out.append((st["podIP"], int(target)))
            continue
        named = [p["containerPort"] for c in pod["spec"].get("containers") or [] for p in c.get("ports") or []
                 if p.get("name") == target]
        out += [(st["podIP"], named[0])] if named else []
    return sorted(out)


class Resolver:
    """Reads Services, their pods and the routes (Ingresses, HTTPRoutes) from the apiserver as
    JSON, each at most once a second."""

    ROUTES_TTL = 1.0  # seconds: a weight the operator writes, a pod that goes, take effect within this

    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(api)
        self.net = client.NetworkingV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self._turn = itertools.count()
        self._routes: tuple[float, list[dict[str, Any]], list[dict[str, Any]]] = (-1e9, [], [])
        self._services: dict[tuple[str, str], tuple[float, dict[str, Any], list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    def resolve(self, host: str, port: int, path: str = "/", search: str | None = None) -> Target:
        """The endpoints of ``host:port``: one ready pod of the Service (round robin); for an
        Ingress' or HTTPRoute's host on port 80, a ready pod of the Service the route picks for
        ``path`` (canary weights included); for any other host, the host itself. ``search``: the
        namespace of the pod asking, for short names (``<service>``, ``<service>.<namespace>``).
        Raises :class:`Unresolved` for an unknown Service or port."""
        named = parse_service_host(host)
        if named is not None:
            return self._service(host, named[1], named[0], port)
        labels = host.lower().rstrip(".").split(".")
        if search is not None and len(labels) == 1 and _DNS_LABEL.match(labels[0]):
            return self._service(host, search, labels[0], port)
        if search is not None and len(labels) == 2 and all(_DNS_LABEL.match(x) for x in labels):
            with contextlib.suppress(Unresolved):
                return self._service(host, labels[1], labels[0], port)
        if port == 80:
            backend = self.route(host, path)
            if backend is not None:
                return self._service(f"{host} ({backend.via})", backend.namespace, backend.service, backend.port)
        return Target(host, port, ((host, port),), direct=True)

    def route(self, host: str, path: str) -> Backend | None:
        """The backend an ingress controller (nginx) or a gateway picks for ``host`` and ``path``."""
        ingresses, httproutes = self._route_objects()
        draw = random.random()
        return route_nginx(ingresses, host.lower(), path, draw) or route_gateway(httproutes, host.lower(), path, draw)

    def _route_objects(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from kubernetes.client.exceptions import ApiException

        from rollguard.kube.client import raw_json

        with self._lock:
            at, ingresses, httproutes = self._routes
            if time.monotonic() - at < self.ROUTES_TTL:
                return ingresses, httproutes
            ingresses = raw_json(self.net.list_ingress_for_all_namespaces(_preload_content=False))["items"]
            try:
                httproutes = raw_json(self.custom.list_cluster_custom_object(
                    "gateway.networking.k8s.io", "v1", "httproutes", _preload_content=False))["items"]
            except ApiException as e:
                if e.status != 404:  # 404: the Gateway API CRDs are not installed
                    raise
                httproutes = []
            self._routes = (time.monotonic(), ingresses, httproutes)
            return ingresses, httproutes

    def _service(self, host: str, ns: str, name: str, port: int | str) -> Target:
        svc, pods = self._service_and_pods(host, ns, name)
        if isinstance(port, str):  # an Ingress backend may name the Service port
            numbers = [int(p["port"]) for p in svc["spec"].get("ports") or [] if p.get("name") == port]
            if not numbers:
                raise Unresolved(f"{host}: Service {ns}/{name} has no port named {port!r}")
            port = numbers[0]
        eps = ready_endpoints(svc, pods, port)
        if eps:  # spread connections over the endpoints, as kube-proxy does
            turn = next(self._turn) % len(eps)
            eps = eps[turn:] + eps[:turn]
        return Target(host, port, tuple(eps))

    def _service_and_pods(self, host: str, ns: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The Service and the pods its selector matches, read at most once a second (kube-proxy
        follows them with a watch: it too sends to what it saw last, for an instant)."""
        from kubernetes.client.exceptions import ApiException

        from rollguard.kube.client import raw_json

        with self._lock:
            cached = self._services.get((ns, name))
        if cached is not None and time.monotonic() - cached[0] < self.ROUTES_TTL:
            return cached[1], cached[2]
        try:
            svc = raw_json(self.core.read_namespaced_service(name, ns, _preload_content=False))
        except ApiException as e:
            if e.status == 404:
                raise Unresolved(f"{host}: no Service {ns}/{name}") from None
            raise
        selector = ",".join(f"{k}={v}" for k, v in (svc["spec"].get("selector") or {}).items())
        pods = raw_json(self.core.list_namespaced_pod(ns, label_selector=selector, _preload_content=False))["items"] \
            if selector else []
        with self._lock:
            self._services[(ns, name)] = (time.monotonic(), svc, pods)
        return svc, pods


def split_request_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """``(method, target, version, headers)`` of a request head (``\\r\\n``-separated, no body).
    Raises ValueError for a malformed one."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line {line!r}")
        headers.append((key.strip(), value.strip()))
    return method, target, version, headers


def origin_request(method: str, target: str, version: str, headers: list[tuple[str, str]]) -> tuple[str, int, bytes]:
    """For a proxy request in absolute form (``GET http://host:port/path HTTP/1.1``): the host,
    the port (80 by default) and the request head to send to the origin, in origin form, with
    the proxy's own headers dropped and ``Connection: close``."""
    url = urlsplit(target)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"not an absolute http URL: {target!r}")
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    drop = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}
    kept = [(k, v) for k, v in headers if k.lower() not in drop]
    head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept) + "Connection: close\r\n\r\n"
    return url.hostname, url.port or 80, head.encode("latin-1")


def _answer(sock: socket.socket, status: str, text: str) -> None:
    body = (text + "\n").encode()
    with contextlib.suppress(OSError):
        sock.sendall(f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + body)


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until one side closes (or stays silent for IDLE_TIMEOUT), then close
    both: the origin closes after its answer (``Connection: close``), a tunnel when either does."""
    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
    for s in (client, upstream):
        s.settimeout(IDLE_TIMEOUT)
    ahead = threading.Thread(target=pump, args=(client, upstream), daemon=True)
    ahead.start()
    pump(upstream, client)
    ahead.join(CONNECT_TIMEOUT)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # `up` right after `down` gets its port back
    daemon_threads = True


class ServiceProxy:
    """The proxy server: ``start()``, ``url`` (set it as ``http_proxy``), ``stop()``."""

    def __init__(self, kubeconfig: Path, port: int = 0) -> None:
        self.resolver = Resolver(kubeconfig)
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._handle(self.request)

        self.server = _Server(("127.0.0.1", port), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> ServiceProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True, name="svcproxy").start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(30)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = client.recv(65536)
                if not chunk or len(buf) > MAX_HEAD:
                    return
                buf += chunk
        except OSError:
            return
        head, _, rest = buf.partition(b"\r\n\r\n")
        try:
            method, target, version, headers = split_request_head(head)
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                send, port_n, path = rest, int(port), "/"
            else:
                host, port_n, origin_head = origin_request(method, target, version, headers)
                send, path = origin_head + rest, urlsplit(target).path or "/"
        except ValueError as e:
            _answer(client, "400 Bad Request", f"rollguard local service proxy: {e}")
            return
        try:
            where = self.resolver.resolve(host, port_n, path, search_namespace(headers))
        except Unresolved as e:
            _answer(client, "502 Bad Gateway", f"rollguard local service proxy: {e}")
            return
        except Exception as e:  # the apiserver away: the name cannot be resolved now
            _answer(client, "502 Bad Gateway", f"rollguard local service proxy: {host}: {type(e).__name__}: {e}")
            return
        upstream = None
        for address in where.endpoints:
            with contextlib.suppress(OSError):
                upstream = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
                break
        if upstream is None:
            if where.direct:  # as any forward proxy answers a host that refuses
                _answer(client, "502 Bad Gateway",
                        f"rollguard local service proxy: {host}:{port_n} refused the connection")
            # a Service with no ready endpoint, or none listening: refused, as kube-proxy leaves it
            return
        with upstream:
            try:
                if method == "CONNECT":
                    client.sendall(f"{version} 200 Connection established\r\n\r\n".encode())
                if send:
                    upstream.sendall(send)
            except OSError:
                return
            _relay(client, upstream)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rollguard.localenv.svcproxy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubeconfig", type=Path, required=True, help="the local cluster's kubeconfig")
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = ap.parse_args(argv)
    proxy = ServiceProxy(args.kubeconfig, args.port)
    print(f"service proxy at {proxy.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        proxy.server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

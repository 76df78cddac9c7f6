"""The service proxy's reading of names, Services and requests (no cluster needed)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from rollguard.localenv.svcproxy import (
    ADDRESS_ANNOTATION,
    Resolver,
    Unresolved,
    origin_request,
    parse_service_host,
    ready_endpoints,
    search_namespace,
    split_request_head,
)


def pod(ip: str, *, phase: str = "Running", ready: bool = True, deleting: bool = False,
        ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": f"p-{ip}", **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})},
            "spec": {"containers": [{"name": "c", "ports": ports or [{"name": "http", "containerPort": 8000}]}]},
            "status": {"phase": phase, "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def svc(target: int | str, *, selector: bool = True, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "annotations": annotations or {}},
            "spec": {**({"selector": {"app": "web"}} if selector else {}),
                     "ports": [{"port": 80, "targetPort": target}]}}


def test_only_cluster_dns_names_are_services() -> None:
    assert parse_service_host("web.shop.svc") == ("web", "shop")
    assert parse_service_host("Web.Shop.svc.cluster.local.") == ("web", "shop")
    for other in ("web", "web.shop", "web.shop.svc.example.com", "127.0.0.1", "example.org", "a.b.c.svc"):
        assert parse_service_host(other) is None, other


def test_endpoints_are_the_ready_pods_on_the_named_target_port() -> None:
    live = [pod("127.10.0.2"), pod("127.10.0.3", ports=[{"name": "metrics", "containerPort": 9100}]),
            pod("127.10.0.4", ready=False), pod("127.10.0.5", deleting=True), pod("127.10.0.6", phase="Pending")]
    assert ready_endpoints(svc("http"), live, 80) == [("127.10.0.2", 8000)]
    assert ready_endpoints(svc(8080), live, 80) == [("127.10.0.2", 8080), ("127.10.0.3", 8080)]
    assert ready_endpoints(svc("8080"), live, 80) == [("127.10.0.2", 8080), ("127.10.0.3", 8080)]
    with pytest.raises(Unresolved, match="Service shop/web has no port 81"):
        ready_endpoints(svc("http"), live, 81)


def test_a_selectorless_service_names_its_local_address_or_has_none() -> None:
    assert ready_endpoints(svc(9090, selector=False, annotations={ADDRESS_ANNOTATION: "127.0.0.1:4321"}), [], 80) \
        == [("127.0.0.1", 4321)]
    assert ready_endpoints(svc(9090, selector=False), [], 80) == []


def test_a_proxy_request_is_sent_in_origin_form_without_the_proxys_headers() -> None:
    head = (b"GET http://web.shop.svc:8000/healthz?x=1 HTTP/1.1\r\nHost: web.shop.svc:8000\r\n"
            b"Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nAccept: */*")
    host, port, out = origin_request(*split_request_head(head))
    assert (host, port) == ("web.shop.svc", 8000)
    assert out == (b"GET /healthz?x=1 HTTP/1.1\r\nHost: web.shop.svc:8000\r\nAccept: */*\r\n"
                   b"Connection: close\r\n\r\n")
    assert origin_request("GET", "http://web.shop.svc", "HTTP/1.1", [])[:2] == ("web.shop.svc", 80)
    for bad in ("/healthz", "https://web.shop.svc/"):
        with pytest.raises(ValueError, match="not an absolute http URL"):
            origin_request("GET", bad, "HTTP/1.1", [])
    with pytest.raises(ValueError, match="malformed header"):
        split_request_head(b"GET http://a.b.svc/ HTTP/1.1\r\nno colon here")


def basic(user_pass: str) -> list[tuple[str, str]]:
    return [("Host", "web"), ("Proxy-Authorization", "Basic " + base64.b64encode(user_pass.encode()).decode())]


def test_a_pods_proxy_credentials_name_its_namespace_for_short_names() -> None:
    # as the pod runner sets http_proxy: http://<namespace>:<pod>@127.0.0.1:<port>
    assert search_namespace(basic("shop:web-7d9f-abc")) == "shop"
    assert search_namespace(basic("shop:")) == "shop"
    # no credentials (a process outside the cluster), or no namespace in them: no search path
    assert search_namespace([("Host", "web")]) is None
    assert search_namespace(basic("Shop_1:x")) is None
    assert search_namespace(basic("-shop:x")) is None
    assert search_namespace([("Proxy-Authorization", "Bearer abc")]) is None
    assert search_namespace([("Proxy-Authorization", "Basic not base64!")]) is None


class _OneService(Resolver):
    """A Resolver whose apiserver has one Service, shop/web, with one ready pod (no routes)."""

    def __init__(self) -> None:  # no kubeconfig: the reads below stand for the apiserver's
        import itertools
        self._turn = itertools.count()

    def _service_and_pods(self, host: str, ns: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if (ns, name) != ("shop", "web"):
            raise Unresolved(f"{host}: no Service {ns}/{name}")
        return svc("http"), [pod("10.0.0.5")]

    def _route_objects(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return [], []


@pytest.mark.parametrize("host, search", [("web", "shop"), ("web.shop", "shop"), ("web.shop", "other"),
                                          ("web.shop.svc.cluster.local", None)])
def test_a_pods_short_names_reach_the_service(host: str, search: str | None) -> None:
    target = _OneService().resolve(host, 80, search=search)
    assert (target.endpoints, target.direct) == ((("10.0.0.5", 8000),), False)


def test_a_two_label_name_that_is_no_service_is_the_host_itself() -> None:
    """``<a>.<b>`` is a Service in namespace ``b`` only if there is one (as the pod's DNS search
    list tries it first); otherwise it is a host such as ``example.org``, reached directly."""
    target = _OneService().resolve("example.org", 443, search="shop")
    assert (target.endpoints, target.direct) == ((("example.org", 443),), True)


def test_a_one_label_name_that_is_no_service_is_unresolved() -> None:
    with pytest.raises(Unresolved, match="no Service shop/db"):
        _OneService().resolve("db", 5432, search="shop")

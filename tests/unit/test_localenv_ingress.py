"""How the local cluster's ingress controller and gateway pick a backend for a request (the
rules ingress-nginx and the Gateway API give; no cluster needed)."""

from __future__ import annotations

from typing import Any

from rollguard.localenv.ingress import Backend, route_gateway, route_nginx


def picked(backend: Backend | None) -> str:
    assert backend is not None
    return backend.service


def ingress(name: str, host: str, service: str, *, path: str = "/", path_type: str = "Prefix",
            weight: int | None = None, total: int | None = None, cls: str | None = "nginx",
            port: dict[str, Any] | None = None) -> dict[str, Any]:
    ann = {} if weight is None else {"nginx.ingress.kubernetes.io/canary": "true",
                                     "nginx.ingress.kubernetes.io/canary-weight": str(weight)}
    if total is not None:
        ann["nginx.ingress.kubernetes.io/canary-weight-total"] = str(total)
    return {"metadata": {"name": name, "namespace": "shop", "annotations": ann},
            "spec": {**({"ingressClassName": cls} if cls else {}),
                     "rules": [{"host": host, "http": {"paths": [
                         {"path": path, "pathType": path_type,
                          "backend": {"service": {"name": service, "port": port or {"number": 8000}}}}]}}]}}


def test_the_main_ingress_serves_its_host_and_the_longest_matching_path() -> None:
    ings = [ingress("web", "web.example", "web"), ingress("api", "web.example", "api", path="/api"),
            ingress("other", "other.example", "other")]
    assert route_nginx(ings, "web.example", "/run", 0.5) == Backend("shop", "web", 8000, "Ingress shop/web")
    assert picked(route_nginx(ings, "web.example", "/api/v1", 0.5)) == "api"
    assert picked(route_nginx(ings, "web.example", "/apis", 0.5)) == "web"
    assert route_nginx(ings, "nobody.example", "/", 0.5) is None
    assert route_nginx([ingress("web", "web.example", "web", cls="traefik")], "web.example", "/", 0.5) is None
    exact = [ingress("web", "web.example", "web", path="/run", path_type="Exact")]
    assert route_nginx(exact, "web.example", "/run", 0.5) is not None
    assert route_nginx(exact, "web.example", "/run/x", 0.5) is None


def test_a_canary_ingress_takes_its_weight_of_the_requests() -> None:
    ings = [ingress("web", "web.example", "web"), ingress("web-canary", "web.example", "web-canary", weight=30)]
    picks = [picked(route_nginx(ings, "web.example", "/", i / 100)) for i in range(100)]
    assert picks.count("web-canary") == 30 and picks.count("web") == 70
    assert {picked(route_nginx([ings[0], ingress("c", "web.example", "c", weight=0)], "web.example", "/", d))
            for d in (0.0, 0.99)} == {"web"}
    assert picked(route_nginx([ings[0], ingress("c", "web.example", "c", weight=100)], "web.example", "/",
                       0.999)) == "c"
    assert picked(route_nginx([ings[0], ingress("c", "web.example", "c", weight=1, total=4)], "web.example", "/",
                       0.24)) == "c"
    # a canary Ingress alone serves nothing: ingress-nginx needs the main one
    assert route_nginx([ings[1]], "web.example", "/", 0.0) is None


def test_a_named_service_port_is_kept_for_the_service_to_resolve() -> None:
    ing = ingress("web", "web.example", "web", port={"name": "http"})
    assert route_nginx([ing], "web.example", "/", 0.5) == Backend("shop", "web", "http", "Ingress shop/web")


def route(hostnames: list[str], refs: list[dict[str, Any]],
          matches: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"hostnames": hostnames, "rules": [{**({"matches": matches} if matches else {}),
                                                        "backendRefs": refs}]}}


def test_an_httproute_splits_by_the_backend_weights() -> None:
    r = route(["web.example"], [{"name": "web", "port": 8000, "weight": 75},
                                {"name": "web-canary", "port": 8000, "weight": 25}])
    picks = [picked(route_gateway([r], "web.example", "/", i / 100)) for i in range(100)]
    assert picks.count("web") == 75 and picks.count("web-canary") == 25
    assert route_gateway([r], "other.example", "/", 0.1) is None
    only = route(["web.example"], [{"name": "web", "port": 8000}])
    assert route_gateway([only], "web.example", "/x", 0.99) == Backend("shop", "web", 8000, "HTTPRoute shop/web")
    zero = route(["web.example"], [{"name": "web", "port": 8000, "weight": 0}])
    assert route_gateway([zero], "web.example", "/", 0.5) is None
    api = route(["web.example"], [{"name": "api", "port": 8000}], matches=[{"path": {"type": "PathPrefix",
                                                                                      "value": "/api"}}])
    assert picked(route_gateway([api], "web.example", "/api/x", 0.5)) == "api"
    assert route_gateway([api], "web.example", "/web", 0.5) is None

"""The local cluster's stand-in for an ingress controller and a gateway: reading a canary route
as ingress-nginx and a Gateway API implementation read it. The demo and the tests' traffic send
by :func:`read_nginx_canary`; the service proxy (:mod:`rollguard.localenv.svcproxy`) answers an
Ingress' or HTTPRoute's host name with :func:`route_nginx` / :func:`route_gateway`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from rollguard.operator.routers.nginx import CANARY, CANARY_WEIGHT

# ingress-nginx's scale for canary-weight (default 100)
CANARY_WEIGHT_TOTAL = "nginx.ingress.kubernetes.io/canary-weight-total"


def read_nginx_canary(net: Any, namespace: str, name: str) -> tuple[int, str | None]:
    """``(weight percent, canary Service)`` of the canary Ingress ``name`` as ingress-nginx reads
    it; ``(0, None)`` when it does not exist or is not marked canary. ``net`` is a
    ``NetworkingV1Api``; other API errors are raised."""
    try:
        ing = net.read_namespaced_ingress(name, namespace)
    except ApiException as e:
        if e.status == 404:
            return 0, None
        raise
    ann = ing.metadata.annotations or {}
    if ann.get(CANARY) != "true":
        return 0, None
    return int(ann.get(CANARY_WEIGHT) or 0), ing.spec.rules[0].http.paths[0].backend.service.name


@dataclass(frozen=True)
class Backend:
    """Where an ingress controller sends one request: a Service port in a namespace, and which
    object chose it (``Ingress ns/name`` or ``HTTPRoute ns/name``, for messages)."""

    namespace: str
    service: str
    port: int | str
    via: str


def _path_matches(path_type: str, rule_path: str, path: str) -> int:
    """The length of ``rule_path`` when it matches ``path`` (longest match wins), else -1.
    ``Prefix`` matches whole path elements, as the Ingress API defines it."""
    if path_type == "Exact":
        return len(rule_path) if path == rule_path else -1
    prefix = rule_path.rstrip("/")
    return len(prefix) if path == prefix or path.startswith(prefix + "/") or not prefix else -1


def _ingress_backend(ing: dict[str, Any], host: str, path: str) -> tuple[int, dict[str, Any]] | None:
    best: tuple[int, dict[str, Any]] | None = None
    for rule in (ing.get("spec") or {}).get("rules") or []:
        if rule.get("host") != host:
            continue
        for p in (rule.get("http") or {}).get("paths") or []:
            n = _path_matches(p.get("pathType", "Prefix"), p.get("path") or "/", path)
            if n >= 0 and (best is None or n > best[0]):
                best = (n, p["backend"]["service"])
    return best


def route_nginx(ingresses: list[dict[str, Any]], host: str, path: str, draw: float) -> Backend | None:
    """The backend ingress-nginx picks for ``host`` and ``path`` among ``ingresses`` (JSON, of any
    namespace): the main Ingress' longest matching path, or, with probability
    ``canary-weight / canary-weight-total`` (default total 100), the backend of the canary Ingress
    (annotation ``nginx.ingress.kubernetes.io/canary: "true"``) for the same host. ``draw``: a
    number in [0, 1) (``random.random()``). Only weight-based canaries; header and cookie rules are
    not read. ``None`` when no Ingress of class nginx (or without a class) serves the host."""
    main = canary = None
    for ing in ingresses:
        cls = (ing.get("spec") or {}).get("ingressClassName")
        if cls not in (None, "nginx"):
            continue
        found = _ingress_backend(ing, host, path)
        if found is None:
            continue
        ann = (ing.get("metadata") or {}).get("annotations") or {}
        if ann.get(CANARY) == "true":
            canary = canary or (ing, found[1], ann)
        elif main is None or found[0] > main[0]:
            main = (found[0], ing, found[1])
    if main is None:
        return None
    ing, svc = main[1], main[2]
    if canary is not None:
        weight = float(canary[2].get(CANARY_WEIGHT) or 0)
        total = float(canary[2].get(CANARY_WEIGHT_TOTAL) or 100)
        if total > 0 and draw < weight / total:
            ing, svc = canary[0], canary[1]
    meta = ing["metadata"]
    port = svc.get("port") or {}
    return Backend(meta.get("namespace", "default"), svc["name"], port.get("number") or port.get("name") or 80,
                   f"Ingress {meta.get('namespace', 'default')}/{meta['name']}")


def route_gateway(routes: list[dict[str, Any]], host: str, path: str, draw: float) -> Backend | None:
    """The backend a Gateway API implementation picks for ``host`` and ``path`` among HTTPRoutes
    (JSON, any namespace): the first route whose ``hostnames`` include ``host``, its first rule
    whose path matches (a rule without matches matches everything), then one of the rule's
    Service backendRefs by ``weight`` (default 1; ``draw`` in [0, 1) picks). ``None`` when no
    route serves the host or the rule's weights are all 0."""
    for route in routes:
        spec = route.get("spec") or {}
        if host not in (spec.get("hostnames") or []):
            continue
        for rule in spec.get("rules") or []:
            matches = [(m.get("path") or {}) for m in rule.get("matches") or []]
            # PathPrefix and Exact; a RegularExpression match is not read (it never matches here)
            kinds = {"PathPrefix": "Prefix", "Exact": "Exact"}
            if matches and not any(m.get("type", "PathPrefix") in kinds
                                   and _path_matches(kinds[m.get("type", "PathPrefix")], m.get("value", "/"), path) >= 0
                                   for m in matches):
                continue
            refs = [r for r in rule.get("backendRefs") or [] if r.get("kind", "Service") == "Service"]
            total = sum(int(r.get("weight", 1)) for r in refs)
            if total <= 0:
                return None
            point, meta = draw * total, route["metadata"]
            for r in refs:
                point -= int(r.get("weight", 1))
                if point < 0:
                    ns = r.get("namespace") or meta.get("namespace", "default")
                    return Backend(ns, r["name"], r.get("port", 80),
                                   f"HTTPRoute {meta.get('namespace', 'default')}/{meta['name']}")
        return None
    return None

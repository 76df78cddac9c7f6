"""The local cluster's stand-in for an ingress controller: reading a canary route as
ingress-nginx reads it (the demo and the tests' traffic both send by it)."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from rollguard.operator.routers.nginx import CANARY, CANARY_WEIGHT


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

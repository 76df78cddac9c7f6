"""nginx-ingress: a ``<ingress>-canary`` Ingress with the canary annotations.

ingress-nginx sends ``canary-weight`` percent of the stable Ingress's traffic (same hosts and
paths) to the canary Ingress's backends; deleting it sends everything back to stable.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from kubernetes import client

from rollguard.kube import names
from rollguard.kube.client import as_dict, delete_if_present, get_or_none
from rollguard.operator.routers.base import RouteTarget

CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def canary_ingress_name(stable: str) -> str:
    return names.canary_name(stable)


def canary_ingress(stable: dict[str, Any], target: RouteTarget, weight: int) -> dict[str, Any]:
    """The canary Ingress for ``stable`` (a JSON Ingress): same rules, backends on the canary Service."""

    def swap(backend: dict[str, Any]) -> None:
        svc = backend.get("service")
        if svc and svc.get("name") == target.stable_service:
            svc["name"] = target.canary_service

    spec = copy.deepcopy(stable.get("spec", {}))
    spec.pop("tls", None)  # TLS is terminated by the stable Ingress's host; nginx shares it
    if "defaultBackend" in spec:
        swap(spec["defaultBackend"])
    for rule in spec.get("rules", []):
        for path in (rule.get("http") or {}).get("paths", []):
            swap(path.get("backend", {}))
    meta: dict[str, Any] = {
        "name": canary_ingress_name(stable["metadata"]["name"]),
        "namespace": target.namespace,
        "labels": {names.TRACK_LABEL: names.TRACK_CANARY},
        "annotations": {CANARY: "true", CANARY_WEIGHT: str(weight)},
    }
    if target.owner:
        meta["ownerReferences"] = [target.owner]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


class NginxRouter:
    def __init__(self, api: client.ApiClient, target: RouteTarget, ingress: str) -> None:
        self.net = client.NetworkingV1Api(api)
        self.target, self.ingress = target, ingress
        self.name = canary_ingress_name(ingress)

    def _read(self, name: str) -> dict[str, Any] | None:
        obj = get_or_none(self.net.read_namespaced_ingress, name, self.target.namespace)
        return None if obj is None else as_dict(self.net.api_client, obj)

    def set_weight(self, weight: int) -> None:
        current = self._read(self.name)
        if current is None:
            if weight == 0:
                return  # no canary Ingress is weight 0
            stable = self._read(self.ingress)
            if stable is None:
                raise LookupError(f"traffic.ingress.name: Ingress {self.ingress} not found")
            body = cast(Any, canary_ingress(stable, self.target, weight))  # the client takes plain JSON too
            self.net.create_namespaced_ingress(self.target.namespace, body)
            return
        if current["metadata"].get("annotations", {}).get(CANARY_WEIGHT) != str(weight):
            self.net.patch_namespaced_ingress(self.name, self.target.namespace, {
                "metadata": {"annotations": {CANARY: "true", CANARY_WEIGHT: str(weight)}}})

    def verify(self) -> None:
        if self._read(self.ingress) is None:
            raise LookupError(f"traffic.ingress.name: Ingress {self.ingress} not found")

    def get_weight(self) -> int:
        current = self._read(self.name)
        if current is None:
            return 0
        try:
            return int(current["metadata"].get("annotations", {}).get(CANARY_WEIGHT, "0"))
        except ValueError:
            return 0

    def remove(self) -> None:
        delete_if_present(self.net.delete_namespaced_ingress, self.name, self.target.namespace)

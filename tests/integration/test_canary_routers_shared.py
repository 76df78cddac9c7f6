"""The traffic routers on a real apiserver: two rollouts on one Ingress or one HTTPRoute each
move only their own route, and the objects rollguard did not create end exactly as they began."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rollguard.kube.client import api_client
from rollguard.operator.routers.base import RouteTarget
from rollguard.operator.routers.gateway_api import GatewayAPIRouter
from rollguard.operator.routers.nginx import CANARY_WEIGHT, NginxRouter
from tests.integration.test_canary_gateway_api import httproute_crd
from tests.support.kube import Kubectl

pytestmark = pytest.mark.integration
__all__ = ["httproute_crd"]  # the session fixture, used here too


def owner(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    """An owner reference to a real object (a ConfigMap standing in for a rollout): the garbage
    collector removes what points at an owner that does not exist."""
    kubectl.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}, namespace=namespace)
    uid = kubectl.get_json("configmap", name, namespace=namespace)["metadata"]["uid"]
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": uid,
            "controller": True, "blockOwnerDeletion": False}


def shop_ingress() -> dict[str, Any]:
    def path(p: str, svc: str) -> dict[str, Any]:
        return {"path": p, "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": 80}}}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "shop", "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "shop.example", "http": {"paths": [
                path("/api", "api"), path("/web", "web")]}}]}}


def stripped(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what the apiserver changes on every write."""
    meta = {k: v for k, v in obj["metadata"].items()
            if k not in ("resourceVersion", "generation", "managedFields")}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def test_two_rollouts_on_one_ingress_keep_their_own_canary_ingress(
        kubectl: Kubectl, kubeconfig: Path, namespace: str) -> None:
    kubectl.apply(shop_ingress(), namespace=namespace)
    before = stripped(kubectl.get_json("ingress", "shop", namespace=namespace))
    api = api_client(str(kubeconfig))
    a = NginxRouter(api, RouteTarget(namespace, "api", "api-canary", owner(kubectl, namespace, "api-roll")), "shop")
    w = NginxRouter(api, RouteTarget(namespace, "web", "web-canary", owner(kubectl, namespace, "web-roll")), "shop")
    a.verify()
    w.verify()
    a.set_weight(20)
    w.set_weight(50)
    a.set_weight(30)
    assert (a.get_weight(), w.get_weight()) == (30, 50)
    web = kubectl.get_json("ingress", "web-canary", namespace=namespace)
    assert [p["path"] for p in web["spec"]["rules"][0]["http"]["paths"]] == ["/web"]
    assert web["metadata"]["annotations"][CANARY_WEIGHT] == "50"
    a.remove()  # the api rollout ends first: the web rollout's route stays
    assert not kubectl.exists("ingress", "api-canary", namespace=namespace)
    assert w.get_weight() == 50
    w.remove()
    assert not kubectl.exists("ingress", "web-canary", namespace=namespace)
    assert stripped(kubectl.get_json("ingress", "shop", namespace=namespace)) == before


def test_a_canary_ingress_name_taken_by_another_is_named_and_never_touched(
        kubectl: Kubectl, kubeconfig: Path, namespace: str) -> None:
    kubectl.apply(shop_ingress(), namespace=namespace)
    taken = shop_ingress()
    taken["metadata"] = {"name": "api-canary", "labels": {"team": "api"}}
    kubectl.apply(taken, namespace=namespace)
    r = NginxRouter(api_client(str(kubeconfig)),
                    RouteTarget(namespace, "api", "api-canary", owner(kubectl, namespace, "api-roll")), "shop")
    with pytest.raises(LookupError, match=r"canary Ingress api-canary .* not this rollout's"):
        r.verify()
    with pytest.raises(LookupError, match="api-canary"):
        r.set_weight(10)
    r.set_weight(0)
    r.remove()
    assert kubectl.get_json("ingress", "api-canary", namespace=namespace)["metadata"]["labels"] == {"team": "api"}


def test_an_httproute_with_other_backends_is_left_exactly_as_it_was(
        httproute_crd: None, kubectl: Kubectl, kubeconfig: Path, namespace: str) -> None:
    kubectl.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                   "metadata": {"name": "worker", "annotations": {"team": "jobs"}},
                   "spec": {"parentRefs": [{"name": "gw"}], "rules": [
                       {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [{"name": "worker", "port": 80, "weight": 90},
                                        {"name": "worker-legacy", "port": 80, "weight": 10}]}]}},
                  namespace=namespace)
    before = stripped(kubectl.get_json("httproute", "worker", namespace=namespace))
    r = GatewayAPIRouter(api_client(str(kubeconfig)), RouteTarget(namespace, "worker", "worker-canary"), "worker")
    r.verify()
    for weight in (20, 50, 100):
        r.set_weight(weight)
        assert r.get_weight() == weight
        refs = kubectl.get_json("httproute", "worker", namespace=namespace)["spec"]["rules"][0]["backendRefs"]
        assert {x["name"]: x["weight"] for x in refs}["worker-legacy"] == 10
    r.set_weight(0)
    assert stripped(kubectl.get_json("httproute", "worker", namespace=namespace)) == before
    r.set_weight(50)  # a rollback at 50 %
    r.remove()
    assert stripped(kubectl.get_json("httproute", "worker", namespace=namespace)) == before

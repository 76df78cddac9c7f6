"""Gateway API: weights on the backendRefs of one HTTPRoute rule.

The stable Service's backendRef gets ``100 - w``, a backendRef to the canary Service gets ``w``;
weight 0 removes the canary backendRef and gives the stable its weight back.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, cast

from kubernetes import client

from rollguard.kube.client import get_or_none
from rollguard.operator.routers.base import RouteTarget

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


def _is(ref: dict[str, Any], name: str) -> bool:
    return bool(ref.get("name") == name and ref.get("kind", "Service") == "Service"
                and ref.get("group", "") in ("", "core"))


def weighted_route(route: dict[str, Any], target: RouteTarget, rule_index: int, weight: int,
                   port: int | None = None) -> dict[str, Any]:
    """``route`` with rule ``rule_index`` sending ``weight`` % to the canary Service."""
    out = copy.deepcopy(route)
    rules = out.get("spec", {}).get("rules", [])
    if rule_index >= len(rules):
        raise LookupError(f"traffic.httpRoute.ruleIndex: HTTPRoute has {len(rules)} rules, no index {rule_index}")
    refs: list[dict[str, Any]] = rules[rule_index].setdefault("backendRefs", [])
    stable = next((r for r in refs if _is(r, target.stable_service)), None)
    if stable is None:
        raise LookupError(f"HTTPRoute rule {rule_index} has no backendRef to Service {target.stable_service}")
    others = [r for r in refs if not _is(r, target.canary_service)]
    if weight == 0:
        stable["weight"] = 1 if len(others) == 1 else stable.get("weight", 1) or 1
        rules[rule_index]["backendRefs"] = others
        return out
    stable["weight"] = 100 - weight
    canary = {k: v for k, v in stable.items() if k not in ("name", "weight")}
    canary.update({"name": target.canary_service, "weight": weight})
    if port is not None:
        canary["port"] = port
    rules[rule_index]["backendRefs"] = [*others, canary]
    return out


def route_weight(route: dict[str, Any], target: RouteTarget, rule_index: int) -> int:
    rules = route.get("spec", {}).get("rules", [])
    if rule_index >= len(rules):
        return 0
    for r in rules[rule_index].get("backendRefs", []):
        if _is(r, target.canary_service):
            return int(r.get("weight", 1))
    return 0


class GatewayAPIRouter:
    def __init__(self, api: client.ApiClient, target: RouteTarget, route: str, rule_index: int = 0,
                 port: int | None = None) -> None:
        self.co = client.CustomObjectsApi(api)
        self.target, self.route, self.rule_index, self.port = target, route, rule_index, port

    def _get(self) -> dict[str, Any]:
        obj = get_or_none(self.co.get_namespaced_custom_object, GROUP, VERSION, self.target.namespace, PLURAL,
                          self.route)
        if obj is None:
            raise LookupError(f"traffic.httpRoute.name: HTTPRoute {self.route} not found")
        return cast(dict[str, Any], obj)

    def set_weight(self, weight: int) -> None:
        route = self._get()
        new = weighted_route(route, self.target, self.rule_index, weight, self.port)
        if new != route:
            # replace carries resourceVersion: a concurrent edit makes this fail and the next tick retries
            self.co.replace_namespaced_custom_object(GROUP, VERSION, self.target.namespace, PLURAL, self.route, new)

    def verify(self) -> None:
        weighted_route(self._get(), self.target, self.rule_index, 0)  # raises LookupError naming the field

    def get_weight(self) -> int:
        return route_weight(self._get(), self.target, self.rule_index)

    def remove(self) -> None:
        with contextlib.suppress(LookupError):
            self.set_weight(0)

"""Gateway API: weights on the backendRefs of one HTTPRoute rule.

Only two weights move: the stable Service's backendRef and a backendRef to the canary Service
the router adds next to it. The canary takes its share out of the stable's own weight, so every
other backend of the rule keeps its weight and its share of the traffic. The stable's weight as
it was before the rollout is recorded on the route (annotation
:data:`~rollguard.kube.names.ROUTE_WEIGHTS_ANNOTATION`, one entry per rule and canary Service)
in the same write that first moves it; weight 0 puts it back from there, removes the canary
backendRef and the record, and leaves the route exactly as it was.

Weights are whole numbers. When the stable is the rule's only weighted backend the split is
written on a scale of 100 (``100 - w`` / ``w``); beside other weighted backends the stable's own
weight ``W`` is split (``W - c`` / ``c``, ``c = round(W * w / 100)``), which follows every percent
within one point only when ``W >= 50``: a smaller weight is refused, naming the rule.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any, cast

from kubernetes import client

from rollguard.kube.client import get_or_none
from rollguard.kube.names import ROUTE_WEIGHTS_ANNOTATION
from rollguard.operator.routers.base import RouteTarget

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
MIN_SHARED_WEIGHT = 50  # the stable's weight beside other backends: whole-number splits within 1 %


def _is(ref: dict[str, Any], name: str) -> bool:
    return bool(ref.get("name") == name and ref.get("kind", "Service") == "Service"
                and ref.get("group", "") in ("", "core"))


def _records(route: dict[str, Any]) -> dict[str, dict[str, int]]:
    raw = ((route.get("metadata") or {}).get("annotations") or {}).get(ROUTE_WEIGHTS_ANNOTATION)
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _set_records(route: dict[str, Any], records: dict[str, dict[str, int]]) -> None:
    meta = route.setdefault("metadata", {})
    ann = meta.setdefault("annotations", {})
    if records:
        ann[ROUTE_WEIGHTS_ANNOTATION] = json.dumps(records, sort_keys=True, separators=(",", ":"))
    else:
        ann.pop(ROUTE_WEIGHTS_ANNOTATION, None)
    if not ann:
        meta.pop("annotations")


def _key(target: RouteTarget, rule_index: int) -> str:
    return f"{rule_index}/{target.canary_service}"


def _rule_refs(route: dict[str, Any], target: RouteTarget,
               rule_index: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rule's backendRefs and the stable's among them; LookupError naming the field."""
    rules = (route.get("spec") or {}).get("rules") or []
    if rule_index >= len(rules):
        raise LookupError(f"traffic.httpRoute.ruleIndex: HTTPRoute has {len(rules)} rules, no index {rule_index}")
    refs: list[dict[str, Any]] = rules[rule_index].get("backendRefs") or []
    stable = next((r for r in refs if _is(r, target.stable_service)), None)
    if stable is None:
        raise LookupError(f"HTTPRoute rule {rule_index} has no backendRef to Service {target.stable_service}")
    return refs, stable


def _others_weight(refs: list[dict[str, Any]], target: RouteTarget) -> int:
    return sum(int(r.get("weight", 1)) for r in refs
               if not _is(r, target.stable_service) and not _is(r, target.canary_service))


def _original_weight(route: dict[str, Any], target: RouteTarget, rule_index: int) -> int | None:
    """The stable's weight before the rollout (None: it had no weight field)."""
    rec = _records(route).get(_key(target, rule_index))
    refs, stable = _rule_refs(route, target, rule_index)
    if rec is not None:
        return rec.get("weight")
    canary = next((r for r in refs if _is(r, target.canary_service)), None)
    if canary is not None:  # written by a version that kept no record: the canary's share goes back
        return int(stable.get("weight", 1)) + int(canary.get("weight", 1))
    w = stable.get("weight")
    return None if w is None else int(w)


def check_route(route: dict[str, Any], target: RouteTarget, rule_index: int) -> None:
    """LookupError (naming the field) when the rule cannot carry a canary share of the stable."""
    refs, _ = _rule_refs(route, target, rule_index)
    original = _original_weight(route, target, rule_index)
    weight = 1 if original is None else original
    if _others_weight(refs, target) > 0 and weight < MIN_SHARED_WEIGHT:
        raise LookupError(
            f"traffic.httpRoute.ruleIndex: HTTPRoute rule {rule_index} gives Service {target.stable_service} weight "
            f"{weight} beside other backends; the canary's share is taken out of that weight in whole numbers, "
            f"so it needs a weight of at least {MIN_SHARED_WEIGHT} (scale the rule's weights, e.g. x100)")


def split(stable_weight: int | None, others: int, percent: int) -> tuple[int, int]:
    """(stable, canary) weights sending ``percent`` % of the stable's traffic to the canary."""
    if others == 0:
        return 100 - percent, percent
    total = 1 if stable_weight is None else stable_weight
    canary = (total * percent + 50) // 100
    return total - canary, canary


def weighted_route(route: dict[str, Any], target: RouteTarget, rule_index: int, weight: int,
                   port: int | None = None) -> dict[str, Any]:
    """``route`` with rule ``rule_index`` sending ``weight`` % of the stable Service's traffic to
    the canary Service; weight 0 puts the route back as it was before the rollout."""
    out = copy.deepcopy(route)
    refs, stable = _rule_refs(out, target, rule_index)
    key = _key(target, rule_index)
    records = _records(out)
    canary = next((r for r in refs if _is(r, target.canary_service)), None)
    if weight == 0:
        if key not in records and canary is None:
            return out
        original = _original_weight(out, target, rule_index)
        if original is None:
            stable.pop("weight", None)
        else:
            stable["weight"] = original
        refs[:] = [r for r in refs if not _is(r, target.canary_service)]
        records.pop(key, None)
        _set_records(out, records)
        return out
    check_route(out, target, rule_index)
    original = _original_weight(out, target, rule_index)
    stable["weight"], canary_weight = split(original, _others_weight(refs, target), weight)
    if canary is None:
        canary = {k: v for k, v in stable.items() if k not in ("name", "weight")}
        canary["name"] = target.canary_service
        refs.append(canary)
    canary["weight"] = canary_weight
    if port is not None:
        canary["port"] = port
    records[key] = {"percent": weight, **({"weight": original} if original is not None else {})}
    _set_records(out, records)
    return out


def route_weight(route: dict[str, Any], target: RouteTarget, rule_index: int) -> int:
    """The percent of the stable's traffic the route sends to the canary now."""
    try:
        refs, stable = _rule_refs(route, target, rule_index)
    except LookupError:
        return 0
    canary = next((r for r in refs if _is(r, target.canary_service)), None)
    if canary is None:
        return 0
    sw, cw = int(stable.get("weight", 1)), int(canary.get("weight", 1))
    rec = _records(route).get(_key(target, rule_index))
    if (rec is not None and "percent" in rec
            and split(rec.get("weight"), _others_weight(refs, target), int(rec["percent"])) == (sw, cw)):
        return int(rec["percent"])  # the percent last set (whole weights round it)
    return round(100 * cw / (sw + cw)) if sw + cw else 0


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
        check_route(self._get(), self.target, self.rule_index)  # raises LookupError naming the field

    def get_weight(self) -> int:
        return route_weight(self._get(), self.target, self.rule_index)

    def remove(self) -> None:
        with contextlib.suppress(LookupError):
            self.set_weight(0)

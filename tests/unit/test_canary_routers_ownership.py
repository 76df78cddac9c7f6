"""The traffic routers move only what belongs to their rollout, and put it back as it was.

Gateway API: only the stable's and the canary's weights move, the canary's share comes out of the
stable's own weight, and the route is identical to the original once the weight is back at 0.
nginx: each rollout has its own canary Ingress holding only its Service's paths, and never
writes, reads or deletes another's.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollguard.kube import names
from rollguard.operator.routers.base import RouteTarget
from rollguard.operator.routers.gateway_api import route_weight, weighted_route
from rollguard.operator.routers.nginx import (
    CANARY,
    CANARY_WEIGHT,
    INGRESS_CLASS_ANNOTATION,
    canary_ingress,
    canary_ingress_name,
    ours,
)

WORKER = RouteTarget("ns", "worker", "worker-canary")


def shares(route: dict[str, Any], rule: int = 0) -> dict[str, float]:
    """Each backend's share of the rule's traffic, in percent, as a gateway computes it."""
    refs = route["spec"]["rules"][rule]["backendRefs"]
    total = sum(r.get("weight", 1) for r in refs)
    return {r["name"]: 100 * r.get("weight", 1) / total for r in refs}


def legacy_route() -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "worker", "resourceVersion": "7", "annotations": {"team": "jobs"}},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["worker.example"],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [{"name": "worker", "port": 80, "weight": 90},
                                                {"name": "worker-legacy", "port": 80, "weight": 10}]}]}}


def test_a_rollout_to_100_and_back_leaves_the_route_as_it_was() -> None:
    original = legacy_route()
    r = original
    for w in (20, 50, 100, 0):
        r = weighted_route(r, WORKER, 0, w)
    assert r == original
    assert shares(r)["worker-legacy"] == pytest.approx(10)


def test_a_rollback_at_50_leaves_the_route_as_it_was() -> None:
    original = legacy_route()
    r = weighted_route(weighted_route(original, WORKER, 0, 50), WORKER, 0, 0)
    assert r["spec"] == original["spec"]
    assert r == original


@pytest.mark.parametrize("percent", [1, 10, 20, 25, 50, 75, 99, 100])
def test_the_canary_takes_its_share_out_of_the_stable_only(percent: int) -> None:
    r = weighted_route(legacy_route(), WORKER, 0, percent)
    s = shares(r)
    assert s["worker-legacy"] == pytest.approx(10)  # the other backend keeps its share
    assert s["worker"] + s["worker-canary"] == pytest.approx(90)
    assert abs(s["worker-canary"] / 90 * 100 - percent) <= 1  # whole weights: within one point
    refs = {x["name"]: x for x in r["spec"]["rules"][0]["backendRefs"]}
    assert refs["worker-legacy"] == {"name": "worker-legacy", "port": 80, "weight": 10}
    assert route_weight(r, WORKER, 0) == percent  # what the engine set is what it reads back


def test_weights_move_up_and_down_and_read_back() -> None:
    r = legacy_route()
    for w in (5, 25, 60, 25, 100, 10):
        r = weighted_route(r, WORKER, 0, w)
        assert route_weight(r, WORKER, 0) == w
    assert weighted_route(r, WORKER, 0, 0) == legacy_route()


def test_a_small_stable_weight_beside_other_backends_is_refused_naming_the_rule() -> None:
    r = legacy_route()
    r["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1
    with pytest.raises(LookupError, match=r"traffic.httpRoute.ruleIndex: .*rule 0 .*worker weight 1"):
        weighted_route(r, WORKER, 0, 20)


def test_other_rules_matches_filters_and_fields_are_untouched() -> None:
    route = legacy_route()
    route["spec"]["rules"].insert(0, {"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                                      "backendRefs": [{"name": "worker", "port": 80}]})
    route["spec"]["rules"][1]["filters"] = [{"type": "RequestHeaderModifier",
                                             "requestHeaderModifier": {"add": [{"name": "x", "value": "1"}]}}]
    route["spec"]["rules"][1]["timeouts"] = {"request": "10s"}
    mid = weighted_route(route, WORKER, 1, 30)
    assert mid["spec"]["rules"][0] == route["spec"]["rules"][0]  # the other rule: not a byte changed
    for field in ("matches", "filters", "timeouts"):
        assert mid["spec"]["rules"][1][field] == route["spec"]["rules"][1][field]
    assert {k: v for k, v in mid["spec"].items() if k != "rules"} == \
        {k: v for k, v in route["spec"].items() if k != "rules"}
    assert mid["metadata"]["annotations"]["team"] == "jobs"
    assert weighted_route(mid, WORKER, 1, 0) == route


def test_a_stable_alone_without_a_weight_gets_no_weight_back() -> None:
    route = {"metadata": {"name": "w"}, "spec": {"rules": [{"backendRefs": [{"name": "worker", "port": 80}]}]}}
    mid = weighted_route(route, WORKER, 0, 40)
    assert {x["name"]: x["weight"] for x in mid["spec"]["rules"][0]["backendRefs"]} == \
        {"worker": 60, "worker-canary": 40}
    assert weighted_route(mid, WORKER, 0, 0) == route  # no weight field, no annotations map


def test_two_rollouts_on_one_route_each_move_only_their_own_backend() -> None:
    api, web = RouteTarget("ns", "api", "api-canary"), RouteTarget("ns", "web", "web-canary")
    route: dict[str, Any] = {"metadata": {"name": "shop"}, "spec": {"rules": [
        {"matches": [{"path": {"value": "/api"}}], "backendRefs": [{"name": "api", "port": 80, "weight": 100}]},
        {"matches": [{"path": {"value": "/web"}}], "backendRefs": [{"name": "web", "port": 80, "weight": 100}]}]}}
    r = weighted_route(route, api, 0, 20)
    r = weighted_route(r, web, 1, 50)
    assert route_weight(r, api, 0) == 20 and route_weight(r, web, 1) == 50
    r = weighted_route(r, api, 0, 0)  # the first one ends: the other's share stays
    assert route_weight(r, web, 1) == 50
    assert r["spec"]["rules"][0] == route["spec"]["rules"][0]
    assert weighted_route(r, web, 1, 0) == route


def test_a_route_left_by_an_earlier_version_gets_the_canary_share_back() -> None:
    route = legacy_route()
    refs = route["spec"]["rules"][0]["backendRefs"]
    refs[0]["weight"] = 45
    refs.append({"name": "worker-canary", "port": 80, "weight": 45})  # no record on the route
    back = weighted_route(route, WORKER, 0, 0)
    assert back["spec"] == legacy_route()["spec"]


# ------------------------------------------------------------------------------------------ nginx

API = RouteTarget("ns", "api", "api-canary", owner={"kind": "CanaryRollout", "name": "api-roll", "uid": "u-api"})
WEB = RouteTarget("ns", "web", "web-canary", owner={"kind": "CanaryRollout", "name": "web-roll", "uid": "u-web"})


def shop() -> dict[str, Any]:
    def path(p: str, svc: str) -> dict[str, Any]:
        return {"path": p, "pathType": "Prefix", "backend": {"service": {"name": svc, "port": {"number": 80}}}}
    return {"metadata": {"name": "shop", "annotations": {INGRESS_CLASS_ANNOTATION: "nginx",
                                                         "nginx.ingress.kubernetes.io/rewrite-target": "/"}},
            "spec": {"tls": [{"hosts": ["shop.example"]}],
                     "rules": [{"host": "shop.example", "http": {"paths": [path("/api", "api"), path("/web", "web")]}},
                               {"host": "admin.example", "http": {"paths": [path("/", "web")]}}]}}


def test_two_rollouts_on_one_ingress_get_their_own_canary_ingresses() -> None:
    stable = shop()
    a, w = canary_ingress(stable, API, 20), canary_ingress(stable, WEB, 50)
    assert canary_ingress_name(API) != canary_ingress_name(WEB)
    assert a["metadata"]["name"] == "api-canary" and w["metadata"]["name"] == "web-canary"
    assert [(r["host"], [p["path"] for p in r["http"]["paths"]]) for r in a["spec"]["rules"]] == \
        [("shop.example", ["/api"])]
    assert [(r["host"], [p["path"] for p in r["http"]["paths"]]) for r in w["spec"]["rules"]] == \
        [("shop.example", ["/web"]), ("admin.example", ["/"])]
    assert {p["backend"]["service"]["name"] for r in w["spec"]["rules"] for p in r["http"]["paths"]} == {"web-canary"}
    assert a["metadata"]["annotations"][CANARY_WEIGHT] == "20" and w["metadata"]["annotations"][CANARY_WEIGHT] == "50"
    assert a["metadata"]["ownerReferences"] == [API.owner]
    assert stable == shop()  # the stable Ingress is only read


def test_the_canary_ingress_keeps_the_ingress_class_annotation_and_no_other() -> None:
    ann = canary_ingress(shop(), API, 10)["metadata"]["annotations"]
    assert ann == {CANARY: "true", CANARY_WEIGHT: "10", INGRESS_CLASS_ANNOTATION: "nginx"}


def test_an_ingress_without_a_path_to_the_service_is_named() -> None:
    with pytest.raises(LookupError, match=r"traffic.ingress.name: Ingress shop has no path .* Service cart"):
        canary_ingress(shop(), RouteTarget("ns", "cart", "cart-canary"), 10)


def test_a_canary_ingress_is_ours_only_when_our_rollout_owns_it() -> None:
    mine = canary_ingress(shop(), API, 10)
    assert ours(mine, API)
    other = copy.deepcopy(mine)
    other["metadata"]["ownerReferences"] = [{"kind": "CanaryRollout", "name": "x", "uid": "u-other"}]
    assert not ours(other, API)
    users = {"metadata": {"name": "api-canary", "labels": {"app": "api"}}}
    assert not ours(users, API)
    assert not ours(users, RouteTarget("ns", "api", "api-canary"))
    assert ours(canary_ingress(shop(), RouteTarget("ns", "api", "api-canary"), 5),
                RouteTarget("ns", "api", "api-canary"))
    assert mine["metadata"]["labels"][names.CANARY_OF_LABEL] == "api"

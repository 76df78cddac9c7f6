"""Traffic routers' object transformations, the change functions, PromQL rendering, Prometheus parsing."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import requests

from rollguard.models.canary import Change
from rollguard.operator.canary.change import (
    Resolved,
    canary_deployment,
    canary_service,
    canary_template,
    restore,
    snapshot,
    stable_has_change,
    stable_template,
)
from rollguard.operator.metrics.base import NoData, QueryError, Value
from rollguard.operator.metrics.collect import render
from rollguard.operator.metrics.prometheus import PrometheusProvider, parse_result
from rollguard.operator.routers.base import RouteTarget
from rollguard.operator.routers.gateway_api import route_weight, weighted_route
from rollguard.operator.routers.nginx import CANARY, CANARY_WEIGHT, canary_ingress

TARGET = RouteTarget(namespace="ns", stable_service="web", canary_service="web-canary")


def ingress() -> dict[str, Any]:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    return {"metadata": {"name": "web", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["web.example"]}],
                     "rules": [{"host": "web.example", "http": {"paths": [
                         {"path": "/", "pathType": "Prefix", "backend": backend},
                         {"path": "/other", "pathType": "Prefix",
                          "backend": {"service": {"name": "other", "port": {"number": 80}}}}]}}]}}


def test_nginx_canary_ingress_copies_rules_and_points_at_the_canary() -> None:
    obj = canary_ingress(ingress(), TARGET, 25)
    assert obj["metadata"]["name"] == "web-canary"
    assert obj["metadata"]["annotations"] == {CANARY: "true", CANARY_WEIGHT: "25",
                                              "kubernetes.io/ingress.class": "nginx"}
    paths = obj["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"]["name"] for p in paths] == ["web-canary"]  # other services' paths left out
    assert obj["spec"]["rules"][0]["host"] == "web.example" and "tls" not in obj["spec"]


def route() -> dict[str, Any]:
    return {"metadata": {"name": "web", "resourceVersion": "7"},
            "spec": {"parentRefs": [{"name": "gw"}],
                     "rules": [{"backendRefs": [{"name": "web", "port": 8000}]}]}}


@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_gateway_weights(weight: int) -> None:
    new = weighted_route(route(), TARGET, 0, weight)
    refs = new["spec"]["rules"][0]["backendRefs"]
    assert route_weight(new, TARGET, 0) == weight
    if weight == 0:
        assert [r["name"] for r in refs] == ["web"]
    else:
        assert {r["name"]: r["weight"] for r in refs} == {"web": 100 - weight, "web-canary": weight}
        assert refs[1]["port"] == 8000
    assert new["metadata"]["resourceVersion"] == "7"


def test_gateway_back_to_zero_restores_the_route() -> None:
    r = weighted_route(weighted_route(route(), TARGET, 0, 30), TARGET, 0, 0)
    assert r == route()  # no weight before, none after; no record left on the route


def test_gateway_missing_rule_or_backend_is_named() -> None:
    with pytest.raises(LookupError, match="ruleIndex"):
        weighted_route(route(), TARGET, 3, 10)
    with pytest.raises(LookupError, match="no backendRef to Service api"):
        weighted_route(route(), RouteTarget("ns", "api", "api-canary"), 0, 10)


def template() -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web", "tier": "be"}},
            "spec": {"containers": [{"name": "web", "image": "web:1", "env": [{"name": "X", "value": "1"}]},
                                    {"name": "sidecar", "image": "proxy:1"}]}}


CHANGE = Change.model_validate({"flags": {"environment": "staging",
                                          "values": {"cost_simulator_runtime_integration": True}},
                                "image": {"container": "web", "image": "web:2"}})


def test_apply_snapshot_restore_round_trip_without_the_flag_kind() -> None:
    # Resolved() without flags: the FeatureFlag kind is not served, flags are env overrides only
    t = template()
    # the snapshot lives in the status, which is stored without nulls: it must survive that
    snap = json.loads(json.dumps(snapshot(t, CHANGE, Resolved())))
    assert None not in snap.get("images", {}).values() and "null" not in json.dumps(snap)
    changed = stable_template(t, CHANGE, Resolved())
    assert stable_has_change(changed, CHANGE, Resolved()) and not stable_has_change(t, CHANGE, Resolved())
    web = changed["spec"]["containers"][0]
    assert web["image"] == "web:2"
    assert {"name": "AOS_FEATURE_COST_SIMULATOR_RUNTIME_INTEGRATION", "value": "true"} in web["env"]
    back = restore(changed, snap)
    assert back == t


def test_image_change_names_a_missing_container() -> None:
    bad = Change.model_validate({"image": {"container": "nope", "image": "x:1"}})
    with pytest.raises(ValueError, match=r"change\.image\.container"):
        canary_template(template(), bad, Resolved())


def test_canary_deployment_is_not_selected_by_the_stable() -> None:
    target = {"metadata": {"name": "web", "namespace": "ns"},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()}}
    d = canary_deployment(target, CHANGE, "web-canary", None)
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels == {"app": "web-canary", "tier": "be", "rollguard.io/track": "canary"}
    assert d["spec"]["selector"]["matchLabels"] == {"app": "web-canary", "rollguard.io/track": "canary"}
    assert d["spec"]["replicas"] == 3
    svc = canary_service({"metadata": {"name": "web", "namespace": "ns"},
                          "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30001}]}},
                         "web-canary", {"app": "web"}, None)
    assert svc["spec"]["selector"] == d["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"] == [{"port": 80}]


def test_render_fills_every_variable_and_refuses_unknown_ones() -> None:
    q = render('rate(x{track="{{ track }}", ns="{{namespace}}", d="{{workload}}"}[{{interval}}])',
               track="canary", namespace="prod", target="web", interval="30s")
    assert q == 'rate(x{track="canary", ns="prod", d="web-canary"}[30s])'
    with pytest.raises(ValueError, match="unknown template variable"):
        render("{{pod}}", track="stable", namespace="n", target="t", interval="1m")


@pytest.mark.parametrize(("data", "expected"), [
    ({"resultType": "vector", "result": []}, NoData("empty result")),
    ({"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.25"]}]}, Value(0.25, 1)),
    ({"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]},
     NoData("NaN (no traffic in the window?)", kind="nan")),
    ({"resultType": "scalar", "result": [1, "3"]}, Value(3.0, 1)),
])
def test_parse_result(data: dict[str, Any], expected: Any) -> None:
    assert parse_result(data) == expected


def test_several_series_is_an_error_not_a_guess() -> None:
    r = parse_result({"resultType": "vector", "result": [{"value": [1, "1"]}, {"value": [1, "2"]}]})
    assert isinstance(r, QueryError) and "2 series" in r.message


def test_unreachable_prometheus_is_an_error() -> None:
    p = PrometheusProvider("http://127.0.0.1:9", timeout=0.5)
    r = p.run_query("up")
    assert isinstance(r, QueryError) and "unreachable" in r.message
    assert not p.is_online()


class Canned(requests.adapters.BaseAdapter):
    """A requests transport that answers every request with one canned JSON body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__()
        self.status, self.body = status, body
        self.seen: list[str] = []

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:
        self.seen.append(request.url)
        r = requests.Response()
        r.status_code, r.url, r.request = self.status, request.url, request
        r._content = json.dumps(self.body).encode()
        r.headers["Content-Type"] = "application/json"
        return r

    def close(self) -> None:
        pass


def canned(status: int, body: Any) -> PrometheusProvider:
    session = requests.Session()
    # longer than the prefix the client mounts its own retrying adapter on, so it wins
    session.mount("http://prom/", Canned(status, body))
    return PrometheusProvider("http://prom", session=session)


def test_bad_query_is_an_error_with_prometheus_words() -> None:
    p = canned(400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
    assert p.run_query("sum(") == QueryError("bad_data: parse error")


@pytest.mark.parametrize(("result", "expected"), [
    ([], NoData("empty result")),
    ([{"metric": {}, "value": [1, "0.25"]}], Value(0.25, 1)),
    ([{"metric": {}, "value": [1, "+Inf"]}], Value(math.inf, 1)),
    ([1, "3"], Value(3.0, 1)),
])
def test_the_client_answer_reads_as_value_or_nodata(result: Any, expected: Any) -> None:
    p = canned(200, {"status": "success", "data": {"resultType": "vector", "result": result}})
    assert p.run_query("q") == expected


def test_scrape_interval_comes_from_the_namespaces_targets() -> None:
    targets = {"activeTargets": [
        {"labels": {"namespace": "prod", "pod": "web-1"}, "scrapeInterval": "15s"},
        {"labels": {"namespace": "prod", "pod": "web-2"}, "scrapeInterval": "30s"},
        {"labels": {"namespace": "other"}, "scrapeInterval": "5m"},
    ], "droppedTargets": []}
    p = canned(200, {"status": "success", "data": targets})
    assert p.scrape_interval("prod") == 30.0          # the longest in the namespace
    assert p.scrape_interval("empty") is None          # no target there: unknown, not a guess
    assert PrometheusProvider("http://127.0.0.1:9", timeout=0.5).scrape_interval("prod") is None

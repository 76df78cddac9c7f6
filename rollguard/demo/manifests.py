"""The Kubernetes objects of the demo: a target Deployment with its Service and Ingress, the two
seed flags, and the two CanaryRollouts (one that promotes, one whose canary starts failing)."""

from __future__ import annotations

from typing import Any

TARGET = "agent-runtime"
ENVIRONMENT = "demo"
CATALOG_FLAG = "failure_catalog_runtime_integration"
COST_FLAG = "cost_simulator_runtime_integration"
LABELS = {"app": TARGET}


def target_objects() -> list[dict[str, Any]]:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": TARGET, "labels": LABELS},
        "spec": {"replicas": 1, "selector": {"matchLabels": LABELS},
                 "template": {"metadata": {"labels": LABELS},
                              "spec": {"containers": [{"name": TARGET, "image": "aos/agent-runtime:1.0",
                                                       "ports": [{"containerPort": 8000}]}]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": TARGET},
               "spec": {"selector": LABELS, "ports": [{"port": 80, "targetPort": 8000}]}}
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": TARGET},
               "spec": {"ingressClassName": "nginx", "rules": [{"host": "agents.demo.local", "http": {"paths": [
                   {"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": TARGET, "port": {"number": 80}}}}]}}]}}
    return [deployment, service, ingress]


def flag(name: str, key: str, description: str) -> dict[str, Any]:
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag", "metadata": {"name": name},
            "spec": {"key": key, "description": description, "owner": "platform-team", "defaultValue": False,
                     "environments": {ENVIRONMENT: False},
                     "targets": [{"environment": ENVIRONMENT, "deployments": [TARGET]}]}}


def flags() -> list[dict[str, Any]]:
    return [flag("failure-catalog", CATALOG_FLAG, "Classify runtime errors with the mounted FailureCatalog"),
            flag("cost-simulator", COST_FLAG, "Refuse a run whose estimated cost is over its budget")]


def _metrics(namespace: str) -> list[dict[str, Any]]:
    # The label convention of canary-configs/: each track's series carry `namespace` and
    # `rollguard_io_track` (the pod label rollguard.io/track, relabelled by Prometheus).
    sel = 'namespace="{{namespace}}", rollguard_io_track="{{track}}"'
    return [
        {"name": "golden-mismatch", "rule": {"maxIncrease": 0}, "immediate": True,
         "query": f"sum(increase(nova_golden_mismatch_total{{{sel}}}[{{{{interval}}}}]))"},
        {"name": "error-rate", "rule": {"fromProfile": "errorRate"}, "failureLimit": 1, "minSampleCount": 10,
         "query": f'(sum(rate(http_requests_total{{{sel}, code=~"5.."}}[{{{{interval}}}}])) or vector(0))'
                  f" / sum(rate(http_requests_total{{{sel}}}[{{{{interval}}}}]))",
         "sampleQuery": f"sum(increase(http_requests_total{{{sel}}}[{{{{interval}}}}]))"},
        {"name": "latency-p95", "rule": {"fromProfile": "latencyP95"}, "failureLimit": 1,
         "query": "1000 * histogram_quantile(0.95, sum by (le) "
                  f"(rate(http_request_duration_seconds_bucket{{{sel}}}[{{{{interval}}}}])))"},
    ]


def rollout(name: str, flag_key: str, *, namespace: str, prometheus_url: str, smoke_url: str,
            interval: str = "4s") -> dict[str, Any]:
    return {
        "apiVersion": "rollguard.io/v1alpha1", "kind": "CanaryRollout", "metadata": {"name": name},
        "spec": {
            "targetRef": {"name": TARGET},
            "change": {"flags": {"environment": ENVIRONMENT, "values": {flag_key: True}}},
            "traffic": {"provider": "nginx", "ingress": {"name": TARGET}},
            "steps": [{"setWeight": 25}, {"setWeight": 50}, {"setWeight": 100}],
            "watch": interval,
            "smoke": {"http": {"url": smoke_url, "expectStatus": 200}, "timeoutSeconds": 20},
            "progressDeadlineSeconds": 90,
            "analysis": {"interval": interval, "prometheus": {"address": prometheus_url},
                         "profile": "moderate", "onNoData": "continue", "metrics": _metrics(namespace)},
        },
    }

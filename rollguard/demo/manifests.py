"""The Kubernetes objects of the demo: a target Deployment with its Service and Ingress, two
flags, and the two CanaryRollouts (one that promotes, one whose canary starts failing)."""

from __future__ import annotations

from typing import Any

from rollguard.localenv.podrunner import RUN_LABEL

TARGET = "agent-runtime"
ENVIRONMENT = "demo"
CATALOG_FLAG = "failure_catalog_runtime_integration"
COST_FLAG = "cost_simulator_runtime_integration"
LABELS = {"app": TARGET}
REPLICAS = 2
PORT = 8000
TOKEN_SECRET = f"{TARGET}-failures-token"
# A Deployment's pods are named <deployment>-<replicaset hash>-<suffix>: this selects the pods
# of one track's Deployment ({{workload}}: the target, or its canary copy) and no other.
POD_OF_WORKLOAD = 'pod=~"{{workload}}-[a-z0-9]+-[a-z0-9]+"'


def target_objects(failures_url: str) -> list[dict[str, Any]]:
    """Deployment, Service, Ingress of the target. Its pods run ``rollguard.demo.backend``
    (the pod runner starts them on their pod addresses) and report to ``failures_url``."""
    container = {
        "name": TARGET, "image": "example.org/agent-runtime:1.0",
        "command": ["python", "-m", "rollguard.demo.backend"],
        "args": ["--host", "$(POD_IP)", "--port", str(PORT), "--track", "$(TRACK)",
                 "--spool", "/var/lib/agent-runtime/spool.db"],
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "TRACK", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['rollguard.io/track']"}}},
            {"name": "ROLLGUARD_ENVIRONMENT", "value": ENVIRONMENT},
            {"name": "ROLLGUARD_FAILURES_URL", "value": failures_url},
            {"name": "ROLLGUARD_FAILURES_TOKEN",
             "valueFrom": {"secretKeyRef": {"name": TOKEN_SECRET, "key": "token"}}},
        ],
        "volumeMounts": [{"name": "spool", "mountPath": "/var/lib/agent-runtime"}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": TARGET, "labels": LABELS},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": LABELS},
                 "template": {"metadata": {"labels": {**LABELS, RUN_LABEL: "true"}},
                              "spec": {"containers": [container],
                                       "volumes": [{"name": "spool", "emptyDir": {}}]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": TARGET},
               "spec": {"selector": LABELS, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
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


def token_secret(token: str) -> dict[str, Any]:
    """The Secret the pods read their failures API token from."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": TOKEN_SECRET},
            "type": "Opaque", "stringData": {"token": token}}


def _metrics() -> list[dict[str, Any]]:
    # Series carry `namespace` and `pod` from Prometheus' pod discovery (a PodMonitor's
    # relabelling); the pod name tells the target's pods from its canary copy's.
    sel = 'namespace="{{namespace}}", ' + POD_OF_WORKLOAD
    return [
        # any increase since the canary became ready; with requests, an empty result is 0 mismatches
        {"name": "golden-mismatch", "rule": {"maxIncrease": 0}, "immediate": True,
         "query": f"sum(increase(nova_golden_mismatch_total{{{sel}}}[{{{{sinceCanary}}}}]))",
         "sampleQuery": f"sum(increase(http_requests_total{{{sel}}}[{{{{sinceCanary}}}}]))"},
        {"name": "error-rate", "rule": {"fromProfile": "errorRate"}, "failureLimit": 1, "minSampleCount": 10,
         # the backend exports http_requests_total{code="500"} from its start, so a pod that never
         # failed has a 0 rate here, not an empty result
         "query": f'sum(rate(http_requests_total{{{sel}, code=~"5.."}}[{{{{interval}}}}]))'
                  f" / sum(rate(http_requests_total{{{sel}}}[{{{{interval}}}}]))",
         "sampleQuery": f"sum(increase(http_requests_total{{{sel}}}[{{{{interval}}}}]))"},
        {"name": "latency-p95", "rule": {"fromProfile": "latencyP95"}, "failureLimit": 1,
         "query": "1000 * histogram_quantile(0.95, sum by (le) "
                  f"(rate(http_request_duration_seconds_bucket{{{sel}}}[{{{{interval}}}}])))"},
    ]


def rollout(name: str, flag_key: str, *, prometheus_url: str, interval: str = "4s") -> dict[str, Any]:
    """A flag rollout of ``flag_key`` (true in the demo environment) on the target, 25 -> 50 -> 100 %.

    The smoke test is a Job (its pod completes on the kwok node: no container runs it).
    """
    return {
        "apiVersion": "rollguard.io/v1alpha1", "kind": "CanaryRollout", "metadata": {"name": name},
        "spec": {
            "targetRef": {"name": TARGET},
            "change": {"flags": {"environment": ENVIRONMENT, "values": {flag_key: True}}},
            "traffic": {"provider": "nginx", "ingress": {"name": TARGET}},
            "steps": [{"setWeight": 25}, {"setWeight": 50}, {"setWeight": 100}],
            "watch": interval,
            "smoke": {"job": {"template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "smoke", "image": "example.org/curl:8",
                "command": ["curl", "-fsS", f"http://{TARGET}-canary/healthz"]}]}}}, "timeoutSeconds": 30},
            "progressDeadlineSeconds": 90,
            "analysis": {"interval": interval, "prometheus": {"address": prometheus_url},
                         "profile": "moderate", "onNoData": "continue", "metrics": _metrics()},
        },
    }

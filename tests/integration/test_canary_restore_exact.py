"""On a real apiserver: a rollout deleted while its change is on the stable (Promoting) puts the
stable's pod template back exactly as it was, ``valueFrom`` entries, order, other containers,
volumes and annotations included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rollguard.kube.client import api_client
from rollguard.models.canary import CanaryRollout
from rollguard.operator.canary import change as ch
from rollguard.operator.canary.reconciler import Reconciler
from tests.support.kube import Kubectl

pytestmark = pytest.mark.integration

CONFIG_MAP_REF = {"configMapKeyRef": {"name": "features", "key": "new-checkout"}}


def deployment() -> dict[str, Any]:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels, "annotations": {"team": "checkout"}},
                                  "spec": {"containers": [
                                      {"name": "web", "image": "web:1", "env": [
                                          {"name": "A", "value": "1"},
                                          {"name": "AOS_FEATURE_NEW_CHECKOUT", "valueFrom": CONFIG_MAP_REF},
                                          {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
                                      {"name": "proxy", "image": "proxy:1",
                                       "env": [{"name": "AOS_FEATURE_NEW_CHECKOUT", "value": "true"}],
                                       "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                                      "volumes": [{"name": "data", "emptyDir": {}}]}}}}


def rollout(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "CanaryRollout",
            "metadata": {"name": "checkout", "namespace": namespace, "uid": "not-applied"},
            "spec": {"targetRef": {"name": "web"},
                     "change": {"image": {"container": "web", "image": "web:2"},
                                "flags": {"environment": "staging", "values": {"new_checkout": True}}},
                     "traffic": {"provider": "nginx", "ingress": {"name": "web"}},
                     "steps": [{"setWeight": 100}],
                     "analysis": {"prometheus": {"address": "http://prometheus:9090"},
                                  "metrics": [{"name": "e", "query": "sum(x)", "rule": {"maxDeltaPercent": 50}}]}}}


def test_a_rollout_deleted_while_promoting_restores_the_stable_byte_for_byte(
        kubectl: Kubectl, kubeconfig: Path, namespace: str) -> None:
    kubectl.apply(deployment(), namespace=namespace)
    original = kubectl.get_json("deployment", "web", namespace=namespace)["spec"]["template"]
    body = rollout(namespace)
    cr = CanaryRollout.model_validate(body)
    snap = ch.snapshot(original, cr.spec.change, ch.Resolved())  # no FeatureFlag here: env overrides only
    promoted = ch.stable_template(original, cr.spec.change, ch.Resolved())
    kubectl("patch", "deployment", "web", "--type=json", "-p",
            json.dumps([{"op": "replace", "path": "/spec/template", "value": promoted}]),
            namespace=namespace)
    now = kubectl.get_json("deployment", "web", namespace=namespace)["spec"]["template"]
    assert now["spec"]["containers"][0]["image"] == "web:2"
    assert {"name": "AOS_FEATURE_NEW_CHECKOUT", "value": "true"} in now["spec"]["containers"][0]["env"]
    body["status"] = {"phase": "Promoting", "changeAppliedToStable": True, "stableSnapshot": snap}
    Reconciler(api_client(str(kubeconfig))).cleanup(body)
    restored = kubectl.get_json("deployment", "web", namespace=namespace)["spec"]["template"]
    assert restored == original
    assert restored["spec"]["containers"][0]["env"][1] == {"name": "AOS_FEATURE_NEW_CHECKOUT",
                                                           "valueFrom": CONFIG_MAP_REF}

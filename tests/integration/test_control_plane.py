"""The local control plane is a real cluster API: CRDs, RBAC, garbage collection, namespaces."""

from __future__ import annotations

import json
import subprocess

import pytest

from rollguard.localenv.controlplane import ControlPlane
from tests.support.kube import Kubectl, eventually

pytestmark = pytest.mark.integration


def test_server_is_the_pinned_release(kubectl: Kubectl) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.")
    assert version["serverVersion"]["gitVersion"] == version["clientVersion"]["gitVersion"]


def test_garbage_collector_deletes_owned_objects(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "configmap", "owner", namespace=namespace)
    owner_uid = kubectl("get", "configmap", "owner", "-o", "jsonpath={.metadata.uid}", namespace=namespace).stdout
    kubectl.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "owned", "namespace": namespace,
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}]}})
    kubectl("delete", "configmap", "owner", namespace=namespace)
    eventually(lambda: not kubectl.exists("configmap", "owned", namespace=namespace),
               timeout=30, what="the owned ConfigMap to be garbage-collected")


def test_namespace_deletion_completes(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "rg-doomed")
    kubectl("create", "configmap", "x", namespace="rg-doomed")
    kubectl("delete", "namespace", "rg-doomed", "--timeout=60s")
    assert not kubectl.exists("namespace", "rg-doomed")


def test_rbac_is_enforced_for_other_identities(control_plane: ControlPlane, kubectl: Kubectl) -> None:
    nobody = control_plane.kubeconfig_for("nobody", user="nobody")
    proc = subprocess.run([str(control_plane.kubectl), "--kubeconfig", str(nobody), "get", "secrets", "-A"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "forbidden" in proc.stderr

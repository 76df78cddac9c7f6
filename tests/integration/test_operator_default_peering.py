"""`rollguard operator run -n NS`, as the README has it (peering, the default), handles a FeatureFlag.

kopf with peering waits for its peering object and used to do so silently: nothing created it
outside the Helm chart, so a user following the README saw no ConfigMap and no error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration

FLAG = {"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag", "metadata": {"name": "failure-catalog"},
        "spec": {"key": "failure_catalog_runtime_integration", "owner": "platform-team", "defaultValue": False,
                 "environments": {"staging": True}}}


def test_the_default_peering_mode_works_without_a_peering_object_made_beforehand(
        kubectl: Kubectl, kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    assert not kubectl.exists("kopfpeering", "rollguard", namespace=namespace)
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log", namespaces=(namespace,), standalone=False).start()
    try:
        kubectl.apply(FLAG, namespace=namespace)
        eventually(lambda: kubectl("get", "configmap", "rollguard-flags-staging", namespace=namespace,
                                   check=False).returncode == 0,
                   timeout=30, what="the flags ConfigMap written by the operator")
        assert f"created KopfPeering 'rollguard' (namespace {namespace})" in op.output()
        assert kubectl.exists("kopfpeering", "rollguard", namespace=namespace)
    finally:
        op.stop()

"""The Kubernetes side of FailureCatalog reconciliation: observe, then carry out a plan."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from rollguard.catalog.render import FILE_NAME
from rollguard.models.canary import CANARY_OF_LABEL
from rollguard.operator.catalog.core import (
    ANN_FULL_HASH,
    ANN_HASH,
    ANN_NAME,
    LABEL_CATALOG,
    DeploymentView,
    Mount,
    Observed,
    mount_manifest,
    unmount_manifest,
)

# Our own field manager, not a project-wide "rollguard": server-side apply removes every field
# a manager owned and no longer applies, so two rollguard controllers (catalog, flags) sharing
# one manager name would strip each other's volumes from the same Deployment.
FIELD_MANAGER = "rollguard-catalog"
APPLY = "application/apply-patch+yaml"


@functools.cache
def _api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        # KUBECONFIG as it is now (the client library reads it once, at import)
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    return client.ApiClient()


def core_v1() -> client.CoreV1Api:
    return client.CoreV1Api(_api_client())


def apps_v1() -> client.AppsV1Api:
    return client.AppsV1Api(_api_client())


def read_catalog(namespace: str, name: str) -> dict[str, Any] | None:
    """The FailureCatalog as it is now (None when it is gone)."""
    try:
        obj: dict[str, Any] = _raw(client.CustomObjectsApi(_api_client()).get_namespaced_custom_object(
            "rollguard.io", "v1alpha1", namespace, "failurecatalogs", name, _preload_content=False))
        return obj
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def _raw(resp: Any) -> Any:
    return json.loads(resp.data)


def _view(d: dict[str, Any]) -> DeploymentView:
    tmpl = d.get("spec", {}).get("template", {})
    ann = (tmpl.get("metadata") or {}).get("annotations") or {}
    return DeploymentView(
        name=d["metadata"]["name"],
        labels=d["metadata"].get("labels") or {},
        containers=[c["name"] for c in (tmpl.get("spec") or {}).get("containers") or []],
        catalog=ann.get(ANN_NAME),
        hash=ann.get(ANN_HASH),
    )


def _cm_volumes(obj: dict[str, Any]) -> set[str]:
    vols = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []
    return {v["configMap"]["name"] for v in vols if v.get("configMap", {}).get("name")}


def observe(namespace: str, catalog: str) -> Observed:
    deps = _raw(apps_v1().list_namespaced_deployment(namespace, _preload_content=False))["items"]
    rss = _raw(apps_v1().list_namespaced_replica_set(namespace, _preload_content=False))["items"]
    cms = _raw(core_v1().list_namespaced_config_map(
        namespace, label_selector=f"{LABEL_CATALOG}={catalog}", _preload_content=False))["items"]
    mounted: set[str] = set()
    for d in deps:
        mounted |= _cm_volumes(d)
    for rs in rss:  # old ReplicaSets that still run pods keep their version alive
        if (rs.get("spec") or {}).get("replicas") or (rs.get("status") or {}).get("replicas"):
            mounted |= _cm_volumes(rs)
    # A CanaryRollout's canary copy of a target mounts the version its rollout names: it is neither
    # a target nor ours to unmount (its mounts still count above: that version's ConfigMap stays).
    return Observed(
        deployments={d["metadata"]["name"]: _view(d) for d in deps
                     if CANARY_OF_LABEL not in (d["metadata"].get("labels") or {})},
        config_maps={c["metadata"]["name"]: (c["metadata"].get("annotations") or {}).get(ANN_FULL_HASH, "")
                     for c in cms},
        mounted_config_maps=frozenset(mounted),
    )


def create_config_map(namespace: str, catalog: str, owner: dict[str, Any], name: str, full_hash: str,
                      document: str) -> None:
    body: Any = {
        "apiVersion": "v1", "kind": "ConfigMap", "immutable": True,
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": {LABEL_CATALOG: catalog, "app.kubernetes.io/managed-by": "rollguard"},
            "annotations": {ANN_FULL_HASH: full_hash},
            "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                 "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                 "controller": True, "blockOwnerDeletion": False}],
        },
        "data": {FILE_NAME: document},
    }
    try:
        core_v1().create_namespaced_config_map(namespace, body)
    except ApiException as e:
        if e.status != 409:  # already there: same name means same content
            raise


def delete_config_map(namespace: str, name: str) -> None:
    try:
        core_v1().delete_namespaced_config_map(name, namespace)
    except ApiException as e:
        if e.status != 404:
            raise


def _gone(namespace: str, deployment: str) -> bool:
    try:
        apps_v1().read_namespaced_deployment(deployment, namespace, _preload_content=False)
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def _apply(namespace: str, deployment: str, manifest: dict[str, Any]) -> bool:
    """Server-side apply of our fields; False if the Deployment went away in the meantime.

    An apply is an upsert: on a Deployment deleted since we read it, it tries to create one from
    our few fields, which the apiserver refuses (422 invalid, or 403 in a terminating namespace).
    That is not an error to retry forever (it would hold a catalog's deletion, and with it its
    namespace's): the Deployment is gone, there is nothing to mount or unmount."""
    try:
        apps_v1().patch_namespaced_deployment(deployment, namespace, manifest, field_manager=FIELD_MANAGER,
                                              force=True, _content_type=APPLY)
    except ApiException as e:
        if e.status in (403, 404, 422) and _gone(namespace, deployment):
            return False
        raise
    return True


def apply_mount(namespace: str, catalog: str, m: Mount) -> None:
    _apply(namespace, m.deployment, mount_manifest(namespace, catalog, m))


def remove_mount(namespace: str, deployment: str, catalog: str) -> bool:
    """Release this operator's fields on ``deployment`` if ``catalog`` is what it mounts."""
    try:
        d = _raw(apps_v1().read_namespaced_deployment(deployment, namespace, _preload_content=False))
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    if _view(d).catalog != catalog:
        return False
    return _apply(namespace, deployment, unmount_manifest(namespace, deployment))

"""The Kubernetes side of FailureCatalog reconciliation: observe, then carry out a plan."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollguard import GROUP, VERSION
from rollguard.kube import names
from rollguard.kube.client import (
    APPLY_PATCH,
    NotFound,
    api_client,
    call,
    create_if_absent,
    delete_if_present,
    get_or_none,
    raw_json,
)
from rollguard.operator.catalog.core import (
    DeploymentView,
    Mount,
    Observed,
    mount_manifest,
    unmount_manifest,
)

PLURAL = "failurecatalogs"


def core_v1() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


def apps_v1() -> client.AppsV1Api:
    return client.AppsV1Api(api_client())


def read_catalog(namespace: str, name: str) -> dict[str, Any] | None:
    """The FailureCatalog as it is now (None when it is gone)."""
    resp = get_or_none(client.CustomObjectsApi(api_client()).get_namespaced_custom_object,
                       GROUP, VERSION, namespace, PLURAL, name, _preload_content=False)
    return None if resp is None else dict(raw_json(resp))


def _view(d: dict[str, Any]) -> DeploymentView:
    tmpl = d.get("spec", {}).get("template", {})
    ann = (tmpl.get("metadata") or {}).get("annotations") or {}
    return DeploymentView(
        name=d["metadata"]["name"],
        labels=d["metadata"].get("labels") or {},
        containers=[c["name"] for c in (tmpl.get("spec") or {}).get("containers") or []],
        catalog=ann.get(names.CATALOG_NAME_ANNOTATION),
        hash=ann.get(names.CATALOG_HASH_ANNOTATION),
    )


def _cm_volumes(obj: dict[str, Any]) -> set[str]:
    vols = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("volumes") or []
    return {v["configMap"]["name"] for v in vols if v.get("configMap", {}).get("name")}


def observe(namespace: str, catalog: str) -> Observed:
    deps = raw_json(apps_v1().list_namespaced_deployment(namespace, _preload_content=False))["items"]
    rss = raw_json(apps_v1().list_namespaced_replica_set(namespace, _preload_content=False))["items"]
    cms = raw_json(core_v1().list_namespaced_config_map(
        namespace, label_selector=f"{names.CATALOG_LABEL}={catalog}", _preload_content=False))["items"]
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
                     if names.CANARY_OF_LABEL not in (d["metadata"].get("labels") or {})},
        config_maps={c["metadata"]["name"]: (c["metadata"].get("annotations") or {}).get(
            names.CATALOG_FULL_HASH_ANNOTATION, "")
                     for c in cms},
        mounted_config_maps=frozenset(mounted),
    )


def create_config_map(namespace: str, catalog: str, owner: dict[str, Any], name: str, full_hash: str,
                      document: str) -> None:
    body: Any = {
        "apiVersion": "v1", "kind": "ConfigMap", "immutable": True,
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": {names.CATALOG_LABEL: catalog, names.MANAGED_BY_LABEL: names.MANAGED_BY},
            "annotations": {names.CATALOG_FULL_HASH_ANNOTATION: full_hash},
            "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                 "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                 "controller": True, "blockOwnerDeletion": False}],
        },
        "data": {names.CATALOG_FILE: document},
    }
    create_if_absent(core_v1().create_namespaced_config_map, namespace, body)  # same name: same content


def delete_config_map(namespace: str, name: str) -> None:
    delete_if_present(core_v1().delete_namespaced_config_map, name, namespace)


def _gone(namespace: str, deployment: str) -> bool:
    try:
        call(apps_v1().read_namespaced_deployment, deployment, namespace, _preload_content=False)
    except NotFound:
        return True
    return False


def _apply(namespace: str, deployment: str, manifest: dict[str, Any]) -> bool:
    """Server-side apply of our fields; False if the Deployment went away in the meantime.

    An apply is an upsert: on a Deployment deleted since we read it, it tries to create one from
    our few fields, which the apiserver refuses (422 invalid, or 403 in a terminating namespace).
    That is not an error to retry forever (it would hold a catalog's deletion, and with it its
    namespace's): the Deployment is gone, there is nothing to mount or unmount."""
    try:
        apps_v1().patch_namespaced_deployment(deployment, namespace, manifest, force=True,
                                              field_manager=names.CATALOG_FIELD_MANAGER, _content_type=APPLY_PATCH)
    except ApiException as e:
        if e.status in (403, 404, 422) and _gone(namespace, deployment):
            return False
        raise
    return True


def apply_mount(namespace: str, catalog: str, m: Mount) -> None:
    _apply(namespace, m.deployment, mount_manifest(namespace, catalog, m))


def remove_mount(namespace: str, deployment: str, catalog: str) -> bool:
    """Release this operator's fields on ``deployment`` if ``catalog`` is what it mounts."""
    resp = get_or_none(apps_v1().read_namespaced_deployment, deployment, namespace, _preload_content=False)
    if resp is None or _view(raw_json(resp)).catalog != catalog:
        return False
    return _apply(namespace, deployment, unmount_manifest(namespace, deployment))

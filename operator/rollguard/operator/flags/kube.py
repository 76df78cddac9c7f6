"""The Kubernetes calls the flags reconciler makes. No decisions here: the plan decides, this applies.

ConfigMaps (wholly ours) are written with server-side apply under the field manager
``rollguard-flags``. On Deployments (someone else's) the flags volume and each container's
volumeMount are added with a strategic-merge patch under the same field manager, not with an
apply: an apply would make rollguard a co-owner of each *container entry* (its name key), and
then the app owner's own server-side apply (Flux, Argo CD with ServerSideApply, kubectl
--server-side) could no longer rename or remove a container — the apiserver keeps the entry
with only our fields and refuses the object ("containers[0].image: Required value"). With a
patch, managedFields record only the volume and the volumeMounts as ours; the app's appliers
never owned them, so their applies leave them alone, and a container they remove goes with
its mount. Removal uses strategic-merge ``$patch: delete`` on exactly those entries.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from rollguard import GROUP, VERSION
from rollguard.kube import names
from rollguard.kube.client import (
    APPLY_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    api_client,
    delete_if_present,
    get_or_none,
    raw_json,
)

PLURAL = "featureflags"
MANAGED_BY = {names.MANAGED_BY_LABEL: names.MANAGED_BY, "app.kubernetes.io/component": "feature-flags"}


class FlagsKube:
    """Thin wrapper over the Kubernetes API for one operator process (thread-safe: the client is)."""

    def list_flags(self, namespace: str) -> list[dict[str, Any]]:
        api = client.CustomObjectsApi(api_client())
        out: dict[str, Any] = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)  # type: ignore[assignment]
        return [o for o in out.get("items", []) if not o["metadata"].get("deletionTimestamp")]

    def list_deployments(self, namespace: str) -> list[dict[str, Any]]:
        resp = client.AppsV1Api(api_client()).list_namespaced_deployment(namespace, _preload_content=False)
        items: list[dict[str, Any]] = raw_json(resp).get("items", [])
        return items

    def list_flag_configmaps(self, namespace: str) -> list[dict[str, Any]]:
        resp = client.CoreV1Api(api_client()).list_namespaced_config_map(
            namespace, label_selector=names.FLAGS_ENVIRONMENT_LABEL, _preload_content=False)
        items: list[dict[str, Any]] = raw_json(resp).get("items", [])
        return items

    def apply_configmap(self, namespace: str, name: str, environment: str, data: dict[str, str], digest: str,
                        owners: list[dict[str, Any]]) -> None:
        body = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": name, "namespace": namespace,
                "labels": {**MANAGED_BY, names.FLAGS_ENVIRONMENT_LABEL: environment},
                "annotations": {names.FLAGS_HASH_ANNOTATION: digest},
                # Every flag of the namespace owns the ConfigMap: when the last one goes, the garbage
                # collector removes it even if the operator is not running.
                "ownerReferences": [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "FeatureFlag",
                                     "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]} for o in owners],
            },
            "data": data,
        }
        client.CoreV1Api(api_client()).patch_namespaced_config_map(
            name, namespace, body, field_manager=names.FLAGS_FIELD_MANAGER, force=True, _content_type=APPLY_PATCH,
            _preload_content=False)

    def delete_configmap(self, namespace: str, name: str) -> None:
        delete_if_present(client.CoreV1Api(api_client()).delete_namespaced_config_map, name, namespace,
                          _preload_content=False)

    def mount(self, namespace: str, deployment: str, configmap: str, containers: list[str]) -> None:
        """Mount the environment's ConfigMap at /etc/rollguard/flags in every container (no subPath:
        kubelet then swaps the files in place when the ConfigMap changes, no restart needed)."""
        body = {"spec": {"template": {"spec": {
            # optional: a pod still starts if the ConfigMap is gone; the SDK then answers False.
            "volumes": [{"name": names.FLAGS_VOLUME, "configMap": {"name": configmap, "optional": True}}],
            "containers": [{"name": c, "volumeMounts": [
                {"name": names.FLAGS_VOLUME, "mountPath": names.FLAGS_MOUNT_DIR, "readOnly": True}]}
                for c in containers],
        }}}}
        client.AppsV1Api(api_client()).patch_namespaced_deployment(
            deployment, namespace, body, field_manager=names.FLAGS_FIELD_MANAGER, _content_type=STRATEGIC_MERGE_PATCH,
            _preload_content=False)

    def unmount(self, namespace: str, deployment: str, containers: list[str]) -> None:
        """Remove the flags volume and the flags volumeMount of each container, nothing else."""
        body = {"spec": {"template": {"spec": {
            "volumes": [{"name": names.FLAGS_VOLUME, "$patch": "delete"}],
            "containers": [{"name": c, "volumeMounts": [{"mountPath": names.FLAGS_MOUNT_DIR, "$patch": "delete"}]}
                           for c in containers],
        }}}}
        get_or_none(client.AppsV1Api(api_client()).patch_namespaced_deployment, deployment, namespace, body,
                    field_manager=names.FLAGS_FIELD_MANAGER, _content_type=STRATEGIC_MERGE_PATCH,
                    _preload_content=False)  # a Deployment deleted meanwhile has nothing to unmount

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the flag's status subresource; a flag deleted meanwhile has none to write."""
        get_or_none(client.CustomObjectsApi(api_client()).patch_namespaced_custom_object_status,
                    GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE_PATCH)

"""The Kubernetes calls the flags reconciler makes. No decisions here: the plan decides, this applies.

ConfigMaps and Deployment volumes are written with server-side apply under the field manager
``rollguard-flags``: the operator owns exactly the fields it applies (the flags volume, the
flags volumeMount of each container) and nothing else of a Deployment someone else created.
Applying an empty configuration under that manager removes exactly those fields again.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from rollguard import GROUP, VERSION

FIELD_MANAGER = "rollguard-flags"
PLURAL = "featureflags"
VOLUME_NAME = "rollguard-flags"
MOUNT_PATH = "/etc/rollguard/flags"
ENV_LABEL = "rollguard.io/flags-environment"
HASH_ANNOTATION = "rollguard.io/flags-hash"
MANAGED_BY = {"app.kubernetes.io/managed-by": "rollguard", "app.kubernetes.io/component": "feature-flags"}
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"

_loaded = False


def _api() -> client.ApiClient:
    global _loaded
    if not _loaded:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        _loaded = True
    return client.ApiClient()


def _json(resp: Any) -> Any:
    return json.loads(resp.data) if resp.data else None


class FlagsKube:
    """Thin wrapper over the Kubernetes API for one operator process (thread-safe: one ApiClient per call)."""

    def list_flags(self, namespace: str) -> list[dict[str, Any]]:
        api = client.CustomObjectsApi(_api())
        out: dict[str, Any] = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)  # type: ignore[assignment]
        return [o for o in out.get("items", []) if not o["metadata"].get("deletionTimestamp")]

    def list_deployments(self, namespace: str) -> list[dict[str, Any]]:
        resp = client.AppsV1Api(_api()).list_namespaced_deployment(namespace, _preload_content=False)
        items: list[dict[str, Any]] = _json(resp).get("items", [])
        return items

    def list_flag_configmaps(self, namespace: str) -> list[dict[str, Any]]:
        resp = client.CoreV1Api(_api()).list_namespaced_config_map(namespace, label_selector=ENV_LABEL,
                                                                   _preload_content=False)
        items: list[dict[str, Any]] = _json(resp).get("items", [])
        return items

    def apply_configmap(self, namespace: str, name: str, environment: str, data: dict[str, str], digest: str,
                        owners: list[dict[str, Any]]) -> None:
        body = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": name, "namespace": namespace,
                "labels": {**MANAGED_BY, ENV_LABEL: environment},
                "annotations": {HASH_ANNOTATION: digest},
                # Every flag of the namespace owns the ConfigMap: when the last one goes, the garbage
                # collector removes it even if the operator is not running.
                "ownerReferences": [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "FeatureFlag",
                                     "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]} for o in owners],
            },
            "data": data,
        }
        client.CoreV1Api(_api()).patch_namespaced_config_map(
            name, namespace, body, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY,
            _preload_content=False)

    def delete_configmap(self, namespace: str, name: str) -> None:
        try:
            client.CoreV1Api(_api()).delete_namespaced_config_map(name, namespace, _preload_content=False)
        except ApiException as e:
            if e.status != 404:
                raise

    def mount(self, namespace: str, deployment: str, configmap: str, containers: list[str]) -> None:
        """Mount the environment's ConfigMap at /etc/rollguard/flags in every container (no subPath:
        kubelet then swaps the files in place when the ConfigMap changes, no restart needed)."""
        body = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": deployment, "namespace": namespace},
            "spec": {"template": {"spec": {
                # optional: a pod still starts if the ConfigMap is gone; the SDK then answers False.
                "volumes": [{"name": VOLUME_NAME, "configMap": {"name": configmap, "optional": True}}],
                "containers": [{"name": c, "volumeMounts": [
                    {"name": VOLUME_NAME, "mountPath": MOUNT_PATH, "readOnly": True}]} for c in containers],
            }}},
        }
        client.AppsV1Api(_api()).patch_namespaced_deployment(
            deployment, namespace, body, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY,
            _preload_content=False)

    def unmount(self, namespace: str, deployment: str) -> None:
        """Give up every field rollguard-flags owns on the Deployment (the volume and the mounts)."""
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": deployment, "namespace": namespace}}
        try:
            client.AppsV1Api(_api()).patch_namespaced_deployment(
                deployment, namespace, body, field_manager=FIELD_MANAGER, force=True, _content_type=APPLY,
                _preload_content=False)
        except ApiException as e:
            if e.status != 404:
                raise

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        try:
            client.CustomObjectsApi(_api()).patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE)
        except ApiException as e:
            if e.status != 404:  # deleted meanwhile
                raise

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str, now: dt.datetime) -> None:
        meta = obj["metadata"]
        ts = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "FeatureFlag", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta.get("uid"),
                               "resourceVersion": meta.get("resourceVersion")},
            "type": type_, "reason": reason, "message": message[:1024],
            "source": {"component": "rollguard-operator"}, "reportingComponent": "rollguard-operator",
            "reportingInstance": "rollguard-operator",
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
        }
        # A plain dict is sent as JSON like any other body; the typed signature only knows its model.
        client.CoreV1Api(_api()).create_namespaced_event(meta["namespace"], body,  # type: ignore[arg-type]
                                                         _preload_content=False)

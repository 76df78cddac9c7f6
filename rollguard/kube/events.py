"""The Event poster for code that runs outside an object's kopf handler.

kopf posts Events (``kopf.event``, through ``rollguard.operator.events``) only from the context
of an object's handler: its poster queue belongs to the object's task. Work that runs on its own
clock (the FeatureFlag controller's clock) or outside the operator (a direct call of a
reconciler) posts through :func:`create_event`: a core/v1 Event of the same type, reason and
message, reported by ``rollguard-operator``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from rollguard.kube import names
from rollguard.kube.client import api_client, call

MESSAGE_MAX = 1024  # what the apiserver accepts


def create_event(obj: Mapping[str, Any], type_: str, reason: str, message: str,
                 now: dt.datetime | None = None) -> None:
    """Create an Event about ``obj`` (its apiVersion, kind and metadata: name, namespace, uid,
    resourceVersion) with ``type_`` (Normal or Warning), ``reason``, ``message`` (cut to 1024
    characters), timestamped ``now`` (UTC, whole seconds; default: the clock). Raises
    ``rollguard.kube.client.NamespaceTerminating`` when the namespace is being deleted, other
    ``ApiException`` on other refusals."""
    meta = obj["metadata"]
    ts = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta["name"],
                           "namespace": meta["namespace"], "uid": meta.get("uid"),
                           "resourceVersion": meta.get("resourceVersion")},
        "type": type_, "reason": reason, "message": message[:MESSAGE_MAX],
        "source": {"component": names.OPERATOR_COMPONENT}, "reportingComponent": names.OPERATOR_COMPONENT,
        "reportingInstance": names.OPERATOR_COMPONENT,
        "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
    }
    # A plain dict is sent as JSON like any other body; the typed signature only knows its model.
    call(client.CoreV1Api(api_client()).create_namespaced_event, meta["namespace"], body,  # type: ignore[arg-type]
         _preload_content=False)

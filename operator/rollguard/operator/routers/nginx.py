"""nginx-ingress: one canary Ingress per rollout, named after the rollout's canary Service.

ingress-nginx sends ``canary-weight`` percent of a stable Ingress's traffic for a host and path
to the canary Ingress that has the same host and path. The canary Ingress holds only the hosts
and paths whose backend is the rollout's stable Service, pointed at the canary Service, so two
rollouts on one Ingress (``/api -> api``, ``/web -> web``) each have their own canary Ingress
(``api-canary``, ``web-canary``) and never share a weight. An Ingress of that name that is not
this rollout's (another owner, or none) is never written, read as a weight, or deleted: the
router reports it instead, naming it. The stable Ingress itself is only read.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from kubernetes import client

from rollguard.kube import names
from rollguard.kube.client import as_dict, delete_if_present, get_or_none
from rollguard.operator.routers.base import RouteTarget

CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
# The ingress-class annotation (the older way to pick a controller) must be on the canary too,
# or the controller that serves the stable Ingress never reads the canary.
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def canary_ingress_name(target: RouteTarget) -> str:
    """The rollout's canary Ingress: named after its canary Service, so rollouts of different
    Services on one Ingress get different objects."""
    return target.canary_service


def legacy_canary_ingress_name(stable: str) -> str:
    """The name earlier versions gave the canary Ingress (one per stable Ingress)."""
    return names.canary_name(stable)


def _is_target(backend: dict[str, Any] | None, target: RouteTarget) -> bool:
    return bool(((backend or {}).get("service") or {}).get("name") == target.stable_service)


def canary_spec(stable: dict[str, Any], target: RouteTarget) -> dict[str, Any] | None:
    """The canary Ingress's spec: the stable's hosts and paths whose backend is the stable Service,
    each pointed at the canary Service; None when the stable Ingress has no such path."""
    spec = copy.deepcopy(stable.get("spec") or {})
    spec.pop("tls", None)  # TLS is terminated by the stable Ingress's host; nginx shares it
    out: dict[str, Any] = {k: v for k, v in spec.items() if k not in ("rules", "defaultBackend")}
    if _is_target(spec.get("defaultBackend"), target):
        out["defaultBackend"] = spec["defaultBackend"]
        out["defaultBackend"]["service"]["name"] = target.canary_service
    rules = []
    for rule in spec.get("rules") or []:
        paths = [p for p in (rule.get("http") or {}).get("paths") or [] if _is_target(p.get("backend"), target)]
        if not paths:
            continue
        for p in paths:
            p["backend"]["service"]["name"] = target.canary_service
        rules.append({**rule, "http": {**rule["http"], "paths": paths}})
    if rules:
        out["rules"] = rules
    if "rules" not in out and "defaultBackend" not in out:
        return None
    return out


def canary_ingress(stable: dict[str, Any], target: RouteTarget, weight: int) -> dict[str, Any]:
    """The canary Ingress for ``stable`` (a JSON Ingress) at ``weight`` percent.

    LookupError (naming the field) when the stable Ingress has no path to the stable Service."""
    spec = canary_spec(stable, target)
    if spec is None:
        raise LookupError(f"traffic.ingress.name: Ingress {stable['metadata']['name']} has no path (and no "
                          f"default backend) to Service {target.stable_service}")
    annotations = {CANARY: "true", CANARY_WEIGHT: str(weight)}
    cls = (stable["metadata"].get("annotations") or {}).get(INGRESS_CLASS_ANNOTATION)
    if cls is not None:
        annotations[INGRESS_CLASS_ANNOTATION] = cls
    meta: dict[str, Any] = {
        "name": canary_ingress_name(target),
        "namespace": target.namespace,
        "labels": {names.TRACK_LABEL: names.TRACK_CANARY, names.CANARY_OF_LABEL: target.stable_service},
        "annotations": annotations,
    }
    if target.owner:
        meta["ownerReferences"] = [target.owner]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def ours(obj: dict[str, Any], target: RouteTarget) -> bool:
    """Whether ``obj`` (an Ingress) is this rollout's canary Ingress: owned by the rollout (by uid),
    or, before the rollout has a uid, a rollguard canary Ingress of this Service."""
    meta = obj.get("metadata") or {}
    if target.owner:
        return any(r.get("uid") == target.owner.get("uid") for r in meta.get("ownerReferences") or [])
    labels = meta.get("labels") or {}
    return bool(labels.get(names.TRACK_LABEL) == names.TRACK_CANARY
                and labels.get(names.CANARY_OF_LABEL) == target.stable_service)


def _owner_words(obj: dict[str, Any]) -> str:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return ", ".join(f"{r.get('kind')} {r.get('name')}" for r in refs) or "nothing"


class NginxRouter:
    def __init__(self, api: client.ApiClient, target: RouteTarget, ingress: str) -> None:
        self.net = client.NetworkingV1Api(api)
        self.target, self.ingress = target, ingress
        self.name = canary_ingress_name(target)

    def _read(self, name: str) -> dict[str, Any] | None:
        obj = get_or_none(self.net.read_namespaced_ingress, name, self.target.namespace)
        return None if obj is None else as_dict(self.net.api_client, obj)

    def _canary(self) -> dict[str, Any] | None:
        """This rollout's canary Ingress, or None; LookupError when the name is taken by another."""
        current = self._read(self.name)
        if current is not None and not ours(current, self.target):
            raise LookupError(
                f"traffic.ingress.name: the canary Ingress {self.name} for Service {self.target.stable_service} "
                f"exists and is not this rollout's (owned by {_owner_words(current)}); another rollout of "
                f"{self.target.stable_service} is running, or the name is taken")
        return current

    def _stable(self) -> dict[str, Any]:
        stable = self._read(self.ingress)
        if stable is None:
            raise LookupError(f"traffic.ingress.name: Ingress {self.ingress} not found")
        return stable

    def set_weight(self, weight: int) -> None:
        if weight == 0:
            current = self._read(self.name)
            if current is None or not ours(current, self.target):
                return  # no canary Ingress of ours is weight 0; another's is not ours to touch
        else:
            current = self._canary()
        if current is None:
            if weight == 0:
                return  # no canary Ingress is weight 0
            body = cast(Any, canary_ingress(self._stable(), self.target, weight))  # the client takes plain JSON
            self.net.create_namespaced_ingress(self.target.namespace, body)
            return
        if (current["metadata"].get("annotations") or {}).get(CANARY_WEIGHT) != str(weight):
            # only the canary annotations: anything else on the canary Ingress stays as it is
            self.net.patch_namespaced_ingress(self.name, self.target.namespace, {
                "metadata": {"annotations": {CANARY: "true", CANARY_WEIGHT: str(weight)}}})

    def verify(self) -> None:
        canary_ingress(self._stable(), self.target, 0)  # LookupError naming the field
        self._canary()

    def get_weight(self) -> int:
        current = self._canary()
        if current is None:
            return 0
        try:
            return int((current["metadata"].get("annotations") or {}).get(CANARY_WEIGHT, "0"))
        except ValueError:
            return 0

    def remove(self) -> None:
        """Delete this rollout's canary Ingress (never another's), and the one an earlier version
        named after the stable Ingress, when this rollout owns it."""
        for name in dict.fromkeys((self.name, legacy_canary_ingress_name(self.ingress))):
            current = self._read(name)
            if current is not None and ours(current, self.target) and (name == self.name or self.target.owner):
                delete_if_present(self.net.delete_namespaced_ingress, name, self.target.namespace)

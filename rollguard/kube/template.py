"""Typed shapes of the Kubernetes objects rollguard reads, and pure edits of a pod template.

The TypedDicts name the parts of Deployment, Service, Ingress and HTTPRoute JSON the code
reads (``total=False``: the apiserver omits empty fields); everything else passes through
untouched. The edit functions work in place on a pod template's JSON and leave it as the
apiserver would store it (no empty lists), so "edited" and "as read" compare equal when nothing
changed.
"""

from __future__ import annotations

from typing import Any, TypedDict


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[dict[str, Any]]
    resourceVersion: str


class EnvVar(TypedDict, total=False):
    name: str
    value: str
    valueFrom: dict[str, Any]


class VolumeMount(TypedDict, total=False):
    name: str
    mountPath: str
    readOnly: bool


class Container(TypedDict, total=False):
    name: str
    image: str
    env: list[EnvVar]
    volumeMounts: list[VolumeMount]


class ConfigMapSource(TypedDict, total=False):
    name: str
    optional: bool


class Volume(TypedDict, total=False):
    name: str
    configMap: ConfigMapSource


class PodSpec(TypedDict, total=False):
    containers: list[Container]
    volumes: list[Volume]


class PodTemplate(TypedDict, total=False):
    metadata: ObjectMeta
    spec: PodSpec


class LabelSelector(TypedDict, total=False):
    matchLabels: dict[str, str]


class DeploymentSpec(TypedDict, total=False):
    replicas: int
    selector: LabelSelector
    template: PodTemplate


class DeploymentStatus(TypedDict, total=False):
    availableReplicas: int
    replicas: int


class Deployment(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: DeploymentSpec
    status: DeploymentStatus


class ServicePort(TypedDict, total=False):
    name: str
    port: int
    targetPort: int | str
    nodePort: int


class ServiceSpec(TypedDict, total=False):
    selector: dict[str, str]
    ports: list[ServicePort]


class Service(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: ServiceSpec


class IngressServiceBackend(TypedDict, total=False):
    name: str
    port: dict[str, Any]


class IngressBackend(TypedDict, total=False):
    service: IngressServiceBackend


class Ingress(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]  # rules[].http.paths[].backend and defaultBackend: IngressBackend


class BackendRef(TypedDict, total=False):
    name: str
    kind: str
    group: str
    port: int
    weight: int


class HTTPRouteRule(TypedDict, total=False):
    backendRefs: list[BackendRef]


class HTTPRouteSpec(TypedDict, total=False):
    rules: list[HTTPRouteRule]


class HTTPRoute(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: HTTPRouteSpec


# ------------------------------------------------------------------ pod template edits

def containers(template: PodTemplate) -> list[Container]:
    """The template's containers (the list is created when absent, so edits stick)."""
    return template.setdefault("spec", {}).setdefault("containers", [])


def volume(template: PodTemplate, name: str) -> Volume | None:
    """A copy of volume ``name``, or None."""
    for v in (template.get("spec") or {}).get("volumes") or []:
        if v.get("name") == name:
            return Volume(**v)
    return None


def set_env(container: Container, name: str, value: str | None) -> None:
    """Set env var ``name`` to ``value`` where it stands (appended when new); None removes it.
    Every other entry keeps its place and its content."""
    old = container.get("env") or []
    at = next((i for i, e in enumerate(old) if e.get("name") == name), len(old))
    env = [e for e in old if e.get("name") != name]
    if value is not None:
        env.insert(min(at, len(env)), {"name": name, "value": value})
    if env:
        container["env"] = env
    else:
        container.pop("env", None)  # the apiserver stores no empty list either: templates compare equal


def restore_env(container: Container, names: list[str], entries: list[dict[str, Any]]) -> None:
    """Put env vars ``names`` back as they were: ``entries`` are the ones the container had
    (``{"index": i, "entry": {...}}``), each back whole at its own position; a name without an
    entry is removed. With the other entries unchanged since, the list is the original again."""
    wanted = set(names) | {str(x["entry"].get("name")) for x in entries}
    env: list[Any] = [e for e in container.get("env") or [] if e.get("name") not in wanted]
    for x in sorted(entries, key=lambda x: int(x["index"])):
        env.insert(min(int(x["index"]), len(env)), dict(x["entry"]))
    if env:
        container["env"] = env
    else:
        container.pop("env", None)


def set_config_map_volume(template: PodTemplate, name: str, config_map: str, mount_path: str | None) -> None:
    """Point volume ``name`` at ``config_map``; add it (and a read-only mount in every container at
    ``mount_path``) when the template does not have it yet."""
    spec = template.setdefault("spec", {})
    volumes = spec.setdefault("volumes", [])
    for v in volumes:
        if v.get("name") == name:
            v["configMap"] = {**(v.get("configMap") or {}), "name": config_map}
            return
    volumes.append({"name": name, "configMap": {"name": config_map, "optional": True}})
    if mount_path is not None:
        for c in containers(template):
            mounts = c.setdefault("volumeMounts", [])
            if not any(m.get("mountPath") == mount_path for m in mounts):
                mounts.append({"name": name, "mountPath": mount_path, "readOnly": True})


def selector_string(selector: dict[str, Any]) -> str:
    """A ``LabelSelector`` (``matchLabels``, ``matchExpressions``) as the string ``list`` takes.

    Raises ``ValueError`` for an operator the API does not know. An empty selector is ``""``
    (everything), as the API reads it.
    """
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e.get("operator"), ",".join(e.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise ValueError(f"selector.matchExpressions: unknown operator {op!r}")
    return ",".join(parts)

"""What a change does to a pod template, as pure functions on plain dicts (Kubernetes JSON).

- flags: env vars ``AOS_FEATURE_<NAME>=true|false`` on every container; the rollguard SDK
  honours them over the flags file, so canary pods see the new values at once and the stable's
  pods are untouched until promotion.
- catalog: the pod-template annotation ``catalog.rollguard.io/<name>: <hash>``; the FailureCatalog
  controller mounts that version (a changed annotation rolls the pods).
- image: the named container's image.

``snapshot`` records what the change will touch, ``restore`` puts it back: that is all a
rollback after promotion needs, and it never scales or restarts anything else.
"""

from __future__ import annotations

import copy
from typing import Any

from rollguard.models.canary import Change

TRACK_LABEL = "rollguard.io/track"
CATALOG_ANNOTATION_PREFIX = "catalog.rollguard.io/"


def flag_env_name(flag: str) -> str:
    return "AOS_FEATURE_" + flag.upper()


def _containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = template.setdefault("spec", {}).setdefault("containers", [])
    return containers


def _set_env(container: dict[str, Any], name: str, value: str | None) -> None:
    env = [e for e in container.get("env") or [] if e.get("name") != name]
    if value is not None:
        env.append({"name": name, "value": value})
    container["env"] = env


def apply_change(template: dict[str, Any], change: Change) -> dict[str, Any]:
    t = copy.deepcopy(template)
    if change.flags is not None:
        for c in _containers(t):
            for flag, value in change.flags.values.items():
                _set_env(c, flag_env_name(flag), "true" if value else "false")
    if change.catalog is not None:
        ann = t.setdefault("metadata", {}).setdefault("annotations", {})
        ann[CATALOG_ANNOTATION_PREFIX + change.catalog.name] = change.catalog.hash
    if change.image is not None:
        found = False
        for c in _containers(t):
            if c.get("name") == change.image.container:
                c["image"], found = change.image.image, True
        if not found:
            raise ValueError(f"change.image.container: no container named {change.image.container!r} in the target")
    return t


def has_change(template: dict[str, Any], change: Change) -> bool:
    return apply_change(template, change) == template


def snapshot(template: dict[str, Any], change: Change) -> dict[str, Any]:
    """The current values of everything ``change`` touches. Absent things are listed by name
    (``envAbsent``, ``annotationsAbsent``), not as nulls: the status is stored without nulls."""
    snap: dict[str, Any] = {}
    containers = template.get("spec", {}).get("containers", [])
    if change.flags is not None:
        names = [flag_env_name(f) for f in change.flags.values]
        env: dict[str, dict[str, str]] = {}
        absent: dict[str, list[str]] = {}
        for c in containers:
            current = {e.get("name"): e.get("value", "") for e in c.get("env") or []}
            env[c.get("name", "")] = {k: current[k] for k in names if k in current}
            absent[c.get("name", "")] = [k for k in names if k not in current]
        snap["env"], snap["envAbsent"] = env, absent
    if change.catalog is not None:
        key = CATALOG_ANNOTATION_PREFIX + change.catalog.name
        ann = template.get("metadata", {}).get("annotations") or {}
        if key in ann:
            snap["annotations"] = {key: ann[key]}
        else:
            snap["annotationsAbsent"] = [key]
    if change.image is not None:
        snap["images"] = {c.get("name", ""): c.get("image") for c in containers
                          if c.get("name") == change.image.container}
    return snap


def restore(template: dict[str, Any], snap: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template)
    for c in _containers(t):
        name = c.get("name", "")
        for env_name, value in (snap.get("env", {}).get(name) or {}).items():
            _set_env(c, env_name, value)
        for env_name in snap.get("envAbsent", {}).get(name) or []:
            _set_env(c, env_name, None)
        if name in snap.get("images", {}):
            c["image"] = snap["images"][name]
    ann = t.setdefault("metadata", {}).setdefault("annotations", {})
    ann.update(snap.get("annotations") or {})
    for key in snap.get("annotationsAbsent") or []:
        ann.pop(key, None)
    return t


def canary_labels(labels: dict[str, str], selector: dict[str, str]) -> dict[str, str]:
    """The canary pods' labels: the stable Service and Deployment must not select them, so each
    selector label gets a ``-canary`` suffix; the track label tells the two apart in PromQL."""
    out = {k: (f"{v}-canary" if k in selector else v) for k, v in labels.items()}
    out[TRACK_LABEL] = "canary"
    return out


def canary_deployment(target: dict[str, Any], change: Change, name: str,
                      owner: dict[str, Any] | None) -> dict[str, Any]:
    """The canary Deployment: the target's pod template with the change applied, its own selector."""
    spec = target.get("spec", {})
    selector = dict(spec.get("selector", {}).get("matchLabels") or {})
    template = apply_change(spec.get("template", {}), change)
    meta = template.setdefault("metadata", {})
    meta["labels"] = canary_labels(meta.get("labels") or {}, selector)
    meta.setdefault("annotations", {})["rollguard.io/canary-of"] = target["metadata"]["name"]
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": target["metadata"].get("namespace"),
                     "labels": {TRACK_LABEL: "canary", "rollguard.io/canary-of": target["metadata"]["name"]}},
        "spec": {"replicas": spec.get("replicas", 1),
                 "selector": {"matchLabels": canary_labels(selector, selector)},
                 "template": template},
    }
    if owner:
        obj["metadata"]["ownerReferences"] = [owner]
    return obj


def canary_service(stable: dict[str, Any], name: str, selector: dict[str, str],
                   owner: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": stable["metadata"].get("namespace"),
                     "labels": {TRACK_LABEL: "canary"}},
        "spec": {"selector": canary_labels(stable.get("spec", {}).get("selector") or {}, selector),
                 "ports": [{k: v for k, v in p.items() if k != "nodePort"}
                           for p in stable.get("spec", {}).get("ports", [])]},
    }
    if owner:
        obj["metadata"]["ownerReferences"] = [owner]
    return obj

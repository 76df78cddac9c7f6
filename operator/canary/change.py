"""What a change does, as pure functions on plain dicts (Kubernetes JSON); the shell does the I/O.

- image: the named container's image, on the canary and (at promotion) on the stable.
- catalog: the canary mounts the requested FailureCatalog version (its ConfigMap from the
  catalog's ``status.history``). Promotion goes through the FailureCatalog: ``spec.pinnedHash``
  is set to the promoted version (or cleared when that is the spec's own content), and the
  catalog controller, the one writer of the stable's catalog mount, mounts it everywhere.
- flags: the canary gets the env override ``AOS_FEATURE_<KEY>`` and its own flags file, a copy
  of ``rollguard-flags-<env>`` rendered with the new values. Promotion writes the values into
  the FeatureFlags (``spec.environments[env]``) and takes the env overrides off the stable, so
  the FeatureFlag stays the source of truth. Without the FeatureFlag kind (CRD not installed)
  flags are env overrides only, on the canary and on the stable.

``snapshot`` records what the change will touch (stable template, pin, flag values);
``restore`` and the ``*_restore_patch`` functions put it back. That is all a rollback after
promotion needs, and it never scales or restarts anything else.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rollguard.flags import plan_namespace
from rollguard.flags.evaluate import default_env_var, signoff_verdict
from rollguard.kube.names import (
    CANARY_OF_LABEL,
    CATALOG_HASH_ANNOTATION,
    CATALOG_NAME_ANNOTATION,
    CATALOG_VOLUME,
    FLAGS_MOUNT_DIR,
    FLAGS_VOLUME,
    SIGNOFF_ANNOTATION,
    TRACK_CANARY,
    TRACK_LABEL,
    canary_name,
    flags_config_map,
)
from rollguard.models.canary import Change
from rollguard.models.flag import FeatureFlag, FeatureFlagSpec

CATALOG_MIN_PREFIX = 10


def flag_env_name(flag: str) -> str:
    """The SDK's generic override variable for a flag key."""
    return default_env_var(flag)


# --------------------------------------------------------------------------- resolved references

@dataclass(frozen=True)
class CatalogVersion:
    """The FailureCatalog version a catalog change names, resolved against the catalog's history."""

    catalog: str
    hash: str  # the full content hash
    config_map: str
    spec_hash: str | None = None  # status.contentHash: the version the spec's content renders
    pinned: str | None = None  # spec.pinnedHash as it is now

    @property
    def short(self) -> str:
        return self.hash[:10]

    def wanted_pin(self) -> str | None:
        """The pin that makes the catalog controller mount this version: none when it is the spec's own."""
        return None if self.hash == self.spec_hash else self.hash


@dataclass(frozen=True)
class FlagRef:
    """One changed flag, resolved to its FeatureFlag resource."""

    key: str
    resource: str
    value: bool  # requested
    current: bool | None  # spec.environments[env] now (None: not set there)
    env_vars: tuple[str, ...]  # override variables the SDK honours for it
    gated: bool  # requiresSignoff
    signoff_valid: bool
    signoff: dict[str, Any] | None = None  # spec.signoff as stored
    delivered: bool | None = None  # the value in rollguard-flags-<env> now (None: not there)

    @property
    def needs_signoff(self) -> bool:
        return self.value and self.gated and not self.signoff_valid


@dataclass(frozen=True)
class Resolved:
    """The rollout's references as they are now. ``flags is None``: the FeatureFlag kind is not
    served, flags are env overrides only."""

    catalog: CatalogVersion | None = None
    flags: tuple[FlagRef, ...] | None = None
    environment: str | None = None
    flag_objects: tuple[dict[str, Any], ...] = ()  # every FeatureFlag of the namespace, as read
    problems: tuple[str, ...] = ()


def _volume(template: dict[str, Any], name: str) -> dict[str, Any] | None:
    for v in (template.get("spec") or {}).get("volumes") or []:
        if v.get("name") == name:
            return dict(v)
    return None


def resolve_catalog(change: Change, catalog: dict[str, Any] | None, target_template: dict[str, Any],
                    namespace: str, target: str) -> CatalogVersion | str:
    """The requested version, or the precondition problem (naming the field)."""
    assert change.catalog is not None
    name, want = change.catalog.name, change.catalog.hash
    if catalog is None:
        return f"change.catalog.name: FailureCatalog {name} not found in {namespace}"
    status = catalog.get("status") or {}
    history = [h for h in status.get("history") or [] if h.get("hash") and h.get("configMapName")]
    found = [h for h in history if h["hash"] == want]
    if not found and len(want) >= CATALOG_MIN_PREFIX:
        found = [h for h in history if h["hash"].startswith(want)]
    known = ", ".join(h["hash"][:10] for h in history) or "none yet"
    if len(want) < CATALOG_MIN_PREFIX and not found:
        return (f"change.catalog.hash: {want} is too short; give the full content hash or a prefix of at least "
                f"{CATALOG_MIN_PREFIX} characters (FailureCatalog {name} versions: {known})")
    if len(found) != 1:
        what = "matches several versions" if found else "is not a version"
        return f"change.catalog.hash: {want} {what} in FailureCatalog {name} status.history (known: {known})"
    ann = (target_template.get("metadata") or {}).get("annotations") or {}
    if ann.get(CATALOG_NAME_ANNOTATION) != name or _volume(target_template, CATALOG_VOLUME) is None:
        return (f"change.catalog.name: Deployment {target} does not mount FailureCatalog {name}; "
                f"make it one of the catalog's spec.targets first")
    h = found[0]
    return CatalogVersion(catalog=name, hash=h["hash"], config_map=h["configMapName"],
                          spec_hash=status.get("contentHash"), pinned=(catalog.get("spec") or {}).get("pinnedHash"))


def parse_flags(objects: list[dict[str, Any]]) -> list[FeatureFlag]:
    out: list[FeatureFlag] = []
    for o in objects:
        try:
            out.append(FeatureFlag(metadata=o["metadata"], spec=FeatureFlagSpec.model_validate(o.get("spec") or {})))
        except ValidationError:
            continue  # the flags controller reports it Invalid; it is not delivered either
    return out


def mounted_flags_environment(template: dict[str, Any]) -> str | None:
    v = _volume(template, FLAGS_VOLUME)
    cm = ((v or {}).get("configMap") or {}).get("name", "")
    prefix = flags_config_map("")
    return cm[len(prefix):] if cm.startswith(prefix) else None


def resolve_flags(change: Change, objects: list[dict[str, Any]], target_template: dict[str, Any],
                  delivered: dict[str, Any] | None, rollout_requires_signoff: bool, target: str,
                  now: dt.datetime) -> tuple[tuple[FlagRef, ...], list[str]]:
    """Each changed key's FeatureFlag, and the precondition problems (naming the field)."""
    assert change.flags is not None
    env = change.flags.environment
    problems: list[str] = []
    mounted = mounted_flags_environment(target_template)
    if mounted != env:
        problems.append(
            f"change.flags.environment: Deployment {target} receives the flags of environment {mounted} "
            f"(ConfigMap {flags_config_map(mounted)}), not {env}" if mounted else
            f"change.flags.environment: Deployment {target} does not receive the flags of any environment; "
            f"make it a target of the FeatureFlags for {env} (spec.targets) first")
    flags = parse_flags(objects)
    refs: list[FlagRef] = []
    for key, value in change.flags.values.items():
        matches = sorted((f for f in flags if f.key == key), key=lambda f: str(f.metadata.get("creationTimestamp")))
        if not matches:
            problems.append(f"change.flags.values.{key}: no FeatureFlag with key {key} in this namespace")
            continue
        f = matches[0]  # two flags with one key: the older one is delivered (the flags controller's rule)
        verdict = signoff_verdict(f.spec, now)
        entry = ((delivered or {}).get("flags") or {}).get(key) or {}
        ref = FlagRef(
            key=key, resource=f.name, value=value, current=(f.spec.environments or {}).get(env),
            env_vars=tuple(sorted({v for v in (f.spec.env_var, default_env_var(key)) if v})),
            gated=f.spec.requires_signoff, signoff_valid=verdict.allows_enable,
            signoff=f.spec.signoff.to_k8s() if f.spec.signoff is not None else None,
            delivered=entry.get("value") if isinstance(entry.get("value"), bool) else None)
        if ref.needs_signoff and not rollout_requires_signoff:
            # The SDK ignores an env override that turns a gated flag on: without a sign-off the
            # canary would run the old value and the analysis would compare nothing.
            problems.append(
                f"change.flags.values.{key}: FeatureFlag {f.name} requires a sign-off and has no valid one "
                f"({verdict.state}); set spec.requiresSignoff: true on this CanaryRollout and sign it off "
                f"(annotation {SIGNOFF_ANNOTATION}), or sign off the FeatureFlag")
        refs.append(ref)
    return tuple(refs), problems


# --------------------------------------------------------------------------- pod templates

def _containers(template: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = template.setdefault("spec", {}).setdefault("containers", [])
    return containers


def _set_env(container: dict[str, Any], name: str, value: str | None) -> None:
    env = [e for e in container.get("env") or [] if e.get("name") != name]
    if value is not None:
        env.append({"name": name, "value": value})
    if env:
        container["env"] = env
    else:
        container.pop("env", None)  # the apiserver stores no empty list either: templates compare equal


def _set_volume(template: dict[str, Any], name: str, config_map: str, mount_path: str | None) -> None:
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
        for c in _containers(template):
            mounts = c.setdefault("volumeMounts", [])
            if not any(m.get("mountPath") == mount_path for m in mounts):
                mounts.append({"name": name, "mountPath": mount_path, "readOnly": True})


def _set_image(template: dict[str, Any], change: Change) -> None:
    if change.image is None:
        return
    found = False
    for c in _containers(template):
        if c.get("name") == change.image.container:
            c["image"], found = change.image.image, True
    if not found:
        raise ValueError(f"change.image.container: no container named {change.image.container!r} in the target")


def _override_vars(change: Change, resolved: Resolved) -> list[str]:
    if change.flags is None:
        return []
    if resolved.flags is None:
        return [flag_env_name(k) for k in change.flags.values]
    return sorted({v for r in resolved.flags for v in r.env_vars})


def canary_template(template: dict[str, Any], change: Change, resolved: Resolved,
                    flags_config_map: str | None = None) -> dict[str, Any]:
    """The canary's pod template: the target's with the whole change applied."""
    t = copy.deepcopy(template)
    _set_image(t, change)
    if change.flags is not None:
        for c in _containers(t):
            for flag, value in change.flags.values.items():
                _set_env(c, flag_env_name(flag), "true" if value else "false")
        if flags_config_map is not None:
            _set_volume(t, FLAGS_VOLUME, flags_config_map, FLAGS_MOUNT_DIR)
    if change.catalog is not None and resolved.catalog is not None:
        cv = resolved.catalog
        _set_volume(t, CATALOG_VOLUME, cv.config_map, None)
        ann = t.setdefault("metadata", {}).setdefault("annotations", {})
        ann[CATALOG_NAME_ANNOTATION], ann[CATALOG_HASH_ANNOTATION] = cv.catalog, cv.short
    return t


def stable_template(template: dict[str, Any], change: Change, resolved: Resolved) -> dict[str, Any]:
    """The stable's pod template after promotion, for the parts the rollout writes itself: the
    image, and the flag env overrides (taken off, so the FeatureFlag decides; set, without the
    FeatureFlag kind). The catalog mount is the catalog controller's to write."""
    t = copy.deepcopy(template)
    _set_image(t, change)
    if change.flags is not None:
        for c in _containers(t):
            if resolved.flags is None:
                for flag, value in change.flags.values.items():
                    _set_env(c, flag_env_name(flag), "true" if value else "false")
            else:
                for var in _override_vars(change, resolved):
                    _set_env(c, var, None)
    return t


def catalog_mounted(template: dict[str, Any], cv: CatalogVersion) -> bool:
    ann = (template.get("metadata") or {}).get("annotations") or {}
    v = _volume(template, CATALOG_VOLUME) or {}
    return ann.get(CATALOG_HASH_ANNOTATION) == cv.short and (v.get("configMap") or {}).get("name") == cv.config_map


def flag_applied(r: FlagRef) -> bool:
    """The FeatureFlag says the value, the gate lets it through, and the flags file delivers it."""
    return r.current == r.value and not r.needs_signoff and r.delivered in (None, r.value)


def stable_has_change(template: dict[str, Any], change: Change, resolved: Resolved) -> bool:
    if stable_template(template, change, resolved) != template:
        return False
    if change.catalog is not None and (resolved.catalog is None or not catalog_mounted(template, resolved.catalog)):
        return False
    return all(flag_applied(r) for r in resolved.flags or ())


def snapshot(template: dict[str, Any], change: Change, resolved: Resolved) -> dict[str, Any]:
    """The current values of everything ``change`` touches. Absent things are listed by name
    (``envAbsent``, ``valueAbsent``, ...), not as nulls: the status is stored without nulls."""
    snap: dict[str, Any] = {}
    containers = template.get("spec", {}).get("containers", [])
    names = _override_vars(change, resolved)
    if names:
        env: dict[str, dict[str, str]] = {}
        absent: dict[str, list[str]] = {}
        for c in containers:
            current = {e.get("name"): e.get("value", "") for e in c.get("env") or []}
            env[c.get("name", "")] = {k: current[k] for k in names if k in current}
            absent[c.get("name", "")] = [k for k in names if k not in current]
        snap["env"], snap["envAbsent"] = env, absent
    if change.image is not None:
        snap["images"] = {c.get("name", ""): c.get("image") for c in containers
                          if c.get("name") == change.image.container}
    if resolved.catalog is not None:
        cv = resolved.catalog
        snap["catalogPin"] = {"name": cv.catalog, **({"pinnedHash": cv.pinned} if cv.pinned else {})}
    if resolved.flags and resolved.environment:
        flags: dict[str, Any] = {}
        for r in resolved.flags:
            item: dict[str, Any] = {"environment": resolved.environment}
            if r.current is not None:
                item["value"] = r.current
            if r.signoff is not None:
                item["signoff"] = r.signoff
            flags[r.resource] = item
        snap["featureFlags"] = flags
    return snap


def restore(template: dict[str, Any], snap: dict[str, Any]) -> dict[str, Any]:
    """The stable's pod template as the snapshot had it (env overrides, images)."""
    t = copy.deepcopy(template)
    for c in _containers(t):
        name = c.get("name", "")
        for env_name, value in (snap.get("env", {}).get(name) or {}).items():
            _set_env(c, env_name, value)
        for env_name in snap.get("envAbsent", {}).get(name) or []:
            _set_env(c, env_name, None)
        if name in snap.get("images", {}):
            c["image"] = snap["images"][name]
    if snap.get("annotations") or snap.get("annotationsAbsent"):  # snapshots of older rollouts
        ann = t.setdefault("metadata", {}).setdefault("annotations", {})
        ann.update(snap.get("annotations") or {})
        for key in snap.get("annotationsAbsent") or []:
            ann.pop(key, None)
    return t


# --------------------------------------------------------------------------- FailureCatalog, FeatureFlags

def catalog_pin_patch(cv: CatalogVersion) -> dict[str, Any] | None:
    """The merge patch that makes the catalog controller mount ``cv`` everywhere; None: nothing to do."""
    want = cv.wanted_pin()
    if want is None and not cv.pinned:
        return None
    if want is not None and cv.pinned and want.startswith(cv.pinned) and len(cv.pinned) >= CATALOG_MIN_PREFIX:
        return None  # pinned already, by a prefix
    return {"spec": {"pinnedHash": want}}


def catalog_restore_patch(snap: dict[str, Any], cv: CatalogVersion | None) -> tuple[str, dict[str, Any]] | None:
    """(catalog, merge patch) that puts the pin back as the snapshot had it; None: it is so already."""
    pin = snap.get("catalogPin")
    if not pin:
        return None
    before = pin.get("pinnedHash")
    if cv is not None and cv.catalog == pin["name"] and (cv.pinned or None) == before:
        return None
    return pin["name"], {"spec": {"pinnedHash": before}}


def rollout_signoff(by: str, at: dt.datetime, rollout: str) -> dict[str, Any]:
    """The rollout's sign-off as a FeatureFlag ``spec.signoff``: the same approval, recorded where
    the flags controller's gate looks for it."""
    return {"by": by[:253], "at": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "evidence": {"kind": "Manual",
                         "summary": f"sign-off of CanaryRollout {rollout} ({by})"[:4096]}}


def flag_patches(resolved: Resolved, signoff: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """FeatureFlag resource -> merge patch writing the promoted value (and, for a gated flag turned
    on without a valid sign-off of its own, the rollout's sign-off)."""
    out: dict[str, dict[str, Any]] = {}
    env = resolved.environment
    for r in resolved.flags or ():
        spec: dict[str, Any] = {}
        if r.current != r.value and env:
            spec["environments"] = {env: r.value}
        if r.needs_signoff and signoff is not None:
            spec["signoff"] = signoff
        if spec:
            out[r.resource] = {"spec": spec}
    return out


def flag_restore_patches(snap: dict[str, Any], resolved: Resolved) -> dict[str, dict[str, Any]]:
    """FeatureFlag resource -> merge patch putting value and sign-off back; only what differs now."""
    now = {r.resource: r for r in resolved.flags or ()}
    out: dict[str, dict[str, Any]] = {}
    for resource, item in (snap.get("featureFlags") or {}).items():
        r = now.get(resource)
        spec: dict[str, Any] = {}
        if r is None or r.current != item.get("value"):
            spec["environments"] = {item["environment"]: item.get("value")}
        if r is None or r.signoff != item.get("signoff"):
            spec["signoff"] = item.get("signoff")
        if spec:
            out[resource] = {"spec": spec}
    return out


def canary_flag_files(change: Change, objects: tuple[dict[str, Any], ...], signoff: dict[str, Any] | None,
                      namespace: str, now: dt.datetime) -> dict[str, str]:
    """The canary's own copy of ``rollguard-flags-<env>``: every flag of the namespace, evaluated the
    way the flags controller does, with the rollout's values in its environment. A gated flag the
    rollout turns on counts as signed off only with ``signoff`` (the rollout's own sign-off): the
    SDK trusts the file's sign-off state, never a pod's env, so this is where that decision lives."""
    assert change.flags is not None
    env = change.flags.environment
    flags = []
    for f in parse_flags(list(objects)):
        if f.key in change.flags.values:
            spec = f.spec.model_copy(deep=True)
            spec.environments = {**(spec.environments or {}), env: change.flags.values[f.key]}
            if spec.requires_signoff and not signoff_verdict(spec, now).allows_enable and signoff is not None:
                spec = FeatureFlagSpec.model_validate({**spec.to_k8s(), "signoff": signoff})
            f = FeatureFlag(metadata=f.metadata, spec=spec)
        flags.append(f)
    plan = plan_namespace(flags, [], namespace, now)
    return plan.files.get(env, {})


# --------------------------------------------------------------------------- canary objects

def canary_labels(labels: dict[str, str], selector: dict[str, str]) -> dict[str, str]:
    """The canary pods' labels: the stable Service and Deployment must not select them, so each
    selector label gets a ``-canary`` suffix; the track label tells the two apart in PromQL."""
    out = {k: (canary_name(v) if k in selector else v) for k, v in labels.items()}
    out[TRACK_LABEL] = TRACK_CANARY
    return out


def canary_deployment(target: dict[str, Any], change: Change, name: str, owner: dict[str, Any] | None,
                      resolved: Resolved | None = None, flags_config_map: str | None = None) -> dict[str, Any]:
    """The canary Deployment: the target's pod template with the change applied, its own selector."""
    spec = target.get("spec", {})
    selector = dict(spec.get("selector", {}).get("matchLabels") or {})
    template = canary_template(spec.get("template", {}), change, resolved or Resolved(), flags_config_map)
    meta = template.setdefault("metadata", {})
    meta["labels"] = canary_labels(meta.get("labels") or {}, selector)
    meta.setdefault("annotations", {})[CANARY_OF_LABEL] = target["metadata"]["name"]
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": target["metadata"].get("namespace"),
                     "labels": {TRACK_LABEL: TRACK_CANARY, CANARY_OF_LABEL: target["metadata"]["name"]}},
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
                     "labels": {TRACK_LABEL: TRACK_CANARY}},
        "spec": {"selector": canary_labels(stable.get("spec", {}).get("selector") or {}, selector),
                 "ports": [{k: v for k, v in p.items() if k != "nodePort"}
                           for p in stable.get("spec", {}).get("ports", [])]},
    }
    if owner:
        obj["metadata"]["ownerReferences"] = [owner]
    return obj

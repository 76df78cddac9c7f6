"""The flags change kind: FeatureFlag values in one environment, tried on the canary first.

The canary gets the env override ``AOS_FEATURE_<KEY>`` and its own flags file, a copy of
``rollguard-flags-<env>`` rendered with the new values. Promotion writes the values into the
FeatureFlags (``spec.environments[env]``) and takes the env overrides off the stable, so the
FeatureFlag stays the source of truth. Without the FeatureFlag kind (CRD not installed) flags
are env overrides only, on the canary and on the stable.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol, cast

from rollguard.flags import plan_namespace
from rollguard.flags.evaluate import default_env_var, signoff_verdict
from rollguard.kube.names import (
    FLAGS_CONFIG_MAP_PREFIX,
    FLAGS_MOUNT_DIR,
    FLAGS_VOLUME,
    SIGNOFF_ANNOTATION,
    flags_config_map,
)
from rollguard.kube.template import PodTemplate, containers, restore_env, set_config_map_volume, set_env, volume
from rollguard.models.canary import Change
from rollguard.models.flag import FeatureFlag, FeatureFlagSpec
from rollguard.operator.changekind import EnvEntry, FlagValue, ObjectPatch, Snapshot
from rollguard.operator.flags.reconcile import parse_flag

PLURAL = "featureflags"


def flag_env_name(flag: str) -> str:
    """The SDK's generic override variable for a flag key."""
    return default_env_var(flag)


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
        """Turning it on needs a sign-off it does not have yet."""
        return self.value and self.gated and not self.signoff_valid


class ResolvedFlags(Protocol):
    """What the flags kind resolved: ``flags is None`` means the FeatureFlag kind is not served
    (flags are env overrides only)."""

    @property
    def flags(self) -> tuple[FlagRef, ...] | None: ...

    @property
    def environment(self) -> str | None: ...


@dataclass(frozen=True)
class FlagsPart:
    """The flags kind's part of a resolved change (see :class:`ResolvedFlags`)."""

    flags: tuple[FlagRef, ...] | None = None
    environment: str | None = None
    canary_config_map: str | None = None  # the canary's own flags ConfigMap, once it is written


def _valid_flags(objects: list[dict[str, Any]]) -> list[FeatureFlag]:
    # an invalid one is reported Invalid by the flags controller, and not delivered either
    return [f for f in map(parse_flag, objects) if isinstance(f, FeatureFlag)]


def mounted_flags_environment(template: PodTemplate) -> str | None:
    """The environment whose flags file ``template`` mounts, if any."""
    cm = ((volume(template, FLAGS_VOLUME) or {}).get("configMap") or {}).get("name", "")
    return cm[len(FLAGS_CONFIG_MAP_PREFIX):] if cm.startswith(FLAGS_CONFIG_MAP_PREFIX) else None


def resolve_flags(change: Change, objects: list[dict[str, Any]], target_template: dict[str, Any],
                  delivered: dict[str, Any] | None, rollout_requires_signoff: bool, target: str,
                  now: dt.datetime) -> tuple[tuple[FlagRef, ...], list[str]]:
    """Each changed key's FeatureFlag, and the precondition problems (naming the field)."""
    assert change.flags is not None
    env = change.flags.environment
    problems: list[str] = []
    mounted = mounted_flags_environment(cast(PodTemplate, target_template))
    if mounted != env:
        problems.append(
            f"change.flags.environment: Deployment {target} receives the flags of environment {mounted} "
            f"(ConfigMap {flags_config_map(mounted)}), not {env}" if mounted else
            f"change.flags.environment: Deployment {target} does not receive the flags of any environment; "
            f"make it a target of the FeatureFlags for {env} (spec.targets) first")
    flags = _valid_flags(objects)
    # spec.signoff as stored (not the model's rendering of it): a restore writes back these bytes
    stored = {(o.get("metadata") or {}).get("name"): (o.get("spec") or {}).get("signoff") for o in objects}
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
            signoff=copy.deepcopy(stored.get(f.name)) if f.spec.signoff is not None else None,
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


def override_vars(change: Change, resolved: ResolvedFlags) -> list[str]:
    """Every env override variable the change's flags may be set through (what promotion removes)."""
    if change.flags is None:
        return []
    if resolved.flags is None:
        return [flag_env_name(k) for k in change.flags.values]
    return sorted({v for r in resolved.flags for v in r.env_vars})


def flag_applied(r: FlagRef) -> bool:
    """The FeatureFlag says the value, the gate lets it through, and the flags file delivers it."""
    return r.current == r.value and not r.needs_signoff and r.delivered in (None, r.value)


def flag_patches(resolved: ResolvedFlags, signoff: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
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


def flag_restore_patches(snap: Snapshot | dict[str, Any], resolved: ResolvedFlags) -> dict[str, dict[str, Any]]:
    """FeatureFlag resource -> merge patch putting value and sign-off back; only what differs now."""
    now = {r.resource: r for r in resolved.flags or ()}
    out: dict[str, dict[str, Any]] = {}
    for resource, item in (cast(Snapshot, snap).get("featureFlags") or {}).items():
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
    for f in _valid_flags(list(objects)):
        if f.key in change.flags.values:
            spec = f.spec.model_copy(deep=True)
            spec.environments = {**(spec.environments or {}), env: change.flags.values[f.key]}
            if spec.requires_signoff and not signoff_verdict(spec, now).allows_enable and signoff is not None:
                spec = FeatureFlagSpec.model_validate({**spec.to_k8s(), "signoff": signoff})
            f = FeatureFlag(metadata=f.metadata, spec=spec)
        flags.append(f)
    plan = plan_namespace(flags, [], namespace, now)
    return plan.files.get(env, {})


class FlagsKind:
    """:class:`~rollguard.operator.changekind.ChangeKind` for ``change.flags``; its part is a
    :class:`FlagsPart`."""

    name = "flags"
    promote_before_template = True  # the FeatureFlag (the source of truth) first, then the overrides go

    def wanted(self, change: Change) -> bool:
        return change.flags is not None

    def canary_template(self, template: PodTemplate, change: Change, part: FlagsPart) -> None:
        if change.flags is None:
            return
        for c in containers(template):
            for flag, value in change.flags.values.items():
                set_env(c, flag_env_name(flag), "true" if value else "false")
        if part.canary_config_map is not None:
            set_config_map_volume(template, FLAGS_VOLUME, part.canary_config_map, FLAGS_MOUNT_DIR)

    def stable_template(self, template: PodTemplate, change: Change, part: FlagsPart) -> None:
        if change.flags is None:
            return
        for c in containers(template):
            if part.flags is None:
                for flag, value in change.flags.values.items():
                    set_env(c, flag_env_name(flag), "true" if value else "false")
            else:
                for var in override_vars(change, part):
                    set_env(c, var, None)

    def is_applied(self, template: PodTemplate, change: Change, part: FlagsPart) -> bool:
        return all(flag_applied(r) for r in part.flags or ())

    def snapshot(self, template: PodTemplate, change: Change, part: FlagsPart, snap: Snapshot) -> None:
        names = override_vars(change, part)
        if names:
            entries: dict[str, list[EnvEntry]] = {}
            absent: dict[str, list[str]] = {}
            for c in (template.get("spec") or {}).get("containers", []):
                env = c.get("env") or []
                entries[c.get("name", "")] = [{"index": i, "entry": copy.deepcopy(dict(e))}
                                              for i, e in enumerate(env) if e.get("name") in names]
                had = {e.get("name") for e in env}
                absent[c.get("name", "")] = [k for k in names if k not in had]
            snap["envEntries"], snap["envAbsent"] = entries, absent
        if part.flags and part.environment:
            flags: dict[str, FlagValue] = {}
            for r in part.flags:
                item: FlagValue = {"environment": part.environment}
                if r.current is not None:
                    item["value"] = r.current
                if r.signoff is not None:
                    item["signoff"] = r.signoff
                flags[r.resource] = item
            snap["featureFlags"] = flags

    def restore_template(self, template: PodTemplate, snap: Snapshot) -> None:
        for c in containers(template):
            name = c.get("name", "")
            if "envEntries" in snap:
                restore_env(c, list(snap.get("envAbsent", {}).get(name) or []),
                            [dict(x) for x in snap["envEntries"].get(name) or []])
                continue
            for env_name, value in (snap.get("env", {}).get(name) or {}).items():  # earlier versions
                set_env(c, env_name, value)
            for env_name in snap.get("envAbsent", {}).get(name) or []:
                set_env(c, env_name, None)

    def promote(self, change: Change, part: FlagsPart, signoff: dict[str, Any] | None) -> list[ObjectPatch]:
        out = []
        for resource, patch in sorted(flag_patches(part, signoff).items()):
            envs = patch["spec"].get("environments", {})
            what = [f"spec.environments.{k} = {str(v).lower()}" for k, v in envs.items()]
            if "signoff" in patch["spec"]:
                what.append(f"spec.signoff recorded from this rollout's sign-off ({patch['spec']['signoff']['by']})")
            out.append(ObjectPatch(PLURAL, resource, patch, f"FeatureFlag {resource}: {', '.join(what)}"))
        return out

    def restore(self, snap: Snapshot, part: FlagsPart) -> list[ObjectPatch]:
        return [ObjectPatch(PLURAL, resource, patch,
                            f"restored FeatureFlag {resource}: " + ", ".join(sorted(patch["spec"])))
                for resource, patch in sorted(flag_restore_patches(snap, part).items())]

    def template_note(self, change: Change, part: FlagsPart) -> str | None:
        if change.flags is None:
            return None
        return "flag env overrides removed" if part.flags is not None else "flag env overrides set"


FLAGS = FlagsKind()

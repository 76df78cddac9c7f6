"""One reconcile of a namespace's flags: observe, plan (pure), carry out the plan.

:func:`observe` reads the namespace (flags, Deployments, flags ConfigMaps); :func:`plan` is
pure and returns the namespace plan and the actions (``rollguard.operator.flags.actions``);
:func:`execute` carries them out and posts Events through ``rollguard.operator.events``.
Everything is recomputed from the cluster each time (flags, Deployments, previous statuses),
so any number of reconciles, in any order, after any restart, converge on the same objects.

A lock per namespace keeps two reconciles of one namespace from interleaving in this process:
kopf runs the handlers of one object one at a time, but the handlers of two flags of a namespace,
a Deployment's event and the clock run side by side, and each of them reconciles the namespace.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from rollguard.flags import DeploymentObs, NamespacePlan, build_status, configmap_name, plan_namespace
from rollguard.flags.evaluate import next_transition
from rollguard.flags.plan import FlagPlan
from rollguard.flags.render import files_digest
from rollguard.kube import names
from rollguard.kube.client import namespace_terminating
from rollguard.models.common import Condition, Event
from rollguard.models.flag import FeatureFlag, FeatureFlagSpec, FeatureFlagStatus
from rollguard.operator.events import post as post_events
from rollguard.operator.flags.actions import Action, ApplyConfigMap, DeleteConfigMap, Mount, Unmount, WriteStatus
from rollguard.operator.flags.kube import FlagsKube

log = logging.getLogger("rollguard.operator.flags")


_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def namespace_lock(namespace: str) -> threading.Lock:
    """The lock that serializes this process's reconciles of ``namespace``."""
    with _locks_guard:
        return _locks[namespace]


def deployment_obs(d: dict[str, Any]) -> DeploymentObs:
    """What the planner needs of a Deployment (its raw JSON): name, labels, containers, and which
    environment's flags it mounts (``mounted_environment``) in every container or not."""
    pod = d.get("spec", {}).get("template", {}).get("spec", {})
    mounted = None
    for v in pod.get("volumes") or []:
        cm = (v.get("configMap") or {}).get("name", "")
        if v.get("name") == names.FLAGS_VOLUME and cm.startswith(names.FLAGS_CONFIG_MAP_PREFIX):
            mounted = cm[len(names.FLAGS_CONFIG_MAP_PREFIX):]
    containers = pod.get("containers") or []
    all_mounted = all(any(m.get("name") == names.FLAGS_VOLUME and m.get("mountPath") == names.FLAGS_MOUNT_DIR
                          for m in c.get("volumeMounts") or []) for c in containers)
    return DeploymentObs(name=d["metadata"]["name"], labels=d["metadata"].get("labels") or {},
                         containers=tuple(c["name"] for c in containers),
                         mounted_environment=mounted, all_containers_mounted=all_mounted)


def actor_of(obj: dict[str, Any]) -> str:
    """Who made the latest change to the flag's spec: the CLI's recorded user, else the field manager
    of the newest non-status write (kubectl, a GitOps controller, ...). The apiserver's audit log
    has the authenticated user; managedFields is what an object itself can tell."""
    meta = obj.get("metadata", {})
    entries = [m for m in meta.get("managedFields") or []
               if m.get("subresource") != "status" and not str(m.get("manager", "")).startswith("kopf")]
    if not entries:
        return "unknown"
    latest = max(entries, key=lambda m: str(m.get("time") or ""))
    manager = str(latest.get("manager") or "unknown")
    by = (meta.get("annotations") or {}).get(names.CHANGED_BY_ANNOTATION)
    if manager == names.CLI_FIELD_MANAGER and by:
        return f"{by} (via {names.CLI_FIELD_MANAGER})"
    return manager


def parse_flag(obj: dict[str, Any]) -> FeatureFlag | str:
    """The flag, or why its spec is not acceptable (the CRD should have refused it already)."""
    try:
        return FeatureFlag(metadata=obj["metadata"], spec=FeatureFlagSpec.model_validate(obj.get("spec") or {}))
    except ValidationError as e:
        return "; ".join(f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())


def previous_status(obj: dict[str, Any]) -> FeatureFlagStatus | None:
    try:
        return FeatureFlagStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        return None  # written by something else; start over


Poster = Callable[[Mapping[str, Any], Iterable[Event]], None]


@dataclass(frozen=True)
class Observed:
    """One namespace as read: raw JSON objects, in the apiserver's list order.

    ``flags``: the FeatureFlags not being deleted; ``deployments``: the Deployments, without a
    CanaryRollout's canary copies (they keep the flags volume their rollout gave them: not targets,
    not ours to unmount); ``config_maps``: the flags ConfigMaps (those with the environment label).
    """

    flags: tuple[dict[str, Any], ...]
    deployments: tuple[dict[str, Any], ...]
    config_maps: tuple[dict[str, Any], ...]


def observe(kube: FlagsKube, namespace: str) -> Observed:
    """Read what :func:`plan` needs of ``namespace``. API errors raise ``ApiException``."""
    return Observed(
        flags=tuple(kube.list_flags(namespace)),
        deployments=tuple(d for d in kube.list_deployments(namespace)
                          if names.CANARY_OF_LABEL not in (d["metadata"].get("labels") or {})),
        config_maps=tuple(kube.list_flag_configmaps(namespace)),
    )


def invalid_status(obj: Mapping[str, Any], message: str, now: dt.datetime,
                   reason: str = "InvalidSpec") -> WriteStatus | None:
    """The flag is Invalid (condition Ready False with ``reason``), with a Warning Event once:
    None when its status says so already."""
    generation = obj["metadata"].get("generation")
    prev = previous_status(dict(obj))
    old = next((c for c in (prev.conditions if prev else None) or [] if c.type == "Ready"), None)
    same = old is not None and (old.status, old.reason, old.message) == ("False", reason, message)
    cond = Condition(type="Ready", status="False", reason=reason, message=message,
                     last_transition_time=old.last_transition_time if same and old else now,
                     observed_generation=generation)
    status = FeatureFlagStatus(observed_generation=generation, phase="Invalid", conditions=[cond])
    if prev == status:
        return None
    return WriteStatus(obj, status.to_k8s(), (Event("Warning", reason, message),))


def flag_status(obj: Mapping[str, Any], fp: FlagPlan, now: dt.datetime) -> WriteStatus:
    """A valid flag's status write (None as ``status`` when it is unchanged) and its Events.
    Fields of the old status the new one does not have are removed (set to None in the patch)."""
    prev = previous_status(dict(obj))
    generation = obj["metadata"].get("generation")
    spec_changed = prev is None or prev.observed_generation != generation
    actor = actor_of(dict(obj)) if spec_changed else names.OPERATOR_COMPONENT
    status, events = build_status(fp, prev, generation, actor, now)
    patch: dict[str, Any] | None = None
    if prev != status:
        patch = dict.fromkeys(obj.get("status") or {})
        patch.update(status.to_k8s())
    return WriteStatus(obj, patch, tuple(events), isolated=True)


def plan(obs: Observed, namespace: str, now: dt.datetime) -> tuple[NamespacePlan, list[Action]]:
    """The namespace's plan and the actions that carry it out, in order. Pure but for a log line:
    a flag whose status cannot be built is logged and left out (the others go on)."""
    raw = {o["metadata"]["name"]: o for o in obs.flags}
    actions: list[Action] = []
    flags: list[FeatureFlag] = []
    for obj in raw.values():
        parsed = parse_flag(obj)
        if isinstance(parsed, str):
            if (w := invalid_status(obj, parsed, now)) is not None:
                actions.append(w)
        else:
            flags.append(parsed)
    deployments = [deployment_obs(d) for d in obs.deployments]
    ns_plan = plan_namespace(flags, deployments, namespace, now)
    for name, fault in sorted(ns_plan.faults.items()):
        log.error("%s/%s: %s", namespace, name, fault)
        if (w := invalid_status(raw[name], fault, now, reason="EvaluationFailed")) is not None:
            actions.append(w)

    owners = tuple(raw[name] for name in ns_plan.flags)
    for env in ns_plan.environments:
        files = ns_plan.files[env]
        actions.append(ApplyConfigMap(configmap_name(env), env, files, files_digest(files), owners))
    for cm in obs.config_maps:
        if cm["metadata"].get("labels", {}).get(names.FLAGS_ENVIRONMENT_LABEL) not in ns_plan.environments:
            actions.append(DeleteConfigMap(cm["metadata"]["name"]))
    by_name = {d.name: d for d in deployments}
    for dep, env in sorted(ns_plan.mounts.items()):
        d = by_name[dep]
        if d.mounted_environment != env or not d.all_containers_mounted:  # a patch only when needed
            actions.append(Mount(dep, configmap_name(env), d.containers))
    for dep in ns_plan.unmounts:
        actions.append(Unmount(dep, by_name[dep].containers))

    for name, fp in ns_plan.flags.items():
        try:
            actions.append(flag_status(raw[name], fp, now))
        except Exception:  # one flag's status must not keep the others' from being written
            log.exception("%s/%s: building the status failed; the next reconcile retries", namespace, name)
    return ns_plan, actions


def execute(kube: FlagsKube, namespace: str, actions: Iterable[Action], post: Poster = post_events) -> None:
    """Carry out ``actions`` in order; ``post`` posts a flag's Events (after its status is written).
    API errors raise ``ApiException``, except an isolated status write's, which is logged (unless
    the namespace is being deleted: that raises too)."""
    for a in actions:
        if isinstance(a, ApplyConfigMap):
            kube.apply_configmap(namespace, a.name, a.environment, dict(a.files), a.digest,
                                 [dict(o) for o in a.owners])
        elif isinstance(a, DeleteConfigMap):
            kube.delete_configmap(namespace, a.name)
        elif isinstance(a, Mount):
            kube.mount(namespace, a.deployment, a.config_map, list(a.containers))
        elif isinstance(a, Unmount):
            kube.unmount(namespace, a.deployment, list(a.containers))
        elif not a.isolated:
            _write(kube, namespace, a, post)
        else:
            try:
                _write(kube, namespace, a, post)
            except Exception as e:  # one flag's status write failing must not keep the others' from being written
                if namespace_terminating(e):
                    raise
                log.exception("%s/%s: writing the status failed; the next reconcile retries", namespace, a.name)


def _write(kube: FlagsKube, namespace: str, a: WriteStatus, post: Poster) -> None:
    if a.status is not None:
        kube.patch_status(namespace, a.name, dict(a.status))
    post(a.flag, a.events)
    if a.isolated:
        for ev in a.events:
            log.info("%s/%s %s %s: %s", namespace, a.name, ev.type, ev.reason, ev.message)


def reconcile_namespace(kube: FlagsKube, namespace: str, now: dt.datetime | None = None,
                        post: Poster = post_events) -> NamespacePlan | None:
    """Reconcile every FeatureFlag of ``namespace`` at ``now`` (UTC; default: the clock; whole
    seconds are used) and return the plan carried out; None when the namespace is being deleted.
    Its deletion takes the flags, their ConfigMaps and mounts with it, and the apiserver refuses
    anything created there (a ConfigMap, an Event), so there is nothing left to do and nothing to
    retry. ``post`` posts the Events (default: ``rollguard.operator.events.post``). Other API
    errors raise ``ApiException``."""
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    with namespace_lock(namespace):
        try:
            ns_plan, actions = plan(observe(kube, namespace), namespace, now)
            execute(kube, namespace, actions, post)
            return ns_plan
        except ApiException as e:
            if not namespace_terminating(e):
                raise
            log.info("namespace %s is being deleted: its flags are left to its deletion", namespace)
            return None


def transition_times(spec: Mapping[str, Any]) -> tuple[dt.datetime, ...]:
    """The instants (UTC) at which the gate's verdict of a flag with this raw ``spec`` changes by
    itself: its sign-off starting (less the allowed clock skew) and expiring. Empty for a flag
    without a sign-off gate, or whose spec does not parse."""
    try:
        s = FeatureFlagSpec.model_validate(dict(spec))
    except ValidationError:
        return ()
    out: list[dt.datetime] = []
    t = next_transition(s, dt.datetime.min.replace(tzinfo=dt.UTC))
    while t is not None:  # each is later than the one before: this ends
        out.append(t)
        t = next_transition(s, t)
    return tuple(out)

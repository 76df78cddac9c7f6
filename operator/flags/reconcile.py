"""One reconcile of a namespace's flags: observe, plan (pure), apply the plan.

Everything is recomputed from the cluster each time (flags, Deployments, previous statuses),
so any number of reconciles, in any order, after any restart, converge on the same objects.
A lock per namespace keeps two reconciles of one namespace from interleaving in this process.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from rollguard.flags import DeploymentObs, NamespacePlan, build_status, configmap_name, plan_namespace
from rollguard.flags.evaluate import next_transition
from rollguard.flags.plan import FlagPlan
from rollguard.flags.render import files_digest
from rollguard.kube import names
from rollguard.kube.client import namespace_terminating
from rollguard.models.common import Condition
from rollguard.models.flag import FeatureFlag, FeatureFlagSpec, FeatureFlagStatus
from rollguard.operator.flags.kube import FlagsKube

log = logging.getLogger("rollguard.operator.flags")


_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def namespace_lock(namespace: str) -> threading.Lock:
    with _locks_guard:
        return _locks[namespace]


def deployment_obs(d: dict[str, Any]) -> DeploymentObs:
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


def reconcile_namespace(kube: FlagsKube, namespace: str, now: dt.datetime | None = None) -> NamespacePlan | None:
    """Reconcile every FeatureFlag of ``namespace`` at ``now`` (UTC; default: the clock) and
    return the plan carried out; None when the namespace is being deleted. Its deletion takes
    the flags, their ConfigMaps and mounts with it, and the apiserver refuses anything created
    there (a ConfigMap, an Event), so there is nothing left to do and nothing to retry. Other
    API errors raise ``ApiException``."""
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    with namespace_lock(namespace):
        try:
            return _reconcile(kube, namespace, now)
        except ApiException as e:
            if not namespace_terminating(e):
                raise
            log.info("namespace %s is being deleted: its flags are left to its deletion", namespace)
            return None


def _reconcile(kube: FlagsKube, namespace: str, now: dt.datetime) -> NamespacePlan:
    raw = {o["metadata"]["name"]: o for o in kube.list_flags(namespace)}
    flags: list[FeatureFlag] = []
    for obj in raw.values():
        parsed = parse_flag(obj)
        if isinstance(parsed, str):
            _set_invalid(kube, obj, parsed, now)
        else:
            flags.append(parsed)
    # A CanaryRollout's canary copy of a target keeps the flags volume its rollout gave it (the
    # target's environment, or the canary's own flags file): not a target, not ours to unmount.
    deployments = [deployment_obs(d) for d in kube.list_deployments(namespace)
                   if names.CANARY_OF_LABEL not in (d["metadata"].get("labels") or {})]
    plan = plan_namespace(flags, deployments, namespace, now)
    for name, fault in sorted(plan.faults.items()):
        log.error("%s/%s: %s", namespace, name, fault)
        _set_invalid(kube, raw[name], fault, now, reason="EvaluationFailed")

    owners = [raw[name] for name in plan.flags]
    for env in plan.environments:
        files = plan.files[env]
        kube.apply_configmap(namespace, configmap_name(env), env, files, files_digest(files), owners)
    for cm in kube.list_flag_configmaps(namespace):
        if cm["metadata"].get("labels", {}).get(names.FLAGS_ENVIRONMENT_LABEL) not in plan.environments:
            kube.delete_configmap(namespace, cm["metadata"]["name"])
    by_name = {d.name: d for d in deployments}
    for dep, env in sorted(plan.mounts.items()):
        d = by_name[dep]
        if d.mounted_environment != env or not d.all_containers_mounted:  # a patch only when needed
            kube.mount(namespace, dep, configmap_name(env), list(d.containers))
    for dep in plan.unmounts:
        kube.unmount(namespace, dep, list(by_name[dep].containers))

    for name, fp in plan.flags.items():
        try:
            _write_status(kube, raw[name], fp, now)
        except Exception as e:  # one flag's status write failing must not keep the others' from being written
            if namespace_terminating(e):
                raise
            log.exception("%s/%s: writing the status failed; the next reconcile retries", namespace, name)
    return plan


def _write_status(kube: FlagsKube, obj: dict[str, Any], fp: FlagPlan, now: dt.datetime) -> None:
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    prev = previous_status(obj)
    generation = obj["metadata"].get("generation")
    spec_changed = prev is None or prev.observed_generation != generation
    actor = actor_of(obj) if spec_changed else names.OPERATOR_COMPONENT
    status, events = build_status(fp, prev, generation, actor, now)
    if prev != status:
        new = status.to_k8s()
        patch: dict[str, Any] = dict.fromkeys(obj.get("status") or {})
        patch.update(new)
        kube.patch_status(namespace, name, patch)
    for ev in events:
        kube.post_event(obj, ev.type, ev.reason, ev.message, now)
        log.info("%s/%s %s %s: %s", namespace, name, ev.type, ev.reason, ev.message)


def _set_invalid(kube: FlagsKube, obj: dict[str, Any], message: str, now: dt.datetime,
                 reason: str = "InvalidSpec") -> None:
    """The flag is Invalid (condition Ready False with ``reason``), with a Warning Event once."""
    generation = obj["metadata"].get("generation")
    prev = previous_status(obj)
    old = next((c for c in (prev.conditions if prev else None) or [] if c.type == "Ready"), None)
    same = old is not None and (old.status, old.reason, old.message) == ("False", reason, message)
    cond = Condition(type="Ready", status="False", reason=reason, message=message,
                     last_transition_time=old.last_transition_time if same and old else now,
                     observed_generation=generation)
    status = FeatureFlagStatus(observed_generation=generation, phase="Invalid", conditions=[cond])
    if prev != status:
        kube.patch_status(obj["metadata"]["namespace"], obj["metadata"]["name"], status.to_k8s())
        kube.post_event(obj, "Warning", reason, message, now)


def next_due(plan: NamespacePlan, now: dt.datetime) -> dt.datetime | None:
    """When this namespace must be looked at again without any change (a sign-off starts or expires)."""
    times = [t for p in plan.flags.values() if (t := next_transition(p.flag.spec, now)) is not None]
    return min(times) if times else None

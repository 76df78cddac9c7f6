"""The FailureCatalog reconciler's functional core: (spec, status, observations, now) -> plan.

No I/O here. The kopf handler gathers the observations (this catalog's ConfigMaps, the
namespace's Deployments), calls :func:`plan` and carries out the :class:`Plan` it returns: the
ConfigMap to create (:class:`CreateConfigMap`), the mounts (:class:`Mount`), the Deployments to
unmount, the ConfigMaps to delete, and the Events (``rollguard.models.common.Event``, the shape
the canary's ``EmitEvent`` and the flags controller use too).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pydantic import ValidationError

from rollguard.catalog import content_hash, render_document, validate
from rollguard.catalog.render import config_map_name
from rollguard.catalog.validation import spec_of
from rollguard.kube import names
from rollguard.models.catalog import (
    CatalogTarget,
    FailureCatalogSpec,
    FailureCatalogStatus,
    HistoryItem,
    TargetStatus,
)
from rollguard.models.common import Condition, Event, set_condition


@dataclass(frozen=True)
class DeploymentView:
    """What the planner needs of a Deployment of the namespace."""

    name: str
    labels: dict[str, str]
    containers: list[str]
    catalog: str | None  # value of names.CATALOG_NAME_ANNOTATION on the pod template
    hash: str | None  # value of names.CATALOG_HASH_ANNOTATION on the pod template


@dataclass(frozen=True)
class Observed:
    """The namespace as the planner sees it for one catalog."""

    deployments: dict[str, DeploymentView]  # every Deployment of the namespace
    config_maps: dict[str, str]  # this catalog's ConfigMaps: name -> full content hash
    mounted_config_maps: frozenset[str]  # ConfigMap names some Deployment/ReplicaSet still mounts


@dataclass(frozen=True)
class Mount:
    """Mount ConfigMap ``config_map`` (version ``hash``, its 10-character form) into ``containers``
    of ``deployment`` (server-side apply of :func:`mount_manifest`)."""

    deployment: str
    containers: list[str]
    config_map: str
    hash: str


class CreateConfigMap(NamedTuple):
    """Create the immutable ConfigMap ``name`` of a catalog version: ``document`` (catalog.json)
    and ``full_hash`` (the version's content hash, an annotation). A same-named one has the same
    content: the create is skipped when it exists."""

    name: str
    full_hash: str
    document: str


@dataclass
class Plan:
    """What one reconcile of a catalog does, in this order: create ``create_config_map``, apply
    ``mounts``, unmount ``unmounts`` (Deployment names that carry this catalog and are no longer
    targets), delete ``delete_config_maps`` (ConfigMap names), post ``events``, and write
    ``status`` (the status as the API has it, camelCase; a field it lacks stays absent)."""

    status: dict[str, Any]
    create_config_map: CreateConfigMap | None = None
    mounts: list[Mount] = field(default_factory=list)
    unmounts: list[str] = field(default_factory=list)
    delete_config_maps: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def _cond(type_: str, ok: bool, reason: str, message: str, gen: int | None, now: dt.datetime) -> Condition:
    return Condition(type=type_, status="True" if ok else "False", reason=reason, message=message[:32000],
                     last_transition_time=now, observed_generation=gen)


def _selected(target: CatalogTarget, deployments: dict[str, DeploymentView]) -> list[str]:
    if target.name is not None:
        return [target.name]
    want = target.selector.match_labels if target.selector else {}
    return sorted(d.name for d in deployments.values() if all(d.labels.get(k) == v for k, v in want.items()))


def resolve_targets(spec: FailureCatalogSpec, deployments: dict[str, DeploymentView]) -> dict[str, CatalogTarget]:
    """Deployment name -> the (first) target entry that selects it (a target by name is selected
    whether or not that Deployment exists)."""
    out: dict[str, CatalogTarget] = {}
    for t in spec.targets:
        for name in _selected(t, deployments):
            out.setdefault(name, t)
    return out


def _old_status(raw: dict[str, Any] | None) -> FailureCatalogStatus:
    try:
        return FailureCatalogStatus.model_validate(raw or {})
    except ValidationError:
        return FailureCatalogStatus()


def plan(name: str, generation: int | None, raw_spec: dict[str, Any], raw_status: dict[str, Any] | None,
         obs: Observed, now: dt.datetime) -> Plan:
    """The plan for catalog ``name`` at ``generation``, from its raw spec and status (as the API
    has them; a status that does not parse counts as none), the namespace ``obs`` and ``now`` (UTC,
    the conditions' transition time). An invalid spec plans no action but the status (and a
    Warning Event once per generation): the mounted version stays mounted."""
    old = _old_status(raw_status)
    st = old.model_copy(deep=True)
    st.observed_generation = generation
    previous_targets = {t.name: t for t in old.targets}

    problems = validate(spec_of({"spec": raw_spec}))
    if problems:
        st.phase = "Invalid"
        msg = f"{len(problems)} problem(s): " + "; ".join(problems)
        st.conditions = set_condition(st.conditions, _cond("Valid", False, "ValidationFailed", msg, generation, now))
        kept = f"version {old.active_hash[:10]} stays mounted" if old.active_hash else "nothing is mounted"
        st.conditions = set_condition(st.conditions, _cond(
            "Ready", False, "InvalidSpec", f"the spec is invalid; {kept}", generation, now))
        p = Plan(status=st.to_k8s())
        was_invalid = old.phase == "Invalid" and old.observed_generation == generation
        if not was_invalid:
            p.events.append(Event("Warning", "ValidationFailed", msg[:1000]))
        return p

    spec = FailureCatalogSpec.model_validate(raw_spec)
    full = content_hash(spec)
    cm_name = config_map_name(name, full)
    p = Plan(status={})
    if cm_name not in obs.config_maps:
        p.create_config_map = CreateConfigMap(cm_name, full, render_document(name, spec))

    # history: newest first; the spec's content goes (back) to the front
    history = [h for h in st.history if h.hash != full]
    current = next((h for h in st.history if h.hash == full), None)
    history.insert(0, current or HistoryItem(hash=full, version=spec.version, config_map_name=cm_name,
                                             entry_count=len(spec.entries), created_at=now))

    # which version is mounted: the spec's content, or the pinned earlier one
    active = history[0]
    pin_problem = None
    if spec.pinned_hash:
        found = [h for h in history if h.hash.startswith(spec.pinned_hash)]
        if len(found) == 1 and (found[0].config_map_name in obs.config_maps or found[0].hash == full):
            active = found[0]
        else:
            pin_problem = (f"spec.pinnedHash {spec.pinned_hash} is not a version in status.history "
                           f"(known: {', '.join(h.hash[:10] for h in history)})")
    # never forget the version in use: the new active one, or (pin not found) the old one
    in_use = active if pin_problem is None else next((h for h in history if h.hash == old.active_hash), None)
    kept_history = history[: spec.history_limit]
    if in_use is not None and in_use not in kept_history:
        kept_history.append(in_use)
    st.history = kept_history
    st.content_hash = full
    st.conditions = set_condition(st.conditions, _cond(
        "Valid", True, "Validated", f"{len(spec.entries)} entries, version {spec.version}", generation, now))

    if pin_problem:
        st.phase = "Degraded"
        st.conditions = set_condition(st.conditions, _cond("Ready", False, "PinnedHashNotFound", pin_problem,
                                                           generation, now))
        p.status = st.to_k8s()
        p.events.append(Event("Warning", "PinnedHashNotFound", pin_problem))
        return p

    st.active_hash, st.config_map_name, st.entry_count = active.hash, active.config_map_name, active.entry_count
    short = active.hash[:10]

    targets = resolve_targets(spec, obs.deployments)
    states: list[TargetStatus] = []
    newly: list[str] = []
    for dep_name, target in sorted(targets.items()):
        dep = obs.deployments.get(dep_name)
        if dep is None:
            states.append(TargetStatus(name=dep_name, state="NotFound", message="no such Deployment"))
            continue
        if dep.catalog not in (None, name):
            states.append(TargetStatus(name=dep_name, state="Conflict",
                                       message=f"FailureCatalog {dep.catalog} is mounted there already"))
            continue
        wanted = target.containers if target.containers is not None else dep.containers
        containers = [c for c in wanted if c in dep.containers]
        missing = [c for c in wanted if c not in dep.containers]
        if not containers:
            states.append(TargetStatus(name=dep_name, state="Error",
                                       message=f"no such container(s): {', '.join(missing)}"))
            continue
        p.mounts.append(Mount(dep_name, containers, active.config_map_name, short))
        msg = f"mounted into {', '.join(containers)}" + (f"; no such container(s): {', '.join(missing)}"
                                                         if missing else "")
        states.append(TargetStatus(name=dep_name, state="Mounted", hash=short, message=msg))
        before = previous_targets.get(dep_name)
        if before is None or before.state != "Mounted" or before.hash != short or dep.hash != short:
            newly.append(dep_name)
    st.targets = states

    # Deployments that carry this catalog but are no longer targets: take our fields back out
    p.unmounts = sorted(d.name for d in obs.deployments.values() if d.catalog == name and d.name not in targets)

    # GC: keep history, the active version, and anything still mounted anywhere
    keep = {h.config_map_name for h in kept_history} | {active.config_map_name} | set(obs.mounted_config_maps)
    p.delete_config_maps = sorted(n for n in obs.config_maps if n not in keep)

    bad = [t for t in states if t.state != "Mounted"]
    st.phase = "Ready" if not bad else "Degraded"
    st.conditions = set_condition(st.conditions, _cond(
        "Ready", not bad, "Mounted" if not bad else "TargetsNotReady",
        (f"version {spec.version if active.hash == full else active.version} ({short}) mounted into "
         f"{len(states) - len(bad)}/{len(states)} target(s)")
        + ("" if not bad else "; " + "; ".join(f"{t.name}: {t.state} ({t.message})" for t in bad)),
        generation, now))
    if newly:
        pinned = " (pinned)" if spec.pinned_hash else ""
        p.events.append(Event("Normal", "VersionMounted",
                         f"version {active.version} ({short}){pinned} mounted into {', '.join(newly)}"))
    p.status = st.to_k8s()
    return p


def mark_failed(status: dict[str, Any], failures: dict[str, str], generation: int | None,
                now: dt.datetime) -> dict[str, Any]:
    """The status after some mounts failed (API errors): those targets are Error, Ready=False."""
    if not failures:
        return status
    st = FailureCatalogStatus.model_validate(status)
    for t in st.targets:
        if t.name in failures:
            t.state, t.message, t.hash = "Error", failures[t.name][:1000], None
    st.phase = "Degraded"
    st.conditions = set_condition(st.conditions, _cond(
        "Ready", False, "MountFailed", "; ".join(f"{k}: {v}" for k, v in failures.items()), generation, now))
    return st.to_k8s()


def mount_manifest(namespace: str, catalog: str, m: Mount) -> dict[str, Any]:
    """The server-side apply configuration: only the fields this operator owns."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": m.deployment, "namespace": namespace},
        "spec": {"template": {
            "metadata": {"annotations": {names.CATALOG_NAME_ANNOTATION: catalog,
                                         names.CATALOG_HASH_ANNOTATION: m.hash}},
            "spec": {
                "volumes": [{"name": names.CATALOG_VOLUME, "configMap": {"name": m.config_map}}],
                "containers": [{"name": c, "volumeMounts": [
                    {"name": names.CATALOG_VOLUME, "mountPath": names.CATALOG_MOUNT_DIR, "readOnly": True}]}
                    for c in m.containers],
            },
        }},
    }


def unmount_manifest(namespace: str, deployment: str) -> dict[str, Any]:
    """Applying nothing but the name releases (and so removes) every field this manager owned."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": deployment, "namespace": namespace}}

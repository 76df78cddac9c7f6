"""FeatureFlag handlers. Thin: every trigger reconciles the flag's whole namespace (see
``rollguard.operator.flags.reconcile``), because one flag's change can change the files, the
mounts and the status of the others (a new environment, a duplicate key, a shared Deployment).

Triggers: create/update/resume of a flag, the DELETED watch event (no finalizer: a flag can
always be deleted, even with the operator down; the ConfigMaps are garbage-collected through
their ownerReferences when the last flag goes), a new Deployment in a namespace with flags or a
mounted one whose containers lost the mount,
and a scheduler thread that wakes a namespace when a sign-off starts or expires and resyncs
every namespace periodically (a target Deployment that appeared, a hand-edited ConfigMap).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import kopf

from rollguard import GROUP, VERSION
from rollguard.operator.flags.kube import FlagsKube
from rollguard.operator.flags.reconcile import deployment_obs, next_due, reconcile_namespace

log = logging.getLogger("rollguard.operator.flags")

TICK_SECONDS = float(os.environ.get("ROLLGUARD_FLAGS_TICK_SECONDS", "1"))
RESYNC_SECONDS = float(os.environ.get("ROLLGUARD_FLAGS_RESYNC_SECONDS", "60"))

_kube = FlagsKube()
_due: dict[str, dt.datetime | None] = {}
_state_lock = threading.Lock()
_stop = threading.Event()


def _run(namespace: str) -> None:
    now = dt.datetime.now(dt.UTC)
    plan = reconcile_namespace(_kube, namespace, now)
    with _state_lock:
        if plan is None:  # being deleted: no resync, no Deployment events; a new flag re-adds it
            _due.pop(namespace, None)
        else:
            _due[namespace] = next_due(plan, now)


@kopf.on.resume(GROUP, VERSION, "featureflags")
@kopf.on.create(GROUP, VERSION, "featureflags")
@kopf.on.update(GROUP, VERSION, "featureflags")
def reconcile(namespace: str | None, **_: Any) -> None:
    assert namespace is not None  # FeatureFlag is namespaced
    _run(namespace)


def _is(kind: str) -> Callable[..., bool]:
    def check(event: kopf.RawEvent, **_: Any) -> bool:
        return event.get("type") == kind
    return check


@kopf.on.event(GROUP, VERSION, "featureflags", when=_is("DELETED"))
def deleted(namespace: str | None, **_: Any) -> None:
    if namespace:
        _run(namespace)


def _deployment_needs_us(event: kopf.RawEvent, **_: Any) -> bool:
    """A new Deployment (maybe a target), or one of ours whose containers changed and lost the mount
    (renamed/added container). Not every MODIFIED: our own patch must not wake us again."""
    if event.get("type") == "ADDED":
        return True
    if event.get("type") != "MODIFIED":
        return False
    obs = deployment_obs(dict(event.get("object") or {}))
    return obs.mounted_environment is not None and not obs.all_containers_mounted


@kopf.on.event("apps", "v1", "deployments", when=_deployment_needs_us)
def deployment_changed(namespace: str | None, **_: Any) -> None:
    with _state_lock:
        known = namespace in _due
    if known and namespace:
        _run(namespace)


def _scheduler() -> None:
    last_resync = dt.datetime.now(dt.UTC)
    while not _stop.wait(TICK_SECONDS):
        now = dt.datetime.now(dt.UTC)
        resync = (now - last_resync).total_seconds() >= RESYNC_SECONDS
        with _state_lock:
            due = [ns for ns, t in _due.items() if resync or (t is not None and t <= now)]
        if resync:
            last_resync = now
        for ns in due:
            try:
                _run(ns)
            except Exception:  # keep the scheduler alive; the next tick retries
                log.exception("flags reconcile of namespace %s failed", ns)


@kopf.on.startup()
def start_scheduler(**_: Any) -> None:
    _stop.clear()
    threading.Thread(target=_scheduler, name="rollguard-flags-scheduler", daemon=True).start()


@kopf.on.cleanup()
def stop_scheduler(**_: Any) -> None:
    _stop.set()

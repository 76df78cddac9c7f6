"""FailureCatalog handlers: gather observations, call the pure planner, carry out its plan.

Everything the operator needs to resume lives in the object's status and in the cluster
(ConfigMaps named by content hash, pod-template annotations): a restarted operator simply
reconciles again, and every action is idempotent.

One reconcile at a time per catalog. kopf runs an object's change handlers (create, update,
resume, delete) one after another, but not its timers: a timer is a task of its own
(``kopf._core.engines.daemons``) and fires while a change handler runs, and on deletion kopf
only signals the timer to stop while the delete handler already runs. So the reconciles keep a
lock, one per catalog in kopf's per-object ``memo`` (it lives as long as kopf's memory of the
object: nothing to clean up).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from rollguard import GROUP, VERSION
from rollguard.kube.client import namespace_terminating
from rollguard.operator.catalog import core, kube
from rollguard.operator.events import post as post_events
from rollguard.operator.observability import timed

PLURAL = "failurecatalogs"
KIND = "FailureCatalog"
# how often every catalog is reconciled without a change (late Deployments, hand edits, GC)
RESYNC_SECONDS = float(os.environ.get("ROLLGUARD_CATALOG_RESYNC_SECONDS", "30"))


def _lock(memo: kopf.Memo) -> threading.Lock:
    """The catalog's lock (see the module's docstring); ``dict.setdefault`` is atomic."""
    lock: threading.Lock = memo.setdefault("reconcile_lock", threading.Lock())
    return lock


def _reconcile(body: kopf.Body, patch: kopf.Patch, logger: Any, memo: kopf.Memo) -> None:
    name, ns = body["metadata"]["name"], body["metadata"]["namespace"]
    with _lock(memo):
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        try:
            # The timer and a change handler can both be waiting on the lock: whoever comes
            # second must plan from the object as it is now, not from the copy it was given,
            # or it would mount the version the first one just replaced.
            fresh = kube.read_catalog(ns, name)
            if fresh is None or fresh["metadata"].get("deletionTimestamp"):
                return  # deleted or being deleted: the delete handler owns the mounts now
            obs = kube.observe(ns, name)
        except ApiException as e:
            raise kopf.TemporaryError(f"cannot read the namespace's objects: {e.reason}", delay=5) from e
        generation = fresh["metadata"].get("generation")
        p = core.plan(name, generation, dict(fresh.get("spec") or {}), dict(fresh.get("status") or {}), obs, now)
        try:
            if (c := p.create_config_map) is not None:
                kube.create_config_map(ns, name, fresh, c.name, c.full_hash, c.document)
        except ApiException as e:
            if namespace_terminating(e):
                # Its deletion takes the catalog and its ConfigMaps too: nothing to retry.
                logger.info(f"namespace {ns} is being deleted: the catalog is left to its deletion")
                return
            raise kopf.TemporaryError(f"cannot create ConfigMap: {e.reason}: {e.body}", delay=5) from e
        failures: dict[str, str] = {}
        for m in p.mounts:
            try:
                kube.apply_mount(ns, name, m)
            except ApiException as e:
                failures[m.deployment] = f"{e.status} {e.reason}: {e.body}"
        for dep in p.unmounts:
            try:
                kube.remove_mount(ns, dep, name)
            except ApiException as e:
                logger.warning(f"cannot remove the catalog mount from {dep}: {e.reason}")
        status = core.mark_failed(p.status, failures, generation, now)
        for cm in p.delete_config_maps:
            try:
                kube.delete_config_map(ns, cm)
            except ApiException as e:
                logger.warning(f"cannot garbage-collect ConfigMap {cm}: {e.reason}")
        post_events(body, p.events)
        for key, value in status.items():
            patch.status[key] = value
        # fields the planner dropped (e.g. activeHash of a never-valid catalog) stay absent
        if failures:
            raise kopf.TemporaryError(f"mount failed on {', '.join(failures)}", delay=10)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@timed(KIND)
def reconcile(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, memo: kopf.Memo, **_: Any) -> None:
    """The catalog was created, changed, or found at start: reconcile it."""
    _reconcile(body, patch, logger, memo)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS, idle=5)
@timed(KIND)
def resync(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, memo: kopf.Memo, **_: Any) -> None:
    """Late Deployments, selector matches, hand edits and GC converge without a spec change."""
    _reconcile(body, patch, logger, memo)


@kopf.on.delete(GROUP, VERSION, PLURAL)
@timed(KIND)
def delete(body: kopf.Body, logger: kopf.Logger, memo: kopf.Memo, **_: Any) -> None:
    """Take the mount back out of every Deployment that has this catalog, then delete the
    catalog's ConfigMaps that nothing mounts any more. (Kubernetes' garbage collector would
    delete them too, through their ownerReferences; doing it here does not depend on it.)"""
    name, ns = body["metadata"]["name"], body["metadata"]["namespace"]
    with _lock(memo):
        try:
            obs = kube.observe(ns, name)
            removed = [d.name for d in obs.deployments.values()
                       if d.catalog == name and kube.remove_mount(ns, d.name, name)]
            still = kube.observe(ns, name).mounted_config_maps
            for cm in obs.config_maps:
                if cm not in still:
                    kube.delete_config_map(ns, cm)
        except ApiException as e:
            raise kopf.TemporaryError(f"cannot remove catalog mounts: {e.reason}", delay=5) from e
    if removed:
        logger.info(f"catalog mount removed from {', '.join(removed)}")

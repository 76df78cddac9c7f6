"""FeatureFlag handlers. Thin: every trigger reconciles the flag's whole namespace (see
``rollguard.operator.flags.reconcile``: observe, a pure planner, execute), because one flag's
change can change the files, the mounts and the status of the others (a new environment, a
duplicate key, a shared Deployment).

Triggers: create/update/resume of a flag, the DELETED watch event, a new Deployment in a
namespace with flags or a mounted one whose containers lost the mount, and the clock: it wakes a
namespace when a flag's sign-off starts or expires and resyncs every namespace with flags
periodically (a target Deployment that appeared, a hand-edited ConfigMap).

No finalizer: a flag can always be deleted, even with the operator down (the ConfigMaps are
garbage-collected through their ownerReferences when the last flag goes). That is why the clock
is not a kopf timer or daemon per flag: kopf puts its finalizer on every object that has one
(``requires_finalizer=True`` for both, by design: nolar/kopf#548, #896). The clock is one asyncio
task of the operator's own loop, started and stopped by kopf's startup/cleanup activities; what
it knows comes from a kopf index of the flags (each flag's sign-off instants, by namespace), kept
by kopf from its watch of the flags.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

import kopf

from rollguard import GROUP, VERSION
from rollguard.operator.flags.kube import FlagsKube
from rollguard.operator.flags.reconcile import deployment_obs, reconcile_namespace, transition_times

log = logging.getLogger("rollguard.operator.flags")

TICK_SECONDS = float(os.environ.get("ROLLGUARD_FLAGS_TICK_SECONDS", "1"))
RESYNC_SECONDS = float(os.environ.get("ROLLGUARD_FLAGS_RESYNC_SECONDS", "60"))

_kube = FlagsKube()
# Namespaces being deleted (their last reconcile said so): no resync and no Deployment events
# there; a flag's own handler still reconciles (and takes the namespace off when it is not).
# Set operations are atomic under the GIL: the handlers' threads and the clock share it unlocked.
_terminating: set[str] = set()


def _run(namespace: str) -> None:
    if reconcile_namespace(_kube, namespace) is None:
        _terminating.add(namespace)
    else:
        _terminating.discard(namespace)


@kopf.index(GROUP, VERSION, "featureflags")
def flag_transitions(namespace: str | None, spec: kopf.Spec, **_: Any) -> dict[str, tuple[dt.datetime, ...]]:
    """kopf index: namespace -> one entry per flag, the instants its sign-off starts and expires
    (UTC; empty for a flag without a sign-off gate). A namespace is in it while it has flags."""
    return {namespace or "": transition_times(dict(spec))}


INDEX = "flag_transitions"  # the kwarg kopf passes the index as: its handler's name


@kopf.on.resume(GROUP, VERSION, "featureflags")
@kopf.on.create(GROUP, VERSION, "featureflags")
@kopf.on.update(GROUP, VERSION, "featureflags")
def reconcile(namespace: str | None, **_: Any) -> None:
    """A flag was created, changed, or found at start: reconcile its namespace."""
    assert namespace is not None  # FeatureFlag is namespaced
    _run(namespace)


def _is(kind: str) -> Callable[..., bool]:
    def check(event: kopf.RawEvent, **_: Any) -> bool:
        return event.get("type") == kind
    return check


@kopf.on.event(GROUP, VERSION, "featureflags", when=_is("DELETED"))
def deleted(namespace: str | None, **_: Any) -> None:
    """A flag is gone (no finalizer: the watch event is all there is): reconcile the rest."""
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
def deployment_changed(namespace: str | None, **kwargs: Any) -> None:
    """A Deployment that may need the flags mount, in a namespace with flags: reconcile it."""
    index: kopf.Index[str, Any] = kwargs[INDEX]  # kopf passes each index by its handler's name
    if namespace and namespace in index and namespace not in _terminating:
        _run(namespace)


def due(index: kopf.Index[str, tuple[dt.datetime, ...]], after: dt.datetime, until: dt.datetime,
        resync: bool) -> list[str]:
    """The namespaces of ``index`` (see :func:`flag_transitions`) to reconcile now: those with a
    sign-off instant in (``after``, ``until``], or all of them when ``resync``; never one that is
    being deleted."""
    def instants(ns: str) -> Iterable[dt.datetime]:
        return (t for times in index[ns] for t in times)
    return sorted(ns for ns in list(index) if ns not in _terminating
                  and (resync or any(after < t <= until for t in instants(ns))))


def _seconds(t: dt.datetime) -> dt.datetime:
    return t.replace(microsecond=0)  # the reconciler's own resolution: a due instant is compared alike


async def _clock(index: kopf.Index[str, tuple[dt.datetime, ...]]) -> None:
    loop = asyncio.get_running_loop()
    last, last_resync = _seconds(dt.datetime.now(dt.UTC)), loop.time()
    retry: set[str] = set()  # due namespaces whose reconcile failed: again on the next tick
    while True:
        await asyncio.sleep(TICK_SECONDS)
        now = _seconds(dt.datetime.now(dt.UTC))
        resync = loop.time() - last_resync >= RESYNC_SECONDS
        if resync:
            last_resync = loop.time()
        signed = set(due(index, last, now, False)) | (retry - _terminating)
        wake = signed | set(due(index, last, now, True) if resync else ())
        last, retry = now, set()
        for ns in sorted(wake):
            try:
                await asyncio.to_thread(_run, ns)
            except Exception:  # keep the clock going; a due namespace is retried on the next tick
                log.exception("flags reconcile of namespace %s failed", ns)
                if ns in signed:
                    retry.add(ns)


@kopf.on.startup()
async def start_clock(memo: kopf.Memo, **kwargs: Any) -> None:
    """Start the flags clock (a task of the operator's loop) on the flags index."""
    memo["flags_clock"] = asyncio.create_task(_clock(kwargs[INDEX]), name="rollguard-flags-clock")


@kopf.on.cleanup()
async def stop_clock(memo: kopf.Memo, **_: Any) -> None:
    """Stop the flags clock."""
    task = memo.get("flags_clock")
    if isinstance(task, asyncio.Task):
        task.cancel()

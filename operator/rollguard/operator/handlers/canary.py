"""CanaryRollout handlers: a timer per rollout that observes, calls the engine, carries out actions.

Thin on purpose: all decisions are in ``rollguard.operator.canary.engine.decide``; all cluster I/O
in ``rollguard.operator.canary.reconciler``. State lives only in the resource's status, so a
restarted operator picks every rollout up where it stood.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from typing import Any

import kopf

from rollguard import GROUP, VERSION
from rollguard.kube.client import api_client
from rollguard.operator.canary.reconciler import Reconciler
from rollguard.operator.events import post as post_events
from rollguard.operator.observability import (
    CANARY_ANALYSIS_RUNS,
    CANARY_ROLLBACKS,
    canary_phase,
    forget_canary,
    reconcile_timer,
)

TICK_SECONDS = 1.0  # the engine decides what is due; a short tick keeps reaction time near one interval



@functools.cache
def _reconciler() -> Reconciler:
    return Reconciler(api_client())


def _record(uid: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    phase = new.get("phase") or old.get("phase")
    if phase:
        canary_phase(uid, phase)  # idempotent: the gauge is right after a restart too
    rolled = ("RollingBack", "RolledBack")  # one tick may go through both
    if new.get("phase") in rolled and old.get("phase") not in rolled:
        CANARY_ROLLBACKS.labels(reason=new.get("reason") or "unknown").inc()
    if (new.get("analysisRuns") or 0) > (old.get("analysisRuns") or 0):
        CANARY_ANALYSIS_RUNS.labels(result=new.get("lastCheckVerdict") or "unknown").inc()


@kopf.timer(GROUP, VERSION, "canaryrollouts", interval=TICK_SECONDS, sharp=True)
async def canary_tick(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    raw = {k: dict(v) if hasattr(v, "keys") else v for k, v in body.items()}
    with reconcile_timer("CanaryRollout"):
        result = await asyncio.to_thread(_reconciler().reconcile, raw, dt.datetime.now(dt.UTC))
    old_status = dict(body.get("status") or {})
    if result is None:
        _record(str(body.metadata.uid), old_status, {})
        return
    status, events = result
    _record(str(body.metadata.uid), old_status, status)
    for key, value in status.items():
        patch.status[key] = value
    post_events(body, events, warnings_to=logger)


@kopf.on.delete(GROUP, VERSION, "canaryrollouts")
async def canary_deleted(body: kopf.Body, **_: Any) -> None:
    """Deleting a running rollout is an abort: nothing of the canary may be left in the traffic path."""
    raw = {k: dict(v) if hasattr(v, "keys") else v for k, v in body.items()}
    await asyncio.to_thread(_reconciler().cleanup, raw)
    forget_canary(str(body.metadata.uid))


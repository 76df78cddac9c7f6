"""CanaryRollout handlers: a timer per rollout that observes, calls the engine, carries out actions.

Thin on purpose: all decisions are in ``rollguard.operator.canary.engine.decide``; all cluster I/O
in ``rollguard.operator.canary.shell``. State lives only in the resource's status, so a
restarted operator picks every rollout up where it stood.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from typing import Any

import kopf
from kubernetes import client, config
from prometheus_client import Counter, Histogram

from rollguard import GROUP, VERSION
from rollguard.operator.canary.shell import Shell

TICK_SECONDS = 1.0  # the engine decides what is due; a short tick keeps reaction time near one interval

TRANSITIONS = Counter("rollguard_canary_transitions_total", "CanaryRollout phase transitions", ["phase"])
ROLLBACKS = Counter("rollguard_canary_rollbacks_total", "CanaryRollout rollbacks by trigger", ["reason"])
ANALYSES = Counter("rollguard_canary_analysis_runs_total", "Analysis checks by outcome", ["verdict"])
RECONCILE = Histogram("rollguard_canary_reconcile_seconds", "Time of one CanaryRollout tick")


@functools.cache
def _shell() -> Shell:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return Shell(client.ApiClient())


def _record(old: dict[str, Any], new: dict[str, Any]) -> None:
    phase = new.get("phase")
    if phase and phase != old.get("phase"):
        TRANSITIONS.labels(phase=phase).inc()
        if phase == "RollingBack":
            ROLLBACKS.labels(reason=new.get("reason") or "unknown").inc()
    if (new.get("analysisRuns") or 0) > (old.get("analysisRuns") or 0):
        ANALYSES.labels(verdict=new.get("lastCheckVerdict") or "unknown").inc()


@kopf.timer(GROUP, VERSION, "canaryrollouts", interval=TICK_SECONDS, sharp=True)
async def canary_tick(body: kopf.Body, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    started = time.perf_counter()
    raw = {k: dict(v) if hasattr(v, "keys") else v for k, v in body.items()}
    result = await asyncio.to_thread(_shell().reconcile, raw, dt.datetime.now(dt.UTC))
    RECONCILE.observe(time.perf_counter() - started)
    if result is None:
        return
    status, events = result
    _record(dict(body.get("status") or {}), status)
    for key, value in status.items():
        patch.status[key] = value
    for e in events:
        kopf.event(body, type=e.type, reason=e.reason, message=e.message[:1000])
        if e.type == "Warning":
            logger.warning("%s: %s", e.reason, e.message)


@kopf.on.delete(GROUP, VERSION, "canaryrollouts")
async def canary_deleted(body: kopf.Body, **_: Any) -> None:
    """Deleting a running rollout is an abort: nothing of the canary may be left in the traffic path."""
    raw = {k: dict(v) if hasattr(v, "keys") else v for k, v in body.items()}
    await asyncio.to_thread(_shell().cleanup, raw)


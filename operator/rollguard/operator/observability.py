"""The operator's Prometheus metrics, in one module, and the HTTP server that exposes them.

Every handler module imports its metrics from here (names, help and labels come from
`rollguard.metrics_catalog`, the list the dashboard and the alert rules are checked against):

    from rollguard.operator.observability import (
        CANARY_ANALYSIS_RUNS, CANARY_ROLLBACKS, CANARY_ROLLOUTS, canary_phase, forget_canary, timed)

    @kopf.on.update(...)
    @timed("CanaryRollout")                      # rollguard_reconcile_duration_seconds{kind}
    def reconcile(...): ...

    CANARY_ROLLBACKS.labels(reason="golden_mismatch").inc()
    CANARY_ANALYSIS_RUNS.labels(result="pass").inc()
    canary_phase(uid, "Progressing")             # keeps rollguard_canary_rollouts{phase} right

The server starts in a kopf startup handler on ROLLGUARD_METRICS_PORT (`rollguard operator run
--metrics-port`, default 8081; 0 disables).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar, cast

import kopf
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from rollguard.metrics_catalog import METRICS, MetricSpec

__all__ = [
    "CANARY_ANALYSIS_RUNS",
    "CANARY_PHASES",
    "CANARY_ROLLBACKS",
    "CANARY_ROLLOUTS",
    "RECONCILE_DURATION",
    "canary_phase",
    "forget_canary",
    "reconcile_timer",
    "timed",
]


def _spec(name: str) -> MetricSpec:
    return next(m for m in METRICS if m.name == name)


def _counter(name: str) -> Counter:
    s = _spec(name)
    return Counter(s.name, s.help, s.labels)  # prometheus_client keeps the `_total` suffix


def _gauge(name: str) -> Gauge:
    s = _spec(name)
    return Gauge(s.name, s.help, s.labels)


_reconcile = _spec("rollguard_reconcile_duration_seconds")
# From a ConfigMap create (tens of ms) to a canary step waiting on Prometheus (seconds).
RECONCILE_DURATION = Histogram(_reconcile.name, _reconcile.help, _reconcile.labels,
                               buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
CANARY_ROLLOUTS = _gauge("rollguard_canary_rollouts")
CANARY_ROLLBACKS = _counter("rollguard_canary_rollbacks_total")
CANARY_ANALYSIS_RUNS = _counter("rollguard_canary_analysis_runs_total")

# docs: DESIGN.md "The canary". Each phase's series exists from the start, at 0, so a
# dashboard shows "none" rather than "no data".
CANARY_PHASES = ("Pending", "Blocked", "Initializing", "Progressing", "Paused", "Promoting", "Succeeded",
                 "RollingBack", "RolledBack", "Failed")
for _phase in CANARY_PHASES:
    CANARY_ROLLOUTS.labels(phase=_phase).set(0)

_phases: dict[str, str] = {}
_phases_lock = threading.Lock()


def canary_phase(uid: str, phase: str) -> None:
    """Record that the CanaryRollout ``uid`` is in ``phase`` now (idempotent: call it on every
    reconcile). The gauge counts rollouts per phase from these records, so a missed transition
    or a handler that runs twice cannot make it drift the way inc()/dec() pairs do."""
    with _phases_lock:
        old = _phases.get(uid)
        if old == phase:
            return
        _phases[uid] = phase
        if old is not None:
            CANARY_ROLLOUTS.labels(phase=old).dec()
        CANARY_ROLLOUTS.labels(phase=phase).inc()


def forget_canary(uid: str) -> None:
    """The CanaryRollout ``uid`` is gone (its delete handler): it counts in no phase any more."""
    with _phases_lock:
        old = _phases.pop(uid, None)
        if old is not None:
            CANARY_ROLLOUTS.labels(phase=old).dec()


@contextlib.contextmanager
def reconcile_timer(kind: str) -> Iterator[None]:
    """Observe how long the block took in rollguard_reconcile_duration_seconds{kind}, whether it
    returns or raises (a TemporaryError is a reconcile too, and often the slow one)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        RECONCILE_DURATION.labels(kind=kind).observe(time.perf_counter() - start)


P = ParamSpec("P")
R = TypeVar("R")


def timed(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator form of `reconcile_timer` for sync and async kopf handlers. Put it *under* the
    kopf decorators; it keeps the function's name (functools.wraps), so kopf's handler id, and
    the progress it stored under that id, stay the same."""
    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        if asyncio.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with reconcile_timer(kind):
                    return await fn(*args, **kwargs)
            return cast(Callable[P, R], awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with reconcile_timer(kind):
                return fn(*args, **kwargs)
        return wrapper
    return wrap


# ---- the HTTP server ----

_server: list[Any] = []


@kopf.on.startup()
def serve_metrics(logger: kopf.Logger, **_: Any) -> None:
    port = int(os.environ.get("ROLLGUARD_METRICS_PORT", "8081"))
    if port == 0:
        logger.info("metrics disabled (ROLLGUARD_METRICS_PORT=0)")
        return
    try:
        server, _thread = start_http_server(port, addr="0.0.0.0")  # a pod port, selected by the Service
    except OSError as e:
        # A port the operator cannot use is a configuration error: stop with the reason rather
        # than run without metrics and page someone through RollguardOperatorDown later.
        raise kopf.PermanentError(f"cannot serve metrics on port {port} (ROLLGUARD_METRICS_PORT): {e}") from e
    _server.append(server)
    logger.info(f"metrics on :{port}/metrics")


@kopf.on.cleanup()
def stop_metrics(**_: Any) -> None:
    while _server:
        server = _server.pop()
        server.shutdown()
        server.server_close()

"""Failure reporter: match an error locally, then deliver it to the failures API without ever
blocking the caller and without losing it.

Every event goes through a durable local spool (an outbox) and a background sender delivers
the spool in order with POST /api/v1/failures/batch. So:

- the caller pays a local match and one append to the spool (by default to an in-memory
  queue that a writer thread commits every 20 ms: microseconds at any spool size, see
  bench/reporter_bench.py and `rollguard.sdk.spool` for the durability choices); never a
  network round trip, never a wait on the sender;
- an event is made to fit the service's limits before it is spooled (`rollguard.sdk.limits`:
  text cleaned and clipped, an oversized or non-JSON context replaced by a marker and a
  preview, logged), so the service never refuses it for its shape;
- each HTTP attempt is bounded by ``timeout`` (default 2 s); after ``breaker_threshold``
  consecutive failures (default 5) the circuit opens and the sender pauses, 0.25 s at first,
  doubling on every failed probe up to ``breaker_reset`` (5 s). A fixed 60 s pause
  protected callers that waited on the API; here no caller does, so a short pause costs only
  a probe, and the spool starts to drain within ``breaker_reset`` of the service's return.
  A 503 or 429 with ``Retry-After`` sets the pause (at most ``MAX_RETRY_AFTER``);
- while the service is away events accumulate in the spool and are replayed in order when it
  is back; each carries a client-chosen id, so a batch re-sent after a lost response is not
  stored twice;
- an item the service refuses as such (422; 404/409 for a recovery mark; 413 for a single
  event) is kept in the spool's ``rejected`` table and logged; batches are cut to at most
  ``MAX_BATCH_BYTES`` and halved on a 413;
- ``failure_persist_dropped_total`` grows only when the spool is full (or the disk fails),
  and each such drop is logged at ERROR level (with the event's id and run, never its content).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import Counter, Gauge

from rollguard.sdk import catalog_metrics, limits
from rollguard.sdk.limits import clean_text
from rollguard.sdk.matching import UNKNOWN, CatalogMatcher, Match, load_matcher
from rollguard.sdk.spool import EVENT, RECOVERY, Durability, Spool

log = logging.getLogger("rollguard.sdk.reporter")

PERSIST_TIMEOUT = 2.0
BREAKER_THRESHOLD = 5
BREAKER_FIRST_PAUSE = 0.25
BREAKER_RESET = 5.0
MAX_RETRY_AFTER = 60.0
BATCH_SIZE = 500
# Half the service's default body limit: room for JSON escapes the estimate does not see.
MAX_BATCH_BYTES = limits.MAX_BODY_BYTES // 2
LINGER = 0.1  # how long the sender lets a batch fill once woken (fewer, larger requests)
MAINTAIN_EVERY = 5.0  # seconds between spool checkpoints
_JSON = {"content-type": "application/json"}

PERSIST_DROPPED = Counter("failure_persist_dropped", "Failure events dropped: spool full or unwritable")
SPOOL_PENDING = Gauge("failure_spool_pending", "Failure events waiting in the local spool")


class CircuitBreaker:
    """closed -> (``threshold`` consecutive failures) -> open -> half-open: one trial call;
    success closes, failure opens again for twice the previous pause, up to ``reset_after``
    seconds; each pause is jittered (50-100 %) so that many clients do not probe in step.
    ``failure(retry_after=s)`` opens it for ``s`` seconds (the server's ``Retry-After``, at
    most ``MAX_RETRY_AFTER``)."""

    def __init__(self, threshold: int = BREAKER_THRESHOLD, reset_after: float = BREAKER_RESET,
                 clock: Callable[[], float] = time.monotonic, first_pause: float = BREAKER_FIRST_PAUSE,
                 jitter: Callable[[], float] = random.random) -> None:
        self.threshold, self.reset_after, self._clock = threshold, reset_after, clock
        self.first_pause, self._jitter = min(first_pause, reset_after), jitter
        self.failures = 0
        self.opens = 0
        self.opened_at: float | None = None
        self.pause = 0.0

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self.opened_at >= self.pause else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def seconds_until_retry(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.pause - (self._clock() - self.opened_at))

    def success(self) -> None:
        self.failures, self.opens, self.opened_at = 0, 0, None

    def failure(self, retry_after: float | None = None) -> None:
        self.failures += 1
        if retry_after is not None:
            self._open(min(max(retry_after, 0.0), MAX_RETRY_AFTER))
        elif self.state == "half-open" or (self.opened_at is None and self.failures >= self.threshold):
            self.opens += 1
            pause = min(self.reset_after, self.first_pause * 2 ** (self.opens - 1))
            self._open(pause * (0.5 + self._jitter() / 2))

    def _open(self, pause: float) -> None:
        if self.opened_at is None:
            log.warning("failures API: circuit open after %d consecutive failures; next try in %.2fs",
                        self.failures, pause)
        self.opened_at, self.pause = self._clock(), pause


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("retry-after", "")
    try:
        return float(value) if value else None
    except ValueError:  # an HTTP date: not worth parsing, the breaker's own pause applies
        return None


@dataclass(frozen=True)
class ReportResult:
    event_id: uuid.UUID
    match: Match
    queued: bool  # False only when the event was dropped (spool full): then the counter grew


def _clip(value: str | None, n: int) -> str | None:
    if value is None:
        return None
    value = clean_text(value)
    return value if len(value) <= n else value[: n - 1] + "…"


class Reporter:
    """Reports failures to the failures API through a local spool; see the module doc.

    ``durability`` (`rollguard.sdk.spool`): "buffered" (default: the caller pays microseconds;
    an event is committed within 20 ms, and at exit), "process" (committed before the call
    returns: survives the process being killed) or "machine" (also a power loss, at an fsync
    per event)."""

    def __init__(self, base_url: str, token: str, *, spool_path: Path, timeout: float = PERSIST_TIMEOUT,
                 breaker_threshold: int = BREAKER_THRESHOLD, breaker_reset: float = BREAKER_RESET,
                 max_spool_events: int = 100_000, matcher: CatalogMatcher | None = None,
                 catalog_path: Path | None = Path("/etc/rollguard/catalog/catalog.json"),
                 start: bool = True, durability: Durability = "buffered", linger: float = LINGER) -> None:
        self.base_url, self.timeout, self.linger = base_url.rstrip("/"), timeout, linger
        self.matcher = matcher or load_matcher(catalog_path)
        self.spool = Spool(spool_path, max_events=max_spool_events, busy_timeout=timeout, durability=durability)
        self.breaker = CircuitBreaker(breaker_threshold, breaker_reset)
        self.max_batch_bytes = MAX_BATCH_BYTES
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout,
                                    headers={"Authorization": f"Bearer {token}"})
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._hurry = False  # flush(): no lingering
        self._maintained = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rollguard-failure-reporter", daemon=True)
        SPOOL_PENDING.set(self.spool.pending)
        if start:
            self._thread.start()

    # -- caller side ---------------------------------------------------------------------------
    def match_and_persist(self, code_or_message: str, run_id: str, *, error_message: str | None = None,
                          skill_id: str | None = None, step_index: int | None = None,
                          context: dict[str, Any] | None = None) -> ReportResult:
        """Match locally and queue the event for delivery; never raises, never waits on the network.

        Text is cleaned (lone surrogates, NUL) and clipped to the service's widths; a context
        beyond `rollguard.sdk.limits` is replaced by a marker and a short preview (logged at
        WARNING, without its content), so the event itself is always deliverable."""
        event_id = uuid.uuid4()
        code = clean_text(str(code_or_message))
        message = _clip(error_message, limits.ERROR_MESSAGE_MAX)
        try:
            m = self.matcher.match_event(code, message)
        except Exception:  # a matcher bug must not cost the caller its report
            log.exception("failure reporter: matching %s failed; reported unmatched", event_id)
            m = UNKNOWN
        # counted once per event (the code and the message may both have been tried)
        if m.entry_code is not None:
            catalog_metrics.HITS.labels(m.entry_code, m.category or "").inc()
        else:
            catalog_metrics.MISSES.inc()
        looks_like_code = len(code) <= limits.ERROR_CODE_MAX and " " not in code.strip() and code.strip() != ""
        ctx, problem = limits.fit_context(context)
        if problem is not None:
            log.warning("failure event %s (run %s): context %s; replaced by a marker and a preview", event_id,
                        _clip(run_id, 100), problem)
        if step_index is not None and not (isinstance(step_index, int) and 0 <= step_index <= 2_147_483_647):
            ctx = {**ctx, "_rollguard_step_index": _clip(str(step_index), 100)}
            step_index = None
        event: dict[str, Any] = {
            "id": str(event_id),
            "run_id": _clip(str(run_id), limits.RUN_ID_MAX) or "unknown",
            "error_code": code if looks_like_code else (m.entry_code or "UNKNOWN"),
            "error_message": message if message or looks_like_code else _clip(code, limits.ERROR_MESSAGE_MAX),
            "skill_id": _clip(skill_id, limits.SKILL_ID_MAX),
            "step_index": step_index,
            "context": ctx,
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        return ReportResult(event_id, m, self._enqueue(event, EVENT))

    def report_recovery(self, event_id: uuid.UUID, succeeded: bool, *, recovered_by: str | None = None,
                        notes: str | None = None) -> bool:
        """Record the outcome of a recovery of a reported failure (PATCH .../recovery), through the
        same spool, so it reaches the service after the failure itself. False only if dropped."""
        item = {"id": str(event_id), "recovery_succeeded": bool(succeeded),
                "recovered_by": _clip(recovered_by, limits.RECOVERED_BY_MAX), "notes": _clip(notes, limits.NOTES_MAX)}
        return self._enqueue(item, RECOVERY)

    def _enqueue(self, item: dict[str, Any], kind: str) -> bool:
        try:
            queued = self.spool.append(item, kind)
        except Exception as exc:  # disk full, permissions: the one place we may lose an event
            log.error("FAILURE EVENT DROPPED (spool %s unwritable: %s): %s %s, run %s", self.spool.path, exc, kind,
                      item.get("id"), item.get("run_id"))
            queued = False
        else:
            if not queued:
                log.error("FAILURE EVENT DROPPED: spool %s is full (%d events); is the failures API at %s down?",
                          self.spool.path, self.spool.max_events, self.base_url)
        if not queued:
            PERSIST_DROPPED.inc()
        else:
            SPOOL_PENDING.inc()
            if self._idle.is_set():  # wake the sender once per idle spell, not per event
                self._idle.clear()
                self._wake.set()
        return queued

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the spool is empty (tests, shutdown); True if it is."""
        deadline = time.monotonic() + timeout
        self._hurry = True
        try:
            while time.monotonic() < deadline:
                if len(self.spool) == 0:
                    return True
                self._wake.set()
                time.sleep(0.05)
            return len(self.spool) == 0
        finally:
            self._hurry = False

    def close(self, flush_timeout: float = 0.0) -> None:
        if flush_timeout:
            self.flush(flush_timeout)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout + 1)
        self._client.close()
        self.spool.close()

    # -- sender side ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._maintained >= MAINTAIN_EVERY:
                    self._maintained = time.monotonic()
                    self.spool.maintain()
                    SPOOL_PENDING.set(self.spool.pending)
                if not self.breaker.allow():
                    self._stop.wait(min(self.breaker.seconds_until_retry(), 1.0))
                    continue
                if self.spool.pending == 0:
                    self._idle.set()
                    # checked again after saying "idle": an append in between has seen the flag
                    # and set the wake-up, so this wait returns at once
                    if self.spool.pending == 0:
                        self._wake.wait(MAINTAIN_EVERY)
                    self._wake.clear()
                    continue
                if self.spool.pending < BATCH_SIZE and not self._hurry and self.breaker.state == "closed":
                    self._stop.wait(self.linger)  # let the batch fill
                progressed = self.deliver_once()
            except Exception:  # never let the sender thread die
                log.exception("failure reporter: unexpected error")
                progressed = False
            if not progressed:
                self._wake.wait(0.5)
                self._wake.clear()

    def deliver_once(self) -> bool:
        """Send the oldest batch; True if the spool shrank."""
        rows = self.spool.peek_raw(BATCH_SIZE)
        if not rows:
            self._idle.set()
            return False
        if rows[0][1] == RECOVERY:
            return self._deliver_recovery(rows[0][0], rows[0][2])
        # the events up to the next recovery mark (which must reach the service after its event),
        # within the byte budget (always at least one)
        batch: list[tuple[int, str]] = []
        size = 0
        for seq, kind, body in rows:
            if kind == RECOVERY or (batch and size + len(body) + 1 > self.max_batch_bytes):
                break
            batch.append((seq, body))
            size += len(body) + 1
        while True:
            payload = ("{\"events\":[" + ",".join(b for _, b in batch) + "]}").encode()
            try:
                r = self._client.post("/api/v1/failures/batch", content=payload, headers=_JSON)
            except httpx.HTTPError as exc:
                self.breaker.failure()
                log.info("failures API unreachable (%s); %d events spooled", type(exc).__name__, self.spool.pending)
                return False
            if r.status_code == 413 and len(batch) > 1:
                # the service's limit is lower than ours: halve the batch (and later ones)
                self.max_batch_bytes = max(1024, self.max_batch_bytes // 2)
                batch = batch[: len(batch) // 2]
                continue
            break
        seqs = [s for s, _ in batch]
        if r.status_code in (200, 201):
            self.spool.ack(seqs)
            self.breaker.success()
            SPOOL_PENDING.set(self.spool.pending)
            return True
        if r.status_code in (413, 422):
            # One bad event must not hold the others back: send them one by one, in order,
            # stopping at the first that could not be settled.
            progressed = False
            for seq, body in batch:
                if not self._deliver_single(seq, body):
                    break
                progressed = True
            return progressed
        self._failed(r)
        return False

    def _failed(self, r: httpx.Response) -> None:
        """401/403/404/429/5xx: keep everything, try again later (503/429: after Retry-After)."""
        retry = _retry_after(r) if r.status_code in (429, 503) else None
        self.breaker.failure(retry_after=retry)
        log.warning("failures API answered %d%s: %s", r.status_code,
                    f" (retry after {retry:g}s)" if retry is not None else "", r.text[:200])

    def _deliver_recovery(self, seq: int, body: str) -> bool:
        item = json.loads(body)
        patch = {k: item[k] for k in ("recovery_succeeded", "recovered_by", "notes") if item.get(k) is not None}
        try:
            r = self._client.patch(f"/api/v1/failures/{item['id']}/recovery", json=patch)
        except httpx.HTTPError:
            self.breaker.failure()
            return False
        if r.status_code == 200:
            self.spool.ack([seq])
            self.breaker.success()
            return True
        if r.status_code in (404, 409, 413, 422):
            log.error("failures API refused the recovery of %s (kept in %s, table rejected): %d %s", item["id"],
                      self.spool.path, r.status_code, r.text[:300])
            self.spool.reject([seq], f"{r.status_code} {r.text[:2000]}")
            return True
        self._failed(r)
        return False

    def _deliver_single(self, seq: int, body: str) -> bool:
        try:
            r = self._client.post("/api/v1/failures/batch", content=("{\"events\":[" + body + "]}").encode(),
                                  headers=_JSON)
        except httpx.HTTPError:
            self.breaker.failure()
            return False
        if r.status_code in (200, 201):
            self.spool.ack([seq])
            return True
        if r.status_code in (413, 422):
            log.error("failures API refused event %s (kept in %s, table rejected): %d %s", seq, self.spool.path,
                      r.status_code, r.text[:500])
            self.spool.reject([seq], f"{r.status_code} {r.text[:2000]}")
            return True
        self._failed(r)
        return False


def default_spool_path() -> Path:
    """$ROLLGUARD_FAILURES_SPOOL, else /var/lib/rollguard (a volume in the pod) when writable,
    else the user's cache directory."""
    env = os.environ.get("ROLLGUARD_FAILURES_SPOOL")
    if env:
        return Path(env)
    system = Path("/var/lib/rollguard")
    if os.access(system, os.W_OK) or (not system.exists() and os.access(system.parent, os.W_OK)):
        return system / "failures-spool.db"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "rollguard" / "failures-spool.db"


_default: Reporter | None = None
_default_lock = threading.Lock()


def configure(**kwargs: Any) -> Reporter:
    """Set up the process-wide reporter (defaults from ROLLGUARD_FAILURES_URL / _TOKEN / _SPOOL)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        kwargs.setdefault("base_url", os.environ.get("ROLLGUARD_FAILURES_URL", "http://127.0.0.1:8000"))
        kwargs.setdefault("token", os.environ.get("ROLLGUARD_FAILURES_TOKEN", ""))
        kwargs.setdefault("spool_path", default_spool_path())
        _default = Reporter(**kwargs)
        return _default


def match_and_persist(code_or_message: str, run_id: str, **kwargs: Any) -> ReportResult:
    """Match and report in one call, on the process-wide reporter (configured from the environment)."""
    reporter = _default or configure()
    return reporter.match_and_persist(code_or_message, run_id, **kwargs)

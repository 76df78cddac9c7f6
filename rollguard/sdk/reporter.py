"""Failure reporter: match an error locally, then deliver it to the failures API without ever
blocking the caller and without losing it.

Every event goes through a durable local spool (an outbox) and a background sender delivers
the spool in order with POST /api/v1/failures/batch. So:

- the caller pays a local match and one SQLite append, bounded by ``timeout`` (default 2 s);
  never a network round trip;
- each HTTP attempt is bounded by ``timeout`` too; after ``breaker_threshold`` consecutive
  failures (default 5) the circuit opens for ``breaker_reset`` seconds (default 60) and no attempt
  is made; then one probe decides whether it closes again;
- while the service is away events accumulate in the spool and are replayed in order when it
  is back; each carries a client-chosen id, so a batch re-sent after a lost response is not
  stored twice;
- ``failure_persist_dropped_total`` grows only when the spool is full (or the disk fails),
  and each such drop is logged at ERROR level.
"""

from __future__ import annotations

import logging
import os
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

from rollguard.sdk import catalog_metrics
from rollguard.sdk.matching import CatalogMatcher, Match, load_matcher

log = logging.getLogger("rollguard.sdk.reporter")

PERSIST_TIMEOUT = 2.0
BREAKER_THRESHOLD = 5
BREAKER_RESET = 60.0
BATCH_SIZE = 500
_KIND = "_kind"  # spool items that are not events (recovery marks) carry this key

PERSIST_DROPPED = Counter("failure_persist_dropped", "Failure events dropped: spool full or unwritable")
SPOOL_PENDING = Gauge("failure_spool_pending", "Failure events waiting in the local spool")


class CircuitBreaker:
    """closed -> (threshold consecutive failures) -> open for reset_after s -> half-open:
    one trial call; success closes, failure opens again."""

    def __init__(self, threshold: int = BREAKER_THRESHOLD, reset_after: float = BREAKER_RESET,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold, self.reset_after, self._clock = threshold, reset_after, clock
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self.opened_at >= self.reset_after else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def seconds_until_retry(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.reset_after - (self._clock() - self.opened_at))

    def success(self) -> None:
        self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half-open" or (self.opened_at is None and self.failures >= self.threshold):
            log.warning("failures API: circuit open for %.0fs after %d consecutive failures",
                        self.reset_after, self.failures)
            self.opened_at = self._clock()


@dataclass(frozen=True)
class ReportResult:
    event_id: uuid.UUID
    match: Match
    queued: bool  # False only when the event was dropped (spool full): then the counter grew


def _clip(value: str | None, n: int) -> str | None:
    return value if value is None or len(value) <= n else value[: n - 1] + "…"


class Reporter:
    def __init__(self, base_url: str, token: str, *, spool_path: Path, timeout: float = PERSIST_TIMEOUT,
                 breaker_threshold: int = BREAKER_THRESHOLD, breaker_reset: float = BREAKER_RESET,
                 max_spool_events: int = 100_000, matcher: CatalogMatcher | None = None,
                 catalog_path: Path | None = Path("/etc/rollguard/catalog/catalog.json"),
                 start: bool = True) -> None:
        from rollguard.sdk.spool import Spool

        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self.matcher = matcher or load_matcher(catalog_path)
        self.spool = Spool(spool_path, max_events=max_spool_events, busy_timeout=timeout)
        self.breaker = CircuitBreaker(breaker_threshold, breaker_reset)
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout,
                                    headers={"Authorization": f"Bearer {token}"})
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollguard-failure-reporter", daemon=True)
        SPOOL_PENDING.set(len(self.spool))
        if start:
            self._thread.start()

    # -- caller side ---------------------------------------------------------------------------
    def match_and_persist(self, code_or_message: str, run_id: str, *, error_message: str | None = None,
                          skill_id: str | None = None, step_index: int | None = None,
                          context: dict[str, Any] | None = None) -> ReportResult:
        """Match locally and queue the event for delivery; never raises, never waits on the network."""
        m = self.matcher.match_event(code_or_message, error_message)
        # counted once per event (the code and the message may both have been tried)
        if m.entry_code is not None:
            catalog_metrics.HITS.labels(m.entry_code, m.category or "").inc()
        else:
            catalog_metrics.MISSES.inc()
        looks_like_code = len(code_or_message) <= 255 and " " not in code_or_message.strip()
        event_id = uuid.uuid4()
        event: dict[str, Any] = {
            "id": str(event_id),
            "run_id": _clip(run_id, 255) or "unknown",
            "error_code": code_or_message if looks_like_code else (m.entry_code or "UNKNOWN"),
            "error_message": _clip(error_message if error_message or looks_like_code else code_or_message, 20000),
            "skill_id": _clip(skill_id, 100),
            "step_index": step_index,
            "context": context or {},
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        return ReportResult(event_id, m, self._enqueue(event))

    def report_recovery(self, event_id: uuid.UUID, succeeded: bool, *, recovered_by: str | None = None,
                        notes: str | None = None) -> bool:
        """Record the outcome of a recovery of a reported failure (PATCH .../recovery), through the
        same spool, so it reaches the service after the failure itself. False only if dropped."""
        item = {_KIND: "recovery", "id": str(event_id), "recovery_succeeded": succeeded,
                "recovered_by": _clip(recovered_by, 100), "notes": _clip(notes, 10000)}
        return self._enqueue(item)

    def _enqueue(self, item: dict[str, Any]) -> bool:
        try:
            queued = self.spool.append(item)
        except Exception as exc:  # disk full, permissions: the one place we may lose an event
            log.error("FAILURE EVENT DROPPED (spool %s unwritable: %s): %s", self.spool.path, exc, item)
            queued = False
        else:
            if not queued:
                log.error("FAILURE EVENT DROPPED: spool %s is full (%d events); is the failures API at %s down?",
                          self.spool.path, self.spool.max_events, self.base_url)
        if not queued:
            PERSIST_DROPPED.inc()
        else:
            SPOOL_PENDING.inc()
            self._idle.clear()
            self._wake.set()
        return queued

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the spool is empty (tests, shutdown); True if it is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.spool) == 0:
                return True
            self._wake.set()
            time.sleep(0.05)
        return len(self.spool) == 0

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
            if not self.breaker.allow():
                self._stop.wait(min(self.breaker.seconds_until_retry(), 1.0))
                continue
            try:
                progressed = self.deliver_once()
            except Exception:  # never let the sender thread die
                log.exception("failure reporter: unexpected error")
                progressed = False
            if not progressed:
                self._wake.wait(0.5)
                self._wake.clear()

    def deliver_once(self) -> bool:
        """Send the oldest batch; True if the spool shrank."""
        batch = self.spool.peek(BATCH_SIZE)
        if not batch:
            self._idle.set()
            return False
        if batch[0][1].get(_KIND) == "recovery":
            return self._deliver_recovery(*batch[0])
        # the events up to the next recovery mark (which must reach the service after its event)
        cut = next((n for n, (_, e) in enumerate(batch) if e.get(_KIND) == "recovery"), len(batch))
        batch = batch[:cut]
        seqs = [s for s, _ in batch]
        try:
            r = self._client.post("/api/v1/failures/batch", json={"events": [e for _, e in batch]})
        except httpx.HTTPError as exc:
            self.breaker.failure()
            log.info("failures API unreachable (%s); %d events spooled", type(exc).__name__, len(self.spool))
            return False
        if r.status_code in (200, 201):
            self.spool.ack(seqs)
            self.breaker.success()
            SPOOL_PENDING.set(len(self.spool))
            return True
        if r.status_code == 422:
            # One bad event must not hold the others back: send them one by one, in order,
            # stopping at the first that could not be settled.
            progressed = False
            for seq, ev in batch:
                if not self._deliver_single(seq, ev):
                    break
                progressed = True
            return progressed
        self.breaker.failure()  # 401/403/429/5xx: keep everything, try again later
        log.warning("failures API answered %d: %s", r.status_code, r.text[:200])
        return False

    def _deliver_recovery(self, seq: int, item: dict[str, Any]) -> bool:
        body = {k: item[k] for k in ("recovery_succeeded", "recovered_by", "notes") if item.get(k) is not None}
        try:
            r = self._client.patch(f"/api/v1/failures/{item['id']}/recovery", json=body)
        except httpx.HTTPError:
            self.breaker.failure()
            return False
        if r.status_code == 200:
            self.spool.ack([seq])
            self.breaker.success()
            return True
        if r.status_code in (404, 422):
            log.error("failures API refused the recovery of %s (kept in %s, table rejected): %d %s", item["id"],
                      self.spool.path, r.status_code, r.text[:300])
            self.spool.reject([seq], f"{r.status_code} {r.text[:2000]}")
            return True
        self.breaker.failure()
        return False

    def _deliver_single(self, seq: int, event: dict[str, Any]) -> bool:
        try:
            r = self._client.post("/api/v1/failures/batch", json={"events": [event]})
        except httpx.HTTPError:
            self.breaker.failure()
            return False
        if r.status_code in (200, 201):
            self.spool.ack([seq])
            return True
        if r.status_code == 422:
            log.error("failures API rejected event %s (kept in %s, table rejected): %s", event.get("id"),
                      self.spool.path, r.text[:500])
            self.spool.reject([seq], r.text[:2000])
            return True
        self.breaker.failure()
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
    """The seeds' one-call API on the process-wide reporter (configured from the environment)."""
    reporter = _default or configure()
    return reporter.match_and_persist(code_or_message, run_id, **kwargs)

"""SDK reporter pieces without a service: circuit breaker, spool, never blocking, loud drops."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollguard.sdk.reporter import PERSIST_DROPPED, CircuitBreaker, Reporter
from rollguard.sdk.spool import Spool


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_after_threshold_and_half_opens_after_reset() -> None:
    clock = FakeClock()
    b = CircuitBreaker(threshold=5, reset_after=60, clock=clock)
    for _ in range(4):
        b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    clock.t += 59.9
    assert not b.allow() and b.seconds_until_retry() == pytest.approx(0.1)
    clock.t += 0.1
    assert b.state == "half-open" and b.allow()
    b.failure()  # the probe failed: open again for a full period
    assert b.state == "open"
    clock.t += 60
    b.success()
    assert b.state == "closed" and b.failures == 0
    b.failure()
    assert b.state == "closed"  # a fresh count after closing


def test_spool_keeps_order_and_survives_reopen(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.db", max_events=3)
    assert all(s.append({"n": i}) for i in range(3))
    assert s.append({"n": 3}) is False  # full
    batch = s.peek(2)
    assert [e["n"] for _, e in batch] == [0, 1]
    s.ack([batch[0][0]])
    s.close()
    s2 = Spool(tmp_path / "s.db", max_events=3)
    assert [e["n"] for _, e in s2.peek(10)] == [1, 2]
    s2.reject([s2.peek(1)[0][0]], "bad")
    assert [e["n"] for _, e in s2.peek(10)] == [2] and s2.rejected() == [({"n": 1}, "bad")]
    s2.close()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung service)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_caller_never_waits_for_a_hung_service(tmp_path: Path, black_hole: str) -> None:
    rep = Reporter(black_hole, "t", spool_path=tmp_path / "spool.db", timeout=0.5, catalog_path=None)
    try:
        worst = 0.0
        for i in range(20):
            t0 = time.monotonic()
            res = rep.match_and_persist("READ_TIMEOUT", "run-1", context={"i": i})
            worst = max(worst, time.monotonic() - t0)
            assert res.queued and res.match.entry_code == "READ_TIMEOUT"
        assert worst < rep.timeout
        assert len(rep.spool) == 20  # nothing delivered, nothing lost
    finally:
        rep.close()


def test_breaker_opens_against_a_dead_service(tmp_path: Path) -> None:
    from rollguard.localenv._proc import free_port

    rep = Reporter(f"http://127.0.0.1:{free_port()}", "t", spool_path=tmp_path / "spool.db", timeout=0.5,
                   breaker_reset=60, catalog_path=None, start=False)
    try:
        rep.match_and_persist("boom", "r")
        for _ in range(5):
            assert rep.deliver_once() is False
        assert rep.breaker.state == "open" and len(rep.spool) == 1
    finally:
        rep.close()


def test_full_spool_drops_loudly_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rep = Reporter("http://127.0.0.1:9", "t", spool_path=tmp_path / "spool.db", max_spool_events=2,
                   catalog_path=None, start=False)
    before = PERSIST_DROPPED._value.get()
    try:
        with caplog.at_level(logging.ERROR, logger="rollguard.sdk.reporter"):
            results = [rep.match_and_persist("E", "r") for _ in range(3)]
        assert [r.queued for r in results] == [True, True, False]
        assert PERSIST_DROPPED._value.get() == before + 1
        assert "FAILURE EVENT DROPPED" in caplog.text and "full" in caplog.text
    finally:
        rep.close()


def test_message_only_error_is_stored_as_message(tmp_path: Path) -> None:
    rep = Reporter("http://127.0.0.1:9", "t", spool_path=tmp_path / "spool.db", catalog_path=None, start=False)
    try:
        rep.match_and_persist("upstream said: connection refused", "r")
        rep.match_and_persist("SOMETHING_NEW", "r")
        (_, a), (_, b) = rep.spool.peek(2)
        assert a["error_code"] == "CONNECTION_REFUSED" and a["error_message"].startswith("upstream")
        assert b["error_code"] == "SOMETHING_NEW" and b["error_message"] is None
    finally:
        rep.close()


def test_module_level_api_configured_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rollguard.sdk import reporter

    monkeypatch.setenv("ROLLGUARD_FAILURES_SPOOL", str(tmp_path / "env-spool.db"))
    monkeypatch.setenv("ROLLGUARD_FAILURES_URL", "http://127.0.0.1:9")
    rep = reporter.configure(start=False, catalog_path=None)
    try:
        res = reporter.match_and_persist("HTTP_429", "run-9")
        assert res.queued and res.match.entry_code == "RATE_LIMITED"
        assert rep.spool.path == tmp_path / "env-spool.db" and len(rep.spool) == 1
    finally:
        rep.close()
        monkeypatch.setattr(reporter, "_default", None)

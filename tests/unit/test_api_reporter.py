"""SDK reporter pieces without a service: circuit breaker, spool, never blocking, loud drops."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollguard.sdk.reporter import PERSIST_DROPPED, CircuitBreaker, Reporter
from rollguard.sdk.spool import Spool


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_breaker_backs_off_from_a_short_pause_to_the_cap() -> None:
    clock = FakeClock()
    b = CircuitBreaker(threshold=5, reset_after=5, clock=clock, first_pause=0.25, jitter=lambda: 1.0)
    for _ in range(4):
        b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open" and not b.allow() and b.seconds_until_retry() == pytest.approx(0.25)
    pauses = []
    for _ in range(6):  # every probe fails: the pause doubles, up to the cap
        clock.t += b.seconds_until_retry()
        assert b.state == "half-open" and b.allow()
        b.failure()
        pauses.append(b.pause)
    assert pauses == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    clock.t += 5
    b.success()
    assert b.state == "closed" and b.failures == 0
    b.failure()
    assert b.state == "closed"  # a fresh count after closing
    for _ in range(4):
        b.failure()
    assert b.pause == pytest.approx(0.25)  # and a fresh backoff


def test_breaker_jitter_and_the_servers_retry_after() -> None:
    clock = FakeClock()
    b = CircuitBreaker(threshold=1, reset_after=5, clock=clock, first_pause=1.0, jitter=lambda: 0.0)
    b.failure()
    assert b.pause == pytest.approx(0.5)  # jitter takes up to half the pause off
    b.failure(retry_after=7)  # a server's Retry-After wins, also beyond the cap
    assert b.state == "open" and b.seconds_until_retry() == pytest.approx(7)
    b.failure(retry_after=86400)
    assert b.pause == 60  # but not without bound


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


class FakeApi:
    """A local HTTP server answering like the failures API: POST /batch stores the events of a
    body up to `limit` bytes (413 beyond), unless `status` says otherwise."""

    def __init__(self, limit: int = 1 << 30) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.limit, self.status = limit, 201
        self.headers: dict[str, str] = {}
        self.stored: list[dict[str, Any]] = []
        self.sizes: list[int] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers["content-length"])
                body = self.rfile.read(n)
                api.sizes.append(n)
                status = 413 if n > api.limit else api.status
                if status == 201:
                    api.stored += json.loads(body)["events"]
                self.send_response(status)
                for k, v in api.headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    try:
        yield api
    finally:
        api.close()


def drain(rep: Reporter) -> None:
    while rep.deliver_once():
        pass


def test_batches_fit_the_body_limit_and_a_413_halves_them(tmp_path: Path, fake_api: FakeApi) -> None:
    fake_api.limit = 12_000  # lower than the SDK's own budget: the service's setting wins
    rep = Reporter(fake_api.url, "t", spool_path=tmp_path / "spool.db", catalog_path=None, start=False)
    try:
        for i in range(200):
            rep.match_and_persist("READ_TIMEOUT", "r", context={"i": i, "pad": "x" * 200})
        huge = rep.match_and_persist("READ_TIMEOUT", "r", context={"pad": "y" * 8000, "more": "z" * 8000})
        rep.match_and_persist("READ_TIMEOUT", "r", context={"i": 200})
        drain(rep)
        assert [e["context"].get("i") for e in fake_api.stored] == [*range(200), 200]  # in order, all
        assert max(fake_api.sizes) > fake_api.limit  # it did hit the limit ...
        assert rep.max_batch_bytes <= fake_api.limit  # ... and adapted
        (kept, reason), = rep.spool.rejected()  # one event alone over the limit: set aside, not lost
        assert kept["id"] == str(huge.event_id) and reason.startswith("413")
        assert len(rep.spool) == 0
    finally:
        rep.close()


def test_503_keeps_everything_and_waits_as_told(tmp_path: Path, fake_api: FakeApi) -> None:
    rep = Reporter(fake_api.url, "t", spool_path=tmp_path / "spool.db", catalog_path=None, start=False)
    try:
        for i in range(3):
            rep.match_and_persist("READ_TIMEOUT", "r", context={"i": i})
        fake_api.status, fake_api.headers = 503, {"Retry-After": "7"}
        assert rep.deliver_once() is False
        assert rep.breaker.state == "open" and rep.breaker.pause == 7 and len(rep.spool) == 3
        assert fake_api.stored == [] and rep.spool.rejected() == []
        fake_api.status, fake_api.headers = 201, {}
        rep.breaker.success()  # as the pause running out would
        drain(rep)
        assert [e["context"]["i"] for e in fake_api.stored] == [0, 1, 2] and len(rep.spool) == 0
    finally:
        rep.close()


def test_the_caller_gets_an_event_the_service_accepts_whatever_it_passes(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    from rollguard.api.schemas import FailureIn

    rep = Reporter("http://127.0.0.1:9", "t", spool_path=tmp_path / "spool.db", catalog_path=None, start=False)
    deep: dict[str, object] = {"secret": "hunter2"}
    for _ in range(500):
        deep = {"k": deep}
    circular: dict[str, object] = {}
    circular["self"] = circular
    odd: list[dict[str, Any]] = [
        {"code": "TIMEOUT\ud800", "ctx": {"when": datetime_now(), 3: {"n": float("nan")}}},
        {"code": "x" * 300, "ctx": deep},
        {"code": "E", "ctx": circular},
        {"code": "E", "ctx": {"big": "b" * 100_000}},
        {"code": "E\x00", "ctx": {"k\udc80": "v\x00"}, "step": -3},
        {"code": "", "ctx": None},
    ]
    try:
        with caplog.at_level(logging.WARNING, logger="rollguard.sdk.reporter"):
            results = [rep.match_and_persist(o["code"], "run\ud800", error_message="m\udfff", context=o["ctx"],
                                             step_index=o.get("step")) for o in odd]
        assert all(r.queued for r in results)
        spooled = [e for _, e in rep.spool.peek(10)]
        assert len(spooled) == len(odd)
        for event in spooled:
            FailureIn.model_validate(event)  # what the service validates: accepted
        assert "hunter2" not in caplog.text and "context nested more than" in caplog.text
        assert spooled[1]["context"]["_rollguard_context_replaced"] == "nested more than 16 levels deep"
        assert spooled[4]["context"]["_rollguard_step_index"] == "-3"
    finally:
        rep.close()


def datetime_now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_spool_counts_in_memory_and_reads_an_older_spool(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)  # the layout an earlier version wrote
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
    db.execute("""INSERT INTO events (body) VALUES ('{"id":"a","run_id":"r"}'),
                  ('{"_kind":"recovery","id":"a","recovery_succeeded":true}')""")
    db.commit()
    db.close()
    s = Spool(path)
    other = Spool(path)  # another process sharing the file
    try:
        assert s.pending == len(s) == 2
        assert [(kind, seq) for seq, kind, _ in s.peek_raw(5)] == [("event", 1), ("recovery", 2)]
        assert s.peek(5)[1][1]["_kind"] == "recovery"
        assert s.append({"id": "b"}) and s.pending == 3
        s.ack([1, 3])
        s.reject([2], "404")
        assert s.pending == len(s) == 0
        assert other.append({"id": "c"}) and s.pending == 0  # not seen until the table is read again
        s.maintain()
        assert s.pending == len(s) == 1
    finally:
        s.close()
        other.close()


def test_buffered_events_are_written_by_exit_time(tmp_path: Path) -> None:
    """The default ("buffered") spool: a process that reports and exits without closing its
    reporter still leaves every event in the spool file (written at interpreter exit)."""
    import subprocess
    import sys

    code = ("from pathlib import Path; from rollguard.sdk.reporter import Reporter; "
            f"r = Reporter('http://127.0.0.1:9', 't', spool_path=Path({str(tmp_path / 's.db')!r}), "
            "catalog_path=None, start=False); "
            "[r.match_and_persist('E', 'run', context={'i': i}) for i in range(300)]")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    s = Spool(tmp_path / "s.db")
    try:
        assert [e["context"]["i"] for _, e in s.peek(1000)] == list(range(300))
    finally:
        s.close()

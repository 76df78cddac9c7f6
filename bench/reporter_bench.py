"""What reporting a failure costs the caller (`Reporter.match_and_persist`), with the failures
service up and down, and how soon the spool drains once the service is back.

    python bench/reporter_bench.py [--rate 1000] [--seconds 10] [--prefill 40000] [--no-fixed-pause-drain]

Everything is real and local: PostgreSQL (Debian's binaries), `rollguard api serve` (uvicorn) as
a subprocess on a fixed port (stopped for the outage, restarted on the same port), and the
SDK reporter in this process with its background sender. The caller reports at ``--rate``
events/s (paced, like a busy backend) and every call is timed.

Baselines, measured in the same run:
- "match only": the local catalog match the caller pays in any design (the floor);
- "previous spool": the spool as it was before (a ``count(*)`` per append, ``synchronous=FULL``,
  one transaction per delivered row), driven by the same caller loop with the service down and
  the spool holding ``--prefill`` events;
- "fixed 60 s pause": the drain start delay with a fixed 60 s circuit-breaker pause (the old
  behaviour, before the breaker backed off from a short first pause).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy.orm import Session

from rollguard.api import migrate
from rollguard.api.auth import create_token
from rollguard.api.db import make_engine
from rollguard.localenv._proc import free_port
from rollguard.localenv.postgres import Postgres
from rollguard.sdk.matching import load_matcher
from rollguard.sdk.reporter import CircuitBreaker, Reporter

CODES = ["READ_TIMEOUT", "ECONNREFUSED", "SOMETHING_NEW", "upstream said: permission denied for table x"]


class PreviousSpool:
    """The spool before this change (rollguard/sdk/spool.py at 8761356), for the baseline."""

    def __init__(self, path: Path, max_events: int = 100_000) -> None:
        self.max_events = max_events
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), timeout=2.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS events "
                         "(seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")

    def append(self, event: dict[str, Any]) -> bool:
        body = json.dumps(event, separators=(",", ":"), default=str)
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM events").fetchone()
            if n >= self.max_events:
                return False
            self._db.execute("INSERT INTO events (body) VALUES (?)", (body,))
        return True

    def prefill(self, n: int) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO events (body) VALUES (?)", (("{}",) for _ in range(n)))
            self._db.execute("COMMIT")


def paced(call: Callable[[int], object], rate: float, seconds: float) -> tuple[list[float], float]:
    """Call ``call(i)`` at ``rate`` per second for ``seconds``; per-call durations (µs) and the
    rate achieved."""
    n = int(rate * seconds)
    samples: list[float] = []
    t0 = time.perf_counter()
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        a = time.perf_counter_ns()
        call(i)
        samples.append((time.perf_counter_ns() - a) / 1000)
    return samples, n / (time.perf_counter() - t0)


def summary(name: str, samples: list[float], achieved: float | None = None) -> float:
    """Print ``<name> p99: <value> us (...)`` (a figure bench/run extracts); returns the p99."""
    q = statistics.quantiles(samples, n=1000)
    extra = f", achieved {achieved:,.0f} events/s" if achieved is not None else ""
    print(f"{name + ' p99':<52}: {q[989]:8.1f} us  (p50 {q[499]:.1f} us, p99.9 {q[998]:.1f} us, "
          f"max {max(samples) / 1000:.2f} ms{extra})")
    return q[989]


class Service:
    """`rollguard api serve` on a fixed port, stoppable and restartable."""

    def __init__(self, url: str, log: Path) -> None:
        self.db_url, self.log, self.port = url, log, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        self.proc = subprocess.Popen([sys.executable, "-m", "rollguard.cli.main", "api", "serve", "--database-url",
                                      self.db_url, "--port", str(self.port), "--log-level", "warning", "--no-migrate"],
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(600):
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return time.monotonic()
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"api serve did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
            self.proc = None


def drain_start(rep: Reporter, service: Service, outage: float) -> tuple[float, float]:
    """Stop the service for ``outage`` s (the breaker backs off meanwhile), restart it; seconds
    from the service being ready to the spool first shrinking, and to it being empty."""
    service.stop()
    for i in range(50):
        rep.match_and_persist(CODES[i % 4], "bench-drain", context={"i": i})
    time.sleep(outage)
    before = rep.spool.pending
    ready = service.start()
    while rep.spool.pending >= before:
        time.sleep(0.01)
    first = time.monotonic() - ready
    while rep.spool.pending:
        time.sleep(0.01)
    return first, time.monotonic() - ready


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=1000.0, help="events/s the caller reports")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each timed phase")
    ap.add_argument("--prefill", type=int, default=40_000, help="events already spooled in the outage phases")
    ap.add_argument("--outage", type=float, default=20.0, help="seconds down before the drain measurement")
    ap.add_argument("--no-fixed-pause-drain", action="store_true",
                    help="skip the drain baseline with a fixed 60 s circuit-breaker pause (the old behaviour)")
    args = ap.parse_args()

    base_dir = Path(tempfile.mkdtemp(prefix="rollguard-reporter-bench-"))
    base_dir.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root
    pg = Postgres(base_dir / "pg")
    pg.start()
    service: Service | None = None
    reporters: list[Reporter] = []
    try:
        url = pg.create_database("bench_reporter")
        engine = make_engine(url)
        migrate.upgrade(engine)
        with Session(engine) as s:
            _, token = create_token(s, "bench", ["failures:write"])
            s.commit()
        engine.dispose()
        service = Service(url, base_dir / "api.log")
        service.start()
        matcher = load_matcher(None)
        print(f"# reporter bench: caller at {args.rate:,.0f} events/s for {args.seconds:g} s per phase, "
              f"{args.prefill:,} events spooled in the outage phases, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")

        def reporter(name: str, **kw: Any) -> Reporter:
            rep = Reporter(service.base if service else "", token, spool_path=base_dir / f"{name}.db",
                           matcher=matcher, **kw)
            reporters.append(rep)
            return rep

        def report(rep: Reporter) -> Callable[[int], object]:
            return lambda i: rep.match_and_persist(CODES[i % 4], "bench", error_message=None, skill_id="step",
                                                   step_index=i % 7, context={"i": i, "tenant": "bench"})

        floor, _ = paced(lambda i: matcher.match_event(CODES[i % 4], None), args.rate, args.seconds)
        p99_floor = summary("match only, the baseline any design pays", floor)

        # service up: the sender delivers while the caller reports
        up = reporter("up")
        samples, achieved = paced(report(up), args.rate, args.seconds)
        p99_up = summary("service up", samples, achieved)
        up.flush(60)

        # service down, the spool already holding --prefill events
        service.stop()
        down = reporter("down")
        for i in range(args.prefill):
            down.spool.append({"id": str(uuid.uuid4()), "run_id": "prefill", "error_code": "X", "context": {"i": i}})
        samples, achieved = paced(report(down), args.rate, args.seconds)
        p99_down = summary(f"service down, {args.prefill:,} spooled", samples, achieved)

        prev = PreviousSpool(base_dir / "previous.db")
        prev.prefill(args.prefill)

        def previous(i: int) -> object:
            m = matcher.match_event(CODES[i % 4], None)
            return prev.append({"id": str(uuid.uuid4()), "run_id": "bench", "error_code": CODES[i % 4],
                                "step_index": i % 7, "context": {"i": i, "tenant": "bench"},
                                "occurred_at": datetime.now(UTC).isoformat(), "m": m.entry_code})

        samples, achieved = paced(previous, args.rate, args.seconds)
        p99_prev = summary(f"previous spool, service down, {args.prefill:,} spooled", samples, achieved)

        # drain: the spool of the outage phase, then a fresh outage of --outage s
        service.start()
        t0 = time.monotonic()
        while down.spool.pending:
            time.sleep(0.05)
        print(f"drain of the outage's spool ({args.prefill + int(args.rate * args.seconds):,} events): "
              f"{time.monotonic() - t0:.1f} s")
        first, done = drain_start(down, service, args.outage)
        print(f"drain start after the service is back ({args.outage:g} s outage): {first:.2f} s "
              f"(empty after {done:.2f} s; backoff up to 5 s)")
        fixed_first = None
        if not args.no_fixed_pause_drain:
            fixed = reporter("fixed-pause")
            fixed.breaker = CircuitBreaker(5, 60.0, first_pause=60.0, jitter=lambda: 1.0)
            fixed_first, fixed_done = drain_start(fixed, service, args.outage)
            print(f"drain start, fixed 60 s circuit-breaker pause (the old behaviour): {fixed_first:.2f} s "
                  f"(empty after {fixed_done:.2f} s)")

        print(f"ratio p99 previous spool / reporter, service down: {p99_prev / p99_down:.1f}x")
        print(f"ratio p99 reporter / match only: service up {p99_up / p99_floor:.1f}x, "
              f"service down {p99_down / p99_floor:.1f}x")
        if fixed_first is not None:
            print(f"ratio drain start fixed 60 s pause / backoff: {fixed_first / max(first, 1e-3):.1f}x")
    finally:
        for rep in reporters:
            rep.close()
        if service is not None:
            service.stop()
        pg.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Failures service benchmark: batch ingest rate through the API into PostgreSQL, against a
raw COPY of the same rows in the same run; then list/stats latency on a large table.

    python bench/ingest_bench.py [--events 100000] [--rows 1000000] [--clients 2] [--requests 200]

Everything is real and local: a PostgreSQL server (Debian's binaries, like the test fixture),
`rollguard api serve` (uvicorn) as a subprocess, and HTTP clients in this process (so the
client's JSON encoding is included in the ingest figure, as it is for a real caller).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.orm import Session

from rollguard.api import migrate, rollup, service
from rollguard.api.auth import create_token
from rollguard.api.db import make_engine
from rollguard.api.matching import load_matcher
from rollguard.api.schemas import FailureIn
from rollguard.failures.synth import SynthSpec, events
from rollguard.localenv._proc import free_port
from rollguard.localenv.postgres import Postgres

COLS = ["id", "tenant_id", "run_id", "error_code", "error_message", "catalog_entry_id", "catalog_version",
        "match_type", "confidence", "category", "severity", "is_retryable", "recovery_mode", "recovery_suggestion",
        "recovery_attempted", "recovery_succeeded", "skill_id", "step_index", "context", "created_at", "updated_at"]


def _payload(e: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in e.items() if not k.startswith("expect_") and v is not None}


def _rows(evs: list[dict[str, Any]], tenant: str) -> list[tuple[Any, ...]]:
    """The rows the service would store for these events (matched the same way)."""
    matcher = load_matcher(None)
    now = datetime.now(UTC)
    out = []
    for e in evs:
        ev = FailureIn.model_validate(_payload(e))
        m = matcher.match_event(ev.error_code, ev.error_message)
        r = service.event_row(tenant, ev, m, matcher.version, now)
        r["context"] = json.dumps(r["context"])
        out.append(tuple(r[c] for c in COLS))
    return out


def _copy(dsn: str, rows: list[tuple[Any, ...]]) -> float:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        with cur.copy(f"COPY failure_matches ({', '.join(COLS)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
        conn.commit()
        return time.perf_counter() - t0


def _serve(url: str, log: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rollguard.cli.main", "api", "serve", "--database-url", url,
                             "--port", str(port), "--log-level", "warning", "--workers", str(workers)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"api serve did not start:\n{log.read_text()[-2000:]}")


def _ingest(base: str, token: str, evs: list[dict[str, Any]], clients: int, batch: int) -> float:
    chunks = [[_payload(e) for e in evs[i:i + batch]] for i in range(0, len(evs), batch)]
    it: Iterator[list[dict[str, Any]]] = iter(chunks)
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
            while True:
                with lock:
                    chunk = next(it, None)
                if chunk is None:
                    return
                r = c.post("/api/v1/failures/batch", json={"events": chunk})
                if r.status_code != 201:
                    errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"ingest errors: {errors[:3]}")
    return elapsed


def _fill(dsn: str, total: int, tenants: int, days: int, seed: int = 7) -> float:
    """Background rows: `tenants` tenants, spread evenly over `days` days, ~20 % unmatched."""
    rng = random.Random(seed)
    matcher = load_matcher(None)
    entries = [matcher.match(code) for code in matcher.matcher.codes]
    now = datetime.now(UTC)
    span = days * 86400
    t0 = time.perf_counter()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY failure_matches ({', '.join(COLS)}) FROM STDIN") as cp:
            for i in range(total):
                t = now - timedelta(seconds=rng.random() * span)
                if rng.random() < 0.2:
                    code, m = f"UNMAPPED_{rng.randrange(40)}", None
                else:
                    m = rng.choice(entries)
                    code = m.entry_code or "UNKNOWN"
                attempted = rng.random() < 0.3
                cp.write_row((uuid.UUID(int=rng.getrandbits(128), version=4), f"tenant-{i % tenants:02d}",
                              f"run-{rng.randrange(5000)}", code, f"{code} at step {i % 17}",
                              m.entry_code if m else None, matcher.version, m.match_type if m else "unknown",
                              m.confidence if m else 0.0, m.category if m else None, m.severity if m else None,
                              m.retryable if m else False, m.recovery_mode if m else None,
                              m.recovery_suggestion if m else None, attempted, attempted and rng.random() < 0.7,
                              "skill", i % 20, "{}", t, t))
        conn.commit()
    # COPY went around the service: recompute the hourly roll-up /stats reads
    engine = make_engine(dsn.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as sa_conn:
        rollup.rebuild(sa_conn)
    engine.dispose()
    with psycopg.connect(dsn, autocommit=True) as conn:
        # the steady state autovacuum keeps (the table vacuums after 1 % new rows): visibility
        # map current, so index-only scans need no heap visits
        conn.execute("VACUUM ANALYZE failure_matches")
        conn.execute("VACUUM ANALYZE failure_stats_hourly")
    return time.perf_counter() - t0


def _latency(fn: Callable[[], httpx.Response], n: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = fn()
        samples.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    q = statistics.quantiles(samples, n=100)
    return q[49], q[98]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="events ingested through the API")
    ap.add_argument("--rows", type=int, default=1_000_000,
                    help="table size for the list/stats latencies (0: skip them)")
    ap.add_argument("--clients", type=int, default=2, help="concurrent HTTP clients")
    ap.add_argument("--spread-hours", type=float, default=12.0,
                    help="ingested events happened over the last N hours (the SDK reports them as they happen)")
    ap.add_argument("--batch", type=int, default=1000, help="events per POST /batch")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--requests", type=int, default=200, help="requests per latency figure")
    args = ap.parse_args()

    base_dir = Path(tempfile.mkdtemp(prefix="rollguard-bench-"))
    base_dir.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root
    pg = Postgres(base_dir / "pg")
    pg.start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        api_url, copy_url = pg.create_database("bench_api"), pg.create_database("bench_copy")
        for url in (api_url, copy_url):
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()
        engine = make_engine(api_url)
        with Session(engine) as s:
            _, token = create_token(s, "bench", ["failures:admin"])
            s.commit()
        engine.dispose()
        dsn = lambda url: url.replace("postgresql+psycopg://", "postgresql://")  # noqa: E731

        evs = list(events(SynthSpec(count=args.events, spread_hours=args.spread_hours, seed=1)))
        print(f"# failures ingest bench: {args.events} events, batches of {args.batch}, {args.clients} clients, "
              f"{args.workers} server worker(s), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        copy_rows = _rows(evs, "bench")
        copy_s = _copy(dsn(copy_url), copy_rows)
        print(f"raw COPY (baseline, same rows, same indexes): {args.events / copy_s:,.0f} rows/s  ({copy_s:.2f}s)")

        proc, base = _serve(api_url, base_dir / "api.log", args.workers)
        api_s = _ingest(base, token, evs, args.clients, args.batch)
        rate = args.events / api_s
        print(f"API POST /batch (match + insert, HTTP + JSON, client included): {rate:,.0f} events/s  ({api_s:.2f}s)")
        print(f"ratio API / COPY: {rate / (args.events / copy_s):.2f}  (target: >= 10,000 events/s)")

        if args.rows <= 0:  # ingest figures only
            return
        fill = max(0, args.rows - args.events)
        fill_s = _fill(dsn(api_url), fill, tenants=10, days=90)
        print(f"\n# latency with {args.rows:,} rows ({args.events:,} for tenant 'bench' in the last "
              f"{args.spread_hours:g} h, "
              f"{fill:,} for 10 other tenants over 90 days; COPY fill {fill_s:.1f}s)")
        engine = make_engine(api_url)
        with Session(engine) as s:
            _, other_token = create_token(s, "tenant-03", ["failures:read"])
            s.commit()
        engine.dispose()
        h_bench = {"Authorization": f"Bearer {token}"}
        h_other = {"Authorization": f"Bearer {other_token}"}
        with httpx.Client(base_url=base, timeout=60) as c:
            deep = c.get("/api/v1/failures", params={"limit": 100, "offset": 5000}, headers=h_bench)
            cursor = c.get("/api/v1/failures", params={"limit": 100, "since_hours": 2160},
                           headers=h_other).json()["next_cursor"]
            cases: list[tuple[str, Callable[[], httpx.Response]]] = [
                ("list (tenant bench, default 24h, limit 100)",
                 lambda: c.get("/api/v1/failures", headers=h_bench)),
                ("list error_code=READ_TIMEOUT",
                 lambda: c.get("/api/v1/failures", params={"error_code": "READ_TIMEOUT"}, headers=h_bench)),
                ("list offset=5000", lambda: c.get("/api/v1/failures", params={"limit": 100, "offset": 5000},
                                                   headers=h_bench)),
                ("list 90 days, next page by cursor (tenant-03)",
                 lambda: c.get("/api/v1/failures", params={"limit": 100, "since_hours": 2160, "cursor": cursor},
                               headers=h_other)),
                ("unrecovered (tenant-03, 24h)", lambda: c.get("/api/v1/failures/unrecovered", headers=h_other)),
                ("stats (tenant-03, 24h)", lambda: c.get("/api/v1/failures/stats", headers=h_other)),
                ("stats (tenant-03, 7 days)", lambda: c.get("/api/v1/failures/stats", params={"since_hours": 168},
                                                            headers=h_other)),
                (f"stats (tenant bench: {args.events:,} rows in 24h)",
                 lambda: c.get("/api/v1/failures/stats", headers=h_bench)),
            ]
            deep.raise_for_status()
            for name, fn in cases:
                p50, p99 = _latency(fn, args.requests)
                print(f"{name:<52} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        pg.stop()
        shutil.rmtree(base_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""An agent-runtime stand-in for the demo: the process of each pod of the demo's Deployment.

It does what a real backend built on rollguard does, on a small scale:

- reads the flags and the failure catalog the operator mounts into its pod
  (``/etc/rollguard/flags`` and ``/etc/rollguard/catalog/catalog.json``, hot-reloaded), and the
  ``AOS_FEATURE_*`` overrides of its pod's env;
- ``POST /run`` runs a small workflow (plan, tool call, summarize). Some steps fail with the
  messages real libraries print. With ``failure_catalog_runtime_integration`` on, an error is
  classified with the mounted catalog and a retryable one is retried up to the catalog's
  ``maxAttempts``; with it off, the first error fails the run (HTTP 500) and is reported as
  a raw message (the reporter and the API still match it, after the fact). With
  ``cost_simulator_runtime_integration`` on, a run whose estimated cost is over the budget is
  refused (HTTP 402) before any step runs;
- every failure is reported to the failures API through ``rollguard.sdk.reporter`` (never
  blocking the request), recovered retries too;
- ``/metrics``: ``http_requests_total{code}``, ``http_request_duration_seconds``,
  ``nova_workflow_runs_total{outcome}``, ``nova_workflow_error_total{error_code}``,
  ``nova_workflow_step_duration_seconds{step}``, ``nova_golden_mismatch_total``,
  ``nova_cost_refused_total`` (plus the SDK's own);
- ``POST /control`` makes it misbehave: ``{"error_rate": 0.4}`` (each step raises a
  non-retryable error with that probability), ``{"fail_rate": 0.25}`` (that share of runs fails
  with a non-retryable error: HTTP 500, a bad build), ``{"golden_mismatch_rate": 0.1}``;
  ``GET /control`` shows its state (``--fail-rate`` and ``--transient-rate`` set them at start);
- ``--declare-codes`` names the ``http_requests_total`` codes exported from the start (default
  200, 402, 500); ``--declare-codes ""`` exports a code only once a response had it, as most
  instrumented services do (a service that never failed has no ``code="500"`` series);
- it prints ``SERVING on HOST:PORT`` once it listens, and on SIGTERM it flushes its reporter
  and prints one last line, ``FINAL {json state}``, so what a deleted pod reported can still be
  read from its log.

    python -m rollguard.demo.backend --host $(POD_IP) --port 8000 \\
        --failures-url http://127.0.0.1:8000 --spool /var/lib/agent-runtime/spool.db

(the token comes from ``ROLLGUARD_FAILURES_TOKEN``, a Secret in the pod's env).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

from rollguard.catalog import load_default_catalog
from rollguard.sdk.flags import is_flag_enabled, reload_flags
from rollguard.sdk.matcher import Matcher
from rollguard.sdk.reporter import Reporter, configure

log = logging.getLogger("rollguard.demo.backend")

CATALOG_FLAG = "failure_catalog_runtime_integration"
COST_FLAG = "cost_simulator_runtime_integration"
STEPS = ("plan", "tool_call", "summarize")
BUDGET_USD = 1.0
PRICE_PER_1K_TOKENS = 0.05

# What real libraries print when an upstream hiccups: all retryable in the default catalog.
TRANSIENT = (
    "httpx.ReadTimeout: The read operation timed out",
    "ConnectionResetError: [Errno 104] Connection reset by peer",
    "openai.RateLimitError: Error code: 429 - 429 Too Many Requests",
    "httpx.ConnectTimeout: ConnectTimeout while calling tool search",
)
# What a bad build produces: not retryable.
BROKEN = (
    'psycopg.errors.UndefinedColumn: column "budget_usd" does not exist',
    "AttributeError: 'NoneType' object has no attribute 'plan'",
)

REQUESTS = PromCounter("http_requests_total", "HTTP requests to /run by status code", ["code"])
REQUEST_SECONDS = Histogram("http_request_duration_seconds", "Duration of /run requests",
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
RUNS = PromCounter("nova_workflow_runs_total", "Workflow runs by outcome", ["outcome"])
WORKFLOW_ERRORS = PromCounter("nova_workflow_error_total", "Workflow step failures by error code", ["error_code"])
STEP_SECONDS = Histogram("nova_workflow_step_duration_seconds", "Duration of one workflow step", ["step"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
GOLDEN = PromCounter("nova_golden_mismatch_total", "Runs whose output differs from the golden answer")
COST_REFUSED = PromCounter("nova_cost_refused_total", "Runs refused by the pre-execution cost check")


class StepError(Exception):
    pass


class Runtime:
    """The workflow engine and its knobs; one per process."""

    def __init__(self, track: str, catalog_path: Path, reporter: Reporter, transient_rate: float = 0.05) -> None:
        self.track = track
        self.catalog_path = catalog_path
        self.reporter = reporter
        self.transient_rate = transient_rate
        self.error_rate = 0.0
        self.fail_rate = 0.0
        self.golden_mismatch_rate = 0.0
        self.reported: Counter[str] = Counter()
        self._matcher: Matcher | None = None
        self._built_in: Matcher | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._draining = False

    # -- shutdown ---------------------------------------------------------------------------
    def begin_run(self) -> bool:
        """Count a run in flight; False once draining (the run is refused)."""
        with self._lock:
            if self._draining:
                return False
            self._in_flight += 1
            return True

    def end_run(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def drain(self, timeout: float) -> None:
        """Refuse new runs and wait (at most ``timeout`` s) for the ones in flight."""
        with self._lock:
            self._draining = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._in_flight == 0:
                    return
            time.sleep(0.02)

    # -- knobs ------------------------------------------------------------------------------
    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if "error_rate" in body:
                self.error_rate = float(body["error_rate"])
            if "fail_rate" in body:
                self.fail_rate = float(body["fail_rate"])
            if "golden_mismatch_rate" in body:
                self.golden_mismatch_rate = float(body["golden_mismatch_rate"])
            if "transient_rate" in body:
                self.transient_rate = float(body["transient_rate"])
        reload_flags()
        return self.state()

    def state(self) -> dict[str, Any]:
        return {
            "track": self.track, "error_rate": self.error_rate, "fail_rate": self.fail_rate,
            "transient_rate": self.transient_rate,
            "golden_mismatch_rate": self.golden_mismatch_rate,
            "flags": {CATALOG_FLAG: is_flag_enabled(CATALOG_FLAG), COST_FLAG: is_flag_enabled(COST_FLAG)},
            "env": {k: v for k, v in os.environ.items() if k.startswith("AOS_FEATURE_")},
            "reported": dict(self.reported), "spool_pending": self.reporter.spool.pending,
            "spool_rejected": len(self.reporter.spool.rejected()),
        }

    def matcher(self) -> Matcher:
        """The mounted catalog, re-read by the SDK when the file changes; while none is mounted,
        the shipped default catalog, as the SDK's reporter does (a pod whose catalog is not
        mounted yet still classifies its errors, and picks the file up once it is there)."""
        if self._matcher is None and self.catalog_path.is_file():
            self._matcher = Matcher.from_file(self.catalog_path)
        if self._matcher is not None:
            return self._matcher
        if self._built_in is None:
            self._built_in = Matcher(load_default_catalog())
        return self._built_in

    # -- the workflow -----------------------------------------------------------------------
    def run(self, run_id: str, tokens: int) -> tuple[int, dict[str, Any]]:
        classify = is_flag_enabled(CATALOG_FLAG)
        cost = tokens / 1000 * PRICE_PER_1K_TOKENS
        if is_flag_enabled(COST_FLAG) and cost > BUDGET_USD:
            msg = f"budget exceeded: estimated ${cost:.2f} for {tokens} tokens > budget ${BUDGET_USD:.2f}"
            COST_REFUSED.inc()
            self._report("BUDGET_EXCEEDED", run_id, msg, "cost_simulator", None)
            return 402, {"run_id": run_id, "track": self.track, "refused": msg, "error_code": "BUDGET_EXCEEDED"}
        doomed = random.random() < self.fail_rate  # this run hits the bad build's bug in its first step
        for index, step in enumerate(STEPS):
            attempts = 0
            while True:
                attempts += 1
                try:
                    self._step(step, broken=doomed and index == 0)
                    break
                except StepError as exc:
                    message = str(exc)
                    if not classify:
                        self._report(message, run_id, message, step, index)
                        return 500, {"run_id": run_id, "track": self.track, "error": message}
                    m = self.matcher().match(message)
                    res = self._report(m.code, run_id, message, step, index)
                    entry = m.entry
                    max_attempts = entry.recovery.max_attempts if entry and entry.recovery.max_attempts else 1
                    if entry is not None and entry.retryable and attempts < max_attempts:
                        # Retried at once (a real runtime would honour the backoff).
                        self._retry_outcome(res.event_id, step)
                        continue
                    return 500, {"run_id": run_id, "track": self.track, "error": message, "error_code": m.code,
                                 "retryable": bool(entry and entry.retryable),
                                 "recovery": entry.recovery.mode if entry else None}
        if random.random() < self.golden_mismatch_rate:
            GOLDEN.inc()
        return 200, {"run_id": run_id, "track": self.track, "cost_usd": round(cost, 4), "classified": classify}

    def _retry_outcome(self, event_id: Any, step: str) -> None:
        self.reporter.report_recovery(event_id, True, recovered_by=f"{self.track}:{step}:retry")

    def _step(self, step: str, broken: bool = False) -> None:
        t0 = time.perf_counter()
        try:
            time.sleep(random.uniform(0.002, 0.01))
            r = random.random()
            if broken or r < self.error_rate:
                raise StepError(random.choice(BROKEN))
            if r < self.error_rate + self.transient_rate:
                raise StepError(random.choice(TRANSIENT))
        finally:
            STEP_SECONDS.labels(step).observe(time.perf_counter() - t0)

    def _report(self, code_or_message: str, run_id: str, message: str, step: str, index: int | None) -> Any:
        res = self.reporter.match_and_persist(code_or_message, run_id, error_message=message, skill_id=step,
                                              step_index=index, context={"track": self.track})
        code = res.match.entry_code or "UNKNOWN"
        WORKFLOW_ERRORS.labels(code).inc()
        with self._lock:
            self.reported[code] += 1
        return res


def make_handler(rt: Runtime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the demo prints its own story
            pass

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self) -> dict[str, Any]:
            n = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(n) or b"{}") if n else {}
            return data if isinstance(data, dict) else {}

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, b'{"ok": true}')
            elif self.path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path == "/control":
                self._send(200, json.dumps(rt.state()).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            try:
                body = self._json()
            except ValueError:
                self._send(400, b'{"error": "body is not JSON"}')
                return
            path = self.path.split("?", 1)[0]  # routed by path: a query string (a load tool's counter) is ignored
            if path == "/control":
                self._send(200, json.dumps(rt.control(body)).encode())
                return
            if path != "/run":
                self._send(404, b'{"error": "not found"}')
                return
            t0 = time.perf_counter()
            if not rt.begin_run():
                self._send(503, b'{"error": "shutting down"}')
                return
            run_id = str(body.get("run_id") or f"run-{random.getrandbits(40):x}")
            try:
                code, out = rt.run(run_id, int(body.get("tokens") or 1000))
            except Exception as e:  # what any server framework does with a bug: 500, counted like any other
                log.exception("run %s failed with an unhandled error", run_id)
                code, out = 500, {"run_id": run_id, "track": rt.track, "error": f"{type(e).__name__}: {e}"}
            finally:
                rt.end_run()
            REQUEST_SECONDS.observe(time.perf_counter() - t0)
            REQUESTS.labels(str(code)).inc()
            RUNS.labels({200: "succeeded", 402: "refused"}.get(code, "failed")).inc()
            self._send(code, json.dumps(out).encode())

    return Handler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rollguard.demo.backend", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (the pod's IP)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--track", default="",
                    help="stable or canary, for reports (default: the pod's rollguard.io/track label, else stable)")
    ap.add_argument("--catalog", type=Path, default=Path("/etc/rollguard/catalog/catalog.json"),
                    help="catalog.json (the mounted FailureCatalog version)")
    ap.add_argument("--failures-url", default=os.environ.get("ROLLGUARD_FAILURES_URL", ""), required=False)
    ap.add_argument("--token", default=os.environ.get("ROLLGUARD_FAILURES_TOKEN", ""))
    ap.add_argument("--spool", type=Path, required=True)
    ap.add_argument("--transient-rate", type=float, default=0.05)
    ap.add_argument("--fail-rate", type=float, default=0.0,
                    help="share of runs that fail with a non-retryable error (HTTP 500)")
    ap.add_argument("--declare-codes", default="200,402,500",
                    help="http_requests_total codes exported from the start, comma-separated ('' for none)")
    args = ap.parse_args(argv)
    if not args.failures_url:
        ap.error("--failures-url (or ROLLGUARD_FAILURES_URL) is required")
    args.track = args.track or "stable"
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s {args.track} %(name)s %(message)s")
    for step in STEPS:
        STEP_SECONDS.labels(step)  # every series exists from the start
    for code in filter(None, args.declare_codes.split(",")):
        REQUESTS.labels(code.strip())
    reporter = configure(base_url=args.failures_url, token=args.token, spool_path=args.spool,
                         catalog_path=args.catalog, timeout=2.0, breaker_reset=5.0)
    rt = Runtime(args.track, args.catalog, reporter, args.transient_rate)
    rt.fail_rate = args.fail_rate
    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(rt))
    server.daemon_threads = True
    # What the demo reads from a deleted pod's log: a pod that never printed this never served.
    print(f"SERVING on {args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        # Runs in flight finish before the reporter's last flush, so every failure a run counted
        # is in the spool the flush empties (kept-alive scrape connections are not waited for).
        rt.drain(5.0)
        reporter.flush(5.0)
        final = rt.state()  # after the flush: what is still pending now is lost with the pod
        reporter.close()
        print("FINAL " + json.dumps(final), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

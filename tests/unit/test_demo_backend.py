"""The demo backend answers every run with an HTTP status its metrics count.

A canary's failing runs must reach Prometheus as ``http_requests_total{code="500"}``: a run
that broke the handler (the connection closed, nothing counted) would make a failing canary
look healthy to every error-rate query.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from rollguard.demo import backend
from rollguard.sdk.reporter import Reporter


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[backend.Runtime]:
    monkeypatch.setattr(backend, "is_flag_enabled", lambda name: name == backend.CATALOG_FLAG)
    reporter = Reporter("http://127.0.0.1:9", "", spool_path=tmp_path / "spool.db", catalog_path=None, start=False)
    rt = backend.Runtime("canary", tmp_path / "not-mounted" / "catalog.json", reporter, transient_rate=0.0)
    try:
        yield rt
    finally:
        reporter.close()


def test_without_a_mounted_catalog_errors_are_classified_with_the_shipped_default(runtime: backend.Runtime) -> None:
    """The catalog flag on and no catalog mounted (yet): the run is classified against the
    shipped default catalog, as the SDK's reporter does, and a bad build's run is a 500."""
    m = runtime.matcher().match(backend.TRANSIENT[0])
    assert m.entry is not None and m.entry.retryable
    runtime.fail_rate = 1.0
    code, out = runtime.run("r1", 1000)
    assert code == 500 and out["error"] in backend.BROKEN


def _post_run(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", "/run", body=b'{"tokens": 1000}', headers={"Content-Type": "application/json"})
    status = conn.getresponse().status
    conn.close()
    return status


def _served_500s() -> float:
    value = backend.REQUESTS.labels("500")._value.get()
    return float(value)


def test_a_run_that_raises_is_answered_500_and_counted(runtime: backend.Runtime,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(run_id: str, tokens: int) -> Any:
        raise RuntimeError("a bug in the handler")

    monkeypatch.setattr(runtime, "run", broken)
    server = ThreadingHTTPServer(("127.0.0.1", 0), backend.make_handler(runtime))
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        before = _served_500s()
        assert _post_run(server.server_address[1]) == 500
        assert _served_500s() == before + 1
        assert _post_run(server.server_address[1]) == 500  # still serving
    finally:
        server.shutdown()
        server.server_close()

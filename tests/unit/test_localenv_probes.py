"""Readiness probes as the pod runner runs them: what a probe says, and when a container is ready."""

from __future__ import annotations

import http.server
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rollguard.localenv.probes import Probe, ProbeError, Readiness


def container(probe: dict[str, Any] | None) -> dict[str, Any]:
    return {"name": "web", "ports": [{"name": "http", "containerPort": 8000}],
            **({"readinessProbe": probe} if probe else {})}


def test_a_probe_reads_the_kubelets_defaults_and_resolves_a_named_port() -> None:
    probe = Probe.of(container({"httpGet": {"path": "/healthz", "port": "http"}}))
    assert probe is not None
    assert (probe.kind, probe.port, probe.path, probe.period, probe.timeout, probe.success_threshold,
            probe.failure_threshold, probe.initial_delay) == ("http", 8000, "/healthz", 10.0, 1.0, 1, 3, 0.0)
    assert Probe.of(container(None)) is None
    assert Probe.of(container({"grpc": {"port": 9000}})) is None  # not run here: ready once running
    with pytest.raises(ProbeError, match="container 'web' has no port named 'metrics'"):
        Probe.of(container({"tcpSocket": {"port": "metrics"}}))


def test_a_new_process_is_ready_after_success_threshold_passes_and_stays_until_failure_threshold() -> None:
    r = Readiness(Probe.of(container({"tcpSocket": {"port": 8000}, "successThreshold": 2, "failureThreshold": 3,
                                      "periodSeconds": 2, "initialDelaySeconds": 5})))
    states = []  # (ready, due) after each step; a list, so that each read is the state then
    r.started(now=100.0)
    states.append((r.ready, r.is_due(104.9), r.is_due(105.0)))
    assert [r.observe(ok, t) for ok, t in [(False, 105), (True, 107), (True, 109)]] == [False, False, True]
    states.append((r.ready, r.is_due(110.9), r.is_due(111.0)))
    assert [r.observe(ok, t) for ok, t in [(False, 111), (False, 113), (True, 115), (False, 117),
                                           (False, 119), (False, 121)]] == [False] * 5 + [True]
    states.append((r.ready, False, False))
    r.started(now=200.0)  # a restarted process starts not ready again
    states.append((r.ready, r.successes != 0, r.failures != 0))
    assert states == [(False, False, True), (True, False, True), (False, False, False), (False, False, False)]


def test_a_container_without_a_probe_is_ready_while_it_runs() -> None:
    r = Readiness(None)
    r.started(now=0.0)
    assert r.ready and not r.is_due(1e9)


class _Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(int(self.path.strip("/")))
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_passes_from_200_to_399_and_tcp_when_the_port_accepts(server: int) -> None:
    def http_probe(status: int, port: int = server) -> bool:
        return Probe("http", port=port, path=f"/{status}").run("127.0.0.1")
    assert [http_probe(s) for s in (200, 302, 399, 400, 500)] == [True, True, True, False, False]
    closed = free_port()
    assert not http_probe(200, closed)
    assert Probe("tcp", port=server).run("127.0.0.1") and not Probe("tcp", port=closed).run("127.0.0.1")


def test_exec_passes_on_exit_code_0_and_fails_on_a_timeout() -> None:
    def exec_probe(code: str, timeout: float = 5.0) -> bool:
        return Probe("exec", command=(sys.executable, "-c", code), timeout=timeout).run("127.0.0.1")
    assert exec_probe("pass") and not exec_probe("raise SystemExit(1)")
    assert not exec_probe("import time; time.sleep(30)", timeout=0.5)

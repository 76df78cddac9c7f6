"""The operator process serves Prometheus metrics; reconciling a catalog shows in them."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollguard.metrics_catalog import METRICS
from tests.integration.test_catalog_operator import catalog, deployment, entry, hash_of, wait_mounted
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _catalog_reconciles(port: int) -> float:
    return _scrape(port).get(
        ("rollguard_reconcile_duration_seconds_count", frozenset({("kind", "FailureCatalog")})), 0.0)


def test_operator_metrics_count_catalog_reconciles(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                                   tmp_path: Path) -> None:
    ns, port = namespace, _free_port()
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log", namespaces=(ns,),
                         extra_env={"ROLLGUARD_METRICS_PORT": str(port)}).start()
    try:
        def up() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            try:
                return _scrape(port)
            except OSError:  # not listening yet
                return None
        eventually(up, timeout=60, what="the operator's /metrics")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        for m in METRICS:  # every operator metric is exported (a counter with no label values yet: its TYPE line)
            if m.exported_by == "operator":
                assert f"# TYPE {m.name} {m.type}" in text, (m.name, text)
        assert _catalog_reconciles(port) == 0

        kubectl.apply(deployment("api"), namespace=ns)
        v1 = catalog(version="1")
        kubectl.apply(v1, namespace=ns)
        wait_mounted(kubectl, ns, "api", hash_of(v1))
        after_create = eventually(lambda: _catalog_reconciles(port), what="a reconcile in the histogram")
        v2 = catalog(version="2", entries=[entry(), entry("OTHER_GREMLINS", "other gremlins")])
        kubectl.apply(v2, namespace=ns)
        wait_mounted(kubectl, ns, "api", hash_of(v2))
        eventually(lambda: _catalog_reconciles(port) > after_create, what="the update in the histogram")
        total = _scrape(port)[("rollguard_reconcile_duration_seconds_sum", frozenset({("kind", "FailureCatalog")}))]
        assert total > 0
    finally:
        op.stop()
    assert "metrics on :" in op.output()


def test_operator_stops_with_the_reason_when_its_metrics_port_is_taken(kubectl: Kubectl, kubeconfig: Path,
                                                                       namespace: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # the operator binds every address
        taken.listen()
        port = taken.getsockname()[1]
        op = OperatorProcess(kubeconfig, tmp_path / "operator.log", namespaces=(namespace,),
                             extra_env={"ROLLGUARD_METRICS_PORT": str(port)}).start()
        try:
            assert op.proc is not None
            code = op.proc.wait(60)
        finally:
            op.stop()
    assert code != 0
    assert f"cannot serve metrics on port {port} (ROLLGUARD_METRICS_PORT)" in op.output(), op.output()

"""Shared fixtures: real services started once per test session, on loopback.

- ``control_plane``: the local cluster (etcd, kube-apiserver, kube-controller-manager with the
  workload controllers, kube-scheduler, kwok's nodes), with rollguard's CRDs and kopf's peering
  CRDs applied; ``namespace`` gives each test a fresh one. Deployments roll out into Running pods.
- ``pod_runner``: starts a local process for each pod labelled ``localenv.rollguard.io/run``.
- ``pod_prometheus_5s`` / ``pod_prometheus_15s``: Prometheus finding pods through the API with
  the chart's backend PodMonitor, scraping every 5 s / 15 s.
- ``service_proxy``: the cluster's ``<service>.<namespace>.svc`` names for HTTP clients, as cluster
  DNS and kube-proxy answer them (:mod:`rollguard.localenv.svcproxy`).
- ``postgres``: a PostgreSQL server; ``prometheus``: a Prometheus scraping targets tests add.

Nothing is skipped when a binary is missing: `make test` installs or builds it, and a
fixture that cannot start its service fails the tests that asked for it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.podrunner import PodRunner
from rollguard.localenv.postgres import Postgres
from rollguard.localenv.prometheus import Prometheus, backend_podmonitor
from rollguard.localenv.svcproxy import ServiceProxy
from tests.support.kube import CRD_DIR, Kubectl, OperatorProcess, eventually

KOPF_PEERING_CRDS = CRD_DIR / "kopf-peering.yaml"  # applied with the rest of crds/


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    k = Kubectl(control_plane.kubectl, control_plane.kubeconfig)
    paths = sorted(CRD_DIR.glob("*.yaml"))
    assert KOPF_PEERING_CRDS in paths, "kopf's peering CRDs belong in crds/"
    for p in paths:
        k("apply", "--server-side", "-f", str(p))
    for p in paths:
        k("wait", "--for=condition=Established", "--timeout=60s", "-f", str(p))
    return k


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl.delete_namespace(name)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item,
                               call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report on the test (``item.stash[PHASE_REPORTS]``), for fixtures that
    say more when the test failed."""
    report = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    return report


PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.fixture
def operator(kubectl: Kubectl, kubeconfig: Path, namespace: str, tmp_path: Path,
             request: pytest.FixtureRequest) -> Iterator[OperatorProcess]:
    """The real operator, watching this test's namespace; its log is printed if the test fails."""
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log", namespaces=(namespace,)).start()
    try:
        yield op
    finally:
        op.stop()
        call = request.node.stash.get(PHASE_REPORTS, {}).get("call")
        if call is not None and call.failed:
            lines = [ln for ln in op.output().splitlines() if "[DEBUG" not in ln]
            print("--- operator log (last 150 lines, without DEBUG):\n" + "\n".join(lines[-150:]))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    pg = Postgres(tmp_path_factory.mktemp("postgres"))
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture
def database_url(postgres: Postgres) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"))
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture(scope="session")
def pod_runner(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory,
               service_proxy: ServiceProxy) -> Iterator[PodRunner]:
    """Runs the pods labelled ``localenv.rollguard.io/run``; their HTTP clients use ``service_proxy``."""
    runner = PodRunner(control_plane.kubeconfig, tmp_path_factory.mktemp("pods"),
                       service_proxy=service_proxy.url).start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def service_proxy(control_plane: ControlPlane) -> Iterator[ServiceProxy]:
    """The cluster's ``*.svc`` names for HTTP clients (set its ``url`` as ``http_proxy``)."""
    proxy = ServiceProxy(control_plane.kubeconfig).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def _pod_prometheus(control_plane: ControlPlane, factory: pytest.TempPathFactory,
                    interval: str) -> Iterator[Prometheus]:
    """A Prometheus finding pods through the API with the chart's backend PodMonitor, scraping
    every ``interval``; started for the session, stopped at its end."""
    prom = Prometheus(factory.mktemp(f"prometheus-{interval}"), scrape_interval=interval,
                      kubernetes=control_plane.prometheus_api(), pod_monitors=[backend_podmonitor()])
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture(scope="session")
def pod_prometheus_5s(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    yield from _pod_prometheus(control_plane, tmp_path_factory, "5s")


@pytest.fixture(scope="session")
def pod_prometheus_15s(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    yield from _pod_prometheus(control_plane, tmp_path_factory, "15s")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep ``--dist loadgroup`` grouping on pytest 9.2.

    pytest-xdist sends the tests of one ``xdist_group`` to one worker by a suffix it appends to
    each test's node id in the worker (``<id>@<group>``), by assigning ``item._nodeid``. pytest 9.2
    keeps node ids in ``item._id`` (a structured id), so the assignment changes nothing and
    the groups are silently spread over every worker: each worker then builds every module
    fixture (https://github.com/pytest-dev/pytest-xdist/issues/1386). Runs after xdist's hook and
    appends the suffix where it is missing, the way xdist names it; with a pytest or xdist
    where xdist's own assignment works, the suffix is there and nothing changes."""
    if not getattr(config.option, "loadgroup", False):  # set in xdist's workers under --dist loadgroup
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(names)
        current = getattr(item, "_id", None)
        if names and current is not None and not item.nodeid.endswith(suffix):
            item._id = type(current).parse(item.nodeid + suffix)


__all__ = ["eventually"]
os.environ.setdefault("ROLLGUARD_TESTING", "1")

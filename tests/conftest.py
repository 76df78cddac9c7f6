"""Shared fixtures: real services started once per test session, on loopback.

- ``control_plane``: etcd + kube-apiserver + kube-controller-manager (node-less, like envtest),
  with rollguard's CRDs and kopf's peering CRDs applied; ``namespace`` gives each test a fresh one.
- ``postgres``: a PostgreSQL server; ``prometheus``: a Prometheus scraping targets tests add.

Nothing is skipped when a binary is missing: `make test` installs or builds it, and a
fixture that cannot start its service fails the tests that asked for it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.postgres import Postgres
from rollguard.localenv.prometheus import Prometheus
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
        kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def operator(kubectl: Kubectl, kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    """The real operator, watching this test's namespace; its log is printed if the test fails."""
    op = OperatorProcess(kubeconfig, tmp_path / "operator.log", namespaces=(namespace,)).start()
    try:
        yield op
    finally:
        op.stop()


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


__all__ = ["eventually"]
os.environ.setdefault("ROLLGUARD_TESTING", "1")

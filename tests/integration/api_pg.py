"""Helpers for the failures-service integration tests: the API in process (TestClient) or as a
real uvicorn process, on the real PostgreSQL of the ``database_url`` fixture."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from rollguard.api import create_app
from rollguard.api.auth import create_token
from rollguard.api.settings import Settings


@dataclass
class Api:
    client: TestClient
    app: Any

    def token(self, tenant: str, *scopes: str) -> dict[str, str]:
        with self.app.state.sessionmaker() as s:
            _, tok = create_token(s, tenant, list(scopes))
            s.commit()
        return {"Authorization": f"Bearer {tok}"}


@pytest.fixture(name="api")
def api_fixture(database_url: str, tmp_path: Path) -> Iterator[Api]:
    """The service on a fresh PostgreSQL database, with the shipped default catalog."""
    app = create_app(Settings(database_url=database_url, catalog_path=tmp_path / "absent.json"))
    with TestClient(app) as client:
        yield Api(client, app)


@pytest.fixture(name="admin")
def admin_fixture(api: Api) -> dict[str, str]:
    """Headers with an admin token of tenant ``acme``."""
    return api.token("acme", "failures:admin")



class ApiServer:
    """`rollguard api serve` as a real uvicorn subprocess on a loopback port; stop/start keep the port."""

    def __init__(self, database_url: str | None, log: Path, *, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        from rollguard.localenv._proc import free_port

        self.database_url, self.log = database_url, log
        self.port = port or free_port()
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ApiServer:
        args = [sys.executable, "-m", "rollguard.cli.main", "api", "serve", "--port", str(self.port),
                "--log-level", "warning"]
        if self.database_url:
            args += ["--database-url", self.database_url]
        env = {**os.environ, **(self.env or {})}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api serve exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"api serve not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rollguard.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)

"""Schemathesis against the service's own OpenAPI, on a real uvicorn and PostgreSQL, with every
check (``--checks all``) in every phase (examples, coverage, fuzzing, stateful) and both data
modes (valid and invalid input): no 5xx, every answer documented and conforming to its schema,
invalid input refused, valid input accepted, 405s with the right Allow, auth never ignored,
created resources found again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.api_pg import ApiServer
from tests.integration.test_api_reporter import _token

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_openapi_contract_all_checks(database_url: str, tmp_path: Path) -> None:
    token = _token(database_url)
    server = ApiServer(database_url, tmp_path / "api.log").start()
    try:
        h = {"Authorization": f"Bearer {token}"}
        # Some data, so that lists, stats, detail lookups and cursors have something to return.
        events = [{"run_id": f"r{i % 3}", "error_code": code} for i, code in
                  enumerate(["TIMEOUT", "HTTP_429", "X_UNKNOWN", "PERMISSION_DENIED"] * 5)]
        httpx.post(server.url + "/api/v1/failures/batch", json={"events": events}, headers=h).raise_for_status()
        cursor = httpx.get(server.url + "/api/v1/failures", params={"limit": 1}, headers=h).json()["next_cursor"]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
               "ROLLGUARD_ST_CURSOR": cursor,
               "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
        p = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json", "--checks", "all",
             "--mode", "all", "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "30",
             "--workers", "1", "--request-timeout", "30", "--header", f"Authorization: Bearer {token}",
             "--no-color", "--report", "junit", "--report-dir", str(tmp_path / "st")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        out = p.stdout + p.stderr
        assert p.returncode == 0, out[-20_000:]
        assert "Server error" not in out and "failures" not in out.splitlines()[-1], out[-5_000:]
        assert "Operations" in out and "Tested: 11" in out, out[-5_000:]
    finally:
        server.stop()
    assert "Traceback" not in (tmp_path / "api.log").read_text()

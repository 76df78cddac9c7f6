"""The failures commands share one database setting, and `serve` says which catalog it matches with.

A user sets ROLLGUARD_DATABASE_URL once: the token `rollguard api token create` writes is then the
one `rollguard api serve` checks, and the jobs (`rollguard failures ...`) read the same database.
A --catalog that does not exist stops `serve` at once; without a mounted catalog the service
warns and /readyz names the built-in catalog.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.integration.api_pg import ApiServer, cli


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """ROLLGUARD_DATABASE_URL set once, as the docs do; $HOME's default SQLite file elsewhere."""
    return {"ROLLGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}", "ROLLGUARD_API_DATABASE_URL": "",
            "XDG_DATA_HOME": str(tmp_path / "home-data")}


def test_token_created_with_the_env_setting_is_accepted_by_serve(env: dict[str, str], tmp_path: Path) -> None:
    created = cli("api", "token", "create", "--tenant", "acme", "--scopes", "failures:read,failures:write", env=env)
    assert created.returncode == 0, created.stderr
    assert "SQLite file" not in created.stderr  # it did not fall back to the default file
    token = created.stdout.strip()
    server = ApiServer(None, tmp_path / "api.log", env=env).start()
    try:
        r = httpx.get(server.url + "/api/v1/failures/stats", params={"since_hours": 24},
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 0
    finally:
        server.stop()
    assert not (tmp_path / "home-data" / "rollguard" / "failures.db").exists()


def test_every_failures_job_reads_the_same_setting(env: dict[str, str]) -> None:
    synth = cli("failures", "synth", "--count", "20", "--tenant", "acme", env=env)
    assert synth.returncode == 0, synth.stderr
    prune = cli("failures", "prune", "--older-than", "1000d", "--dry-run", env=env)
    assert prune.returncode == 0 and "would delete 0 failures" in prune.stdout, prune.stderr
    listed = cli("api", "token", "list", env=env)
    assert listed.returncode == 0 and "SQLite file" not in listed.stderr
    for r in (synth, prune, listed):
        assert "no --database-url" not in r.stderr


def test_serve_refuses_a_catalog_file_that_does_not_exist(env: dict[str, str]) -> None:
    r = cli("api", "serve", "--catalog", "/no/such/file", env=env)
    assert r.returncode == 2
    assert "--catalog" in r.stderr and "/no/such/file" in r.stderr and "does not exist" in r.stderr


def test_without_a_mounted_catalog_serve_warns_and_readyz_names_the_built_in_one(
        env: dict[str, str], tmp_path: Path) -> None:
    server = ApiServer(None, tmp_path / "api.log", env={**env, "ROLLGUARD_API_CATALOG_PATH": str(tmp_path / "none")})
    server.start()
    try:
        ready = httpx.get(server.url + "/readyz").json()
    finally:
        server.stop()
    assert ready["catalog"] == "built-in default catalog", json.dumps(ready)
    log = (tmp_path / "api.log").read_text()
    assert f"no catalog file at {tmp_path / 'none'}" in log and "built-in default catalog" in log


def test_readyz_names_the_catalog_file_in_use(env: dict[str, str], tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    made = cli("catalog", "default", "-o", "json", env=env)
    assert made.returncode == 0, made.stderr
    catalog.write_text(made.stdout)
    server = ApiServer(None, tmp_path / "api.log", env={**env, "ROLLGUARD_API_CATALOG_PATH": str(catalog)})
    server.start()
    try:
        ready = httpx.get(server.url + "/readyz").json()
    finally:
        server.stop()
    assert ready["catalog"] == str(catalog)

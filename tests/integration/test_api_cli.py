"""`rollguard api serve|migrate|token` as an operator uses them, against real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.api_pg import ApiServer, cli

pytestmark = pytest.mark.integration


def test_migrate_token_serve_revoke(database_url: str, tmp_path: Path) -> None:
    r = cli("api", "migrate", "--database-url", database_url)
    assert r.returncode == 0 and "(head)" in r.stdout, r.stderr
    r = cli("api", "token", "create", "--database-url", database_url, "--tenant", "acme",
            "--scopes", "failures:read,failures:write")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("rgf_") and len(token) > 40
    token_id = r.stderr.split()[1]
    listed = cli("api", "token", "list", "--database-url", database_url).stdout
    assert token_id in listed and "active" in listed and token not in listed

    server = ApiServer(database_url, tmp_path / "api.log").start()
    try:
        h = {"Authorization": f"Bearer {token}"}
        resp = httpx.post(server.url + "/api/v1/failures", json={"run_id": "r", "error_code": "TIMEOUT"}, headers=h)
        assert resp.status_code == 201 and resp.json()["tenant_id"] == "acme"
        assert httpx.get(server.url + "/api/v1/failures", headers=h).json()["items"][0]["id"] == resp.json()["id"]
        assert cli("api", "token", "revoke", "--database-url", database_url, token_id).returncode == 0
        assert httpx.get(server.url + "/api/v1/failures", headers=h).status_code == 401
        assert "revoked" in cli("api", "token", "list", "--database-url", database_url).stdout
    finally:
        server.stop()


def test_cli_errors_name_the_field(database_url: str) -> None:
    r = cli("api", "token", "create", "--database-url", database_url, "--tenant", "a", "--scopes", "failures:own")
    assert r.returncode == 2 and "--scopes" in r.stderr and "failures:own" in r.stderr
    r = cli("api", "token", "revoke", "--database-url", database_url, "rgf_notthere")
    assert r.returncode == 1 and "no token" in r.stderr
    r = cli("api", "migrate", "--database-url", "postgresql+psycopg://x:y@127.0.0.1:1/none")
    assert r.returncode == 1 and "unreachable" in r.stderr
    r = cli("api", "migrate", "--database-url", "nonsense://")
    assert r.returncode == 2 and "--database-url" in r.stderr


def test_serve_without_url_uses_sqlite_and_says_so(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "ROLLGUARD_API_DATABASE_URL": ""}
    server = ApiServer(None, tmp_path / "api.log", env=env).start()
    try:
        assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    finally:
        server.stop()
    db = tmp_path / "data" / "rollguard" / "failures.db"
    assert db.exists()
    assert f"using the local SQLite file {db}" in (tmp_path / "api.log").read_text()


def test_serve_takes_a_body_limit(database_url: str, tmp_path: Path) -> None:
    r = cli("api", "serve", "--database-url", database_url, "--max-body-bytes", "10")
    assert r.returncode == 2 and "--max-body-bytes" in r.stderr
    token = cli("api", "token", "create", "--database-url", database_url, "--tenant", "acme",
                "--scopes", "failures:write").stdout.strip()
    server = ApiServer(database_url, tmp_path / "api.log", env={"ROLLGUARD_API_MAX_BODY_BYTES": "4096"}).start()
    try:
        h = {"Authorization": f"Bearer {token}"}
        small = {"run_id": "r", "error_code": "X", "error_message": "m" * 3000}
        assert httpx.post(server.url + "/api/v1/failures", json=small, headers=h).status_code == 201
        big = {"run_id": "r", "error_code": "X", "error_message": "m" * 5000}
        assert httpx.post(server.url + "/api/v1/failures", json=big, headers=h).status_code == 413
    finally:
        server.stop()

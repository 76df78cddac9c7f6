"""The laptop default: the whole API on the embedded SQLite database (same migrations, same queries)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from rollguard.api import create_app
from rollguard.api.auth import create_token
from rollguard.api.settings import Settings


def test_api_on_sqlite(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}", catalog_path=tmp_path / "none"))
    with app.state.sessionmaker() as s:
        _, tok = create_token(s, "acme", ["failures:admin"])
        s.commit()
    h = {"Authorization": f"Bearer {tok}"}
    base = datetime.now(UTC) - timedelta(hours=1)
    events = [{"run_id": "r", "error_code": code, "occurred_at": (base + timedelta(seconds=i // 2)).isoformat()}
              for i, code in enumerate(["TIMEOUT", "ECONNREFUSED", "ODD", "TIMEOUT", "ODD2", "HTTP_403", "X"])]
    with TestClient(app) as c:
        body = c.post("/api/v1/failures/batch", json={"events": events}, headers=h).json()
        assert body["accepted"] == 7
        again = c.post("/api/v1/failures/batch", json={"events": [{"id": body["items"][0]["id"], "run_id": "r",
                                                                     "error_code": "TIMEOUT"}]}, headers=h).json()
        assert again["duplicates"] == 1
        full = [i["id"] for i in c.get("/api/v1/failures", headers=h).json()["items"]]
        walked, cursor = [], None
        while True:
            page = c.get("/api/v1/failures", params={"limit": 3, **({"cursor": cursor} if cursor else {})},
                         headers=h).json()
            walked += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert walked == full and len(full) == 7
        fid = body["items"][0]["id"]
        assert c.patch(f"/api/v1/failures/{fid}/recovery", json={"recovery_succeeded": True},
                       headers=h).json()["recovered_at"].endswith(("+00:00", "Z"))
        stats = c.get("/api/v1/failures/stats", headers=h).json()
        assert (stats["total"], stats["matched"], stats["recovery_succeeded"]) == (7, 4, 1)
        assert len(c.get("/api/v1/failures/unrecovered", headers=h).json()["items"]) == 6
        assert c.get("/readyz").status_code == 200

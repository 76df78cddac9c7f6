"""The SDK reporter against the real service (uvicorn subprocess, PostgreSQL): the service is
stopped for a while and restarted; every event arrives once, in order, nothing is dropped."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from rollguard.api import migrate
from rollguard.api.auth import create_token
from rollguard.api.db import make_engine
from rollguard.sdk.reporter import PERSIST_DROPPED, Reporter
from tests.integration.api_pg import ApiServer
from tests.support.kube import eventually

pytestmark = pytest.mark.integration


def _token(database_url: str) -> str:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with Session(engine) as s:
        _, tok = create_token(s, "acme", ["failures:read", "failures:write"])
        s.commit()
    engine.dispose()
    return tok


def test_outage_then_replay_in_order_nothing_dropped(database_url: str, tmp_path: Path) -> None:
    token = _token(database_url)
    server = ApiServer(database_url, tmp_path / "api.log").start()
    dropped_before = PERSIST_DROPPED._value.get()
    rep = Reporter(server.url, token, spool_path=tmp_path / "spool.db", timeout=2.0, breaker_threshold=5,
                   breaker_reset=1.0, catalog_path=None)
    codes = ["TIMEOUT", "ECONNREFUSED", "NEW_THING", "permission denied for table x"]
    seq = 0
    try:
        for _ in range(40):
            rep.match_and_persist(codes[seq % 4], "run-outage", context={"seq": seq})
            seq += 1
        assert rep.flush(30)

        server.stop()  # the outage
        t_down = time.monotonic()
        recovered: dict[int, bool] = {}
        for _ in range(300):
            res = rep.match_and_persist(codes[seq % 4], "run-outage", context={"seq": seq})
            if seq % 50 == 0:  # the caller's recovery outcome, reported while the service is down too
                recovered[seq] = seq % 100 == 0
                assert rep.report_recovery(res.event_id, recovered[seq], recovered_by="sdk")
            seq += 1
            time.sleep(0.005)
        eventually(lambda: rep.breaker.state != "closed", timeout=30)
        assert len(rep.spool) == 300 + len(recovered)
        time.sleep(max(0.0, 3 - (time.monotonic() - t_down)))  # down for a while, the breaker cycling
        assert len(rep.spool) == 300 + len(recovered)

        server.start()
        assert rep.flush(60), f"{len(rep.spool)} events still spooled"
    finally:
        rep.close()
        server.stop()

    assert PERSIST_DROPPED._value.get() == dropped_before
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, (context->>'seq')::int AS seq, created_at, updated_at, recovery_attempted, "
                "recovery_succeeded, recovered_by FROM failure_matches "
                "WHERE tenant_id = 'acme' AND run_id = 'run-outage' ORDER BY created_at, id").all()
    finally:
        engine.dispose()
    seqs = [r.seq for r in rows]
    assert len({r.id for r in rows}) == len(rows) == seq  # every event, exactly once
    assert seqs == list(range(seq))  # in the order they happened
    # delivered in that order: the service stamps updated_at on arrival (rows marked recovered later
    # carry the time of the mark instead)
    arrival = [r.updated_at for r in sorted(rows, key=lambda r: r.seq) if not r.recovery_attempted]
    assert arrival == sorted(arrival)
    marked = {r.seq: r.recovery_succeeded for r in rows if r.recovery_attempted}
    assert marked == recovered and all(r.recovered_by == "sdk" for r in rows if r.recovery_attempted)

    server2 = ApiServer(database_url, tmp_path / "api2.log").start()
    try:
        stats = httpx.get(server2.url + "/api/v1/failures/stats",
                          headers={"Authorization": f"Bearer {token}"}).json()
        assert stats["total"] == seq and stats["unmatched"] == seq // 4
    finally:
        server2.stop()


def test_an_invalid_event_is_kept_aside_and_does_not_block_the_rest(database_url: str, tmp_path: Path) -> None:
    token = _token(database_url)
    server = ApiServer(database_url, tmp_path / "api.log").start()
    rep = Reporter(server.url, token, spool_path=tmp_path / "spool.db", catalog_path=None, start=False)
    try:
        rep.match_and_persist("TIMEOUT", "r", context={"n": 0})
        # the SDK makes its own events fit (a bad step_index moves into the context); one spooled
        # by another writer (an older SDK) can still be refused (422)
        bad = uuid.uuid4()
        assert rep.spool.append({"id": str(bad), "run_id": "r", "error_code": "TIMEOUT", "step_index": -1})
        rep.match_and_persist("TIMEOUT", "r", context={"n": 2})
        rep.report_recovery(bad, True)  # refers to the refused event: 404, kept aside too
        while rep.deliver_once():
            pass
        assert len(rep.spool) == 0
        rejected = rep.spool.rejected()
        assert [r[0].get("step_index") for r in rejected] == [-1, None]
        assert "step_index" in rejected[0][1] and rejected[1][1].startswith("404")
        h = {"Authorization": f"Bearer {token}"}
        items = httpx.get(server.url + "/api/v1/failures", headers=h).json()["items"]
        assert sorted(i["context"]["n"] for i in items) == [0, 2]
    finally:
        rep.close()
        server.stop()


def test_a_database_outage_is_retried_not_refused(database_url: str, tmp_path: Path) -> None:
    """The service answers 503 + Retry-After while its database refuses connections; the SDK
    keeps every event, nothing is set aside, and all arrive once the database is back."""
    import psycopg

    token = _token(database_url)
    server = ApiServer(database_url, tmp_path / "api.log").start()
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    dbname, admin_dsn = dsn.rsplit("/", 1)[1], dsn.rsplit("/", 1)[0] + "/postgres"
    rep = Reporter(server.url, token, spool_path=tmp_path / "spool.db", catalog_path=None, start=False)
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
        try:
            ids = [rep.match_and_persist("TIMEOUT", "db-outage", context={"n": n}).event_id for n in range(5)]
            assert rep.deliver_once() is False
            assert rep.breaker.state == "open" and rep.breaker.pause == 5  # the service's Retry-After
            assert len(rep.spool) == 5 and rep.spool.rejected() == []
        finally:
            with psycopg.connect(admin_dsn, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        rep.breaker.success()  # as the pause running out would
        while rep.deliver_once():
            pass
        assert len(rep.spool) == 0
        items = httpx.get(server.url + "/api/v1/failures", params={"run_id": "db-outage"},
                          headers={"Authorization": f"Bearer {token}"}).json()["items"]
        assert sorted(i["id"] for i in items) == sorted(str(i) for i in ids)
    finally:
        rep.close()
        server.stop()

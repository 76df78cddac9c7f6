"""The failures API against real PostgreSQL: every endpoint and filter, auth, tenants, paging, stats."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rollguard.api import create_app
from rollguard.api.auth import create_token
from rollguard.api.settings import Settings
from tests.integration.api_pg import Api, admin_fixture, api_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def post(api: Api, headers: dict[str, str], **event: Any) -> dict[str, Any]:
    event.setdefault("run_id", "run-1")
    r = api.client.post("/api/v1/failures", json=event, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def metric(api: Api, line_start: str) -> float:
    text = api.client.get("/metrics").text
    values = [float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(line_start)]
    return sum(values)


def test_auth_errors(api: Api) -> None:
    r = api.client.get("/api/v1/failures")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert api.client.get("/api/v1/failures", headers={"Authorization": "Bearer rgf_nope"}).status_code == 401
    reader = api.token("acme", "failures:read")
    assert api.client.get("/api/v1/failures", headers=reader).status_code == 200
    r = api.client.post("/api/v1/failures", json={"run_id": "r", "error_code": "READ_TIMEOUT"}, headers=reader)
    assert r.status_code == 403 and "failures:write" in r.json()["detail"]
    writer = api.token("acme", "failures:write")
    assert api.client.get("/api/v1/failures/stats", headers=writer).status_code == 403
    assert api.client.post("/api/v1/failures", json={"run_id": "r", "error_code": "READ_TIMEOUT"},
                           headers=writer).status_code == 201


def test_revoked_token_is_refused(api: Api) -> None:
    from rollguard.api.auth import revoke_token

    with api.app.state.sessionmaker() as s:
        row, tok = create_token(s, "acme", ["failures:read"])
        s.commit()
        assert api.client.get("/api/v1/failures", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
        revoke_token(s, str(row.id))
        s.commit()
    assert api.client.get("/api/v1/failures", headers={"Authorization": f"Bearer {tok}"}).status_code == 401


def test_post_matches_and_persists(api: Api, admin: dict[str, str]) -> None:
    exact = post(api, admin, error_code="READ_TIMEOUT", error_message="upstream timed out", skill_id="http",
                 step_index=2, context={"url": "https://x"})
    assert exact["match_type"] == "exact" and exact["catalog_entry_id"] == "READ_TIMEOUT"
    assert exact["category"] == "TIMEOUT" and exact["recovery_mode"] == "RETRY_EXPONENTIAL"
    assert exact["is_retryable"] is True and exact["confidence"] == 1.0
    assert exact["tenant_id"] == "acme" and len(exact["catalog_version"]) == 64
    alias = post(api, admin, error_code="ECONNREFUSED")
    assert (alias["match_type"], alias["catalog_entry_id"]) == ("alias", "CONNECTION_REFUSED")
    pattern = post(api, admin, error_message="HTTP 429: rate limit exceeded")
    assert (pattern["match_type"], pattern["catalog_entry_id"]) == ("pattern", "RATE_LIMITED")
    assert pattern["error_code"] == "RATE_LIMITED"
    unknown = post(api, admin, error_code="WEIRD_THING", error_message="flux capacitor melted")
    assert unknown["match_type"] == "unknown" and unknown["catalog_entry_id"] is None
    got = api.client.get(f"/api/v1/failures/{exact['id']}", headers=admin).json()
    assert got == exact
    assert got["context"] == {"url": "https://x"} and got["step_index"] == 2
    assert metric(api, "failure_match_hits_total{") == 3
    assert metric(api, "failure_match_misses_total ") == 1  # no label: unknown codes are never series
    assert metric(api, 'failure_unmatched_top{error_code="WEIRD_THING"}') == 1


def test_post_is_idempotent_on_client_id(api: Api, admin: dict[str, str]) -> None:
    eid = str(uuid.uuid4())
    first = post(api, admin, id=eid, error_code="READ_TIMEOUT")
    again = post(api, admin, id=eid, error_code="READ_TIMEOUT")
    assert first == again
    items = api.client.get("/api/v1/failures", headers=admin).json()["items"]
    assert [i["id"] for i in items] == [eid]
    # ids are the tenant's own: another tenant's event with the same id is that tenant's, stored
    other = api.token("globex", "failures:admin")
    theirs = post(api, other, id=eid, error_code="HTTP_429")
    assert theirs["tenant_id"] == "globex" and theirs["error_code"] == "HTTP_429"
    assert api.client.get(f"/api/v1/failures/{eid}", headers=admin).json() == first


def test_validation_errors_name_the_field(api: Api, admin: dict[str, str]) -> None:
    r = api.client.post("/api/v1/failures", json={"error_code": "READ_TIMEOUT"}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "run_id"]
    r = api.client.post("/api/v1/failures", json={"run_id": "r", "step_index": -1, "error_code": "X"},
                        headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "step_index"]
    r = api.client.post("/api/v1/failures", json={"run_id": "r"}, headers=admin)
    assert r.status_code == 422 and "error_code or error_message" in r.text
    r = api.client.get("/api/v1/failures", params={"status": "maybe"}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "status"]
    r = api.client.get("/api/v1/failures/not-a-uuid", headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "failure_id"]


def test_batch_all_or_nothing(api: Api, admin: dict[str, str]) -> None:
    events = [{"run_id": "b", "error_code": c} for c in ("READ_TIMEOUT", "HTTP_429", "NOPE")]
    r = api.client.post("/api/v1/failures/batch", json={"events": events}, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["accepted"] == 3 and body["duplicates"] == 0
    assert [i["match_type"] for i in body["items"]] == ["exact", "alias", "unknown"]
    bad = [*events, {"run_id": "", "error_code": "READ_TIMEOUT"}]
    r = api.client.post("/api/v1/failures/batch", json={"events": bad}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "events", 3, "run_id"]
    too_many = [{"run_id": "b", "error_code": "X"}] * 1001
    assert api.client.post("/api/v1/failures/batch", json={"events": too_many}, headers=admin).status_code == 422
    items = api.client.get("/api/v1/failures", params={"run_id": "b"}, headers=admin).json()["items"]
    assert len(items) == 3  # nothing from the rejected batches


def test_unknown_codes_are_never_counter_labels_only_the_top_ten(api: Api, admin: dict[str, str]) -> None:
    # 30 distinct unknown codes, code i reported i+1 times, plus one message without a code shape
    events = [{"run_id": "u", "error_code": f"UNHEARD_OF_{i:02d}"} for i in range(30) for _ in range(i + 1)]
    events.append({"run_id": "u", "error_code": "connection to the flux capacitor lost at 10.0.0.7"})
    r = api.client.post("/api/v1/failures/batch", json={"events": events}, headers=admin)
    assert r.status_code == 201, r.text
    text = api.client.get("/metrics").text
    assert "UNHEARD_OF" not in "\n".join(ln for ln in text.splitlines() if ln.startswith("failure_match_misses"))
    assert metric(api, "failure_match_misses_total ") == len(events)
    top = {ln.split('"')[1]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
           if ln.startswith("failure_unmatched_top{")}
    assert top == {f"UNHEARD_OF_{i:02d}": i + 1 for i in range(20, 30)}


def test_large_batch_retried_and_overlapping_is_stored_once(api: Api, admin: dict[str, str]) -> None:
    """Large batches go through COPY: the same idempotency as the INSERT path."""
    def ev(i: int) -> dict[str, Any]:
        return {"id": str(uuid.UUID(int=i + 1, version=4)), "run_id": "big", "error_code": "ECONNRESET",
                "context": {"i": i}}

    first = api.client.post("/api/v1/failures/batch", json={"events": [ev(i) for i in range(300)]}, headers=admin)
    assert first.status_code == 201 and first.json()["accepted"] == 300
    assert {i["catalog_entry_id"] for i in first.json()["items"]} == {"CONNECTION_RESET"}
    # a retry of the second half plus 200 new events, one of them twice
    body = [ev(i) for i in range(150, 500)] + [ev(499)]
    again = api.client.post("/api/v1/failures/batch", json={"events": body}, headers=admin).json()
    assert (again["accepted"], again["duplicates"]) == (200, 151)
    assert [i["duplicate"] for i in again["items"]] == [True] * 150 + [False] * 200 + [True]
    # ids are per tenant: another tenant's batch reusing some of them is stored whole, and its
    # answer is the one it would get for ids nobody used
    other = api.token("globex", "failures:admin")
    theirs = api.client.post("/api/v1/failures/batch", json={"events": [ev(i) for i in range(490, 560)]},
                             headers=other).json()
    assert (theirs["accepted"], theirs["duplicates"]) == (70, 0)
    page = api.client.get("/api/v1/failures", params={"run_id": "big", "limit": 1000}, headers=admin).json()
    assert sorted(i["context"]["i"] for i in page["items"]) == list(range(500))


def test_copy_that_hits_a_concurrent_insert_falls_back(api: Api, admin: dict[str, str]) -> None:
    """The race between the id lookup and COPY: the batch is retried as INSERT ... ON CONFLICT."""
    from rollguard.api import service
    from rollguard.api.matching import UNKNOWN
    from rollguard.api.schemas import FailureIn

    evs = [FailureIn(id=uuid.uuid4(), run_id="race", error_code="ECONNRESET") for _ in range(100)]
    with api.app.state.sessionmaker() as s:
        service.ingest(s, "acme", evs[:10], api.app.state.matcher)  # the "concurrent" insert, committed
        s.commit()
    with api.app.state.sessionmaker() as s:
        rows = [service.event_row("acme", ev, UNKNOWN, "v", datetime.now(UTC)) for ev in evs]
        inserted = service._insert(s, rows, client_ids=())  # as if the lookup had found nothing
        s.commit()
    assert inserted == {ev.id for ev in evs[10:]}
    page = api.client.get("/api/v1/failures", params={"run_id": "race", "limit": 1000}, headers=admin).json()
    assert len(page["items"]) == 100


def test_list_filters(api: Api, admin: dict[str, str]) -> None:
    now = datetime.now(UTC)
    old = (now - timedelta(hours=30)).isoformat()
    a = post(api, admin, run_id="r1", error_code="READ_TIMEOUT")
    b = post(api, admin, run_id="r2", error_code="PERMISSION_DENIED")
    c = post(api, admin, run_id="r1", error_code="UNSEEN")
    d = post(api, admin, run_id="r1", error_code="READ_TIMEOUT", occurred_at=old)
    api.client.patch(f"/api/v1/failures/{a['id']}/recovery", json={"recovery_succeeded": True}, headers=admin)

    def ids(**params: Any) -> set[str]:
        r = api.client.get("/api/v1/failures", params=params, headers=admin)
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert ids() == {a["id"], b["id"], c["id"]}
    assert ids(since_hours=48) == {a["id"], b["id"], c["id"], d["id"]}
    assert ids(run_id="r1") == {a["id"], c["id"]}
    assert ids(error_code="READ_TIMEOUT", since_hours=48) == {a["id"], d["id"]}
    assert ids(category="PERMISSION") == {b["id"]}
    assert ids(status="recovered") == {a["id"]}
    assert ids(status="unrecovered") == {b["id"], c["id"]}
    assert ids(status="all") == {a["id"], b["id"], c["id"]}
    listed = api.client.get("/api/v1/failures", headers=admin).json()["items"]
    assert [i["created_at"] for i in listed] == sorted((i["created_at"] for i in listed), reverse=True)


def test_pagination_offset_and_cursor(api: Api, admin: dict[str, str]) -> None:
    base = datetime.now(UTC) - timedelta(minutes=10)
    events = [{"run_id": "p", "error_code": "READ_TIMEOUT",
               "occurred_at": (base + timedelta(seconds=i // 2)).isoformat()}
              for i in range(25)]  # pairs share a timestamp: the cursor must break ties by id
    api.client.post("/api/v1/failures/batch", json={"events": events}, headers=admin).raise_for_status()
    full = [i["id"] for i in api.client.get("/api/v1/failures", params={"limit": 100}, headers=admin).json()["items"]]
    assert len(full) == 25
    by_offset = []
    for off in range(0, 25, 10):
        page = api.client.get("/api/v1/failures", params={"limit": 10, "offset": off}, headers=admin).json()
        by_offset += [i["id"] for i in page["items"]]
    assert by_offset == full
    walked, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get("/api/v1/failures", params=params, headers=admin).json()
        walked += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == full and pages == 4
    r = api.client.get("/api/v1/failures", params={"cursor": "garbage!", "limit": 5}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "cursor"]
    first = api.client.get("/api/v1/failures", params={"limit": 5}, headers=admin).json()
    skipped = api.client.get("/api/v1/failures", params={"limit": 5, "cursor": first["next_cursor"], "offset": 5},
                             headers=admin).json()
    assert [i["id"] for i in skipped["items"]] == full[10:15]  # offset counts from the cursor


def test_tenant_isolation(api: Api, admin: dict[str, str]) -> None:
    mine = post(api, admin, error_code="READ_TIMEOUT")
    other = api.token("globex", "failures:admin")
    theirs = post(api, other, error_code="RATE_LIMITED")
    assert api.client.get(f"/api/v1/failures/{mine['id']}", headers=other).status_code == 404
    r = api.client.patch(f"/api/v1/failures/{mine['id']}/recovery", json={"recovery_succeeded": True},
                         headers=other)
    assert r.status_code == 404
    assert [i["id"] for i in api.client.get("/api/v1/failures", headers=other).json()["items"]] == [theirs["id"]]
    assert api.client.get("/api/v1/failures/stats", headers=other).json()["total"] == 1
    unrec = api.client.get("/api/v1/failures/unrecovered", headers=other).json()["items"]
    assert [i["id"] for i in unrec] == [theirs["id"]]
    assert api.client.get(f"/api/v1/failures/{mine['id']}", headers=admin).json()["recovery_succeeded"] is False


def test_recovery_patch_and_unrecovered(api: Api, admin: dict[str, str]) -> None:
    f1 = post(api, admin, error_code="READ_TIMEOUT")
    f2 = post(api, admin, error_code="PERMISSION_DENIED")
    r = api.client.patch(f"/api/v1/failures/{f1['id']}/recovery", headers=admin,
                         json={"recovery_succeeded": True, "recovered_by": "ops-team", "notes": "restarted"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recovery_attempted"] and body["recovery_succeeded"] and body["recovered_by"] == "ops-team"
    assert body["recovery_notes"] == "restarted" and body["recovered_at"] is not None
    assert body["updated_at"] > f1["updated_at"]
    r = api.client.patch(f"/api/v1/failures/{f2['id']}/recovery", headers=admin,
                         json={"recovery_succeeded": False, "notes": "needs a code fix"})
    assert r.json()["recovery_attempted"] and not r.json()["recovery_succeeded"]
    unrec = api.client.get("/api/v1/failures/unrecovered", headers=admin).json()["items"]
    assert [i["id"] for i in unrec] == [f2["id"]]
    assert api.client.get("/api/v1/failures/unrecovered", params={"category": "TIMEOUT"},
                          headers=admin).json()["items"] == []
    assert metric(api, 'recovery_success_total{error_code="READ_TIMEOUT",recovery_mode="RETRY_EXPONENTIAL"}') == 1
    assert metric(api, "recovery_failure_total{") == 1
    missing = uuid.uuid4()
    assert api.client.patch(f"/api/v1/failures/{missing}/recovery", json={"recovery_succeeded": True},
                            headers=admin).status_code == 404
    r = api.client.patch(f"/api/v1/failures/{f1['id']}/recovery", json={"notes": "x"}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "recovery_succeeded"]


def test_stats_on_known_data(api: Api, admin: dict[str, str]) -> None:
    codes = ["READ_TIMEOUT"] * 5 + ["ECONNRESET"] * 3 + ["MYSTERY_A"] * 2 + ["PERMISSION_DENIED"] * 2
    batch = api.client.post("/api/v1/failures/batch", headers=admin,
                            json={"events": [{"run_id": "s", "error_code": c} for c in codes]}).json()
    ids = {c: [i["id"] for i in batch["items"] if i["error_code"] == c] for c in set(codes)}
    outcomes = [(ids["READ_TIMEOUT"][0], True), (ids["READ_TIMEOUT"][1], True), (ids["READ_TIMEOUT"][2], False),
                (ids["ECONNRESET"][0], False), (ids["PERMISSION_DENIED"][0], True)]
    for fid, ok in outcomes:
        api.client.patch(f"/api/v1/failures/{fid}/recovery", json={"recovery_succeeded": ok},
                         headers=admin).raise_for_status()
    old = (datetime.now(UTC) - timedelta(hours=50)).isoformat()
    post(api, admin, error_code="MYSTERY_B", occurred_at=old)  # outside the default 24 h window
    s = api.client.get("/api/v1/failures/stats", headers=admin).json()
    assert (s["total"], s["matched"], s["unmatched"]) == (12, 10, 2)
    assert s["hit_rate"] == pytest.approx(10 / 12)
    assert (s["recovery_attempted"], s["recovery_succeeded"]) == (5, 3)
    assert s["recovery_success_rate"] == pytest.approx(0.6)
    assert s["by_code"][0] == {"error_code": "READ_TIMEOUT", "count": 5, "matched": 5}
    assert {c["error_code"]: c["matched"] for c in s["by_code"]}["MYSTERY_A"] == 0
    assert {c["category"]: c["count"] for c in s["by_category"]} == {
        "TIMEOUT": 5, "TRANSIENT": 3, None: 2, "PERMISSION": 2}
    modes = {m["recovery_mode"]: m for m in s["recovery_by_mode"]}
    assert modes["RETRY_EXPONENTIAL"] == {"recovery_mode": "RETRY_EXPONENTIAL", "attempted": 3, "succeeded": 2,
                                          "failed": 1, "success_rate": pytest.approx(2 / 3, abs=1e-6)}
    assert modes["RETRY_IMMEDIATE"]["success_rate"] == 0.0 and modes["ESCALATE"]["success_rate"] == 1.0
    assert set(modes) == {"RETRY_EXPONENTIAL", "RETRY_IMMEDIATE", "ESCALATE"}
    wide = api.client.get("/api/v1/failures/stats", params={"since_hours": 72}, headers=admin).json()
    assert wide["total"] == 13 and wide["unmatched"] == 3
    empty = api.client.get("/api/v1/failures/stats", headers=api.token("nobody", "failures:read")).json()
    assert empty["total"] == 0 and empty["hit_rate"] is None


def test_hourly_rollup_stays_exact(api: Api, admin: dict[str, str], database_url: str) -> None:
    """Ingest (both insert paths, retries), recovery marks that flip, retention: the roll-up the
    service keeps equals one recomputed from the rows, and /stats equals a count of the rows."""
    import random

    from sqlalchemy import create_engine, text

    from rollguard.api import rollup
    from rollguard.failures.prune import prune

    rng = random.Random(5)
    now = datetime.now(UTC)
    codes = ["READ_TIMEOUT", "ECONNRESET", "HTTP_429", "MYSTERY", "PERMISSION_DENIED"]
    events = [{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "run_id": "h",
               "error_code": rng.choice(codes),
               "occurred_at": (now - timedelta(minutes=rng.randrange(0, 60 * 24 * 5))).isoformat()}
              for _ in range(600)]
    ids: list[str] = []
    for chunk in (events[:400], events[400:430], events[380:600]):  # COPY, INSERT, a retry overlapping both
        body = api.client.post("/api/v1/failures/batch", json={"events": chunk}, headers=admin).json()
        ids += [i["id"] for i in body["items"] if not i["duplicate"]]
    assert len(ids) == 600
    for fid in rng.sample(ids, 120) + rng.sample(ids, 60):  # some marked twice, maybe both ways
        r = api.client.patch(f"/api/v1/failures/{fid}/recovery", json={"recovery_succeeded": rng.random() < 0.5},
                             headers=admin)
        assert r.status_code in (200, 409), r.text  # 409: a failed attempt after the recovery
    engine = create_engine(database_url)
    try:
        assert prune(engine, timedelta(days=4), batch_size=50).deleted > 0

        def buckets() -> list[tuple[object, ...]]:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(
                    "SELECT * FROM failure_stats_hourly WHERE failures > 0 ORDER BY 1, 2, 3, 4, 5, 6"))]

        kept = buckets()
        with engine.begin() as conn:
            rollup.rebuild(conn)
        assert kept == buckets() and len(kept) > 50
        for hours in (1, 7, 30, 100):
            s = api.client.get("/api/v1/failures/stats", params={"since_hours": hours}, headers=admin).json()
            with engine.connect() as conn:
                total, att, ok = conn.execute(text(
                    "SELECT count(*), count(*) FILTER (WHERE recovery_attempted), "
                    "count(*) FILTER (WHERE recovery_succeeded) FROM failure_matches "
                    "WHERE tenant_id = 'acme' AND created_at >= now() - make_interval(hours => :h)"),
                    {"h": hours}).one()
            assert (s["total"], s["recovery_attempted"], s["recovery_succeeded"]) == (total, att, ok)
    finally:
        engine.dispose()


def test_recovery_suggest(api: Api, admin: dict[str, str]) -> None:
    r = api.client.post("/api/v1/recovery/suggest", json={"error_message": "connect: connection refused"},
                        headers=admin)
    assert r.status_code == 200
    body = r.json()
    assert body["matched"] and body["catalog_entry_id"] == "CONNECTION_REFUSED"
    assert body["recovery_mode"] == "RETRY_EXPONENTIAL" and body["past_attempts"] == 0
    f = post(api, admin, error_code="ECONNREFUSED")
    api.client.patch(f"/api/v1/failures/{f['id']}/recovery", json={"recovery_succeeded": True}, headers=admin)
    again = api.client.post("/api/v1/recovery/suggest", json={"error_code": "CONNECTION_REFUSED"},
                            headers=admin).json()
    assert (again["past_attempts"], again["past_successes"]) == (1, 1)
    none = api.client.post("/api/v1/recovery/suggest", json={"error_code": "ZZZ"}, headers=admin).json()
    assert none["matched"] is False and none["recovery_mode"] is None
    assert api.client.post("/api/v1/recovery/suggest", json={}, headers=admin).status_code == 422
    assert api.client.post("/api/v1/recovery/suggest", json={"error_code": "X"}).status_code == 401


def test_health_metrics_openapi(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and len(ready.json()["catalog_version"]) == 64
    text = api.client.get("/metrics").text
    for name in ("failure_match_hits_total", "failure_match_misses_total", "recovery_success_total",
                 "recovery_failure_total", "failure_persist_dropped_total", "failure_agg_upload_attempt_total"):
        assert re.search(rf"^# TYPE {name.removesuffix('_total')}(_total)? counter$", text, re.M), name
    assert "failure_persist_dropped_total 0.0" in text
    spec = api.client.get("/openapi.json").json()
    assert "/api/v1/failures/{failure_id}/recovery" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_readyz_reports_unreachable_database(tmp_path: Path) -> None:
    from rollguard.localenv._proc import free_port

    url = f"postgresql+psycopg://x:y@127.0.0.1:{free_port()}/none"
    app = create_app(Settings(database_url=url, migrate_on_start=False, catalog_path=tmp_path / "none"))
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert client.get("/healthz").status_code == 200

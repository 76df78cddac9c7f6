"""The failures service under hostile input, on real PostgreSQL: nothing stored that
breaks a read, nothing dropped silently, every malformed request a 4xx that names what is wrong
and echoes nothing back."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from rollguard.api import create_app
from rollguard.api.settings import Settings
from rollguard.sdk import limits
from tests.integration.api_pg import Api, ApiServer, admin_fixture, api_fixture  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}
FAILURES = "/api/v1/failures"


def nested(depth: int) -> bytes:
    """A context object `depth` levels deep, as raw JSON (no encoder in the way)."""
    return b'{"k":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def event_json(context: bytes = b"{}", **fields: Any) -> bytes:
    base = {"run_id": "hostile", "error_code": "READ_TIMEOUT", **fields}
    return json.dumps(base).encode()[:-1] + b',"context":' + context + b"}"


def reads_ok(api: Api, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every read of the tenant answers 200; returns the listed failures."""
    listed = api.client.get(FAILURES, params={"limit": 1000, "since_hours": 24 * 366}, headers=headers)
    assert listed.status_code == 200, listed.text
    for path in ("/unrecovered", "/stats"):
        r = api.client.get(FAILURES + path, params={"since_hours": 24 * 366}, headers=headers)
        assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = listed.json()["items"]
    for item in items:
        r = api.client.get(f"{FAILURES}/{item['id']}", headers=headers)
        assert r.status_code == 200, r.text
    return items


# -- 1. limits are checked before anything is stored -------------------------------------------

OVER_LIMITS: dict[str, bytes] = {
    "depth 17": nested(17),
    "depth 300": nested(300),
    "depth 900": nested(900),
    "too many values": json.dumps({f"k{i}": i for i in range(limits.CONTEXT_MAX_VALUES)}).encode(),
    "long key": json.dumps({"k" * (limits.CONTEXT_MAX_KEY_CHARS + 1): 1}).encode(),
    "long string": json.dumps({"s": "x" * (limits.CONTEXT_MAX_STRING_CHARS + 1)}).encode(),
    "too much text": json.dumps({f"s{i}": "x" * 8000 for i in range(5)}).encode(),
    "lone surrogate in a value": b'{"s":"abc\\ud800"}',
    "lone surrogate in a key": b'{"\\udc00":1}',
    "not an object": b"[1, 2]",
}


@pytest.mark.parametrize("case", sorted(OVER_LIMITS))
def test_context_beyond_the_limits_is_refused_naming_it_and_nothing_is_stored(api: Api, admin: dict[str, str],
                                                                            case: str) -> None:
    ctx = OVER_LIMITS[case]
    r = api.client.post(FAILURES, content=event_json(ctx), headers={**admin, **JSON})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "context"], r.text[:500]
    ok = event_json(b'{"fine":true}')
    batch = b'{"events":[' + ok + b"," + event_json(ctx) + b"]}"
    r = api.client.post(f"{FAILURES}/batch", content=batch, headers={**admin, **JSON})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "events", 1, "context"], r.text[:500]
    assert reads_ok(api, admin) == []  # all or nothing: not even the valid first event


def test_nesting_beyond_the_parser_is_a_422_not_a_crash(api: Api, admin: dict[str, str]) -> None:
    for depth in (2_000, 100_000):
        r = api.client.post(FAILURES, content=event_json(nested(depth)), headers={**admin, **JSON})
        assert r.status_code == 422, r.text[:300]
        err = r.json()["detail"][0]
        assert err["type"] == "json_invalid" and err["loc"][0] == "body" and "deep" in err["ctx"]["error"]
    assert reads_ok(api, admin) == []


def test_a_context_at_the_limits_is_stored_and_read_back(api: Api, admin: dict[str, str]) -> None:
    deep: dict[str, Any] = {"leaf": "x" * limits.CONTEXT_MAX_STRING_CHARS}
    for _ in range(limits.CONTEXT_MAX_DEPTH - 1):
        deep = {"k" * limits.CONTEXT_MAX_KEY_CHARS: deep}
    r = api.client.post(FAILURES, json={"run_id": "edge", "error_code": "X", "context": deep,
                                        "error_message": "m" * limits.ERROR_MESSAGE_MAX}, headers=admin)
    assert r.status_code == 201, r.text[:500]
    assert api.client.get(f"{FAILURES}/{r.json()['id']}", headers=admin).json()["context"] == deep
    assert [i["context"] for i in reads_ok(api, admin)] == [deep]


def test_a_stored_row_never_breaks_a_read(api: Api, admin: dict[str, str], database_url: str) -> None:
    """Rows written around the service (or before its limits): the reads still answer, and show
    what cannot be shown as a marker. Timestamps at the edges of what Python can hold read back
    whatever the server's TimeZone."""
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    good = api.client.post(FAILURES, json={"run_id": "r", "error_code": "X",
                                           "occurred_at": "9999-12-31T23:30:00Z"}, headers=admin).json()
    early = api.client.post(FAILURES, json={"run_id": "r", "error_code": "X",
                                            "occurred_at": "0001-01-01T00:30:00Z"}, headers=admin).json()
    ids = [uuid.uuid4() for _ in range(3)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for fid, ctx in zip(ids, [nested(300), nested(3000), b"[1,2]"], strict=True):
            conn.execute("INSERT INTO failure_matches (id, tenant_id, run_id, error_code, context) "
                         "VALUES (%s, 'acme', 'legacy', 'X', %s::jsonb)", (fid, ctx.decode()))
        # a server in a zone far from UTC (UTC+14, then UTC-12)
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET timezone TO 'Pacific/Kiritimati'")
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {conn.info.dbname} SET timezone TO '{zone}'")
        api.app.state.engine.dispose()  # new sessions pick the database's setting up
        items = {i["id"]: i for i in reads_ok(api, admin)}
        for row in (good, early):  # far outside any list window: read by id
            assert api.client.get(f"{FAILURES}/{row['id']}", headers=admin).json() == row
        withheld = [items[str(fid)]["context"] for fid in ids]
        assert all(set(c) == {"_rollguard_context_withheld"} for c in withheld), withheld


# -- 2. body size and what error bodies carry --------------------------------------------------

def test_a_body_over_the_limit_is_413_before_parsing(api: Api, admin: dict[str, str]) -> None:
    limit = api.app.state.settings.max_body_bytes
    big = event_json(json.dumps({"s": "x" * limit}).encode())
    for method, path in (("POST", FAILURES), ("POST", f"{FAILURES}/batch"), ("POST", "/api/v1/recovery/suggest"),
                         ("PATCH", f"{FAILURES}/{uuid.uuid4()}/recovery")):
        r = api.client.request(method, path, content=big, headers={**admin, **JSON})
        assert r.status_code == 413, (path, r.status_code)
        assert len(r.content) < 200
    # announced by Content-Length, or found while reading a chunked body: 413 either way,
    # and not even invalid JSON gets parsed
    chunks = iter([b"{" * 65536] * (limit // 65536 + 1))
    r = api.client.post(FAILURES, content=chunks, headers={**admin, **JSON})
    assert r.status_code == 413 and r.json() == {"detail": "Content Too Large"}
    assert reads_ok(api, admin) == []


def test_error_bodies_never_echo_the_input(api: Api, admin: dict[str, str]) -> None:
    marker = "ECHO" * 100_000  # 400 kB, under the body limit
    cases: list[tuple[str, dict[str, Any]]] = [
        (FAILURES, {"run_id": marker, "error_code": "X"}),  # too long
        (FAILURES, {"run_id": "r", "error_code": "X", marker: 1}),  # unknown key
        (FAILURES, {"run_id": "r", "error_code": "X", "step_index": marker}),  # wrong type
        (FAILURES, {"run_id": "r", "error_code": "X", "context": {"s": marker}}),
        (f"{FAILURES}/batch", {"events": [{"run_id": "r", "bad": marker}] * 3}),
        ("/api/v1/recovery/suggest", {"error_message": marker}),
    ]
    for path, body in cases:
        r = api.client.post(path, json=body, headers=admin)
        assert r.status_code == 422, (path, r.text[:300])
        # an unknown key is named, its first 100 characters at most; nothing else comes back
        assert len(r.content) < 2_000 and "ECHO" * 26 not in r.text, (path, len(r.content))
    many = [{"run_id": ""}] * limits.MAX_BATCH_EVENTS
    r = api.client.post(f"{FAILURES}/batch", json={"events": many}, headers=admin)
    detail = r.json()["detail"]
    assert r.status_code == 422 and len(detail) <= 51 and detail[-1]["type"] == "too_many_errors"
    assert reads_ok(api, admin) == []


# -- 3. malformed bodies -----------------------------------------------------------------------

MALFORMED: dict[str, tuple[bytes, dict[str, str], list[Any] | None]] = {
    # name: (body, extra headers, expected loc or None for "a json_invalid at the body")
    "lone surrogate as UTF-8 bytes": (b'{"run_id":"r","error_code":"TIMEOUT\xed\xa0\x80"}', JSON, None),
    "not UTF-8": (b'{"run_id":"r","error_code":"\xff"}', JSON, None),
    "latin-1": ('{"run_id":"r","error_code":"caf\u00e9"}'.encode("latin-1"), JSON, None),
    "not JSON": (b'{"run_id": r', JSON, None),
    "NaN": (b'{"run_id":"r","error_code":"X","context":{"n":NaN}}', JSON, None),
    "Infinity": (b'{"run_id":"r","error_code":"X","context":{"n":-Infinity}}', JSON, None),
    "number beyond a float": (b'{"run_id":"r","error_code":"X","context":{"n":1e400}}', JSON, None),
    "integer beyond Python's digit limit": (b'{"run_id":"r","error_code":"X","context":{"n":' + b"9" * 5000 + b"}}",
                                            JSON, None),
    "trailing data": (b'{"run_id":"r","error_code":"X"} {}', JSON, None),
    "lone surrogate escape in a field": (b'{"run_id":"r","error_code":"TIMEOUT\\ud800"}', JSON,
                                         ["body", "error_code"]),
    "lone surrogate escape in a bad field": (b'{"run_id":"r","error_code":"X","step_index":"\\ud800"}', JSON,
                                             ["body", "step_index"]),
    "text/plain": (b'{"run_id":"r","error_code":"X"}', {"content-type": "text/plain"}, ["body"]),
    "no content type": (b'{"run_id":"r","error_code":"X"}', {}, ["body"]),
    "empty": (b"", JSON, ["body"]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_every_malformed_body_is_a_422(api: Api, admin: dict[str, str], case: str) -> None:
    body, headers, loc = MALFORMED[case]
    for path in (FAILURES, "/api/v1/recovery/suggest", f"{FAILURES}/{uuid.uuid4()}/recovery"):
        method = "PATCH" if path.endswith("/recovery") else "POST"
        r = api.client.request(method, path, content=body, headers={**admin, **headers})
        assert r.status_code == 422, (path, r.status_code, r.text[:300])
        err = r.json()["detail"][0]
        if loc is None:
            assert err["type"] == "json_invalid" and err["loc"][0] == "body", err
        elif path == FAILURES:
            assert err["loc"] == loc, err
    assert reads_ok(api, admin) == []


def test_the_schema_documents_every_answer(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            if path.startswith("/api/"):
                assert {"401", "403", "503"} <= codes, (method, path)
            if "requestBody" in op:
                assert {"413", "422"} <= codes, (method, path)
    assert "Retry-After" in spec["paths"]["/api/v1/failures"]["get"]["responses"]["503"]["headers"]


# -- 4. cursors --------------------------------------------------------------------------------

def _cursor(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


CURSORS = {
    "id is a number": _cursor({"t": "2030-01-01T00:00:00+00:00", "i": 7}),
    "id is null": _cursor({"t": "2030-01-01T00:00:00+00:00", "i": None}),
    "time is a number": _cursor({"t": 1893456000, "i": str(uuid.uuid4())}),
    "time without a zone": _cursor({"t": "2030-01-01T00:00:00", "i": str(uuid.uuid4())}),
    "time before year 1 in UTC": _cursor({"t": "0001-01-01T00:00:00+01:00", "i": str(uuid.uuid4())}),
    "time after year 9999 in UTC": _cursor({"t": "9999-12-31T23:00:00-02:00", "i": str(uuid.uuid4())}),
    "extra key": _cursor({"t": "2030-01-01T00:00:00Z", "i": str(uuid.uuid4()), "x": 1}),
    "a list": _cursor([1, 2]),
    "a string": _cursor("t"),
    "not JSON": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "not base64": "!!!!",
    "not ASCII": "\u00e9t\u00e9",
}


@pytest.mark.parametrize("case", sorted(CURSORS))
def test_a_crafted_cursor_is_a_422_naming_it(api: Api, admin: dict[str, str], case: str) -> None:
    api.client.post(FAILURES, json={"run_id": "r", "error_code": "X"}, headers=admin).raise_for_status()
    for path in (FAILURES, f"{FAILURES}/unrecovered"):
        r = api.client.get(path, params={"cursor": CURSORS[case]}, headers=admin)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "cursor"], (path, r.text)


def test_a_cursor_with_any_offset_the_api_accepts_pages_correctly(api: Api, admin: dict[str, str]) -> None:
    """A cursor is compared in UTC: an offset PostgreSQL itself would refuse (beyond 15:59)
    works, and means the same instant."""
    fid = api.client.post(FAILURES, json={"run_id": "r", "error_code": "X", "occurred_at": "2030-01-01T12:00:00Z"},
                          headers=admin).json()["id"]
    after = _cursor({"t": "2030-01-02T12:00:00+23:00", "i": str(uuid.UUID(int=0))})  # 2030-01-01T13:00Z
    before = _cursor({"t": "2030-01-01T11:00:00-23:00", "i": str(uuid.UUID(int=0))})  # 2030-01-02T10:00Z
    early = _cursor({"t": "2030-01-01T12:00:00+23:00", "i": str(uuid.UUID(int=0))})  # 2029-12-31T13:00Z
    for cursor, expect in ((after, [fid]), (before, [fid]), (early, [])):
        r = api.client.get(FAILURES, params={"cursor": cursor}, headers=admin)
        assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == expect


# -- 5. ids are per tenant ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 60])  # the INSERT path and the COPY path
def test_another_tenants_id_never_loses_an_event_nor_tells_anything(api: Api, admin: dict[str, str],
                                                                   size: int) -> None:
    b = api.token("globex", "failures:admin")
    ids = [str(uuid.uuid4()) for _ in range(size)]
    mine = api.client.post(f"{FAILURES}/batch", headers=admin,
                           json={"events": [{"id": i, "run_id": "a", "error_code": "HTTP_429"} for i in ids]}).json()
    assert mine["accepted"] == size

    fresh = [str(uuid.uuid4()) for _ in range(size)]

    def send(event_ids: list[str]) -> dict[str, Any]:
        r = api.client.post(f"{FAILURES}/batch", headers=b, json={"events": [
            {"id": i, "run_id": "b", "error_code": "READ_TIMEOUT", "context": {"n": n}}
            for n, i in enumerate(event_ids)]})
        assert r.status_code == 201, r.text[:300]
        body: dict[str, Any] = r.json()
        return {k: v for k, v in body.items() if k != "items"} | {"dup": [i["duplicate"] for i in body["items"]]}

    # the same answer as for ids nobody has used
    assert send(ids) == send(fresh) == {"accepted": size, "duplicates": 0, "catalog_version": mine["catalog_version"],
                                        "dup": [False] * size}
    assert send(ids)["duplicates"] == size  # B's own retry is a duplicate of B's own events
    for i in ids[:3]:
        theirs = api.client.get(f"{FAILURES}/{i}", headers=b).json()
        ours = api.client.get(f"{FAILURES}/{i}", headers=admin).json()
        assert (theirs["tenant_id"], theirs["error_code"]) == ("globex", "READ_TIMEOUT")
        assert (ours["tenant_id"], ours["error_code"]) == ("acme", "HTTP_429")
    single = api.client.post(FAILURES, json={"id": ids[0], "run_id": "b", "error_code": "X"}, headers=b)
    assert single.status_code == 201 and single.json()["tenant_id"] == "globex"  # B's own, already stored
    # a recovery mark by B touches only B's failure
    api.client.patch(f"{FAILURES}/{ids[0]}/recovery", json={"recovery_succeeded": True},
                     headers=b).raise_for_status()
    assert api.client.get(f"{FAILURES}/{ids[0]}", headers=admin).json()["recovery_attempted"] is False
    assert len(api.client.get(FAILURES, params={"limit": 1000}, headers=b).json()["items"]) == 2 * size
    assert len(api.client.get(FAILURES, params={"limit": 1000}, headers=admin).json()["items"]) == size


# -- 6. recovery marks -------------------------------------------------------------------------

def test_concurrent_recovery_marks_converge_on_the_first(database_url: str, tmp_path: Path) -> None:
    """Twenty concurrent successes (a real uvicorn, its thread pool, PostgreSQL row locks): one
    `recovered_at` in every answer and in the row; later marks follow the documented rule."""
    server = ApiServer(database_url, tmp_path / "api.log").start()
    try:
        from tests.integration.test_api_reporter import _token

        h = {"Authorization": f"Bearer {_token(database_url)}"}
        with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
            fid = c.post(FAILURES, json={"run_id": "r", "error_code": "READ_TIMEOUT"}).json()["id"]
            c.patch(f"{FAILURES}/{fid}/recovery", json={"recovery_succeeded": False, "notes": "first try"})
            answers: list[httpx.Response] = []
            start = threading.Barrier(20)

            def mark(n: int) -> None:
                with httpx.Client(base_url=server.url, headers=h, timeout=30) as own:
                    start.wait()
                    answers.append(own.patch(f"{FAILURES}/{fid}/recovery",
                                             json={"recovery_succeeded": True, "recovered_by": f"worker-{n}"}))

            threads = [threading.Thread(target=mark, args=(n,)) for n in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert [a.status_code for a in answers] == [200] * 20
            stamps = {(a.json()["recovered_at"], a.json()["recovered_by"]) for a in answers}
            assert len(stamps) == 1
            stored = c.get(f"{FAILURES}/{fid}").json()
            assert {(stored["recovered_at"], stored["recovered_by"])} == stamps
            # later: a success changes nothing, a failure is refused
            again = c.patch(f"{FAILURES}/{fid}/recovery", json={"recovery_succeeded": True, "notes": "again"})
            assert again.status_code == 200 and again.json() == stored
            late = c.patch(f"{FAILURES}/{fid}/recovery", json={"recovery_succeeded": False})
            assert late.status_code == 409 and stored["recovered_at"][:19] in late.json()["detail"]
            assert c.get(f"{FAILURES}/{fid}").json() == stored
            success = [ln for ln in c.get("/metrics").text.splitlines() if ln.startswith("recovery_success_total{")]
            assert [float(ln.rsplit(" ", 1)[1]) for ln in success] == [1.0]  # counted once
    finally:
        server.stop()


# -- 8. database outage ------------------------------------------------------------------------

def test_a_database_that_refuses_connections_is_a_503_with_retry_after(api: Api, admin: dict[str, str],
                                                                      database_url: str) -> None:
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    dbname = dsn.rsplit("/", 1)[1]
    fid = api.client.post(FAILURES, json={"run_id": "r", "error_code": "X"}, headers=admin).json()["id"]
    admin_dsn = dsn.rsplit("/", 1)[0] + "/postgres"
    calls: list[Callable[[], httpx.Response]] = [
        lambda: api.client.get(FAILURES, headers=admin),
        lambda: api.client.get(f"{FAILURES}/{fid}", headers=admin),
        lambda: api.client.get(f"{FAILURES}/stats", headers=admin),
        lambda: api.client.post(FAILURES, json={"run_id": "r", "error_code": "X"}, headers=admin),
        lambda: api.client.post(f"{FAILURES}/batch", json={"events": [{"run_id": "r", "error_code": "X"}] * 60},
                                headers=admin),
        lambda: api.client.patch(f"{FAILURES}/{fid}/recovery", json={"recovery_succeeded": True}, headers=admin),
        lambda: api.client.post("/api/v1/recovery/suggest", json={"error_code": "X"}, headers=admin),
    ]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
    try:
        for call in calls:
            r = call()
            assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
            assert r.json() == {"detail": "database unavailable, retry later"}
        ready = api.client.get("/readyz")
        assert ready.status_code == 503 and "retry-after" in ready.headers
        assert api.client.get("/healthz").status_code == 200  # the process itself is fine
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    assert api.client.get("/readyz").status_code == 200
    assert [c().status_code for c in calls[:4]] == [200, 200, 200, 201]


def test_no_database_server_is_a_503(tmp_path: Path) -> None:
    from rollguard.localenv._proc import free_port

    url = f"postgresql+psycopg://x:y@127.0.0.1:{free_port()}/none"
    app = create_app(Settings(database_url=url, migrate_on_start=False, catalog_path=tmp_path / "none"))
    with TestClient(app) as client:
        r = client.get(FAILURES, headers={"Authorization": "Bearer rgf_x"})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        r = client.post(FAILURES, json={"run_id": "r", "error_code": "X"}, headers={"Authorization": "Bearer rgf_x"})
        assert r.status_code == 503 and "y@" not in r.text


# -- 9. contract gaps --------------------------------------------------------------------------

def test_allow_lists_every_method_of_the_path(api: Api, admin: dict[str, str]) -> None:
    fid = uuid.uuid4()
    expect = {FAILURES: "GET, POST", f"{FAILURES}/batch": "POST", f"{FAILURES}/stats": "GET",
              f"{FAILURES}/{fid}": "GET", f"{FAILURES}/{fid}/recovery": "PATCH",
              "/api/v1/recovery/suggest": "POST", "/healthz": "GET"}
    for path, allow in expect.items():
        for method in ("OPTIONS", "HEAD", "PUT", "DELETE", "TRACE", *(["GET"] if "GET" not in allow else [])):
            r = api.client.request(method, path, headers=admin)
            assert r.status_code == 405 and r.headers["allow"] == allow, (method, path, r.headers.get("allow"))


STRICT: dict[str, tuple[dict[str, Any], str]] = {
    "step_index false": ({"step_index": False}, "step_index"),
    "step_index true": ({"step_index": True}, "step_index"),
    "step_index 2.5": ({"step_index": 2.5}, "step_index"),
    "step_index '2'": ({"step_index": "2"}, "step_index"),
    "occurred_at 0.0": ({"occurred_at": 0.0}, "occurred_at"),
    "occurred_at 0": ({"occurred_at": 0}, "occurred_at"),
    "occurred_at digits": ({"occurred_at": "1700000000"}, "occurred_at"),
    "occurred_at date only": ({"occurred_at": "2026-01-02"}, "occurred_at"),
    "occurred_at no zone": ({"occurred_at": "2026-01-02T03:04:05"}, "occurred_at"),
    "run_id number": ({"run_id": 5}, "run_id"),
    "error_code list": ({"error_code": ["X"]}, "error_code"),
    "id not a uuid": ({"id": "7"}, "id"),
}


@pytest.mark.parametrize("case", sorted(STRICT))
def test_types_are_strict(api: Api, admin: dict[str, str], case: str) -> None:
    fields, name = STRICT[case]
    r = api.client.post(FAILURES, json={"run_id": "r", "error_code": "X", **fields}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", name], r.text
    r = api.client.post(f"{FAILURES}/batch", json={"events": [{"run_id": "r", "error_code": "X", **fields}]},
                        headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "events", 0, name], r.text
    assert reads_ok(api, admin) == []


def test_an_integral_number_is_an_integer(api: Api, admin: dict[str, str]) -> None:
    """JSON Schema's integer: 2.0 is one (schemathesis sends such values as valid data)."""
    r = api.client.post(FAILURES, content=b'{"run_id":"r","error_code":"X","step_index":2.0}',
                        headers={**admin, **JSON})
    assert r.status_code == 201 and r.json()["step_index"] == 2


def test_recovery_flags_are_strict(api: Api, admin: dict[str, str]) -> None:
    fid = api.client.post(FAILURES, json={"run_id": "r", "error_code": "X"}, headers=admin).json()["id"]
    values: list[Any] = ["yes", "true", 1, 0, None, []]
    for value in values:
        r = api.client.patch(f"{FAILURES}/{fid}/recovery", json={"recovery_succeeded": value}, headers=admin)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "recovery_succeeded"], value
    assert api.client.get(f"{FAILURES}/{fid}", headers=admin).json()["recovery_attempted"] is False

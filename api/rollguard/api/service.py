"""Database operations of the failures service (used by the routes, the CLI and the bench)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import psycopg
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from sqlalchemy import ColumnElement, Select, Table, func, select, text, tuple_, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from rollguard.api import rollup
from rollguard.api.matching import CatalogMatcher, Match
from rollguard.api.orm import FailureMatch
from rollguard.api.schemas import FailureIn

Status = Literal["unrecovered", "recovered", "all"]
FM = FailureMatch
TABLE: Table = FailureMatch.__table__  # type: ignore[assignment]


class CursorError(ValueError):
    pass


@dataclass(frozen=True)
class Ingested:
    row: dict[str, Any]
    match: Match
    duplicate: bool


def event_row(tenant_id: str, ev: FailureIn, m: Match, catalog_version: str, now: datetime) -> dict[str, Any]:
    return {
        "id": ev.id or uuid.uuid4(),
        "tenant_id": tenant_id,
        "run_id": ev.run_id,
        "error_code": ev.error_code or m.entry_code or "UNKNOWN",
        "error_message": ev.error_message,
        "catalog_entry_id": m.entry_code,
        "catalog_version": catalog_version,
        "match_type": m.match_type,
        "confidence": m.confidence,
        "category": m.category,
        "severity": m.severity,
        "is_retryable": m.retryable,
        "recovery_mode": m.recovery_mode,
        "recovery_suggestion": m.recovery_suggestion,
        "recovery_attempted": False,
        "recovery_succeeded": False,
        "recovered_at": None,
        "recovered_by": None,
        "recovery_notes": None,
        "skill_id": ev.skill_id,
        "step_index": ev.step_index,
        "context": ev.context,
        "created_at": ev.occurred_at or now,
        "updated_at": now,
    }


def ingest(session: Session, tenant_id: str, events: Sequence[FailureIn], matcher: CatalogMatcher) -> list[Ingested]:
    """Match and insert events in the caller's transaction. An event whose client-chosen id the
    tenant already has is not inserted again (retries after a lost response are harmless); ids
    are scoped to the tenant, so another tenant's ids neither block an event nor show through."""
    now = datetime.now(UTC)
    version = matcher.version
    out: list[Ingested] = []
    rows: list[dict[str, Any]] = []
    seen: set[uuid.UUID] = set()
    client_ids: list[uuid.UUID] = []
    for ev in events:
        m = matcher.match_event(ev.error_code, ev.error_message)
        row = event_row(tenant_id, ev, m, version, now)
        dup = row["id"] in seen
        seen.add(row["id"])
        out.append(Ingested(row, m, dup))
        if not dup:
            rows.append(row)
            if ev.id is not None:
                client_ids.append(ev.id)
    inserted = _insert(session, rows, client_ids) if rows else set()
    if inserted and rollup.enabled(session):
        rollup.add(session, rollup.count_rows(
            (r["tenant_id"], r["created_at"], r["error_code"], r["category"], r["recovery_mode"],
             r["catalog_entry_id"] is not None, False, False) for r in rows if r["id"] in inserted))
    return [Ingested(i.row, i.match, i.duplicate or i.row["id"] not in inserted) for i in out]


# PostgreSQL, small batches: one INSERT ... SELECT FROM unnest(<one array per column>) carries the
# whole batch in 24 parameters, in one round trip (SQLAlchemy's multi-row VALUES, 24 parameters
# per row each through its bind processor, took ~230 ms per 1000 rows here).
_PG_TYPES = {"id": "uuid", "confidence": "float8", "is_retryable": "bool", "recovery_attempted": "bool",
             "recovery_succeeded": "bool", "recovered_at": "timestamptz", "step_index": "int4",
             "context": "jsonb", "created_at": "timestamptz", "updated_at": "timestamptz"}
_PG_COLS = [c.name for c in TABLE.columns]
# Identifiers come from our own table metadata; every value is a bound parameter.
_PG_INSERT = " ".join([
    "INSERT INTO failure_matches (", ", ".join(_PG_COLS), ") SELECT * FROM unnest(",
    ", ".join(f"%s::{_PG_TYPES.get(c, 'text')}[]" for c in _PG_COLS),
    ") ON CONFLICT (tenant_id, id) DO NOTHING RETURNING id",
])
# Large batches: COPY, 1.3-3x the rows/s of the INSERT above here (no speculative insertion, no
# array parsing). COPY cannot skip conflicts, so the ids a client chose are looked up first; a
# concurrent insert of one of them between lookup and COPY (a retry racing its original) makes
# the COPY fail, and the batch falls back to the INSERT, inside a savepoint.
COPY_MIN_ROWS = 50
_PG_COPY = f"COPY failure_matches ({', '.join(_PG_COLS)}) FROM STDIN"
_PG_EXISTING = "SELECT id FROM failure_matches WHERE tenant_id = %s AND id = ANY(%s)"
_CONTEXT = _PG_COLS.index("context")


# One encoder for every row: json.dumps with arguments builds a new encoder per call.
_json = json.JSONEncoder(separators=(",", ":")).encode


def _insert(session: Session, rows: list[dict[str, Any]], client_ids: Sequence[uuid.UUID] = ()) -> set[uuid.UUID]:
    """Insert rows of one tenant, skipping ids that tenant already has; returns the ids inserted."""
    if session.get_bind().dialect.name == "postgresql":
        dbapi_conn = session.connection().connection.driver_connection
        assert isinstance(dbapi_conn, psycopg.Connection)
        with dbapi_conn.cursor() as cur:
            if len(rows) >= COPY_MIN_ROWS:
                return _pg_copy(cur, rows, client_ids)
            return _pg_insert(cur, rows)
    stmt = sqlite.insert(TABLE).on_conflict_do_nothing(index_elements=["tenant_id", "id"]).returning(TABLE.c.id)
    return set(session.execute(stmt, rows).scalars().all())


def _pg_insert(cur: psycopg.Cursor[Any], rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    columns = [[r[c] for r in rows] for c in _PG_COLS]
    columns[_CONTEXT] = [_json(v) for v in columns[_CONTEXT]]
    cur.execute(_PG_INSERT, columns)
    return {r[0] for r in cur.fetchall()}


def _pg_copy(cur: psycopg.Cursor[Any], rows: list[dict[str, Any]], client_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if client_ids:
        cur.execute(_PG_EXISTING, (rows[0]["tenant_id"], list(client_ids)))
        existing = {r[0] for r in cur.fetchall()}
        rows = [r for r in rows if r["id"] not in existing]
        if not rows:
            return set()
    cur.execute("SAVEPOINT fm_copy")
    try:
        with cur.copy(_PG_COPY) as cp:
            for r in rows:
                values = [r[c] for c in _PG_COLS]
                values[_CONTEXT] = _json(values[_CONTEXT])
                cp.write_row(values)
    except psycopg.errors.UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT fm_copy")
        return _pg_insert(cur, rows)
    cur.execute("RELEASE SAVEPOINT fm_copy")
    return {r["id"] for r in rows}


class _Cursor(BaseModel):
    """What a cursor carries: the last row's (created_at, id). Strict: a JSON string for each,
    nothing else (a number where the id goes, a time without a zone, an extra key: refused)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    t: AwareDatetime
    i: uuid.UUID


def encode_cursor(created_at: datetime, id_: uuid.UUID) -> str:
    """The opaque `next_cursor`: base64url (unpadded) of ``{"t": <created_at>, "i": <id>}``."""
    raw = _Cursor(t=created_at, i=id_).model_dump_json().encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """(created_at in UTC, id) of a cursor `encode_cursor` made; `CursorError` for anything
    else, whatever it decodes to (every failure of decoding or validation is caught here)."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        c = _Cursor.model_validate_json(raw)
        # UTC, so that any offset pydantic accepts is one PostgreSQL accepts (at most +-15:59)
        return c.t.astimezone(UTC), c.i
    except (binascii.Error, ValidationError, ValueError, OverflowError) as exc:
        raise CursorError("not a cursor returned by this API") from exc


def _where(tenant_id: str, since_hours: int | None, *, run_id: str | None = None, error_code: str | None = None,
           category: str | None = None, status: Status = "all") -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [FM.tenant_id == tenant_id]
    if since_hours is not None:
        conds.append(FM.created_at >= datetime.now(UTC) - timedelta(hours=since_hours))
    if run_id is not None:
        conds.append(FM.run_id == run_id)
    if error_code is not None:
        conds.append(FM.error_code == error_code)
    if category is not None:
        conds.append(FM.category == category)
    # NOT x rather than x IS false: the planner must see the partial index's own predicate
    if status == "unrecovered":
        conds.append(~FM.recovery_succeeded)
    elif status == "recovered":
        conds.append(FM.recovery_succeeded.is_(True))
    return conds


def list_failures(session: Session, tenant_id: str, *, since_hours: int | None, limit: int, offset: int = 0,
                  cursor: str | None = None, run_id: str | None = None, error_code: str | None = None,
                  category: str | None = None, status: Status = "all") -> tuple[list[FailureMatch], str | None]:
    """Newest first. Deep pages: pass the returned cursor (keyset on (created_at, id)) instead
    of a growing offset, which costs O(offset) per page."""
    conds = _where(tenant_id, since_hours, run_id=run_id, error_code=error_code, category=category, status=status)
    if cursor is not None:
        t, i = decode_cursor(cursor)
        conds.append(tuple_(FM.created_at, FM.id) < tuple_(t, i))
    q: Select[FailureMatch] = (select(FM).where(*conds).order_by(FM.created_at.desc(), FM.id.desc())
                                      .limit(limit).offset(offset))
    rows = list(session.scalars(q))
    nxt = encode_cursor(rows[-1].created_at, rows[-1].id) if len(rows) == limit else None
    return rows, nxt


def get_failure(session: Session, tenant_id: str, failure_id: uuid.UUID) -> FailureMatch | None:
    return session.scalars(select(FM).where(FM.id == failure_id, FM.tenant_id == tenant_id)).first()


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


# The window's whole hours from the roll-up, its first partial hour from the rows: one statement,
# so one snapshot. Groups may repeat across the two parts; stats() sums them.
_PG_STATS = text("""
SELECT error_code, category, recovery_mode, matched, count(*), count(*) FILTER (WHERE recovery_attempted),
       count(*) FILTER (WHERE recovery_succeeded)
FROM (SELECT error_code, category, recovery_mode, catalog_entry_id IS NOT NULL AS matched, recovery_attempted,
             recovery_succeeded
      FROM failure_matches WHERE tenant_id = :tenant AND created_at >= :since AND created_at < :hour) AS edge
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT error_code, nullif(category, ''), nullif(recovery_mode, ''), matched, sum(failures), sum(attempted),
       sum(succeeded)
FROM failure_stats_hourly WHERE tenant_id = :tenant AND hour >= :hour
GROUP BY 1, 2, 3, 4
""")


def _pg_stat_groups(session: Session, tenant_id: str, since_hours: int) -> list[tuple[Any, ...]]:
    since = datetime.now(UTC) - timedelta(hours=since_hours)
    hour = rollup.hour_of(since)
    if hour < since:
        hour += timedelta(hours=1)
    return [(code, cat, mode, hit, int(n), int(att), int(ok)) for code, cat, mode, hit, n, att, ok in
            session.execute(_PG_STATS, {"tenant": tenant_id, "since": since, "hour": hour})]


def stats(session: Session, tenant_id: str, since_hours: int, top: int = 50) -> dict[str, Any]:
    """One grouped query over the window (on PostgreSQL: the hourly roll-up plus the first
    partial hour's rows); the totals and breakdowns are summed here (four separate GROUP BY
    queries would cost four scans)."""
    if rollup.enabled(session):
        groups = _pg_stat_groups(session, tenant_id, since_hours)
    else:
        attempted_c = func.count().filter(FM.recovery_attempted.is_(True))
        succeeded_c = func.count().filter(FM.recovery_succeeded.is_(True))
        matched = FM.catalog_entry_id.is_not(None)
        groups = [tuple(g) for g in session.execute(
            select(FM.error_code, FM.category, FM.recovery_mode, matched, func.count(), attempted_c, succeeded_c)
            .where(*_where(tenant_id, since_hours))
            .group_by(FM.error_code, FM.category, FM.recovery_mode, matched))]
    total = hit = attempted = succeeded = 0
    codes: dict[str, list[int]] = {}
    cats: dict[str | None, int] = {}
    modes: dict[str | None, list[int]] = {}
    for code, cat, mode, is_hit, n, att, ok in groups:
        total += n
        hit += n if is_hit else 0
        attempted += att
        succeeded += ok
        c = codes.setdefault(code, [0, 0])
        c[0] += n
        c[1] += n if is_hit else 0
        cats[cat] = cats.get(cat, 0) + n
        if att:
            m = modes.setdefault(mode, [0, 0])
            m[0] += att
            m[1] += ok
    by_code = sorted(codes.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
    return {
        "since_hours": since_hours,
        "total": total, "matched": hit, "unmatched": total - hit, "hit_rate": _rate(hit, total),
        "recovery_attempted": attempted, "recovery_succeeded": succeeded,
        "recovery_success_rate": _rate(succeeded, attempted),
        "by_code": [{"error_code": c, "count": n, "matched": mt} for c, (n, mt) in by_code],
        "by_category": [{"category": c, "count": n}
                        for c, n in sorted(cats.items(), key=lambda kv: (-kv[1], kv[0] or ""))],
        "recovery_by_mode": [{"recovery_mode": mode, "attempted": a, "succeeded": ok, "failed": a - ok,
                              "success_rate": _rate(ok, a)}
                             for mode, (a, ok) in sorted(modes.items(), key=lambda kv: kv[0] or "")],
    }


RecoveryOutcome = Literal["recorded", "unchanged", "conflict"]


def mark_recovery(session: Session, tenant_id: str, failure_id: uuid.UUID, succeeded: bool,
                  recovered_by: str | None, notes: str | None) -> tuple[FailureMatch | None, RecoveryOutcome]:
    """Record a recovery attempt's outcome on one of the tenant's failures; (None, ...) if there
    is no such failure. The rule (docs/api.md, "Marking recovery"):

    - not recovered yet: the attempt is recorded ("recorded"): ``recovery_attempted``, the
      outcome, ``recovered_by`` and ``notes``; a success also sets ``recovered_at``;
    - recovered already: a recovery is final. Another success changes nothing and gets the
      stored failure back ("unchanged": retries are harmless); a failure is refused
      ("conflict", 409). So ``recovered_at`` is set once, by the first success.

    The row is locked before the time is taken and the state read, so concurrent marks apply
    one after the other and converge: every concurrent success sees the same ``recovered_at``.
    Timestamps never move backwards on a row (``updated_at`` at least its previous value)."""
    key = (FM.tenant_id == tenant_id, FM.id == failure_id)
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks: a no-op write takes the database's write lock first, so the
        # read below sees the last committed mark and no other mark can interleave
        session.execute(update(FM).where(*key).values(recovery_attempted=FM.recovery_attempted))
    row = session.scalars(select(FM).where(*key).with_for_update()
                          .execution_options(populate_existing=True)).first()
    if row is None:
        return None, "unchanged"
    if row.recovery_succeeded:
        return row, "unchanged" if succeeded else "conflict"
    now = max(datetime.now(UTC), row.updated_at)
    if rollup.enabled(session):  # under the lock: two concurrent marks count the change once
        k = rollup.key(row.tenant_id, row.created_at, row.error_code, row.category, row.recovery_mode,
                       row.catalog_entry_id is not None)
        rollup.add(session, {k: (0, 1 - int(row.recovery_attempted), int(succeeded))})
    row.recovery_attempted = True
    row.recovery_succeeded = succeeded
    row.recovered_at = now if succeeded else None
    row.recovered_by = recovered_by
    row.recovery_notes = notes
    row.updated_at = now
    return row, "recorded"


def past_recoveries(session: Session, tenant_id: str, entry_code: str) -> tuple[int, int]:
    attempted, succeeded = session.execute(
        select(func.count(), func.count().filter(FM.recovery_succeeded.is_(True)))
        .where(FM.tenant_id == tenant_id, FM.catalog_entry_id == entry_code,
               FM.recovery_attempted)).one()  # the predicate of idx_fm_recovery_outcomes, verbatim
    return int(attempted), int(succeeded)

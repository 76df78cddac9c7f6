"""Hourly roll-up of failures per tenant, code, category, recovery mode and matched (PostgreSQL).

/stats reads every failure of its window; for a busy tenant that is 100,000 rows and more,
which no index makes fast. The roll-up keeps, per UTC hour, how many failures there were and
how many recoveries were attempted and succeeded, updated in the same transaction as the
failures themselves (ingest, recovery marks, retention). /stats then reads the roll-up for the
whole hours of its window and `failure_matches` only for the first, partial hour.

Counts are deltas added in one statement per transaction, rows in key order, so concurrent
transactions lock shared buckets in the same order (no deadlock). SQLite (the laptop demo)
has no roll-up: its stats read the rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

# (tenant_id, hour, error_code, category, recovery_mode, matched); None category/mode as ''
Key = tuple[str, datetime, str, str, str, bool]
_UPSERT = text("""
INSERT INTO failure_stats_hourly (tenant_id, hour, error_code, category, recovery_mode, matched, failures,
                                  attempted, succeeded)
SELECT * FROM unnest(CAST(:tenant AS text[]), CAST(:hour AS timestamptz[]), CAST(:code AS text[]),
                     CAST(:cat AS text[]), CAST(:mode AS text[]), CAST(:matched AS bool[]),
                     CAST(:failures AS int8[]), CAST(:attempted AS int8[]), CAST(:succeeded AS int8[]))
ON CONFLICT (tenant_id, hour, error_code, category, recovery_mode, matched) DO UPDATE SET
    failures = failure_stats_hourly.failures + EXCLUDED.failures,
    attempted = failure_stats_hourly.attempted + EXCLUDED.attempted,
    succeeded = failure_stats_hourly.succeeded + EXCLUDED.succeeded
""")

_REBUILD = text("""
INSERT INTO failure_stats_hourly (tenant_id, hour, error_code, category, recovery_mode, matched, failures,
                                  attempted, succeeded)
SELECT tenant_id, date_trunc('hour', created_at, 'UTC'), error_code, coalesce(category, ''),
       coalesce(recovery_mode, ''), catalog_entry_id IS NOT NULL, count(*),
       count(*) FILTER (WHERE recovery_attempted), count(*) FILTER (WHERE recovery_succeeded)
FROM failure_matches GROUP BY 1, 2, 3, 4, 5, 6
""")


def hour_of(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def key(tenant_id: str, created_at: datetime, error_code: str, category: str | None, recovery_mode: str | None,
        matched: bool) -> Key:
    return (tenant_id, hour_of(created_at), error_code, category or "", recovery_mode or "", matched)


def enabled(session_or_conn: Session | Connection) -> bool:
    return session_or_conn.get_bind().dialect.name == "postgresql" if isinstance(session_or_conn, Session) \
        else session_or_conn.dialect.name == "postgresql"


def add(conn: Session | Connection, deltas: dict[Key, tuple[int, int, int]]) -> None:
    """Add (failures, attempted, succeeded) to each bucket, creating missing ones."""
    items = sorted((k, v) for k, v in deltas.items() if any(v))
    if not items or not enabled(conn):
        return
    cols: list[list[Any]] = [[] for _ in range(9)]
    for k, v in items:
        for i, x in enumerate((*k, *v)):
            cols[i].append(x)
    names = ["tenant", "hour", "code", "cat", "mode", "matched", "failures", "attempted", "succeeded"]
    conn.execute(_UPSERT, dict(zip(names, cols, strict=True)))


def count_rows(rows: Iterable[tuple[str, datetime, str, str | None, str | None, bool, bool, bool]],
               sign: int = 1) -> dict[Key, tuple[int, int, int]]:
    """Deltas for failures (tenant, created_at, code, category, mode, matched, attempted, succeeded)."""
    n: Counter[Key] = Counter()
    att: Counter[Key] = Counter()
    ok: Counter[Key] = Counter()
    for tenant, created, code, cat, mode, matched, attempted, succeeded in rows:
        k = key(tenant, created, code, cat, mode, matched)
        n[k] += sign
        att[k] += sign * int(attempted)
        ok[k] += sign * int(succeeded)
    return {k: (n[k], att[k], ok[k]) for k in n}


def drop_empty(conn: Connection) -> None:
    if enabled(conn):
        conn.execute(text("DELETE FROM failure_stats_hourly WHERE failures <= 0"))


def rebuild(conn: Connection) -> None:
    """Recompute the roll-up from failure_matches (after rows were written around the service,
    e.g. a bulk COPY, or to check the incremental counts)."""
    conn.execute(text("DELETE FROM failure_stats_hourly"))
    conn.execute(_REBUILD)

"""Retention: delete old failures in small batches, each its own short transaction, so that
ingest never waits behind one long delete (the chart's CronJob keeps 90 days by default)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, select, tuple_

from rollguard.api import rollup
from rollguard.api.orm import FailureMatch, FailurePatternExport

_AGE = re.compile(r"^\s*(\d+)\s*([dhw])\s*$")


def parse_age(text: str) -> timedelta:
    m = _AGE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not an age like 90d, 12h or 2w")
    n, unit = int(m.group(1)), m.group(2)
    return {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]


@dataclass(frozen=True)
class PruneResult:
    cutoff: datetime
    deleted: int
    exports_deleted: int
    batches: int
    seconds: float


def prune(engine: Engine, older_than: timedelta, *, batch_size: int = 5000, dry_run: bool = False,
          tenant_id: str | None = None) -> PruneResult:
    cutoff = datetime.now(UTC) - older_than
    t0 = time.monotonic()
    conds = [FailureMatch.created_at < cutoff]
    if tenant_id is not None:
        conds.append(FailureMatch.tenant_id == tenant_id)
    if dry_run:
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(FailureMatch).where(*conds)).scalar_one()
        return PruneResult(cutoff, int(n), 0, 0, time.monotonic() - t0)
    deleted = batches = 0
    fm = FailureMatch
    while True:
        with engine.begin() as conn:
            # the key is (tenant_id, id): an id alone may name another tenant's failure too
            keys = select(fm.tenant_id, fm.id).where(*conds).limit(batch_size)
            stmt = delete(fm).where(tuple_(fm.tenant_id, fm.id).in_(keys))
            if rollup.enabled(conn):  # take the deleted failures out of the hourly roll-up too
                gone = conn.execute(stmt.returning(
                    fm.tenant_id, fm.created_at, fm.error_code, fm.category, fm.recovery_mode,
                    fm.catalog_entry_id.is_not(None), fm.recovery_attempted, fm.recovery_succeeded)).all()
                n = len(gone)
                rollup.add(conn, rollup.count_rows((tuple(r) for r in gone), sign=-1))
                rollup.drop_empty(conn)
            else:
                n = conn.execute(stmt).rowcount
        if not n:
            break
        deleted += n
        batches += 1
    exports = 0
    if tenant_id is None:
        with engine.begin() as conn:
            exports = conn.execute(delete(FailurePatternExport)
                                   .where(FailurePatternExport.created_at < cutoff)).rowcount
    return PruneResult(cutoff, deleted, exports, batches, time.monotonic() - t0)

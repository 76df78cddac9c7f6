"""The packaged Alembic migrations on real PostgreSQL: up, down, up; schema as designed."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from rollguard.api import migrate
from rollguard.api.orm import Base

pytestmark = pytest.mark.integration

TABLES = {"failure_matches", "failure_pattern_exports", "api_tokens"}


def _partial_indexes(conn) -> dict[str, str]:
    rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'failure_matches'"))
    return {name: d for name, d in rows if " WHERE " in d}


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision(engine)
        insp = inspect(engine)
        assert set(insp.get_table_names()) >= TABLES
        cols = {c["name"]: c for c in insp.get_columns("failure_matches")}
        assert cols["tenant_id"]["nullable"] is False
        assert cols["context"]["type"].__class__.__name__ == "JSONB"
        for needed in ("catalog_version", "recovered_at", "recovered_by", "recovery_notes", "skill_id",
                       "step_index", "confidence", "is_retryable", "updated_at"):
            assert needed in cols
        index_names = {i["name"] for i in insp.get_indexes("failure_matches")}
        assert index_names == {"idx_fm_created_at", "idx_fm_tenant_error", "idx_fm_tenant_time", "idx_fm_tenant_run",
                               "idx_fm_recovery_pending", "idx_fm_unmatched", "idx_fm_recovery_outcomes"}
        with engine.connect() as conn:
            partial = _partial_indexes(conn)
            assert "recovery_succeeded" in partial["idx_fm_recovery_pending"]
            assert "catalog_entry_id IS NULL" in partial["idx_fm_unmatched"]
            assert "recovery_attempted" in partial["idx_fm_recovery_outcomes"]
            # The ORM mapping and the migrated schema agree (no pending autogenerate diff).
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert [d for d in diffs if d[0] not in ("add_index", "remove_index")] == []

        migrate.downgrade(engine)
        assert not (TABLES & set(inspect(engine).get_table_names()))
        migrate.upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_tenant_is_mandatory_and_defaults_apply(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO failure_matches (id, tenant_id, run_id, error_code) "
                              "VALUES (:id, 't1', 'r1', 'TIMEOUT')"), {"id": uuid.uuid4()})
            row = conn.execute(text("SELECT match_type, confidence, recovery_succeeded, context, created_at "
                                    "FROM failure_matches")).one()
            assert row.match_type == "unknown" and row.confidence == 0
            assert row.recovery_succeeded is False and row.context == {}
            assert row.created_at.tzinfo is not None
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("INSERT INTO failure_matches (id, run_id, error_code) VALUES (:id, 'r', 'X')"),
                         {"id": uuid.uuid4()})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("INSERT INTO failure_matches (id, tenant_id, run_id, error_code, match_type) "
                              "VALUES (:id, 't', 'r', 'X', 'bogus')"), {"id": uuid.uuid4()})
    finally:
        engine.dispose()


def test_failure_ids_are_per_tenant_and_downgrade_keeps_every_failure(database_url: str) -> None:
    engine = create_engine(database_url)
    insert = text("INSERT INTO failure_matches (id, tenant_id, run_id, error_code) VALUES (:id, :t, 'r', 'X')")
    fid = uuid.uuid4()
    try:
        migrate.upgrade(engine)
        assert inspect(engine).get_pk_constraint("failure_matches")["constrained_columns"] == ["tenant_id", "id"]
        with engine.begin() as conn:
            conn.execute(insert, {"id": fid, "t": "acme"})
            conn.execute(insert, {"id": fid, "t": "globex"})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"id": fid, "t": "acme"})
        # a global key would have to drop one of the two: refused, nothing changed
        with pytest.raises(RuntimeError, match="used by more than one tenant"):
            migrate.downgrade(engine, "0001")
        assert migrate.current_revision(engine) == migrate.head_revision(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM failure_matches")).scalar_one() == 2
            conn.execute(text("DELETE FROM failure_matches WHERE tenant_id = 'globex'"))
            conn.commit()
        migrate.downgrade(engine, "0001")
        assert inspect(engine).get_pk_constraint("failure_matches")["constrained_columns"] == ["id"]
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT tenant_id FROM failure_matches")).scalars().all() == ["acme"]
    finally:
        engine.dispose()

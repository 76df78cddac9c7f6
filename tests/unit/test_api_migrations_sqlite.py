"""The same migrations run on SQLite, the embedded laptop default."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from rollguard.api import migrate
from rollguard.api.db import make_engine


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    try:
        migrate.upgrade(engine)
        insp = inspect(engine)
        assert {"failure_matches", "failure_pattern_exports", "api_tokens"} <= set(insp.get_table_names())
        with engine.connect() as conn:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'idx_fm_unmatched'")).scalar_one()
            assert "WHERE catalog_entry_id IS NULL" in sql
        migrate.downgrade(engine)
        assert "failure_matches" not in inspect(engine).get_table_names()
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision(engine)
    finally:
        engine.dispose()

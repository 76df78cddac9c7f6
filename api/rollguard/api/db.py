"""Engine, session factory and the FastAPI session dependency."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

WITHHELD = "_rollguard_context_withheld"


def load_json(text: str | bytes) -> Any:
    """JSON from the database; a document nested too deeply for Python's parser (only a row
    written around the service can be) reads as a marker object instead of failing the read."""
    try:
        return json.loads(text)
    except RecursionError:
        return {WITHHELD: "nested too deeply to read"}


def make_engine(database_url: str, *, pool_size: int = 10, connect_timeout: int = 5) -> Engine:
    """An engine for ``database_url`` (SQLite file or PostgreSQL through psycopg 3).

    PostgreSQL sessions run in UTC: timestamps are then read back as the UTC values the service
    wrote, whatever the server's ``TimeZone`` (a zone far from UTC would otherwise turn
    9999-12-31T23:00Z into a year Python cannot represent, and the read would fail). A new
    connection waits at most ``connect_timeout`` seconds (libpq waits forever by default)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, json_deserializer=load_json)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL: readers do not block the writer; busy_timeout: writers queue instead of failing.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                         json_deserializer=load_json,
                         connect_args={"connect_timeout": connect_timeout, "options": "-c timezone=UTC"})


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session per request: committed by the handler, rolled back on any error."""
    session = factory()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

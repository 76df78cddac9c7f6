"""SQLAlchemy 2 models. The schema itself is owned by the Alembic migrations in migrations/;
these mappings must agree with them (tests/integration/test_api_migrations.py compares)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, String, Text, TypeDecorator, Uuid
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class FailureMatch(Base):
    """One failure event. Its id is the client's (or a random one) and unique within its tenant
    (migration 0002): the key is (tenant_id, id)."""

    __tablename__ = "failure_matches"

    tenant_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    run_id: Mapped[str] = mapped_column(String(255), nullable=False)
    error_code: Mapped[str] = mapped_column(String(255), nullable=False)
    error_message: Mapped[str | None] = mapped_column(Text)
    catalog_entry_id: Mapped[str | None] = mapped_column(String(100))
    catalog_version: Mapped[str | None] = mapped_column(String(64))
    match_type: Mapped[str] = mapped_column(String(20), nullable=False, default="unknown")
    confidence: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    category: Mapped[str | None] = mapped_column(String(50))
    severity: Mapped[str | None] = mapped_column(String(20))
    is_retryable: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    recovery_mode: Mapped[str | None] = mapped_column(String(50))
    recovery_suggestion: Mapped[str | None] = mapped_column(Text)
    recovery_attempted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    recovery_succeeded: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovered_by: Mapped[str | None] = mapped_column(String(100))
    recovery_notes: Mapped[str | None] = mapped_column(Text)
    skill_id: Mapped[str | None] = mapped_column(String(100))
    step_index: Mapped[int | None] = mapped_column(Integer)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)


class FailureStatsHourly(Base):
    """Roll-up of failure_matches per UTC hour (see rollguard.api.rollup); PostgreSQL only."""

    __tablename__ = "failure_stats_hourly"

    tenant_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    error_code: Mapped[str] = mapped_column(String(255), primary_key=True)
    category: Mapped[str] = mapped_column(String(50), primary_key=True)  # '' for none
    recovery_mode: Mapped[str] = mapped_column(String(50), primary_key=True)  # '' for none
    matched: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    failures: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    attempted: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    succeeded: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class FailurePatternExport(Base):
    """One row per attempt to export candidate_failure_patterns.json (filesystem or S3)."""

    __tablename__ = "failure_pattern_exports"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    destination: Mapped[str] = mapped_column(String(20), nullable=False)  # file | s3
    uri: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # success | failure | fallback
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    pattern_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    """A bearer token bound to a tenant and scopes. Only the sha256 of the token is stored:
    tokens are 256-bit random strings, so a plain hash (no salt/KDF) cannot be brute-forced."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    tenant_id: Mapped[str] = mapped_column(String(100), nullable=False)
    scopes: Mapped[str] = mapped_column(String(200), nullable=False)  # space-separated
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

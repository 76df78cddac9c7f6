"""failure_matches, failure_pattern_exports and api_tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

The failures schema, with from day one what would be costly to add to a full table later:
tenant_id NOT NULL (every query is tenant-scoped), the catalog version each event was
matched against (to tell which catalog missed it), and partial indexes for the two hot
subsets (unrecovered failures, unmatched errors). No now() in a partial index
predicate (PostgreSQL rejects non-immutable functions there): time windows are applied at
query time on top of (tenant_id, created_at).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "failure_matches",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant_id", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("error_code", sa.String(255), nullable=False),
        sa.Column("error_message", sa.Text()),
        sa.Column("catalog_entry_id", sa.String(100)),
        sa.Column("catalog_version", sa.String(64)),
        sa.Column("match_type", sa.String(20), nullable=False, server_default="unknown"),
        sa.Column("confidence", sa.Float(), nullable=False, server_default="0"),
        sa.Column("category", sa.String(50)),
        sa.Column("severity", sa.String(20)),
        sa.Column("is_retryable", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("recovery_mode", sa.String(50)),
        sa.Column("recovery_suggestion", sa.Text()),
        sa.Column("recovery_attempted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("recovery_succeeded", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("recovered_at", _TS),
        sa.Column("recovered_by", sa.String(100)),
        sa.Column("recovery_notes", sa.Text()),
        sa.Column("skill_id", sa.String(100)),
        sa.Column("step_index", sa.Integer()),
        sa.Column("context", _JSON, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("match_type IN ('exact', 'alias', 'pattern', 'unknown')", name="ck_fm_match_type"),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name="ck_fm_confidence"),
    )
    fm = "failure_matches"
    # Every index costs every insert, and ingest is the hot path. Of the obvious single-column
    # indexes (one per filtered column) only created_at stays (retention and the aggregation
    # job scan all tenants by time). The others are not created: every query of the service is tenant-scoped, so the
    # (tenant_id, ...) composites below serve it (tenant_id alone is their prefix; run_id and
    # error_code lookups have their composite), and category/severity/recovery_mode are only
    # filtered or grouped inside one tenant's time window. The catalog-entry lookup (a tenant's
    # past recoveries of an entry) has a partial index that new rows never enter. Measured
    # effect on ingest: docs/api.md.
    op.create_index("idx_fm_created_at", fm, ["created_at"])
    op.create_index("idx_fm_recovery_outcomes", fm, ["tenant_id", "catalog_entry_id"],
                    postgresql_where=sa.text("recovery_attempted"), sqlite_where=sa.text("recovery_attempted"))
    op.create_index("idx_fm_tenant_error", fm, ["tenant_id", "error_code", "created_at"])
    # Serves the default listing order (newest first, id as tie-breaker: a backward scan), the
    # keyset cursor, and the rows /stats reads (the window's first partial hour; whole hours come
    # from failure_stats_hourly): the included columns are all that query reads, so it is an
    # index-only scan (no heap visit per row: 75 -> 42 ms for 100,000 rows here). One wider index
    # rather than a second one: ingest pays for every index.
    op.create_index("idx_fm_tenant_time", fm, ["tenant_id", "created_at", "id"],
                    postgresql_include=["error_code", "category", "recovery_mode", "catalog_entry_id",
                                        "recovery_attempted", "recovery_succeeded"])
    op.create_index("idx_fm_tenant_run", fm, ["tenant_id", "run_id", "created_at"])
    # Same order as idx_fm_tenant_time, over the unrecovered rows only: /unrecovered pages
    # without a sort. (Its predicate is the query's: `NOT recovery_succeeded`, not `IS false`.)
    op.create_index("idx_fm_recovery_pending", fm, ["tenant_id", "created_at", "id"],
                    postgresql_where=sa.text("NOT recovery_succeeded"),
                    sqlite_where=sa.text("NOT recovery_succeeded"))
    op.create_index("idx_fm_unmatched", fm, ["tenant_id", "created_at"],
                    postgresql_where=sa.text("catalog_entry_id IS NULL"),
                    sqlite_where=sa.text("catalog_entry_id IS NULL"))

    if op.get_bind().dialect.name == "postgresql":
        # Index-only scans need the visibility map to be current; on an insert-mostly table the
        # default (vacuum after 20 % new rows) leaves the recent rows, the ones /stats reads
        # most, unmarked for a long time.
        op.execute("ALTER TABLE failure_matches SET (autovacuum_vacuum_insert_scale_factor = 0.01, "
                   "autovacuum_vacuum_scale_factor = 0.05)")

    # /stats of whole hours reads this roll-up instead of every row (rollguard.api.rollup).
    op.create_table(
        "failure_stats_hourly",
        sa.Column("tenant_id", sa.String(100), nullable=False),
        sa.Column("hour", _TS, nullable=False),
        sa.Column("error_code", sa.String(255), nullable=False),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("recovery_mode", sa.String(50), nullable=False),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("failures", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("attempted", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("succeeded", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("tenant_id", "hour", "error_code", "category", "recovery_mode", "matched",
                                name="pk_failure_stats_hourly"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Buckets are updated in place all the time: room on each page keeps the updates HOT
        # (no new primary-key entry per update) and frequent vacuums keep the table small.
        op.execute("ALTER TABLE failure_stats_hourly SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02)")

    op.create_table(
        "failure_pattern_exports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("destination", sa.String(20), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("pattern_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size_bytes", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.CheckConstraint("status IN ('success', 'failure', 'fallback')", name="ck_fpe_status"),
    )
    op.create_index("idx_fpe_created_at", "failure_pattern_exports", ["created_at"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.String(100), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("description", sa.String(200)),
        sa.Column("created_at", _TS, nullable=False, server_default=sa.func.now()),
        sa.Column("revoked_at", _TS),
    )
    op.create_index("idx_api_tokens_tenant", "api_tokens", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_table("failure_pattern_exports")
    op.drop_table("failure_stats_hourly")
    op.drop_table("failure_matches")

"""Failure ids are unique per tenant: primary key (tenant_id, id) instead of (id).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

A client chooses its events' ids (that is what makes its retries idempotent). With one id
space for every tenant, an id one tenant had used could not be stored by another: the batch
answered "duplicate" and the event was lost, and both that answer and the single POST's 409
told the caller that the id existed in some other tenant. Ids are now scoped to the tenant,
like every query of the service.

Downgrade restores the global key; it refuses (and changes nothing) while an id is used by
more than one tenant, since dropping either row would lose a failure.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

PK = "failure_matches_pkey"  # PostgreSQL's name for 0001's primary key; SQLite's is unnamed


def _set_key(columns: list[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a key: batch mode copies the table. Its reflected key has no name;
        # name it, so that it can be dropped and replaced like PostgreSQL's.
        table = sa.Table("failure_matches", sa.MetaData(), autoload_with=op.get_bind())
        table.primary_key.name = PK
        with op.batch_alter_table("failure_matches", recreate="always", copy_from=table) as b:
            b.drop_constraint(PK, type_="primary")
            b.create_primary_key(PK, columns)
        return
    op.drop_constraint(PK, "failure_matches", type_="primary")
    op.create_primary_key(PK, "failure_matches", columns)


def upgrade() -> None:
    _set_key(["tenant_id", "id"])


def downgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM (SELECT id FROM failure_matches GROUP BY id HAVING count(*) > 1) AS s")).scalar_one()
    if shared:
        raise RuntimeError(f"cannot downgrade below 0002: {shared} failure id(s) are used by more than one tenant "
                           "and a global primary key on id would have to drop one of each")
    _set_key(["id"])

"""`rollguard api`: run the failures service, migrate its database, manage its tokens."""

from __future__ import annotations

import sys
from typing import Any

import click

from rollguard.api.settings import Settings, default_database_url, default_sqlite_path

# One setting for every command that uses the failures database (api serve/migrate/token,
# failures aggregate/prune/synth): set ROLLGUARD_DATABASE_URL once and the token `token create`
# writes is the one `serve` checks. ROLLGUARD_API_DATABASE_URL (the service's own settings
# prefix, which the chart also sets) is read too.
DATABASE_URL_ENV = "ROLLGUARD_DATABASE_URL"
DB_OPTION = click.option(
    "--database-url", envvar=[DATABASE_URL_ENV, "ROLLGUARD_API_DATABASE_URL"], default=None, metavar="URL",
    help="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db "
         f"[env {DATABASE_URL_ENV} (or ROLLGUARD_API_DATABASE_URL); "
         f"default: the SQLite file {default_sqlite_path()}]")


def _settings(database_url: str | None, **extra: Any) -> Settings:
    kwargs: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if database_url:
        kwargs["database_url"] = database_url
    else:
        kwargs["database_url"] = default_database_url()
        click.echo(f"no --database-url (or {DATABASE_URL_ENV}) given: using the local SQLite file "
                   f"{default_sqlite_path()}", err=True)
    try:
        return Settings(**kwargs)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _engine(settings: Settings) -> Any:
    from sqlalchemy.exc import ArgumentError

    from rollguard.api.db import make_engine

    try:
        return make_engine(settings.database_url)
    except ArgumentError as exc:
        raise click.BadParameter(str(exc), param_hint="--database-url") from exc


def _migrate(settings: Settings) -> Any:
    from sqlalchemy.exc import OperationalError

    from rollguard.api import migrate

    engine = _engine(settings)
    try:
        migrate.upgrade(engine)
    except OperationalError as exc:
        click.echo(f"error: database unreachable ({settings.database_url.split('@')[-1]}): {exc.orig}", err=True)
        sys.exit(1)
    return engine


@click.group("api")
def api() -> None:
    """The failures service: serve, migrate, tokens."""


@api.command("serve")
@DB_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--catalog", "catalog_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="catalog.json to match against; must exist [default: /etc/rollguard/catalog/catalog.json "
                   "where the operator mounts it, else the built-in catalog, with a WARNING; /readyz says "
                   "which is in use]")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Run migrations at start-up.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each with its own connection pool; metrics are per process).")
@click.option("--max-body-bytes", envvar="ROLLGUARD_API_MAX_BODY_BYTES", default=None,
              type=click.IntRange(1024, 64 * 1024 * 1024),
              help="Largest request body; larger ones get 413 before being parsed [default: 2 MiB]")
def serve(database_url: str | None, host: str, port: int, catalog_path: str | None, migrate: bool,
          log_level: str, workers: int, max_body_bytes: int | None) -> None:
    """Run the failures API with uvicorn."""
    import os

    import uvicorn

    from rollguard.api import create_app

    settings = _settings(database_url, catalog_path=catalog_path, migrate_on_start=migrate,
                         max_body_bytes=max_body_bytes)
    if migrate:
        _migrate(settings).dispose()
    click.echo(f"failures API on http://{host}:{port} (OpenAPI: /openapi.json)", err=True)
    if workers == 1:
        app = create_app(settings.model_copy(update={"migrate_on_start": False}))
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    # Several processes: each worker builds its app from the environment.
    os.environ["ROLLGUARD_API_DATABASE_URL"] = settings.database_url
    os.environ["ROLLGUARD_API_CATALOG_PATH"] = str(settings.catalog_path)
    os.environ["ROLLGUARD_API_MIGRATE_ON_START"] = "false"
    os.environ["ROLLGUARD_API_MAX_BODY_BYTES"] = str(settings.max_body_bytes)
    uvicorn.run("rollguard.api:create_app", factory=True, host=host, port=port, log_level=log_level,
                workers=workers)


@api.command("migrate")
@DB_OPTION
def migrate_cmd(database_url: str | None) -> None:
    """Apply the database migrations (idempotent)."""
    from rollguard.api import migrate

    settings = _settings(database_url)
    engine = _migrate(settings)
    click.echo(f"database at revision {migrate.current_revision(engine)} (head)")
    engine.dispose()


@api.group("token")
def token() -> None:
    """Issue, list and revoke API tokens (bearer tokens bound to a tenant and scopes)."""


def _split_scopes(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    from rollguard.api.auth import validate_scopes

    scopes = [s.strip() for v in value for s in v.split(",") if s.strip()]
    try:
        return validate_scopes(scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("scopes: ")) from exc


@token.command("create")
@DB_OPTION
@click.option("--tenant", required=True, help="Tenant the token acts for (every query is confined to it).")
@click.option("--scopes", "scopes", multiple=True, required=True, callback=_split_scopes,
              help="failures:read, failures:write, failures:admin (comma-separated or repeated).")
@click.option("--description", default=None, help="What the token is for.")
def token_create(database_url: str | None, tenant: str, scopes: list[str], description: str | None) -> None:
    """Create a token and print it. It is shown only this once; only its hash is stored."""
    from sqlalchemy.orm import Session

    from rollguard.api.auth import create_token

    if not tenant.strip():
        raise click.BadParameter("must not be empty", param_hint="--tenant")
    engine = _migrate(_settings(database_url))
    with Session(engine) as s:
        row, tok = create_token(s, tenant.strip(), scopes, description)
        s.commit()
        click.echo(f"id: {row.id}  tenant: {row.tenant_id}  scopes: {row.scopes}", err=True)
    click.echo(tok)
    engine.dispose()


@token.command("list")
@DB_OPTION
@click.option("--tenant", default=None, help="Only this tenant's tokens.")
def token_list(database_url: str | None, tenant: str | None) -> None:
    """List tokens (id, prefix, tenant, scopes, state); never the tokens themselves."""
    from sqlalchemy.orm import Session

    from rollguard.api.auth import list_tokens

    engine = _migrate(_settings(database_url))
    with Session(engine) as s:
        rows = list_tokens(s, tenant)
        click.echo(f"{'ID':36}  {'PREFIX':12}  {'TENANT':16}  {'STATE':8}  SCOPES")
        for r in rows:
            state = "revoked" if r.revoked_at else "active"
            click.echo(f"{r.id!s:36}  {r.prefix:12}  {r.tenant_id:16}  {state:8}  {r.scopes}")
    engine.dispose()


@token.command("revoke")
@DB_OPTION
@click.argument("token_id")
def token_revoke(database_url: str | None, token_id: str) -> None:
    """Revoke a token by its id (or its printed prefix); it is refused from then on."""
    from sqlalchemy.orm import Session

    from rollguard.api.auth import revoke_token

    engine = _migrate(_settings(database_url))
    with Session(engine) as s:
        try:
            row = revoke_token(s, token_id)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="TOKEN_ID") from exc
        if row is None:
            click.echo(f"error: no token with id or prefix {token_id!r}", err=True)
            sys.exit(1)
        s.commit()
        click.echo(f"revoked {row.id} (tenant {row.tenant_id})")
    engine.dispose()

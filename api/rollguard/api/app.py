"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rollguard import __version__
from rollguard.api import http, migrate
from rollguard.api.db import make_engine, make_sessionmaker
from rollguard.api.matching import load_matcher
from rollguard.api.metrics import ApiMetrics
from rollguard.api.routes import failures, health, recovery
from rollguard.api.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The failures service for ``settings`` (default: from the environment); runs the
    migrations first when ``settings.migrate_on_start``."""
    settings = settings or Settings()
    engine = make_engine(settings.database_url, pool_size=settings.pool_size,
                         connect_timeout=settings.db_connect_timeout)
    factory = make_sessionmaker(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine.dispose()

    if settings.migrate_on_start:
        migrate.upgrade(engine)

    app = FastAPI(title="rollguard failures API", version=__version__, lifespan=lifespan,
                  max_body_size=settings.max_body_bytes,
                  description="Every runtime failure matched against the failure catalog, queryable and recoverable.")
    http.install(app, retry_after=settings.retry_after_seconds)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = factory
    app.state.matcher = load_matcher(settings.catalog_path)
    app.state.metrics = ApiMetrics(factory)
    app.include_router(failures.router)
    app.include_router(recovery.router)
    app.include_router(health.router)
    return app

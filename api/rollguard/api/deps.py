"""FastAPI dependencies for settings, DB session, matcher and metrics (all from app.state)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from rollguard.api.db import session_scope
from rollguard.api.matching import CatalogMatcher
from rollguard.api.metrics import ApiMetrics
from rollguard.api.settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    yield from session_scope(request.app.state.sessionmaker)


def get_matcher(request: Request) -> CatalogMatcher:
    matcher: CatalogMatcher = request.app.state.matcher
    return matcher


def get_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
MatcherDep = Annotated[CatalogMatcher, Depends(get_matcher)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]

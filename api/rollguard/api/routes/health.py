"""/healthz (process up), /readyz (database reachable), /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from rollguard.api.deps import MetricsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Database unreachable; retry after `Retry-After` seconds",
                                         "headers": {"Retry-After": {"schema": {"type": "integer"}}}}})
def readyz(request: Request) -> JSONResponse:
    """200 with the catalog version when the database answers, else 503 (not ready)."""
    try:
        with request.app.state.sessionmaker() as s:
            s.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__},
                            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": str(request.app.state.settings.retry_after_seconds)})
    matcher = request.app.state.matcher
    # which catalog is in use: the mounted file's path, or the built-in default catalog
    return JSONResponse({"status": "ok", "catalog": matcher.source, "catalog_version": matcher.version})


@router.get("/metrics", response_class=Response)
def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

"""/api/v1/failures: ingest, list, detail, stats, unrecovered, mark recovery."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from rollguard.api import service
from rollguard.api.auth import Reader, Writer
from rollguard.api.deps import MatcherDep, MetricsDep, SessionDep
from rollguard.api.http import StrictJSONRoute, error_responses
from rollguard.api.metrics import ApiMetrics
from rollguard.api.orm import FailureMatch
from rollguard.api.schemas import (
    BatchIn,
    BatchOut,
    FailureIn,
    FailureList,
    FailureOut,
    RecoveryPatch,
    Stats,
)
from rollguard.sdk.limits import clean_text
from rollguard.sdk.matcher import UNKNOWN_CODE

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {401: {"description": "Missing, invalid or revoked token"},
                                                403: {"description": "The token lacks the scope"},
                                                **error_responses(503)}
BODY_ERRORS = error_responses(413)
router = APIRouter(prefix="/api/v1/failures", tags=["failures"], responses=AUTH_ERRORS, route_class=StrictJSONRoute)

SinceHours = Annotated[int, Query(ge=1, le=24 * 366, description="Time window in hours")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=100_000,
                              description="Rows to skip (after `cursor` if given); prefer `cursor` for deep pages")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")]
StatusQ = Annotated[service.Status, Query(description="unrecovered | recovered | all")]
Text255 = Annotated[str | None, Query(min_length=1, max_length=255)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such failure for this tenant"}}


def _invalid(field: str, msg: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         detail=[{"loc": ["query", field], "msg": msg, "type": "value_error"}])


def _count(metrics: ApiMetrics, items: list[service.Ingested]) -> None:
    for it in items:
        if it.duplicate:
            continue
        if it.match.hit:
            metrics.hits.labels(it.match.entry_code, it.match.category or "").inc()
        else:
            metrics.misses.inc()


@router.post("", status_code=status.HTTP_201_CREATED, response_model=FailureOut, responses=BODY_ERRORS)
def create_failure(event: FailureIn, principal: Writer, session: SessionDep, matcher: MatcherDep,
                   metrics: MetricsDep) -> FailureMatch | dict[str, Any]:
    """Match one failure event against the mounted catalog version, persist it, return it.
    Re-sending an event with the same `id` returns the stored one (idempotent; ids are unique
    within the caller's tenant)."""
    items = service.ingest(session, principal.tenant_id, [event], matcher)
    session.commit()
    _count(metrics, items)
    row = service.get_failure(session, principal.tenant_id, items[0].row["id"])
    # None only if retention deleted it in between (an old `occurred_at`): answer what was stored
    return row if row is not None else items[0].row


@router.post("/batch", status_code=status.HTTP_201_CREATED, response_model=BatchOut, responses=BODY_ERRORS)
def create_batch(batch: BatchIn, principal: Writer, session: SessionDep, matcher: MatcherDep,
                 metrics: MetricsDep) -> dict[str, Any]:
    """Many events in one transaction: all are stored, or (any invalid) none."""
    items = service.ingest(session, principal.tenant_id, batch.events, matcher)
    session.commit()
    _count(metrics, items)
    return {
        "accepted": sum(not i.duplicate for i in items),
        "duplicates": sum(i.duplicate for i in items),
        "catalog_version": matcher.version,
        # plain dicts: FastAPI validates them once against BatchOut (models would be validated twice)
        "items": [{"id": i.row["id"], "error_code": i.row["error_code"], "catalog_entry_id": i.match.entry_code,
                   "match_type": i.match.match_type, "confidence": i.match.confidence,
                   "category": i.match.category, "recovery_mode": i.match.recovery_mode,
                   "duplicate": i.duplicate} for i in items],
    }


def _page(session: SessionDep, tenant: str, *, since_hours: int, limit: int, offset: int, cursor: str | None,
          **filters: Any) -> dict[str, Any]:
    filters = {k: clean_text(v) if isinstance(v, str) else v for k, v in filters.items()}
    try:
        rows, nxt = service.list_failures(session, tenant, since_hours=since_hours, limit=limit, offset=offset,
                                          cursor=cursor, **filters)
    except service.CursorError as exc:
        raise _invalid("cursor", str(exc)) from exc
    return {"items": rows, "limit": limit, "offset": offset, "next_cursor": nxt}


@router.get("", response_model=FailureList)
def list_failures(principal: Reader, session: SessionDep, run_id: Text255 = None, error_code: Text255 = None,
                  category: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
                  status: StatusQ = "all", since_hours: SinceHours = 24, limit: Limit = 100, offset: Offset = 0,
                  cursor: Cursor = None) -> dict[str, Any]:
    """The caller's tenant's failures, newest first."""
    return _page(session, principal.tenant_id, since_hours=since_hours, limit=limit, offset=offset, cursor=cursor,
                 run_id=run_id, error_code=error_code, category=category, status=status)


@router.api_route("/batch", methods=["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"], include_in_schema=False)
def batch_other_methods() -> None:
    """405 (Allow: POST): without this route, GET /batch would reach GET /{failure_id}."""
    raise HTTPException(status.HTTP_405_METHOD_NOT_ALLOWED)


@router.get("/stats", response_model=Stats)
def get_stats(principal: Reader, session: SessionDep, since_hours: SinceHours = 24) -> dict[str, Any]:
    """Hit rate, counts by code and category, recovery success rate by mode."""
    return service.stats(session, principal.tenant_id, since_hours)


@router.get("/unrecovered", response_model=FailureList)
def list_unrecovered(principal: Reader, session: SessionDep,
                     category: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
                     since_hours: SinceHours = 24, limit: Limit = 100, offset: Offset = 0,
                     cursor: Cursor = None) -> dict[str, Any]:
    """Failures that need attention: not (yet) recovered."""
    return _page(session, principal.tenant_id, since_hours=since_hours, limit=limit, offset=offset, cursor=cursor,
                 category=category, status="unrecovered")


@router.get("/{failure_id}", response_model=FailureOut, responses=NOT_FOUND)
def get_failure(failure_id: uuid.UUID, principal: Reader, session: SessionDep) -> FailureMatch:
    row = service.get_failure(session, principal.tenant_id, failure_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="failure not found")
    return row


@router.patch("/{failure_id}/recovery", response_model=FailureOut, responses={
    **NOT_FOUND, **BODY_ERRORS,
    409: {"description": "The failure is recovered already and the body says the recovery failed: "
                         "a recovery is final"}})
def patch_recovery(failure_id: uuid.UUID, body: RecoveryPatch, principal: Writer, session: SessionDep,
                   metrics: MetricsDep) -> FailureMatch:
    """Record the outcome of a recovery attempt (by the SDK or an operator). Until the failure
    is recovered every attempt is recorded; the first success sets `recovered_at`, and from
    then on the failure stays recovered: another success returns it unchanged, a failed
    attempt gets 409."""
    row, outcome = service.mark_recovery(session, principal.tenant_id, failure_id, body.recovery_succeeded,
                                         body.recovered_by, body.notes)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="failure not found")
    if outcome == "conflict":
        at = row.recovered_at.isoformat() if row.recovered_at else "?"
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"failure recovered at {at}; a recovery is final")
    session.commit()
    if outcome == "recorded":
        counter = metrics.recovery_success if body.recovery_succeeded else metrics.recovery_failure
        # unmatched failures share one label value: a caller's unknown code never becomes a series
        counter.labels(row.recovery_mode or "", row.catalog_entry_id or UNKNOWN_CODE).inc()
    return row

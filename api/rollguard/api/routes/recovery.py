"""POST /api/v1/recovery/suggest: the catalog's recovery for an error, with how often this tenant
already tried it and how often it worked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from rollguard.api import service
from rollguard.api.auth import Reader
from rollguard.api.deps import MatcherDep, SessionDep
from rollguard.api.http import StrictJSONRoute
from rollguard.api.routes.failures import AUTH_ERRORS, BODY_ERRORS
from rollguard.api.schemas import SuggestIn, SuggestOut

router = APIRouter(prefix="/api/v1/recovery", tags=["recovery"], responses=AUTH_ERRORS, route_class=StrictJSONRoute)


@router.post("/suggest", response_model=SuggestOut, responses=BODY_ERRORS)
def suggest(body: SuggestIn, principal: Reader, session: SessionDep, matcher: MatcherDep) -> dict[str, Any]:
    m = matcher.match_event(body.error_code, body.error_message)
    attempts, successes = (service.past_recoveries(session, principal.tenant_id, m.entry_code)
                           if m.entry_code else (0, 0))
    return {"matched": m.hit, "catalog_entry_id": m.entry_code, "match_type": m.match_type,
            "confidence": m.confidence, "category": m.category, "severity": m.severity, "retryable": m.retryable,
            "recovery_mode": m.recovery_mode, "recovery_suggestion": m.recovery_suggestion,
            "catalog_version": matcher.version, "past_attempts": attempts, "past_successes": successes}

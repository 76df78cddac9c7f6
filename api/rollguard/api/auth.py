"""Bearer tokens bound to a tenant and scopes; only their sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from rollguard.api.deps import get_session
from rollguard.api.orm import ApiToken

SCOPES = ("failures:read", "failures:write", "failures:admin")
TOKEN_PREFIX = "rgf_"  # noqa: S105 (a prefix, not a secret)
# failures:admin implies the other two.
_IMPLIED = {"failures:admin": set(SCOPES), "failures:write": {"failures:write"}, "failures:read": {"failures:read"}}

bearer = HTTPBearer(auto_error=False, description="A token from `rollguard api token create`")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 bits


def validate_scopes(scopes: Sequence[str]) -> list[str]:
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"scopes: {', '.join(bad) or 'none given'} not in {', '.join(SCOPES)}")
    return sorted(set(scopes))


def create_token(session: Session, tenant_id: str, scopes: Sequence[str],
                 description: str | None = None) -> tuple[ApiToken, str]:
    """Returns the row and the plaintext token, which is never stored and shown only once."""
    if not tenant_id.strip():
        raise ValueError("tenant: must not be empty")
    token = generate_token()
    row = ApiToken(token_hash=hash_token(token), prefix=token[:12], tenant_id=tenant_id,
                   scopes=" ".join(validate_scopes(scopes)), description=description)
    session.add(row)
    session.flush()
    return row, token


def revoke_token(session: Session, token_id: str) -> ApiToken | None:
    """Revoke by id or by the shown prefix; returns None when nothing matched."""
    row: ApiToken | None = None
    try:
        row = session.get(ApiToken, uuid.UUID(token_id))
    except ValueError:
        rows = session.scalars(select(ApiToken).where(ApiToken.prefix == token_id)).all()
        if len(rows) > 1:
            raise ValueError(f"token: prefix {token_id!r} is ambiguous, use the id") from None
        row = rows[0] if rows else None
    if row is not None and row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


def list_tokens(session: Session, tenant_id: str | None = None) -> list[ApiToken]:
    q = select(ApiToken).order_by(ApiToken.created_at)
    if tenant_id is not None:
        q = q.where(ApiToken.tenant_id == tenant_id)
    return list(session.scalars(q))


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    scopes: frozenset[str]
    token_id: uuid.UUID


def _unauthorized(msg: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=msg, headers={"WWW-Authenticate": "Bearer"})


def authenticate(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                 session: Annotated[Session, Depends(get_session)]) -> Principal:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("missing bearer token")
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(credentials.credentials))).first()
    if row is None or row.revoked_at is not None:
        raise _unauthorized("invalid or revoked token")
    granted: set[str] = set()
    for s in row.scopes.split():
        granted |= _IMPLIED.get(s, set())
    return Principal(tenant_id=row.tenant_id, scopes=frozenset(granted), token_id=row.id)


def require(scope: str) -> Callable[[Principal], Principal]:
    def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if scope not in principal.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"token lacks scope {scope}")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require("failures:read"))]
Writer = Annotated[Principal, Depends(require("failures:write"))]

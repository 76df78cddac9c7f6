"""How the service reads request bodies and answers errors, for every route.

- Bodies: at most ``Settings.max_body_bytes`` (FastAPI's own limit: 413 before the body is read
  further, let alone parsed); then strict JSON: UTF-8 only, no ``NaN``/``Infinity`` tokens, no
  number too large for a float, nesting bounded by the parser (never a ``RecursionError``).
  Anything else is a 422 ``json_invalid`` at ``loc: ["body"]``, as FastAPI answers a syntax error.
- 422 bodies name the field (``loc``) and never echo the input: no ``input``, ``loc`` parts and
  messages shortened and made encodable, at most ``MAX_ERRORS`` errors.
- 405 carries the methods of every route of the path in ``Allow`` (Starlette lists only the
  first route's).
- A database that cannot be reached (or a connection pool that stays exhausted) is a 503 with
  ``Retry-After``, not a 500.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

log = logging.getLogger(__name__)

MAX_ERRORS = 50
_TEXT_MAX = 200


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_json(body: bytes) -> Any:
    """The JSON value of a request body; ``json.JSONDecodeError`` (which FastAPI answers with a
    422 ``json_invalid``) for anything that is not strict UTF-8 JSON (RFC 8259): invalid UTF-8
    (lone surrogates as bytes included), ``NaN``/``Infinity``, numbers beyond a float or with
    more digits than Python converts, nesting deeper than the parser's recursion allows."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("body is not valid UTF-8", "", exc.start) from None
    try:
        return _decoder.decode(text)
    except json.JSONDecodeError as exc:  # the document itself is not kept: errors never echo it
        raise json.JSONDecodeError(exc.msg, "", exc.pos) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None
    except ValueError as exc:  # our constant/float hooks, Python's int digit limit
        raise json.JSONDecodeError(_short(str(exc)), "", 0) from None


class StrictJSONRequest(Request):
    """A request whose ``json()`` is `parse_json` (FastAPI calls it for JSON bodies)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """APIRoute whose handler sees a `StrictJSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


def _short(text: str, n: int = _TEXT_MAX) -> str:
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= n else text[: n - 1] + "…"


def public_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors as the 422 body lists them: ``loc``, ``msg``, ``type`` and small
    ``ctx`` values (limits such as ``max_length``); never the ``input``."""
    out: list[dict[str, Any]] = []
    for err in errors[:MAX_ERRORS]:
        loc = [p if isinstance(p, int) and not isinstance(p, bool) else _short(str(p), 100)
               for p in err.get("loc", ())]
        item: dict[str, Any] = {"loc": loc, "msg": _short(str(err.get("msg", ""))),
                                "type": _short(str(err.get("type", "value_error")), 50)}
        ctx = {str(k): (_short(v) if isinstance(v, str) else v) for k, v in (err.get("ctx") or {}).items()
               if isinstance(v, bool | int | str) or (isinstance(v, float) and math.isfinite(v))}
        if ctx:
            item["ctx"] = ctx
        out.append(item)
    if len(errors) > MAX_ERRORS:
        out.append({"loc": ["body"], "msg": f"and {len(errors) - MAX_ERRORS} more errors",
                    "type": "too_many_errors"})
    return out


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": public_errors(exc.errors())}, status_code=422)


_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _method_table(app: FastAPI) -> list[tuple[re.Pattern[str], int, set[str]]]:
    table: list[tuple[re.Pattern[str], int, set[str]]] | None = getattr(app.state, "allow_table", None)
    if table is None:
        table = []
        for path, item in app.openapi().get("paths", {}).items():
            methods = {m.upper() for m in item if m in _HTTP_METHODS}  # FastAPI routes no implicit HEAD
            table.append((compile_path(path)[0], path.count("{"), methods))
        app.state.allow_table = table
    return table


def allowed_methods(request: Request) -> list[str]:
    """The documented methods (OpenAPI) of the resource the request's path names. Where several
    path templates match, the most specific ones (fewest parameters) name the resource:
    /failures/batch is the batch, not a failure whose id is "batch"."""
    matches = [(params, methods) for rx, params, methods in _method_table(request.app)
               if rx.match(request.url.path)]
    if not matches:
        return []
    fewest = min(params for params, _ in matches)
    return sorted(set().union(*(methods for params, methods in matches if params == fewest)))


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        exc = StarletteHTTPException(405, exc.detail, headers={"Allow": ", ".join(allowed_methods(request))})
    return await http_exception_handler(request, exc)


# What "the database cannot be reached right now" raises: SQLAlchemy's wrappers, psycopg's own
# classes (the COPY path uses psycopg directly) and a pool that stays exhausted. Other database
# errors (constraint, data, programming) are bugs and stay 500s.
UNAVAILABLE: tuple[type[Exception], ...] = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                                            sa_exc.DisconnectionError, psycopg.OperationalError,
                                            psycopg.InterfaceError)


def unavailable_handler(retry_after: int) -> Callable[[Request, Exception], Coroutine[Any, Any, Response]]:
    async def handler(request: Request, exc: Exception) -> Response:
        # the driver's message names host and port, never the password
        log.warning("database unavailable (%s %s): %s", request.method, request.url.path,
                    _short(str(getattr(exc, "orig", None) or exc), 300))
        return JSONResponse({"detail": "database unavailable, retry later"}, status_code=503,
                            headers={"Retry-After": str(retry_after)})

    return handler


def install(app: FastAPI, *, retry_after: int) -> None:
    """Register the error handlers above on ``app``."""
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    for cls in UNAVAILABLE:
        app.add_exception_handler(cls, unavailable_handler(retry_after))


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the answers every route may give besides its own."""
    detail = {"application/json": {"schema": {"type": "object", "required": ["detail"],
                                              "properties": {"detail": {"type": "string"}}}}}
    retry = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}
    known: dict[int, dict[str, Any]] = {
        # JSON when the body turned out too large while being read; plain text (Starlette's) when
        # Content-Length announced it
        413: {"description": "Request body larger than the limit (`max_body_bytes`, 2 MiB by default)",
              "content": {**detail, "text/plain": {"schema": {"type": "string"}}}},
        503: {"description": "Database unavailable; retry after `Retry-After` seconds", "content": detail,
              "headers": retry},
    }
    return {c: known[c] for c in codes}

"""Prometheus: an instant query through the HTTP API, answered as value | no data | error."""

from __future__ import annotations

import math
from typing import Any

import httpx

from rollguard.operator.metrics.base import NoData, QueryError, QueryResult, Value


class PrometheusProvider:
    def __init__(self, address: str, timeout: float = 5.0, client: httpx.Client | None = None) -> None:
        self.address = address.rstrip("/")
        self.client = client or httpx.Client(timeout=timeout)

    def run_query(self, query: str) -> QueryResult:
        try:
            resp = self.client.get(f"{self.address}/api/v1/query", params={"query": query})
        except httpx.HTTPError as e:
            return QueryError(f"Prometheus at {self.address} unreachable: {type(e).__name__}: {e}")
        try:
            body: dict[str, Any] = resp.json()
        except ValueError:
            return QueryError(f"Prometheus answered HTTP {resp.status_code} with a body that is not JSON")
        if body.get("status") != "success":
            return QueryError(f"{body.get('errorType', 'error')}: {body.get('error', f'HTTP {resp.status_code}')}")
        return parse_result(body.get("data", {}))

    def is_online(self) -> bool:
        try:
            return self.client.get(f"{self.address}/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.client.close()


def parse_result(data: dict[str, Any]) -> QueryResult:
    """One number out of a query's ``data``; an empty vector or NaN is no data, several series an error."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _number(result[1] if isinstance(result, list) else None, 1)
    if kind == "vector":
        assert isinstance(result, list)
        if not result:
            return NoData("empty result")
        if len(result) > 1:
            return QueryError(f"query returned {len(result)} series; aggregate it to one (sum, avg, max ...)")
        return _number(result[0].get("value", [None, None])[1], 1)
    return QueryError(f"unsupported result type {kind!r}: use an instant vector or scalar query")


def _number(raw: Any, samples: int) -> QueryResult:
    try:
        x = float(raw)
    except (TypeError, ValueError):
        return QueryError(f"not a number: {raw!r}")
    if math.isnan(x):
        return NoData("NaN (no traffic in the window?)")
    return Value(x, samples)

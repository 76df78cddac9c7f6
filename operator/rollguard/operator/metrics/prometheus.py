"""Prometheus through its HTTP API (``prometheus-api-client``), answered as value | no data | error.

The client (``prometheus_api_client.PrometheusConnect``) brings the HTTP session: TLS
verification, headers for auth, retries on transient answers. What a result *means* for a
canary stays here: :func:`parse_result` reads an instant query's result (the HTTP API's
``data.result``, https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries)
into a :class:`~rollguard.operator.metrics.base.Value`, a ``NoData`` or a ``QueryError``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any, cast

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from rollguard.models.canary import DURATION_PATTERN, parse_duration
from rollguard.operator.metrics.base import NoData, QueryError, QueryResult, Value

# Retry what a restarting or overloaded Prometheus answers, briefly: an analysis check must not
# hang for longer than its interval. The last answer is kept (raise_on_status=False), so its
# error text still reaches the verdict.
RETRY = Retry(total=2, backoff_factor=0.2, status_forcelist=(502, 503, 504), allowed_methods=("GET", "POST"),
              raise_on_status=False)
_HTTP_ERROR = re.compile(r"^HTTP Status Code (\d+) \((b'.*'|b\".*\")\)$", re.DOTALL)


class PrometheusProvider:
    """A Prometheus server at ``address`` (``http(s)://host:port[/prefix]``).

    ``timeout`` bounds each HTTP request (seconds); ``session`` replaces the client's own
    ``requests.Session`` (tests, or a session that carries client certificates).
    """

    def __init__(self, address: str, timeout: float = 5.0, session: requests.Session | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.address = address.rstrip("/")
        opts: dict[str, Any] = {}
        if headers:
            opts["headers"] = headers
        if session is not None:
            opts["session"] = session
        # the client's annotation says int; requests takes any number of seconds
        self.client = PrometheusConnect(url=self.address, retry=RETRY, timeout=cast(int, timeout), **opts)

    def run_query(self, query: str) -> QueryResult:
        try:
            result = self.client.custom_query(query)
        except PrometheusApiClientException as e:
            return QueryError(_api_error(str(e)))
        except requests.RequestException as e:
            return QueryError(f"Prometheus at {self.address} unreachable: {type(e).__name__}: {e}")
        except ValueError as e:  # a body that is not JSON
            return QueryError(f"Prometheus at {self.address} answered something that is not its API: {e}")
        return parse_result(_as_data(result))

    def is_online(self) -> bool:
        """Whether the query API answers (a constant query: the same path, auth and TLS as the analysis)."""
        try:
            self.client.custom_query("vector(1)")
        except (PrometheusApiClientException, requests.RequestException, ValueError):
            return False
        return True

    def scrape_interval(self, namespace: str) -> float | None:
        """The longest scrape interval (seconds) of the active targets in ``namespace``.

        From ``/api/v1/targets`` (each active target's ``scrapeInterval``, Prometheus >= 2.33;
        https://prometheus.io/docs/prometheus/latest/querying/api/#targets), matched on the
        ``namespace`` target label that pod and service discovery (a PodMonitor's relabelling)
        set. None when Prometheus cannot say: unreachable, no target in that namespace, or too old.
        """
        try:
            data = self.client.get_targets(state="active")
        except (PrometheusApiClientException, requests.RequestException, ValueError):
            return None
        return scrape_interval_of(data, namespace)

    def close(self) -> None:
        self.client.close()


def scrape_interval_of(targets: Any, namespace: str) -> float | None:
    """The longest ``scrapeInterval`` (seconds) among ``targets["activeTargets"]`` labelled ``namespace``."""
    found: list[float] = []
    for t in (targets or {}).get("activeTargets") or []:
        if not isinstance(t, dict) or (t.get("labels") or {}).get("namespace") != namespace:
            continue
        raw = t.get("scrapeInterval")
        if isinstance(raw, str) and re.fullmatch(DURATION_PATTERN, raw):
            found.append(parse_duration(raw))
    return max(found) if found else None


def _api_error(text: str) -> str:
    """Prometheus' own words out of the client's ``HTTP Status Code 400 (b'{...}')``."""
    m = _HTTP_ERROR.match(text)
    if m is None:
        return text
    status = m.group(1)
    try:
        body = json.loads(ast.literal_eval(m.group(2)))
    except (ValueError, SyntaxError):
        return f"HTTP {status}: {ast.literal_eval(m.group(2))!r}"[:500]
    if isinstance(body, dict) and body.get("status") == "error":
        return f"{body.get('errorType', 'error')}: {body.get('error', f'HTTP {status}')}"
    return f"HTTP {status}"


def _as_data(result: Any) -> dict[str, Any]:
    """The client returns ``data.result`` only: a scalar is ``[time, "value"]``, a vector a list of series."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return {"resultType": "scalar", "result": result}
    if isinstance(result, list) and any(isinstance(s, dict) and "values" in s for s in result):
        return {"resultType": "matrix", "result": result}
    return {"resultType": "vector", "result": result}


def parse_result(data: dict[str, Any]) -> QueryResult:
    """One number out of a query's ``data``; an empty vector or NaN is no data, several series an error.

    An empty vector is ``NoData(kind="empty")``: nothing matched (with traffic on that track, the
    engine reads it as 0; see ``operator/canary/analysis.py``). NaN, which ``0/0`` gives when a
    ratio's denominator is zero, is ``NoData(kind="nan")``. ±Inf is a value: the engine decides.
    """
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
        return NoData("NaN (no traffic in the window?)", kind="nan")
    return Value(x, samples)

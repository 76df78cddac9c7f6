"""Schemathesis hooks for tests/integration/test_api_schemathesis.py (SCHEMATHESIS_HOOKS).

A list's ``cursor`` is opaque: only a cursor this API issued is valid, which no JSON Schema can
say, so any string of at most 512 characters is "schema-valid" and a made-up one gets a 422
naming ``cursor``. Such cursors are replaced by a real one (``ROLLGUARD_ST_CURSOR``), so that
the positive checks still judge every other parameter of a request that carries a cursor.
Crafted cursors have their own tests (test_api_hostile_input.py)."""

from __future__ import annotations

import os
from typing import Any

import schemathesis


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    cursor = (case.query or {}).get("cursor")
    if isinstance(cursor, str) and len(cursor) <= 512:
        case.query["cursor"] = os.environ["ROLLGUARD_ST_CURSOR"]
    return case

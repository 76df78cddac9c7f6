"""The failures API (and the SDK reporter, which shares its matcher) must recognise messages with
the catalog the operator mounts: its entries keep aliases and patterns under `match` (found by
the demo: every message was stored as unmatched)."""

from __future__ import annotations

import json
from pathlib import Path

from rollguard.api.matching import load_matcher
from rollguard.catalog import load_default_catalog


def test_patterns_and_aliases_of_a_rendered_catalog_match(tmp_path: Path) -> None:
    spec = load_default_catalog()
    doc = {"kind": "FailureCatalog", "name": "agents", "version": spec.version, "contentHash": "x",
           "entries": [e.model_dump(by_alias=True, exclude_none=True, mode="json") for e in spec.entries]}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc))
    m = load_matcher(path)
    hit = m.match_event(None, "ConnectionResetError: [Errno 104] Connection reset by peer")
    assert (hit.entry_code, hit.match_type) == ("CONNECTION_RESET", "pattern")
    assert m.match_event(None, 'psycopg.errors.UndefinedColumn: column "x" does not exist').entry_code == \
        "DB_SCHEMA_MISMATCH"
    assert m.match("TooManyRequests").entry_code == "RATE_LIMITED"  # an alias
    assert m.match_event(None, "nothing the catalog knows").entry_code is None

"""Pure pieces of the failures service: matching seam, cursors, labels, ages, template mining helpers."""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollguard.api.matching import BUILTIN_CATALOG, CatalogMatcher, MatcherHolder, load_matcher
from rollguard.api.metrics import code_label
from rollguard.api.schemas import FailureIn
from rollguard.api.service import CursorError, decode_cursor, encode_cursor
from rollguard.failures.aggregate import suggest, template_regex
from rollguard.failures.prune import parse_age


def test_match_types_and_precedence() -> None:
    m = CatalogMatcher(BUILTIN_CATALOG)
    assert (m.match("timeout").match_type, m.match("timeout").entry_code) == ("exact", "TIMEOUT")
    assert m.match("ETIMEDOUT").match_type == "alias"
    hit = m.match("the call timed out after 3s")
    assert (hit.match_type, hit.entry_code, hit.confidence) == ("pattern", "TIMEOUT", 0.8)
    assert m.match("something else entirely").match_type == "unknown"
    # the code wins over the message; the message is used when the code is unknown
    assert m.match_event("ECONNREFUSED", "rate limit").entry_code == "CONNECTION_REFUSED"
    assert m.match_event("MY_CODE", "permission denied").entry_code == "PERMISSION_DENIED"
    assert not m.match_event("MY_CODE", None).hit


def test_catalog_file_version_and_hot_reload(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    assert load_matcher(path).version == CatalogMatcher(BUILTIN_CATALOG).version  # absent: built-in
    path.write_text(json.dumps({"entries": [{"code": "ONLY_ONE", "category": "X"}]}))
    holder = MatcherHolder(path, check_every=0)
    v1 = holder.get().version
    assert holder.get().match("ONLY_ONE").hit and not holder.get().match("TIMEOUT").hit
    path.write_text(json.dumps({"entries": [{"code": "TWO", "category": "Y"}]}))
    os.utime(path, (1, 1))
    assert holder.get().version != v1 and holder.get().match("TWO").hit
    path.write_text("{not json")
    os.utime(path, (2, 2))
    assert holder.get().match("TWO").hit  # a broken update keeps the last good version


def test_cursor_roundtrip_and_garbage() -> None:
    t, i = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(t, i)) == (t, i)
    for bad in ("", "!!!", "eyJ0IjogMX0", encode_cursor(t, i)[:-3]):
        with pytest.raises(CursorError):
            decode_cursor(bad)


def test_miss_labels_stay_bounded() -> None:
    assert code_label("MY_CODE.v2") == "MY_CODE.v2"
    assert code_label("connection reset by peer at 10.0.0.1") == "other"
    assert code_label("X" * 65) == "other"


def test_event_text_is_made_storable() -> None:
    ev = FailureIn.model_validate({"run_id": "a\x00b", "error_code": "E", "context": {"k\x00": ["v\x00"]},
                                   "occurred_at": "2026-01-01T00:00:00+16:00"})
    assert ev.run_id == "a\ufffdb" and ev.context == {"k\ufffd": ["v\ufffd"]}
    assert ev.occurred_at == datetime(2025, 12, 31, 8, tzinfo=UTC) and ev.occurred_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="timezone"):
        FailureIn.model_validate({"run_id": "r", "error_code": "E", "occurred_at": "2026-01-01T00:00:00"})


def test_parse_age() -> None:
    assert parse_age("90d") == timedelta(days=90)
    assert parse_age("12h") == timedelta(hours=12) and parse_age("2w") == timedelta(weeks=2)
    for bad in ("90", "d", "1.5d", "-3d", "90 days"):
        with pytest.raises(ValueError, match="age like"):
            parse_age(bad)


def test_template_regex_and_suggestion() -> None:
    rx = template_regex("worker <NUM> crashed: segfault at <HEX> (<*>)")
    assert re.fullmatch(rx, "worker 12 crashed: segfault at 0xff (core dumped)")
    assert not re.fullmatch(rx, "worker 12 exited normally")
    assert suggest("upstream timed out after <NUM>") == ("TRANSIENT", "RETRY_EXPONENTIAL")
    assert suggest("flux capacitor <*>") == ("UNKNOWN", "MANUAL")

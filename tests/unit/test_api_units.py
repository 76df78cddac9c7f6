"""Pure pieces of the failures service: matching seam, cursors, labels, ages, template mining helpers."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollguard.api.matching import UNKNOWN, load_matcher
from rollguard.api.metrics import code_label
from rollguard.api.schemas import FailureIn
from rollguard.api.service import CursorError, decode_cursor, encode_cursor
from rollguard.catalog import ErrorCode, content_hash, load_default_catalog, render_document
from rollguard.failures.aggregate import suggest, template_regex
from rollguard.failures.prune import parse_age
from rollguard.models.catalog import FailureCatalogSpec


def test_match_types_and_precedence() -> None:
    m = load_matcher(None)  # no mounted catalog: the shipped default one
    assert m.source == "built-in default catalog" and len(m.matcher.codes) == len(ErrorCode)
    exact = m.match("READ_TIMEOUT")
    assert (exact.match_type, exact.entry_code, exact.confidence) == ("exact", "READ_TIMEOUT", 1.0)
    assert (exact.category, exact.severity, exact.retryable, exact.recovery_mode) == (
        "TIMEOUT", "MEDIUM", True, "RETRY_EXPONENTIAL")
    assert exact.recovery_suggestion
    alias = m.match("ETIMEDOUT")
    assert (alias.match_type, alias.entry_code, alias.confidence) == ("alias", "CONNECT_TIMEOUT", 0.95)
    hit = m.match("psycopg.errors.DeadlockDetected: deadlock detected")
    assert (hit.match_type, hit.entry_code, hit.category) == ("pattern", "DB_DEADLOCK", "DEPENDENCY")
    assert 0.5 <= hit.confidence < 0.95
    assert m.match("flux capacitor melted") is UNKNOWN and not UNKNOWN.hit
    # the code wins over the message; the message is used when the code is unknown
    assert m.match_event("ECONNREFUSED", "429 Too Many Requests").entry_code == "CONNECTION_REFUSED"
    assert m.match_event("MY_CODE", "permission denied for table t").entry_code == "PERMISSION_DENIED"
    assert not m.match_event("MY_CODE", None).hit


def test_synthetic_events_expect_what_the_default_catalog_says() -> None:
    from rollguard.failures.synth import MESSAGES, SynthSpec, events

    m = load_matcher(None)
    assert all(m.match(msg).entry_code == code for code, msg in MESSAGES.items())
    evs = list(events(SynthSpec(count=600, unmatched_ratio=0.25, seed=7)))
    got = [m.match_event(e["error_code"], e["error_message"]).entry_code for e in evs]
    assert got == [e["expect_code"] for e in evs]
    assert len({c for c in got if c}) > 40  # the whole catalog, not a handful of codes


def _render(tmp_path: Path, spec: FailureCatalogSpec) -> Path:
    path = tmp_path / "catalog.json"
    tmp = tmp_path / "catalog.json.tmp"
    tmp.write_text(render_document("agents", spec))
    tmp.replace(path)  # a new inode, like the ConfigMap volume's symlink swap
    return path


def test_mounted_catalog_version_is_the_operators_hash_and_reloads(tmp_path: Path) -> None:
    default = load_default_catalog()
    assert load_matcher(tmp_path / "absent.json").version == content_hash(default)
    one = FailureCatalogSpec.model_validate({"version": "1", "entries": [
        e.model_dump(by_alias=True, exclude_none=True) for e in default.entries if e.code == "DISK_FULL"]})
    path = _render(tmp_path, one)
    m = load_matcher(path, reload_interval=0.0)  # checks the file at every match
    v1 = m.version
    assert v1 == json.loads(path.read_text())["contentHash"] != content_hash(default)
    assert m.match("ENOSPC").entry_code == "DISK_FULL" and not m.match("READ_TIMEOUT").hit
    two = one.model_copy(update={"version": "2"})
    path = _render(tmp_path, two)
    assert m.match("ENOSPC").hit and m.version == json.loads(path.read_text())["contentHash"] != v1
    path.write_text("{not json")
    assert m.match("ENOSPC").hit and m.version == content_hash(two)  # a broken update keeps the last good one


def test_cursor_roundtrip_and_garbage() -> None:
    t, i = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(t, i)) == (t, i)
    # cursors issued before the strict decoder (isoformat, +00:00) still page
    old = base64.urlsafe_b64encode(json.dumps({"t": t.isoformat(), "i": str(i)}).encode()).decode().rstrip("=")
    assert decode_cursor(old) == (t, i)
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
    with pytest.raises(ValueError, match="time zone"):
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
    assert suggest("upstream timed out after <NUM>") == ("TIMEOUT", "RETRY_EXPONENTIAL")
    assert suggest("flux capacitor <*>") == ("INTERNAL", "MANUAL")


def test_catalog_patch_is_a_valid_catalog() -> None:
    from rollguard.catalog import validate
    from rollguard.failures.aggregate import catalog_patch

    templates = [("WORKER_CRASH", "worker <NUM> crashed: segfault at <HEX> (<*>)"),
                 ("cache-storm", "cache miss storm on shard <NUM>"), ("WORKER_CRASH", "worker <NUM> hung"),
                 ("42", "upstream timed out after <NUM> s"), ("x", "flux capacitor <*> # 100% [ok]")]
    report = {"generated_at": "2026-11-23T12:00:00+00:00", "patterns": [
        {"primary_error_code": code, "template": t, "suggested_pattern": template_regex(t),
         "suggested_category": suggest(t)[0], "suggested_recovery": suggest(t)[1], "total_occurrences": 7}
        for code, t in templates]}
    patch = catalog_patch(report)
    assert validate(patch) == []
    assert [e["code"] for e in patch["entries"]] == ["WORKER_CRASH", "CACHE_STORM", "WORKER_CRASH_2", "E_42", "X"]

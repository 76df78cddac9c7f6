"""The matcher on real-world error messages, per category, with both engines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from rollguard.catalog import load_default_catalog
from rollguard.catalog.patterns import specificity
from rollguard.sdk.matcher import MAX_MESSAGE_CHARS, Matcher, MatchResult, pattern_confidence
from tests.unit.catalog_messages import MESSAGES, MUST_NOT

RE2 = Matcher.default(engine="re2", metrics=False)
RE = Matcher.default(engine="re", metrics=False)


@pytest.mark.parametrize(("message", "code"), MESSAGES, ids=[f"{c}-{i}" for i, (_m, c) in enumerate(MESSAGES)])
def test_real_world_message(message: str, code: str) -> None:
    r = RE2.match(message)
    assert r.code == code, r.pattern
    # a bare exception name ("MemoryError") may be an alias; a sentence is a pattern hit
    assert r.match_type == "pattern" if " " in message else r.match_type in ("alias", "pattern")
    assert 0.5 <= r.confidence <= 0.95


@pytest.mark.parametrize(("message", "wrong", "right"), MUST_NOT, ids=[f"not-{w}-{i}" for i, (_m, w, _r) in
                                                                   enumerate(MUST_NOT)])
def test_message_must_not_get_a_specific_code(message: str, wrong: str, right: str) -> None:
    r = RE2.match(message)
    assert r.code != wrong
    assert r.code == right


def test_table_covers_every_category_and_most_codes() -> None:
    codes = {c for _m, c in MESSAGES}
    by_code = {e.code: e for e in load_default_catalog().entries}
    assert {by_code[c].category for c in codes} == {e.category for e in by_code.values()}
    assert len(codes) >= 50


def test_re_engine_agrees_with_re2() -> None:
    for message, _code in MESSAGES + [(m, "") for m, _w, _r in MUST_NOT]:
        assert RE.match(message).code == RE2.match(message).code, message


def test_exact_code_then_alias() -> None:
    assert RE2.match("RATE_LIMITED") == MatchResult(RE2.get("RATE_LIMITED"), "exact", 1.0)
    r = RE2.match("  ThrottlingException ")
    assert (r.code, r.match_type, r.confidence) == ("CLOUD_THROTTLED", "alias", 0.95)
    assert RE2.match("econnreset").code == "CONNECTION_RESET"  # aliases ignore case
    assert RE2.match("rate_limited").match_type == "alias"  # a code in another case is not exact
    assert RE2.match("40P01").code == "DB_DEADLOCK"  # SQLSTATE


def test_unknown() -> None:
    r = RE2.match("the flux capacitor hiccuped")
    assert (r.entry, r.code, r.match_type, r.confidence) == (None, "UNKNOWN_ERROR", "unknown", 0.0)
    assert RE2.match("").match_type == "unknown"


def test_specific_pattern_ranks_above_generic() -> None:
    assert specificity("connection to server at .{0,80}failed") > specificity("connection refused")
    assert specificity("(tool|skill) \\S+ timed out") > specificity("\\btimed out\\b")
    specific = RE2.match("HTTPSConnectionPool(host='x', port=443): Read timed out. (read timeout=10)")
    generic = RE2.match("the job timed out")
    assert generic.code == "OPERATION_TIMEOUT"
    assert specific.confidence > generic.confidence
    assert pattern_confidence(0) == 0.5 and pattern_confidence(400) == 0.9


def test_only_the_head_of_a_huge_message_is_searched() -> None:
    tail = "x" * (MAX_MESSAGE_CHARS + 10) + " connection refused"
    assert RE2.match(tail).match_type == "unknown"
    assert RE2.match("connection refused " + tail).code == "CONNECTION_REFUSED"


def test_from_catalog_accepts_a_manifest_dict() -> None:
    manifest = {"apiVersion": "rollguard.io/v1alpha1", "kind": "FailureCatalog", "metadata": {"name": "x"},
                "spec": {"version": "1", "entries": [
                    {"code": "FLAKY_PRINTER", "category": "TRANSIENT", "severity": "LOW", "retryable": True,
                     "recovery": {"mode": "RETRY_IMMEDIATE"}, "match": {"patterns": ["pc load letter"]}}]}}
    m = Matcher.from_catalog(manifest, metrics=False)
    assert m.match("Error: PC LOAD LETTER").code == "FLAKY_PRINTER"
    assert m.match("connection refused").code == "UNKNOWN_ERROR"


def _sample(name: str, labels: dict[str, str]) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


def _label_values() -> set[str | None]:
    return {s.labels.get("error_code") for metric in REGISTRY.collect()
            for s in metric.samples if s.name.startswith("failure_match")}


def test_metrics_hits_and_misses_with_bounded_labels() -> None:
    m = Matcher.default()
    hits0 = _sample("failure_match_hits_total", {"error_code": "DB_DEADLOCK", "category": "DEPENDENCY"})
    miss0 = _sample("failure_match_misses_total", {})
    m.match("deadlock detected")
    m.match("DB_DEADLOCK")
    m.match("SOME_NEW_CODE_NOBODY_KNOWS")
    m.match("a message nobody knows")
    assert _sample("failure_match_hits_total", {"error_code": "DB_DEADLOCK", "category": "DEPENDENCY"}) == hits0 + 2
    assert _sample("failure_match_misses_total", {}) == miss0 + 2
    # every code of the catalog has its series from the start (at 0), so rate() works at once
    assert {e.code for e in load_default_catalog().entries} <= _label_values()
    before = _label_values()
    for i in range(200):
        m.match(f"NEW_CODE_{i}")
        m.match(f"unheard-of failure number {i}")
    assert _label_values() == before  # unknown input never becomes a label value
    assert _sample("failure_match_misses_total", {}) == miss0 + 402


def _write(path: Path, code: str, pattern: str) -> None:
    doc = {"kind": "FailureCatalog", "name": "t", "version": code, "entries": [
        {"code": code, "category": "TOOL", "severity": "LOW", "retryable": False,
         "recovery": {"mode": "REPLAN"}, "match": {"patterns": [pattern]}}]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)  # atomic, like the kubelet's symlink swap: a new inode


class FakeClock:
    """A monotonic clock the test moves by hand: no dependence on uptime or speed."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("start", [0.5, 365 * 86400.0, -1000.0])
def test_from_file_hot_reloads_on_change(tmp_path: Path, start: float) -> None:
    path = tmp_path / "catalog.json"
    _write(path, "OLD_CODE", "gremlins")
    clock = FakeClock(start)
    m = Matcher.from_file(path, reload_interval=30, metrics=False, clock=clock)
    assert m.match("gremlins in the wires").code == "OLD_CODE"
    _write(path, "NEW_CODE", "gremlins")
    clock.now += 29
    assert m.match("gremlins in the wires").code == "OLD_CODE"  # within the check interval: no stat
    clock.now += 1
    assert m.match("gremlins in the wires").code == "NEW_CODE"


def test_from_file_keeps_last_good_version_when_the_file_breaks(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    _write(path, "GOOD_CODE", "gremlins")
    m = Matcher.from_file(path, reload_interval=0, metrics=False)
    path.write_text("{ not json")
    assert m.match("gremlins").code == "GOOD_CODE"
    _write(path, "NEWER_CODE", "gremlins")
    assert m.match("gremlins").code == "NEWER_CODE"


def test_to_dict_is_json() -> None:
    d = RE2.match("deadlock detected").to_dict()
    assert d["code"] == "DB_DEADLOCK" and d["matchType"] == "pattern" and d["entry"]["recovery"]["mode"]
    json.dumps(d)


def test_match_exception() -> None:
    empty: dict[str, int] = {}
    try:
        empty["user_id"]
    except KeyError as e:
        assert RE2.match_exception(e).code == "MISSING_PARAMETER"
    assert RE2.match_exception(ConnectionResetError(104, "Connection reset by peer")).code == "CONNECTION_RESET"

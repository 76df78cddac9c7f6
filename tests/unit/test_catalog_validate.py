"""Offline validation: every problem named by entry and field."""

from __future__ import annotations

from typing import Any

from rollguard.catalog import default_manifest, validate


def spec(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"version": "1", "entries": list(entries)}


def entry(code: str, **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"code": code, "category": "TRANSIENT", "severity": "LOW", "retryable": True,
                         "recovery": {"mode": "RETRY_IMMEDIATE"}, "match": {"patterns": ["x+y"]}}
    e.update(over)
    return e


def test_valid_spec_and_manifest() -> None:
    assert validate(spec(entry("A"), entry("B", match={"aliases": ["b1"]}))) == []
    assert validate(default_manifest()) == []


def test_duplicate_code() -> None:
    msgs = validate(spec(entry("A"), entry("B"), entry("A")))
    assert msgs == ["entries[2] (A).code: duplicate code, first defined at entries[0]"]


def test_pattern_that_does_not_compile() -> None:
    msgs = validate(spec(entry("A", match={"patterns": ["ok", "conn(ection refused"]})))
    assert len(msgs) == 1
    assert msgs[0].startswith("entries[0] (A).match.patterns[1]: 'conn(ection refused' does not compile")


def test_pattern_matching_the_empty_string() -> None:
    msgs = validate(spec(entry("A", match={"patterns": ["(timeout)?"]})))
    assert msgs == ["entries[0] (A).match.patterns[0]: '(timeout)?' matches the empty string "
                    "(it would match every message)"]


def test_pattern_outside_re2_syntax() -> None:
    msgs = validate(spec(entry("A", match={"patterns": ["(?<!read )timeout"]})))
    assert len(msgs) == 1 and "entries[0] (A).match.patterns[0]" in msgs[0] and "RE2" in msgs[0]


def test_unknown_category_and_mode() -> None:
    msgs = validate(spec(entry("A", category="NETWORKING"), entry("B", recovery={"mode": "PRAY"})))
    assert any(m.startswith("entries[0] (A).category: unknown value 'NETWORKING'") for m in msgs), msgs
    assert any(m.startswith("entries[1] (B).recovery.mode: unknown value 'PRAY'") for m in msgs), msgs


def test_missing_and_mistyped_fields() -> None:
    e = entry("A")
    del e["severity"]
    msgs = validate(spec(e, entry("B", retryable="sometimes")))
    assert "entries[0] (A).severity: Field required" in msgs
    assert any(m.startswith("entries[1] (B).retryable:") for m in msgs)


def test_alias_colliding_with_a_code_or_another_alias() -> None:
    msgs = validate(spec(entry("A", match={"aliases": ["b"]}), entry("B"),
                         entry("C", match={"aliases": ["ECONN"]}), entry("D", match={"aliases": ["econn"]})))
    assert "entries[0] (A).match.aliases[0]: 'b' is already used by entries[1].code" in msgs
    assert "entries[3] (D).match.aliases[0]: 'econn' is already used by entries[2].match.aliases[0]" in msgs


def test_retryable_consistent_with_mode() -> None:
    msgs = validate(spec(entry("A", retryable=False), entry("B", recovery={"mode": "ABORT"})))
    assert msgs == ["entries[0] (A).retryable: recovery.mode RETRY_IMMEDIATE requires retryable: true",
                    "entries[1] (B).recovery.mode: ABORT is inconsistent with retryable: true"]

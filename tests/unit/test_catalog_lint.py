"""Warnings about risky pattern shapes: `rollguard catalog validate` names the code and pattern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from rollguard.catalog import load_default_catalog
from rollguard.catalog.lint import lint, pattern_warnings
from rollguard.cli.main import cli
from rollguard.sdk.matcher import Matcher


@pytest.mark.parametrize(("pattern", "rule"), [
    (r"\btimeout\b", "query-string-word"),
    ("forbidden", "query-string-word"),
    ("keyerror", "inside-camelcase-name"),
    ("(keyerror|valueerror): ", "inside-camelcase-name"),
    ("503 server error", "inside-number"),
    ("error code: 529", "inside-number"),
])
def test_risky_shape_is_warned(pattern: str, rule: str) -> None:
    warnings = pattern_warnings(pattern)
    assert len(warnings) == 1 and warnings[0].startswith(f"{rule}:"), warnings


@pytest.mark.parametrize("pattern", [
    r"\bkeyerror\b",                    # anchored exception name
    r"builtins\.keyerror",              # module path before the name
    "rate_limit_error",                 # a snake_case type string, not a CamelCase name
    r"\b503 server error",
    r"error code: 529\b",
    "read timed out",                   # words, not a bare URL word
    r"timeout=\d+s\)",                  # the error's own shape
    "nonetype",                         # one word, but not one that URLs carry
])
def test_anchored_shapes_are_not_warned(pattern: str) -> None:
    assert pattern_warnings(pattern) == []


def test_the_warned_shapes_really_misfire() -> None:
    # what the rules stand for: such patterns match real messages of another kind of fault
    spec = {"version": "1", "entries": [
        {"code": "T", "category": "TIMEOUT", "severity": "LOW", "retryable": True,
         "recovery": {"mode": "RETRY_IMMEDIATE"}, "match": {"patterns": [r"\btimeout\b"]}},
        {"code": "K", "category": "VALIDATION", "severity": "LOW", "retryable": False,
         "recovery": {"mode": "REPLAN"}, "match": {"patterns": ["keyerror"]}}]}
    m = Matcher.from_catalog(spec, metrics=False)
    assert m.match("Unable to connect to the server: x509: certificate signed by unknown authority "
                   "(GET https://api.example.internal:6443/api?timeout=32s)").code == "T"
    assert m.match("pymongo.errors.DuplicateKeyError: E11000 duplicate key error").code == "K"


def _entry(code: str, patterns: list[str]) -> dict[str, Any]:
    return {"code": code, "category": "TRANSIENT", "severity": "LOW", "retryable": True,
            "recovery": {"mode": "RETRY_IMMEDIATE"}, "match": {"patterns": patterns}}


def test_lint_names_entry_code_and_pattern() -> None:
    from rollguard.models.catalog import FailureCatalogSpec

    spec = FailureCatalogSpec.model_validate({"version": "1", "entries": [
        _entry("FINE", ["connection reset by peer"]), _entry("RISKY", ["ok then", "typeerror"])]})
    (w,) = lint(spec)
    assert w.startswith("entries[1] (RISKY).match.patterns[1]: 'typeerror' inside-camelcase-name:")


def test_validate_prints_warnings_and_fails_only_with_strict(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"version": "1", "entries": [_entry("SLOW", [r"\btimeout\b"])]}))
    r = CliRunner().invoke(cli, ["catalog", "validate", str(f)])
    assert r.exit_code == 0
    assert f"{f} (document 0): warning: spec.entries[0] (SLOW).match.patterns[0]: '\\\\btimeout\\\\b' " \
           "query-string-word:" in r.output
    assert "valid, 1 entries" in r.output and "1 warnings" in r.output
    r = CliRunner().invoke(cli, ["catalog", "validate", "--strict", str(f)])
    assert r.exit_code == 1


def test_default_catalog_has_no_warning() -> None:
    assert lint(load_default_catalog()) == []

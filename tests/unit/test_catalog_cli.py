"""`rollguard catalog ...` offline commands."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from rollguard.cli.catalog_cmd import pick_rollback
from rollguard.cli.main import cli


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["catalog", *args])
    return r.exit_code, r.output


def test_default_prints_a_manifest_that_validates(tmp_path: Path) -> None:
    code, out = run("default", "--name", "agents", "-n", "prod", "--target", "api")
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["kind"] == "FailureCatalog" and doc["metadata"] == {"name": "agents", "namespace": "prod"}
    assert doc["spec"]["targets"] == [{"name": "api"}] and len(doc["spec"]["entries"]) == 63
    # SQLSTATE aliases stay strings in YAML (quoted), not numbers
    assert "'08006'" in out
    f = tmp_path / "c.yaml"
    f.write_text(out)
    code, out = run("validate", str(f))
    assert code == 0 and "valid, 63 entries" in out


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    _code, out = run("default", "-o", "json")
    doc = json.loads(out)
    doc["spec"]["entries"][1]["code"] = doc["spec"]["entries"][0]["code"]
    doc["spec"]["entries"][2]["match"]["patterns"][0] = "reset by (peer"
    doc["spec"]["entries"][3]["category"] = "NETWORKING"
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(doc))
    code, out = run("validate", str(f))
    assert code == 1
    assert "spec.entries[1] (NETWORK_UNREACHABLE).code: duplicate code, first defined at entries[0]" in out
    assert "spec.entries[3] (DNS_RESOLUTION_FAILED).category: unknown value 'NETWORKING'" in out
    # pydantic stops at schema errors; fix them and the pattern error shows
    doc["spec"]["entries"][3]["category"] = "TRANSIENT"
    f.write_text(yaml.safe_dump(doc))
    code, out = run("validate", str(f))
    assert code == 1
    assert "spec.entries[2] (CONNECTION_RESET).match.patterns[0]: 'reset by (peer' does not compile" in out


def test_validate_unreadable_or_empty(tmp_path: Path) -> None:
    assert run("validate", str(tmp_path / "missing.yaml"))[0] == 2
    f = tmp_path / "cm.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, out = run("validate", str(f))
    assert code == 1 and "no FailureCatalog" in out


def test_match_prints_json(tmp_path: Path) -> None:
    code, out = run("match", "FATAL:  sorry, too many clients already")
    assert code == 0
    d = json.loads(out)
    assert (d["code"], d["matchType"]) == ("DB_CONNECTION_FAILED", "pattern")
    assert d["entry"]["recovery"]["mode"] == "CIRCUIT_BREAK"
    code, out = run("match", "--strict", "a message nobody knows")
    assert code == 3 and json.loads(out)["matchType"] == "unknown"


def test_match_with_a_catalog_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"version": "1", "entries": [
        {"code": "PRINTER_ON_FIRE", "category": "INTERNAL", "severity": "CRITICAL", "retryable": False,
         "recovery": {"mode": "ESCALATE"}, "match": {"aliases": ["lp0"]}}]}))
    code, out = run("match", "--catalog", str(f), "LP0")
    assert code == 0 and json.loads(out)["code"] == "PRINTER_ON_FIRE"
    f.write_text("version: 1\nentries: []\n")
    code, out = run("match", "--catalog", str(f), "x")
    assert code == 1 and "not a valid catalog" in out


HISTORY = [{"hash": "c" * 64, "version": "3"}, {"hash": "b" * 64, "version": "2"}, {"hash": "ab" * 32, "version": "1"}]


def test_pick_rollback() -> None:
    assert pick_rollback(HISTORY, "c" * 64, None)["version"] == "2"
    assert pick_rollback(HISTORY, "b" * 64, None)["version"] == "3"  # pinned to 2 already: newest other
    assert pick_rollback(HISTORY, "c" * 64, "ababab")["version"] == "1"
    with pytest.raises(click.BadParameter, match="matches no version"):
        pick_rollback(HISTORY, None, "dddddd")
    with pytest.raises(click.BadParameter, match="at least 6"):
        pick_rollback(HISTORY, None, "abc")
    with pytest.raises(click.ClickException, match="empty"):
        pick_rollback([], None, None)


def test_rollback_refuses_to_and_unpin_together() -> None:
    code, out = run("rollback", "cat", "--to", "abcdef", "--unpin")
    assert code == 2 and "exclude each other" in out

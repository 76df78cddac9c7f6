"""`rollguard flags` input checks that need no cluster: help, usage errors, evidence policy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rollguard.cli.flags_cmd import parse_expires, read_evidence
from rollguard.cli.main import cli

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
# Nothing listens here: a command that got as far as the cluster would fail with exit 1, not 2/3.
NO_CLUSTER = ["--kubeconfig", "/nonexistent/kubeconfig"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["flags", *args])
    return result.exit_code, result.output


def test_help_lists_the_commands() -> None:
    code, out = run("--help")
    assert code == 0
    for cmd in ("list", "get", "enable", "disable", "signoff"):
        assert cmd in out
    code, out = run("signoff", "--help")
    assert code == 0 and "--evidence" in out and "--expires" in out


def test_enable_needs_exactly_one_target() -> None:
    code, out = run("enable", "x", *NO_CLUSTER)
    assert code == 2 and "--env ENV" in out
    code, out = run("enable", "x", "--env", "staging", "--default", *NO_CLUSTER)
    assert code == 2


def test_bad_environment_name_is_refused_naming_the_option() -> None:
    code, out = run("enable", "x", "--env", "Prod_EU", *NO_CLUSTER)
    assert code == 2 and "--env" in out and "DNS label" in out


def test_signoff_with_mismatches_is_refused_before_touching_the_cluster(tmp_path: Path) -> None:
    report = tmp_path / "cycle_48.json"
    report.write_text(json.dumps({"shadow": {"mismatches": 2}, "cycles": 48}))
    code, out = run("signoff", "x", "--by", "sre", "--evidence", str(report), *NO_CLUSTER)
    assert code == 3 and "2 mismatches" in out


def test_signoff_bad_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    code, out = run("signoff", "x", "--by", "sre", "--evidence", str(bad), *NO_CLUSTER)
    assert code == 2 and "--evidence" in out and "not valid JSON" in out
    code, out = run("signoff", "x", "--by", "sre", "--evidence", str(tmp_path / "missing.json"), *NO_CLUSTER)
    assert code == 2 and "cannot read" in out
    good = tmp_path / "ok.json"
    good.write_text(json.dumps({"mismatches": 0}))
    code, out = run("signoff", "x", "--by", "sre", "--evidence", str(good), "--expires", "soon", *NO_CLUSTER)
    assert code == 2 and "--expires" in out
    code, out = run("signoff", "x", "--evidence", str(good), *NO_CLUSTER)
    assert code == 2 and "--by" in out


def test_cluster_unreachable_is_exit_1(tmp_path: Path) -> None:
    code, out = run("get", "x", *NO_CLUSTER)
    assert code == 1 and "kubeconfig" in out


def test_read_evidence_shapes(tmp_path: Path) -> None:
    shadow_report = tmp_path / "cycle.json"
    shadow_report.write_text(json.dumps({"shadow": {"mismatches": 0}, "cycles": 48}))
    ev = read_evidence(shadow_report, None)
    assert ev == {"kind": "ShadowRun", "mismatches": 0, "reportRef": str(shadow_report), "summary": "cycles=48"}
    note = tmp_path / "approval.txt"
    note.write_text("SRE approval, ticket OPS-1")
    assert read_evidence(note, None)["kind"] == "Manual"
    with pytest.raises(click.BadParameter, match="no mismatch count"):
        read_evidence(note, "ShadowRun")


@pytest.mark.parametrize(("raw", "expected"), [
    ("7d", NOW + dt.timedelta(days=7)), ("12h", NOW + dt.timedelta(hours=12)), ("2w", NOW + dt.timedelta(weeks=2)),
    ("2026-12-01T00:00:00Z", dt.datetime(2026, 12, 1, tzinfo=dt.UTC)), (None, None),
])
def test_parse_expires(raw: str | None, expected: dt.datetime | None) -> None:
    assert parse_expires(raw, NOW) == expected

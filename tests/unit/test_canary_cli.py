"""`rollguard canary` without a cluster: help, input errors that name the field, dry run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from rollguard.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


def test_help_lists_every_command() -> None:
    out = CliRunner().invoke(cli, ["canary", "--help"]).output
    for cmd in ("run", "status", "list", "abort", "promote", "pause", "resume", "retry", "signoff"):
        assert cmd in out


def test_dry_run_prints_the_plan_and_needs_no_cluster() -> None:
    r = CliRunner().invoke(cli, ["canary", "run", "-f", str(REPO / "canary-configs/image_canary.yaml"), "--dry-run"],
                           env={"KUBECONFIG": "/nonexistent"})
    assert r.exit_code == 0, r.output
    assert "set canary traffic weight to 5%" in r.output
    assert "run the smoke test against the canary" in r.output
    assert "apply the change to the stable target" in r.output
    assert "nothing is applied" in r.output


def test_invalid_manifest_names_the_field(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "canary-configs/agent_flags_canary.yaml").read_text())
    raw["spec"]["steps"] = [{"setWeight": 50}, {"setWeight": 20}]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    r = CliRunner().invoke(cli, ["canary", "run", "-f", str(bad), "--dry-run"])
    assert r.exit_code == 2
    assert "spec" in r.output and "last setWeight must be 100" in r.output


def test_wrong_enum_names_the_field(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "canary-configs/agent_flags_canary.yaml").read_text())
    raw["spec"]["traffic"]["provider"] = "istio"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    r = CliRunner().invoke(cli, ["canary", "run", "-f", str(bad), "--dry-run"])
    assert r.exit_code == 2 and "spec.traffic.provider" in r.output


class _Finished:
    """An apiserver holding one finished rollout whose attempt ran with the spec hash ``ran``."""

    def __init__(self, ran: str) -> None:
        self.obj: dict[str, object] = {"metadata": {"name": "web"}, "status": {"phase": "Succeeded", "specHash": ran}}

    def get_namespaced_custom_object(self, *_: object) -> dict[str, object]:
        return self.obj


def test_following_a_rollout_that_finished_before_the_edit_says_the_edit_was_not_rolled_out(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`canary run -f` on a running rollout edits it; if it finished with its old spec before the
    operator saw the edit, the CLI must not report that outcome as the file's."""
    from rollguard.cli.canary_cmd import _follow
    with pytest.raises(SystemExit) as exit_:
        _follow(_Finished("sha256:old"), "ns", "web", 5, "sha256:new")
    assert exit_.value.code == 1
    assert "with the spec it had before this file was applied: the edit has not been rolled out" in \
        capsys.readouterr().err
    assert _follow(_Finished("sha256:new"), "ns", "web", 5, "sha256:new")["status"]["phase"] == "Succeeded"

"""`kubectl rollguard ...` through the real kubectl: the `kubectl-rollguard` plugin the install puts
on PATH, and its completion (`kubectl_complete-rollguard`, which kubectl >= 1.26 runs while
completing a plugin's arguments)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollguard.localenv.controlplane import binaries_dir

pytestmark = pytest.mark.integration


def _kubectl(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    # the console scripts of this virtualenv; kubectl finds plugins on PATH only
    scripts = Path(sys.executable).parent
    env = {"PATH": f"{scripts}{os.pathsep}/usr/bin:/bin", "HOME": str(home), "KUBECONFIG": str(home / "none")}
    return subprocess.run([str(binaries_dir() / "kubectl"), *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_kubectl_finds_and_runs_the_plugin(tmp_path: Path) -> None:
    listed = _kubectl("plugin", "list", home=tmp_path)
    assert f"{Path(sys.executable).parent}/kubectl-rollguard" in listed.stdout, listed.stdout + listed.stderr
    got = _kubectl("rollguard", "--help", home=tmp_path)
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("Usage: kubectl rollguard [OPTIONS] COMMAND [ARGS]...")
    for command in ("canary", "catalog", "flags", "operator", "api", "failures"):
        assert f"\n  {command} " in got.stdout, command
    got = _kubectl("rollguard", "catalog", "match", "429 Too Many Requests", home=tmp_path)
    assert got.returncode == 0 and '"code": "RATE_LIMITED"' in got.stdout, got.stderr
    # kubectl passes the exit status through
    got = _kubectl("rollguard", "catalog", "nope", home=tmp_path)
    assert got.returncode == 2 and "No such command 'nope'" in got.stderr


def _offered(*words: str, home: Path) -> list[str]:
    got = _kubectl("__complete", "rollguard", *words, home=home)
    assert got.returncode == 0, got.stderr
    return [line.split("\t")[0] for line in got.stdout.splitlines() if line and not line.startswith(":")]


def test_kubectl_completes_the_plugins_commands_and_options(tmp_path: Path) -> None:
    assert _offered("ca", home=tmp_path) == ["canary", "catalog"]
    assert {"run", "abort", "promote", "status", "list"} <= set(_offered("canary", "", home=tmp_path))
    assert "--dry-run" in _offered("canary", "run", "--d", home=tmp_path)

"""The chart's scripts: syntax, usage, and the helm build they rely on."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.helm import REPO, helm_binary

SCRIPTS = ["hack/build-helm.sh", "hack/sync-chart-crds.sh", "hack/kind-up.sh", "hack/build-image.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses_and_is_executable(script: str) -> None:
    path = REPO / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_kind_up_usage_needs_no_docker() -> None:
    proc = subprocess.run(["bash", str(REPO / "hack/kind-up.sh"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "kind + ingress-nginx + kube-prometheus-stack" in proc.stdout
    bad = subprocess.run(["bash", str(REPO / "hack/kind-up.sh"), "--bogus"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_build_image_usage_and_cache_key() -> None:
    script = str(REPO / "hack/build-image.sh")
    proc = subprocess.run(["bash", script, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "without a Docker engine" in proc.stdout
    bad = subprocess.run(["bash", script, "--bogus"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option '--bogus'" in bad.stderr
    # the key names the inputs' content: the same tree gives the same key
    keys = {subprocess.run(["bash", script, "--key"], capture_output=True, text=True, check=True).stdout.strip()
            for _ in range(2)}
    assert len(keys) == 1 and len(next(iter(keys))) == 16


def test_helm_is_the_pinned_real_binary() -> None:
    version = subprocess.run([str(helm_binary()), "version", "--template", "{{.Version}}"],
                             capture_output=True, text=True, check=True).stdout
    pinned = subprocess.run(["bash", "-c", "grep -oE 'v3\\.[0-9]+\\.[0-9]+' hack/build-helm.sh | head -1"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    assert version == pinned
    path = subprocess.run(["bash", str(REPO / "hack/build-helm.sh"), "--print-path"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert path == str(helm_binary())

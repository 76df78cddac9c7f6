"""Where `rollguard canary run -f FILE` puts the rollout, as kubectl would.

The manifest's metadata.namespace wins; a -n that contradicts it is an error naming both (it used
to override it silently, so the rollout waited forever for a target in the wrong namespace);
without either, the kubeconfig context's namespace. No operator runs here: `run` gives up
following after --timeout (exit 3) and the test looks where the rollout was applied.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.kube import REPO, Kubectl

pytestmark = pytest.mark.integration


def _manifest(tmp_path: Path, namespace: str | None) -> Path:
    raw = yaml.safe_load((REPO / "canary-configs" / "image_canary.yaml").read_text())
    raw["metadata"].pop("namespace", None)
    if namespace:
        raw["metadata"]["namespace"] = namespace
    path = tmp_path / f"rollout-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    return subprocess.run([sys.executable, "-m", "rollguard.cli.main", "canary", "run", *args, "--timeout", "1"],
                          capture_output=True, text=True, timeout=120, env=env)


def _name(path: Path) -> str:
    return str(yaml.safe_load(path.read_text())["metadata"]["name"])


def test_the_manifest_namespace_wins_without_n(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                               tmp_path: Path) -> None:
    path = _manifest(tmp_path, namespace)
    r = _run(kubeconfig, "-f", str(path))
    assert r.returncode == 3, r.stdout + r.stderr  # applied, then no operator: gave up following
    assert f"canaryrollout {namespace}/{_name(path)} applied" in r.stdout
    assert kubectl("get", "canaryrollout", _name(path), namespace=namespace, check=False).returncode == 0


def test_a_conflicting_n_is_an_error_naming_both(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                                  tmp_path: Path) -> None:
    path = _manifest(tmp_path, namespace)
    r = _run(kubeconfig, "-f", str(path), "-n", "staging")
    assert r.returncode == 2
    assert f"metadata.namespace is '{namespace}'" in r.stderr and "'staging'" in r.stderr
    assert kubectl("get", "canaryrollout", _name(path), namespace=namespace, check=False).returncode != 0


def test_an_agreeing_n_is_fine(kubectl: Kubectl, kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    path = _manifest(tmp_path, namespace)
    r = _run(kubeconfig, "-f", str(path), "-n", namespace)
    assert f"canaryrollout {namespace}/{_name(path)} applied" in r.stdout, r.stderr


def test_without_either_the_kubeconfig_context_namespace_is_used(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                                                 tmp_path: Path) -> None:
    own = tmp_path / "kubeconfig"
    shutil.copy(kubeconfig, own)
    kubectl("config", "set-context", "--current", f"--namespace={namespace}", "--kubeconfig", str(own))
    path = _manifest(tmp_path, None)
    r = _run(own, "-f", str(path))
    assert f"canaryrollout {namespace}/{_name(path)} applied" in r.stdout, r.stderr
    listed = subprocess.run([sys.executable, "-m", "rollguard.cli.main", "canary", "list"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "KUBECONFIG": str(own)})
    assert _name(path) in listed.stdout, listed.stderr

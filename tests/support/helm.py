"""The real helm binary (built by hack/build-helm.sh from the Go module proxy, then cached)."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "rollguard"


@functools.cache
def helm_binary() -> Path:
    """Build helm on first use (cached in ~/.cache/rollguard afterwards); never skip."""
    proc = subprocess.run(["bash", str(REPO / "hack" / "build-helm.sh")], capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, f"hack/build-helm.sh failed:\n{proc.stderr}"
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file(), path
    return path


@functools.cache
def _helm_home() -> Path:
    # helm writes its cache/config/data somewhere: keep it out of $HOME and out of the repo.
    return Path(tempfile.mkdtemp(prefix="rollguard-helm-"))


@dataclass
class Helm:
    binary: Path

    def __call__(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        home = _helm_home()
        env = {**os.environ, "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
               "HELM_DATA_HOME": str(home / "data")}
        proc = subprocess.run([str(self.binary), *args], capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    def template(self, *args: str, values: dict[str, Any] | None = None,
                 release: str = "rg", namespace: str = "rollguard") -> list[dict[str, Any]]:
        """`helm template` the chart (with --set-json style values) and return the parsed objects."""
        extra: list[str] = []
        if values is not None:
            f = _helm_home() / f"values-{abs(hash(yaml.safe_dump(values)))}.yaml"
            f.write_text(yaml.safe_dump(values))
            extra += ["-f", str(f)]
        out = self("template", release, str(CHART), "--namespace", namespace, *extra, *args).stdout
        return [d for d in yaml.safe_load_all(out) if d]


def helm() -> Helm:
    return Helm(helm_binary())


def find(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_specs(objs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec the chart renders: Deployments, Jobs, CronJobs and bare Pods (helm test)."""
    for o in objs:
        name = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] in ("Deployment", "Job"):
            yield name, o["spec"]["template"]["spec"]
        elif o["kind"] == "CronJob":
            yield name, o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif o["kind"] == "Pod":
            yield name, o["spec"]

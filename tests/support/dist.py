"""The distribution as its users get it: the wheel built from the build context the .dockerignore
leaves (what the image's build stage sees), and fresh virtualenvs to install it into."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.kube import REPO


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for pat in patterns:
        bare = pat.removeprefix("**/")
        # a pattern names a top-level path (or, with **/, any path component)
        if fnmatch.fnmatch(parts[0], pat) or fnmatch.fnmatch(rel, pat):
            return True
        if pat.startswith("**/") and any(fnmatch.fnmatch(p, bare) for p in parts):
            return True
    return False


def build_context(dest: Path) -> Path:
    """Copy the tracked files the .dockerignore keeps into ``dest`` (symlinks stay symlinks)."""
    patterns = [ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if _ignored(rel, patterns):
            continue
        src = REPO / rel
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, target)
    return dest


def build_wheel(context: Path, out: Path) -> Path:
    """``pip wheel`` the context (no dependencies) into ``out``; the one wheel it made."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(context)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (built,) = out.glob("rollguard-*.whl")
    return built


def _uv(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """hack/uv.sh: the pinned uv with this machine's package settings (as hack/ensure-deps.sh uses it)."""
    return subprocess.run(["bash", str(REPO / "hack" / "uv.sh"), *args], capture_output=True, text=True,
                          timeout=timeout)


def fresh_venv(dest: Path, *requirements: str) -> Path:
    """A new virtualenv at ``dest`` (this interpreter's Python, nothing else in it) with
    ``requirements`` and what they depend on; its python.

    uv from its cache first, offline, then online for what the cache lacks; pip where uv is
    not to be had."""
    base = getattr(sys, "_base_executable", sys.executable)
    made = _uv("venv", "-q", "--no-python-downloads", "--python", base, str(dest), timeout=120)
    py = dest / "bin" / "python"
    if made.returncode == 0:
        for offline in (["--offline"], []):
            got = _uv("pip", "install", "-q", *offline, "--python", str(py), *requirements, timeout=900)
            if got.returncode == 0:
                return py
        raise AssertionError(f"uv pip install {' '.join(requirements)}:\n{got.stderr}")
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(dest)], check=True, timeout=120)
    got = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
                         capture_output=True, text=True, timeout=900)
    assert got.returncode == 0, got.stderr
    return py


def installed(py: Path) -> set[str]:
    """The normalised names of the distributions installed in the virtualenv of ``py``."""
    code = ("import importlib.metadata as m, json; "
            "print(json.dumps(sorted({d.metadata['Name'] for d in m.distributions()})))")
    out = subprocess.run([str(py), "-I", "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    return {n.lower().replace("_", "-").replace(".", "-") for n in json.loads(out)}

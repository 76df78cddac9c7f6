"""Documented snippets that must hold every time, not just once: run them repeatedly."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from rollguard.flags import plan_namespace
from rollguard.models.flag import FeatureFlag
from tests.docs.blocks import REPO, parse

RUNS = 6


def test_the_openfeature_snippet_sees_a_flag_that_is_on_every_time(tmp_path: Path) -> None:
    """It used to print False in about half the runs (PROVIDER_NOT_READY): it asked before the
    flagd provider had read the file. Each run is a fresh process, as a backend's start is."""
    doc = parse(REPO / "docs" / "flags.md")
    [snippet] = [b for b in doc.blocks if b.lang == "python" and "FlagdProvider" in b.code]
    flag = FeatureFlag.model_validate({"metadata": {"name": "failure-catalog"}, "spec": {
        "key": "failure_catalog_runtime_integration", "owner": "platform", "defaultValue": False,
        "environments": {"staging": True}}})
    flags_dir = tmp_path / "flags"
    flags_dir.mkdir()
    for name, content in plan_namespace([flag], [], "shop", dt.datetime.now(dt.UTC)).files["staging"].items():
        (flags_dir / name).write_text(content)
    script = tmp_path / "snippet.py"
    script.write_text(snippet.code)
    env = {**os.environ, "ROLLGUARD_FLAGS_DIR": str(flags_dir)}
    answers = []
    for _ in range(RUNS):
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 0, proc.stderr
        answers.append(proc.stdout.strip())
    assert answers == ["True"] * RUNS

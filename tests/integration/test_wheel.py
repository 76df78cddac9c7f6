"""What the image's build stage does, without a Docker engine: build the wheel from the build
context the .dockerignore leaves, install it into a fresh virtualenv, and run it from outside the
source tree. This proves the wheel carries every import package (rollguard.operator and
rollguard.api come from their own import roots, operator/ and api/) and the data files the commands read at run time
(default catalog, Alembic migrations), which the static Dockerfile checks cannot."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from rollguard.catalog import ErrorCode
from tests.support.dist import build_context, build_wheel

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("wheel")]  # its module fixture runs once


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ctx = build_context(tmp_path_factory.mktemp("context"))
    assert not (ctx / "tests").exists() and (ctx / "operator").is_dir()
    return build_wheel(ctx, tmp_path_factory.mktemp("dist"))


def test_wheel_carries_every_package_and_the_runtime_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ("rollguard/operator/main.py", "rollguard/operator/handlers/canary.py",
                 "rollguard/operator/canary/engine.py", "rollguard/api/app.py", "rollguard/api/migrations/env.py",
                 "rollguard/sdk/matcher.py", "rollguard/cli/main.py", "rollguard/py.typed"):
        assert path in names, path
    assert any(n.startswith("rollguard/api/migrations/versions/") and n.endswith(".py") for n in names)
    assert "rollguard/catalog/default_catalog.yaml" in names
    assert not any(n.startswith(("tests/", "operator/", "api/")) for n in names), "top-level packages leaked"
    # the local cluster and the demo are test tooling, run from the checkout: the wheel leaves them out
    assert "rollguard/localenv/__init__.py" not in names and "rollguard/demo/__init__.py" not in names
    assert not any(n.startswith(("rollguard/localenv/", "rollguard/demo/")) for n in names), "test code shipped"


def test_installed_wheel_runs_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    # The project's dependencies come from the test virtualenv (system site packages), the
    # rollguard code only from the wheel: the source checkout is not on the path.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run([sys.executable, "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    pth = next((env_dir / "lib").glob("python3*/site-packages"))
    (pth / "test-venv.pth").write_text(site + "\n")  # the test venv's packages, not its editable rollguard
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(pth)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    run = tmp_path / "elsewhere"
    run.mkdir()

    def python(code: str) -> str:
        proc = subprocess.run([str(py), "-c", code], cwd=run, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    where = python("import rollguard, rollguard.operator.main, rollguard.api.app; print(rollguard.__file__)")
    assert where.strip().startswith(str(pth)), where  # the wheel's copy, not the checkout's
    absent = python("import importlib.util as u; "
                    "print(u.find_spec('rollguard.localenv'), u.find_spec('rollguard.demo'))")
    assert absent.split() == ["None", "None"], absent
    help_text = python("from click.testing import CliRunner; from rollguard.cli.main import cli; "
                       "print(CliRunner().invoke(cli, ['--help']).output)")
    for command in ("operator", "canary", "catalog", "flags", "api", "failures"):
        assert command in help_text
    codes = python("from rollguard.sdk.matcher import Matcher; m = Matcher.default(); "
                   "print(m.match('httpx.ReadTimeout: timed out').code, len(m.codes))").split()
    assert codes[0] != "UNKNOWN_ERROR" and int(codes[1]) == len(ErrorCode)
    # the migrations ship inside the package: upgrade a SQLite database from the wheel alone
    head = python(f"from rollguard.api.db import make_engine; from rollguard.api import migrate; "
                  f"e = make_engine('sqlite:///{tmp_path}/db.sqlite'); migrate.upgrade(e); "
                  f"print(migrate.current_revision(e) == migrate.head_revision(e) is not None)")
    assert head.strip() == "True"

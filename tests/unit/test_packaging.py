"""How the distribution is cut for its users, checked without building it: `pip install rollguard`
is the SDK alone, each command's packages come with an extra the image installs, and a command
whose extra is missing names it. (tests/integration/test_sdk_install.py installs the real wheel.)"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from rollguard.cli import extras
from rollguard.cli.main import cli
from tests.support.kube import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# what only the servers and the local test cluster need: the SDK install must pull none of them
SERVER_PACKAGES = {"kopf", "kubernetes", "fastapi", "uvicorn", "sqlalchemy", "psycopg", "alembic",
                   "pydantic-settings", "drain3", "boto3", "cryptography", "prometheus-api-client"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_base_install_is_the_sdk_and_every_server_package_comes_with_an_extra() -> None:
    base = {_name(r) for r in PROJECT["dependencies"]}
    assert not base & SERVER_PACKAGES, sorted(base & SERVER_PACKAGES)
    assert {"pydantic", "httpx", "prometheus-client", "google-re2", "pyyaml"} <= base
    optional = PROJECT["optional-dependencies"]
    in_extras = {_name(r) for extra, reqs in optional.items() if extra != "dev" for r in reqs}
    assert SERVER_PACKAGES - {"cryptography"} <= in_extras
    assert "cryptography" in {_name(r) for r in optional["dev"]}  # only the local cluster's certificates


def test_all_holds_every_commands_extra_and_dev_holds_all() -> None:
    optional = PROJECT["optional-dependencies"]
    in_all = {e.strip() for r in optional["all"] if _name(r) == "rollguard"
              for e in r.partition("[")[2].partition("]")[0].split(",")}
    assert set(extras.COMMAND_EXTRAS.values()) <= in_all <= set(optional)
    assert "rollguard[all]" in optional["dev"]
    # the installed metadata (this test's editable install) says the same as pyproject.toml
    assert {_name(r) for r in optional["operator"]} == {_name(r) for r in extras.requirements("operator")}


def test_the_image_installs_every_extra() -> None:
    instructions = "\n".join(ln for ln in (REPO / "Dockerfile").read_text().splitlines()
                             if not ln.lstrip().startswith("#"))
    assert re.search(r"pip install [^\n]*'\.\[all\]'", instructions), "the image must install rollguard[all]"


def _imported(path: Path) -> Iterator[str]:
    """Every module name a file imports (``from a import b`` gives ``a`` and ``a.b``)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def test_nothing_the_wheel_ships_imports_the_test_tooling_it_leaves_out() -> None:
    wheel = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    left_out = sorted(p.strip("/") for p in wheel["exclude"])
    assert left_out == ["rollguard/demo", "rollguard/localenv"]
    modules = [p.replace("/", ".") for p in left_out]
    offenders = [f"{path.relative_to(REPO)}: {name}"
                 for package in wheel["packages"] for path in sorted((REPO / package).rglob("*.py"))
                 if not path.relative_to(REPO).as_posix().startswith(tuple(left_out))
                 for name in _imported(path) if any(name == m or name.startswith(f"{m}.") for m in modules)]
    assert offenders == []


def test_kubectl_plugin_scripts_run_the_same_app() -> None:
    scripts = PROJECT["scripts"]
    assert scripts["kubectl-rollguard"].partition(":")[0] == scripts["rollguard"].partition(":")[0]
    assert "kubectl_complete-rollguard" in scripts


@pytest.mark.parametrize(("argv", "extra"), [
    (["operator", "run"], "operator"),
    (["operator", "--help"], "operator"),
    (["api", "serve", "--port", "8000"], "api"),
    (["failures", "prune", "--older-than", "90d"], "jobs"),
    (["canary", "list"], "cli"),
    (["flags", "list"], "cli"),
    (["catalog", "rollback", "agents"], "cli"),
])
def test_a_command_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                    extra: str) -> None:
    # as in an SDK-only install: the extra's packages are not installed
    real, absent = metadata.distribution, extras.requirements(extra)
    assert absent

    def distribution(name: str) -> metadata.Distribution:
        if name in absent:
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", distribution)
    got = CliRunner().invoke(cli, argv, prog_name="rollguard")
    assert got.exit_code == 1, got.output
    assert f"pip install 'rollguard[{extra}]'" in got.output
    assert f"`rollguard {argv[0]}" in got.output
    assert got.exception is None or isinstance(got.exception, SystemExit)


def test_a_command_whose_extra_is_installed_runs_as_usual() -> None:
    got = CliRunner().invoke(cli, ["operator", "--help"], prog_name="rollguard")
    assert got.exit_code == 0 and "run" in got.output and "pip install" not in got.output
    got = CliRunner().invoke(cli, ["catalog", "match", "429 Too Many Requests"], prog_name="rollguard")
    assert got.exit_code == 0 and "RATE_LIMITED" in got.output

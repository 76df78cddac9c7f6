"""`pip install rollguard` is the SDK alone: a backend gets the catalog matcher, the flag reader
and the failure reporter, and none of the servers' packages (kopf, FastAPI, SQLAlchemy, ...).

The wheel is built from the image's build context and installed, without an extra, into a fresh
virtualenv that resolves its dependencies from the package index (uv's cache first), as a
backend team installs it; the checkout is not on that interpreter's path."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

from rollguard.catalog import ErrorCode
from rollguard.flags import evaluate, render_flags, signoff_verdict
from rollguard.flags.render import FLAGS_FILE, Evaluated, dumps
from rollguard.models.flag import FeatureFlag
from tests.support.dist import build_context, build_wheel, fresh_venv, installed

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("sdk-install")]  # its module fixture runs once

# the servers' packages, and the local test cluster's (cryptography): none comes with the SDK
SERVER_PACKAGES = {"kopf", "kubernetes", "fastapi", "starlette", "uvicorn", "sqlalchemy", "psycopg", "alembic",
                   "pydantic-settings", "drain3", "boto3", "botocore", "cryptography", "prometheus-api-client"}
SERVER_MODULES = ("fastapi", "kopf", "sqlalchemy", "alembic", "boto3", "drain3", "cryptography", "kubernetes",
                  "uvicorn", "pydantic_settings")


@pytest.fixture(scope="module")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheel = build_wheel(build_context(tmp_path_factory.mktemp("context")), tmp_path_factory.mktemp("dist"))
    return fresh_venv(tmp_path_factory.mktemp("sdk") / "venv", str(wheel))


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "ROLLGUARD_", "AOS_FEATURE_"))}
    return {**env, "HOME": str(home), **extra}  # the reporter's spool falls back to ~/.cache


def test_the_sdk_install_holds_no_server_package(sdk_python: Path) -> None:
    names = installed(sdk_python)
    assert "rollguard" in names
    assert not names & SERVER_PACKAGES, f"installed with the SDK: {sorted(names & SERVER_PACKAGES)}"
    assert {"pydantic", "httpx", "prometheus-client", "google-re2", "click"} <= names


def test_a_backend_matches_reads_flags_and_reports_with_the_sdk_alone(sdk_python: Path, tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    # the flags file as the operator renders it for staging
    now = dt.datetime.now(dt.UTC)
    flag = FeatureFlag.model_validate({"metadata": {"name": "checkout-v2"}, "spec": {
        "owner": "shop", "key": "checkout_v2", "defaultValue": False, "environments": {"staging": True}}})
    verdict = signoff_verdict(flag.spec, now)
    (flags / FLAGS_FILE).write_text(dumps(render_flags("staging", "shop", [
        Evaluated(flag, evaluate(flag.spec, "staging", now, verdict), verdict)])))
    code = f"""
import json, sys
from pathlib import Path
from rollguard.sdk import (Matcher, configure, get_environment, is_flag_enabled, match, match_and_persist,
                           reload_flags)
r = match("httpx.ReadTimeout: timed out")
out = {{"code": r.code, "type": r.match_type, "codes": len(Matcher.default().codes), "env": get_environment(),
       "reloaded": reload_flags(), "on": is_flag_enabled("checkout_v2"), "unknown": is_flag_enabled("nope")}}
reporter = configure(base_url="http://127.0.0.1:9", token="t", spool_path=Path({str(tmp_path / "spool.db")!r}),
                     timeout=0.5)
res = match_and_persist("ETIMEDOUT", "run-1", error_message="connect timed out")
out["reported"] = res.match.entry_code
out["pending"] = reporter.spool.pending
reporter.close()
out["loaded"] = sorted(m for m in {list(SERVER_MODULES)!r} if m in sys.modules)
print(json.dumps(out))
"""
    env = _env(tmp_path, ROLLGUARD_FLAGS_DIR=str(flags))
    proc = subprocess.run([str(sdk_python), "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["code"], out["type"]) == ("READ_TIMEOUT", "pattern")
    assert out["codes"] == len(ErrorCode)  # the default catalog ships inside the wheel
    assert (out["env"], out["on"], out["unknown"]) == ("staging", True, False)
    # no failures API listens there: the event waits in the local spool, the caller goes on
    assert out["reported"] == "CONNECT_TIMEOUT"  # matched locally
    assert out["pending"] == 1
    assert out["loaded"] == []
    for module in SERVER_MODULES:  # and none could be imported either
        probe = subprocess.run([str(sdk_python), "-I", "-c", f"import {module}"], capture_output=True, text=True,
                               timeout=60)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, module


def test_the_cli_names_the_extra_a_command_needs(sdk_python: Path, tmp_path: Path) -> None:
    bin_dir = sdk_python.parent

    def run(*args: str, script: str = "rollguard") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_dir / script), *args], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                              text=True, timeout=120)

    # what needs only the SDK works
    got = run("catalog", "match", "429 Too Many Requests")
    assert got.returncode == 0 and "RATE_LIMITED" in got.stdout, got.stderr
    got = run("--help", script="kubectl-rollguard")
    assert got.returncode == 0 and got.stdout.startswith("Usage: kubectl rollguard"), got.stderr
    # a command whose extra is missing says which one, instead of a traceback
    for args, extra in ((["operator", "run"], "operator"), (["api", "serve"], "api"),
                        (["failures", "prune", "--older-than", "90d"], "jobs"), (["canary", "list"], "cli"),
                        (["catalog", "rollback", "agents"], "cli")):
        got = run(*args)
        assert got.returncode == 1, (args, got.stdout, got.stderr)
        assert f"pip install 'rollguard[{extra}]'" in got.stderr, got.stderr
        assert "Traceback" not in got.stderr

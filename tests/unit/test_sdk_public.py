"""What a backend imports: everything from `rollguard.sdk` itself, without any server package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import rollguard.sdk
from rollguard.catalog import MOUNT_PATH
from tests.support.kube import REPO


def test_every_public_name_imports_from_the_package() -> None:
    assert sorted(rollguard.sdk.__all__) == sorted(set(rollguard.sdk.__all__))
    for name in rollguard.sdk.__all__:
        assert getattr(rollguard.sdk, name).__module__.startswith("rollguard.sdk."), name
    # the functions the docs show
    assert {"is_flag_enabled", "get_environment", "reload_flags", "Matcher", "match", "configure",
            "match_and_persist"} <= set(rollguard.sdk.__all__)


@pytest.mark.skipif(Path(MOUNT_PATH).exists(), reason="a catalog is mounted on this machine")
def test_match_uses_the_default_catalog_where_none_is_mounted() -> None:
    r = rollguard.sdk.match("HTTP 429 Too Many Requests: rate limit exceeded")
    assert (r.code, r.match_type) == ("RATE_LIMITED", "pattern")
    assert rollguard.sdk.match("RATE_LIMITED").match_type == "exact"
    assert rollguard.sdk.match("something nobody catalogued").code == "UNKNOWN_ERROR"


def test_importing_the_sdk_loads_no_server_package(tmp_path: Path) -> None:
    code = ("import json, sys; from rollguard.sdk import *; "
            "print(json.dumps(sorted(m for m in ('fastapi', 'starlette', 'kopf', 'kubernetes', 'sqlalchemy', "
            "'alembic', 'uvicorn', 'drain3', 'boto3', 'cryptography', 'pydantic_settings') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []

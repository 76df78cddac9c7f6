"""Work-around for the shared ``postgres`` fixture when tests run as root.

tests/conftest.py puts the server's data directory under pytest's tmp_path, whose ancestors
(/tmp/pytest-of-root/...) pytest always creates with mode 0700; the server runs as the
``postgres`` user and cannot traverse them (initdb: "could not open file .../pwfile").
Until conftest is fixed (asked for in the failures helper's report), the API tests override
``postgres`` with a server whose directory postgres can reach.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rollguard.localenv.postgres import Postgres


def postgres_fixture() -> Callable[..., Any]:
    def postgres() -> Iterator[Postgres]:
        base = Path(tempfile.mkdtemp(prefix="rollguard-api-pg-"))
        base.chmod(0o755)
        pg = Postgres(base / "pg")
        pg.start()
        try:
            yield pg
        finally:
            pg.stop()
            shutil.rmtree(base, ignore_errors=True)

    return pytest.fixture(scope="session", name="postgres")(postgres)

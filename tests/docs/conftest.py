"""Prints, after the tests, how many documented blocks the docs test ran, checked or found marked."""

from __future__ import annotations

from typing import Any

import pytest

from tests.docs.blocks import all_documents
from tests.docs.summary import summary_lines

_collected: list[bool] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if any("tests/docs/" in item.nodeid for item in items):
        _collected.append(True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _collected:
        return
    terminalreporter.section("documentation blocks (README.md, docs/*.md)")
    for line in summary_lines(all_documents()):
        terminalreporter.write_line(line)

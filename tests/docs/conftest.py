"""Prints, after the tests, how many documented blocks the docs test ran, checked or found marked."""

from __future__ import annotations

from typing import Any

from tests.docs.blocks import all_documents
from tests.docs.summary import summary_lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # Reports, not collection: with pytest-xdist the controller collects nothing itself.
    reports = (r for rs in terminalreporter.stats.values() for r in rs if hasattr(r, "nodeid"))
    if not any(r.nodeid.startswith("tests/docs/") for r in reports):
        return
    terminalreporter.section("documentation blocks (README.md, docs/*.md)")
    for line in summary_lines(all_documents()):
        terminalreporter.write_line(line)

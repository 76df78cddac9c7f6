"""What backends import; ``pip install rollguard`` (no extra) is enough.

    from rollguard.sdk import Matcher, configure, get_environment, is_flag_enabled, match, match_and_persist

    result = match(f"{type(exc).__name__}: {exc}")     # .code, .match_type, .confidence, .entry.recovery
    if is_flag_enabled("failure_catalog_runtime_integration"): ...
    match_and_persist("ETIMEDOUT", run_id, error_message=str(exc))   # local spool, never blocks

Flags come from the files the operator mounts at /etc/rollguard/flags (``ROLLGUARD_FLAGS_DIR``
moves them), the catalog from /etc/rollguard/catalog/catalog.json (the shipped default catalog
where none is mounted); both are re-read when they change. The reporter sends to
``ROLLGUARD_FAILURES_URL`` with ``ROLLGUARD_FAILURES_TOKEN`` unless ``configure()`` says otherwise.
``Matcher``, ``FlagReader`` and ``Reporter`` are the classes behind the functions, for a
process that wants instances of its own.
"""

from __future__ import annotations

from rollguard.sdk.flags import FlagReader, get_environment, is_flag_enabled, reload_flags
from rollguard.sdk.matcher import Matcher, MatchResult, default_matcher, match
from rollguard.sdk.reporter import Reporter, ReportResult, configure, match_and_persist

__all__ = [
    "FlagReader",
    "MatchResult",
    "Matcher",
    "ReportResult",
    "Reporter",
    "configure",
    "default_matcher",
    "get_environment",
    "is_flag_enabled",
    "match",
    "match_and_persist",
    "reload_flags",
]

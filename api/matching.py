"""The one seam between the service and the catalog matcher.

Until `rollguard.sdk.matcher` (written in parallel) lands on main, a small interim matcher
lives here: the same three match types (exact code, alias, regex pattern) over a catalog.json
(the rendered FailureCatalog) or a built-in fallback catalog. Swapping in the real matcher
means changing `CatalogMatcher` below and nothing else: the service only sees `Match`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

MatchType = Literal["exact", "alias", "pattern", "unknown"]
CONFIDENCE: dict[MatchType, float] = {"exact": 1.0, "alias": 0.95, "pattern": 0.8, "unknown": 0.0}

# Used when no catalog is mounted (laptop demo, tests): a few codes from the seeds' catalog.
BUILTIN_CATALOG: dict[str, Any] = {
    "version": "builtin-1",
    "entries": [
        {"code": "TIMEOUT", "category": "TRANSIENT", "severity": "medium", "retryable": True,
         "aliases": ["ETIMEDOUT", "DEADLINE_EXCEEDED"], "patterns": [r"timed? ?out", r"deadline exceeded"],
         "recovery": {"mode": "RETRY_EXPONENTIAL", "suggestion": "Retry with exponential backoff (max 3)."}},
        {"code": "RATE_LIMITED", "category": "TRANSIENT", "severity": "low", "retryable": True,
         "aliases": ["HTTP_429", "TOO_MANY_REQUESTS"], "patterns": [r"rate.?limit", r"\b429\b"],
         "recovery": {"mode": "RETRY_EXPONENTIAL", "suggestion": "Back off and retry after the Retry-After delay."}},
        {"code": "CONNECTION_REFUSED", "category": "NETWORK", "severity": "high", "retryable": True,
         "aliases": ["ECONNREFUSED"], "patterns": [r"connection refused"],
         "recovery": {"mode": "RETRY_LINEAR", "suggestion": "Check the upstream is up; retry."}},
        {"code": "PERMISSION_DENIED", "category": "PERMISSION", "severity": "high", "retryable": False,
         "aliases": ["HTTP_403", "FORBIDDEN"], "patterns": [r"permission denied", r"forbidden"],
         "recovery": {"mode": "MANUAL", "suggestion": "Grant the missing permission; do not retry."}},
        {"code": "BUDGET_EXCEEDED", "category": "RESOURCE", "severity": "high", "retryable": False,
         "aliases": ["QUOTA_EXCEEDED"], "patterns": [r"budget exceeded", r"quota"],
         "recovery": {"mode": "ABORT", "suggestion": "Raise the budget or stop the run."}},
        {"code": "INVALID_INPUT", "category": "VALIDATION", "severity": "low", "retryable": False,
         "aliases": ["HTTP_400", "BAD_REQUEST"], "patterns": [r"invalid (input|argument|parameter)"],
         "recovery": {"mode": "FALLBACK", "suggestion": "Fix the input; use the fallback skill meanwhile."}},
    ],
}


@dataclass(frozen=True)
class Match:
    """What the service stores and returns about one error, whatever matcher produced it."""

    entry_code: str | None
    match_type: MatchType
    confidence: float
    category: str | None = None
    severity: str | None = None
    retryable: bool = False
    recovery_mode: str | None = None
    recovery_suggestion: str | None = None

    @property
    def hit(self) -> bool:
        return self.entry_code is not None


UNKNOWN = Match(entry_code=None, match_type="unknown", confidence=0.0)


@dataclass
class CatalogMatcher:
    catalog: dict[str, Any]
    version: str = ""
    _by_code: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _by_alias: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _patterns: list[tuple[re.Pattern[str], dict[str, Any]]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        canonical = json.dumps(self.catalog, sort_keys=True, separators=(",", ":")).encode()
        self.version = hashlib.sha256(canonical).hexdigest()
        for entry in self.catalog.get("entries", []):
            self._by_code[str(entry["code"]).upper()] = entry
            # The operator's catalog.json (a FailureCatalog's entries) nests them under `match`;
            # the built-in catalog has them at the top level.
            match = entry.get("match") or {}
            for alias in (entry.get("aliases") or []) + (match.get("aliases") or []):
                self._by_alias[str(alias).upper()] = entry
            for pat in (entry.get("patterns") or []) + (match.get("patterns") or []):
                self._patterns.append((re.compile(pat, re.IGNORECASE), entry))

    def _result(self, entry: dict[str, Any], match_type: MatchType) -> Match:
        recovery = entry.get("recovery") or {}
        return Match(entry_code=str(entry["code"]), match_type=match_type, confidence=CONFIDENCE[match_type],
                     category=entry.get("category"), severity=entry.get("severity"),
                     retryable=bool(entry.get("retryable", False)), recovery_mode=recovery.get("mode"),
                     recovery_suggestion=recovery.get("suggestion"))

    def match(self, code_or_message: str) -> Match:
        key = code_or_message.strip().upper()
        if key in self._by_code:
            return self._result(self._by_code[key], "exact")
        if key in self._by_alias:
            return self._result(self._by_alias[key], "alias")
        for rx, entry in self._patterns:
            if rx.search(code_or_message):
                return self._result(entry, "pattern")
        return UNKNOWN

    def match_event(self, error_code: str | None, error_message: str | None) -> Match:
        """The code first (cheap and exact), then the message."""
        for candidate in (error_code, error_message):
            if candidate:
                m = self.match(candidate)
                if m.hit:
                    return m
        return UNKNOWN


def load_matcher(catalog_path: Path | None) -> CatalogMatcher:
    if catalog_path is not None and catalog_path.is_file():
        return CatalogMatcher(json.loads(catalog_path.read_text()))
    return CatalogMatcher(BUILTIN_CATALOG)


class MatcherHolder:
    """Hot reload: the catalog ConfigMap is updated in place, so re-read it when it changes."""

    def __init__(self, catalog_path: Path | None, check_every: float = 5.0) -> None:
        self._path, self._every = catalog_path, check_every
        self._lock = threading.Lock()
        self._mtime = self._stat()
        self._matcher = load_matcher(catalog_path)
        self._checked = time.monotonic()

    def _stat(self) -> float | None:
        try:
            return self._path.stat().st_mtime if self._path is not None else None
        except OSError:
            return None

    def get(self) -> CatalogMatcher:
        now = time.monotonic()
        if now - self._checked >= self._every:
            with self._lock:
                self._checked = now
                mtime = self._stat()
                if mtime != self._mtime:
                    try:
                        self._matcher = load_matcher(self._path)
                        self._mtime = mtime
                        log.info("catalog reloaded: version %s", self._matcher.version[:12])
                    except (OSError, ValueError, KeyError, re.error) as exc:
                        log.error("catalog %s unreadable, keeping version %s: %s", self._path,
                                  self._matcher.version[:12], exc)
        return self._matcher

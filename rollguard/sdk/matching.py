"""The one seam between the catalog matcher and what stores its results (the failures service,
the SDK reporter). It lives in the SDK because both sides use it and the SDK depends on the
domain model only; the service imports it from here.

Matching itself is `rollguard.sdk.matcher.Matcher`: the mounted catalog.json (as the catalog
operator renders it) with hot reload, or the shipped default catalog (54 codes) when none is
mounted. The service only sees `Match`, a flat record of what it stores and returns, and the
catalog version: the catalog's content hash, the same sha256 the operator writes into
catalog.json as ``contentHash`` and into the ConfigMap's name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from rollguard.catalog import content_hash, load_default_catalog
from rollguard.models.catalog import FailureCatalogSpec
from rollguard.sdk.matcher import Matcher, MatchResult, MatchType

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Match:
    """What the service stores and returns about one error."""

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

    @classmethod
    def of(cls, r: MatchResult) -> Match:
        e = r.entry
        if e is None:
            return UNKNOWN
        return cls(entry_code=e.code, match_type=r.match_type, confidence=r.confidence, category=e.category,
                   severity=e.severity, retryable=e.retryable, recovery_mode=e.recovery.mode,
                   recovery_suggestion=e.recovery.suggestion)


UNKNOWN = Match(entry_code=None, match_type="unknown", confidence=0.0)


class CatalogMatcher:
    """A `Matcher` plus the content hash of the catalog version it currently serves.

    The matcher's own Prometheus counters are off: an event is matched up to twice (its code,
    then its message), so the callers count once per event themselves (the service in its
    registry, the SDK reporter in `rollguard.sdk.catalog_metrics`)."""

    def __init__(self, matcher: Matcher, source: str) -> None:
        self.matcher, self.source = matcher, source
        self._hashed: tuple[FailureCatalogSpec, str] | None = None

    @property
    def version(self) -> str:
        spec = self.matcher.spec  # swapped as a whole on reload: identity says "same version"
        hashed = self._hashed
        if hashed is None or hashed[0] is not spec:
            hashed = self._hashed = (spec, content_hash(spec))
        return hashed[1]

    def match(self, code_or_message: str) -> Match:
        return Match.of(self.matcher.match(code_or_message))

    def match_event(self, error_code: str | None, error_message: str | None) -> Match:
        """The code first (cheap and exact), then the message."""
        for candidate in (error_code, error_message):
            if candidate:
                r = self.matcher.match(candidate)
                if r.entry is not None:
                    return Match.of(r)
        return UNKNOWN


def load_matcher(catalog_path: Path | None, *, reload_interval: float = 1.0) -> CatalogMatcher:
    """The mounted catalog (its change checked at most every ``reload_interval`` s), else the
    shipped default catalog."""
    if catalog_path is not None and catalog_path.is_file():
        m = CatalogMatcher(Matcher.from_file(catalog_path, reload_interval=reload_interval, metrics=False),
                           str(catalog_path))
    else:
        m = CatalogMatcher(Matcher(load_default_catalog(), metrics=False), "default catalog")
    log.info("failure catalog: %s, %d codes, version %s", m.source, len(m.matcher.codes), m.version[:12])
    return m


__all__ = ["UNKNOWN", "CatalogMatcher", "Match", "MatchType", "load_matcher"]

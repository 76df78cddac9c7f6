"""The catalog matching seam of the failures service: ``rollguard.sdk.matching``, re-exported
(the SDK reporter uses the same code, and imports run models <- sdk <- api, never back)."""

from __future__ import annotations

from rollguard.sdk.matching import BUILT_IN, UNKNOWN, CatalogMatcher, Match, MatchType, load_matcher

__all__ = ["BUILT_IN", "UNKNOWN", "CatalogMatcher", "Match", "MatchType", "load_matcher"]

"""The failures service's view of the catalog matcher: the SDK's matching seam (`rollguard.sdk.matching`)."""

from __future__ import annotations

from rollguard.sdk.matching import UNKNOWN, CatalogMatcher, Match, MatchType, load_matcher

__all__ = ["UNKNOWN", "CatalogMatcher", "Match", "MatchType", "load_matcher"]

"""Match an error code or message against a failure catalog.

    from rollguard.sdk import Matcher
    m = Matcher.from_file("/etc/rollguard/catalog/catalog.json")   # hot-reloads on change
    r = m.match("HTTPSConnectionPool(...): Read timed out. (read timeout=10)")
    r.code, r.match_type, r.confidence, r.entry.recovery.mode

Order: the exact code, then an alias (case-insensitive), then every message pattern at once.
Patterns are compiled together into one RE2 set (a single linear-time pass over the message
that reports every pattern that matches); the most specific match wins (see
``rollguard.catalog.patterns.specificity``). Without google-re2 installed, the patterns are
compiled into one Python ``re`` alternation of named groups (much slower). Both engines
compile each pattern's ``compiled_form``: shorthand classes, word boundaries and
case-insensitivity spelled out the same way for both, so one catalog gives one
classification whatever the engine (``rollguard.catalog.portable``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rollguard.catalog import MOUNT_PATH, load_catalog_file, load_default_catalog, spec_of
from rollguard.catalog.patterns import compiled_form, re2_module, re2_options, specificity
from rollguard.models.catalog import CatalogEntry, FailureCatalogSpec
from rollguard.sdk import catalog_metrics

log = logging.getLogger(__name__)

MatchType = Literal["exact", "alias", "pattern", "unknown"]
Engine = Literal["auto", "re2", "re"]
UNKNOWN_CODE = "UNKNOWN_ERROR"
# Only the head of a message is searched: stack traces can be megabytes; the reason is early.
MAX_MESSAGE_CHARS = 4096
CONFIDENCE_EXACT = 1.0
CONFIDENCE_ALIAS = 0.95


@dataclass(frozen=True, slots=True)
class MatchResult:
    entry: CatalogEntry | None
    match_type: MatchType
    confidence: float
    pattern: str | None = None

    @property
    def code(self) -> str:
        return self.entry.code if self.entry is not None else UNKNOWN_CODE

    @property
    def matched(self) -> bool:
        return self.entry is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "matchType": self.match_type,
            "confidence": self.confidence,
            "pattern": self.pattern,
            "entry": self.entry.model_dump(by_alias=True, exclude_none=True, mode="json") if self.entry else None,
        }


def pattern_confidence(spec_score: int) -> float:
    """0.5 for a pattern with no literal at all, up to 0.9 for 40+ literal characters:
    always below an alias or an exact code."""
    return round(0.5 + 0.4 * min(spec_score, 40) / 40, 3)


@dataclass(frozen=True)
class _Compiled:
    """Everything derived from one catalog version; swapped atomically on reload."""

    spec: FailureCatalogSpec
    by_code: dict[str, CatalogEntry]
    by_alias: dict[str, CatalogEntry]
    # per pattern index: (entry, pattern, confidence, rank) ; rank: larger is better
    patterns: list[tuple[CatalogEntry, str, float, tuple[int, int]]]
    search: Callable[[str], int | None]
    engine: str
    hit_counters: dict[str, Any]  # code -> its labelled hits counter (labels() once, not per call)
    unknown: MatchResult = field(default_factory=lambda: MatchResult(None, "unknown", 0.0))


def _compile(spec: FailureCatalogSpec, engine: Engine) -> _Compiled:
    by_code = {e.code: e for e in spec.entries}
    by_alias: dict[str, CatalogEntry] = {}
    for e in spec.entries:
        for a in e.match.aliases:
            by_alias.setdefault(a.strip().casefold(), e)
        by_alias.setdefault(e.code.casefold(), e)  # a code in another case is an alias of itself
    pats: list[tuple[CatalogEntry, str, float, tuple[int, int]]] = []
    n = sum(len(e.match.patterns) for e in spec.entries)
    for e in spec.entries:
        for p in e.match.patterns:
            s = specificity(p)
            # ties: the earlier pattern in the catalog wins
            pats.append((e, p, pattern_confidence(s), (s, n - len(pats))))
    re2 = re2_module()
    use_re2 = engine == "re2" or (engine == "auto" and re2 is not None)
    if use_re2:
        if re2 is None:
            raise RuntimeError("engine 're2' requested but google-re2 is not installed")
        search, name = _re2_search(re2, pats), "re2"
    else:
        search, name = _re_search(pats), "re"
    counters = {e.code: catalog_metrics.HITS.labels(e.code, e.category) for e in spec.entries}
    return _Compiled(spec, by_code, by_alias, pats, search, name, counters)


def _re2_search(re2: Any, pats: list[tuple[CatalogEntry, str, float, tuple[int, int]]]) -> Callable[[str], int | None]:
    rset = re2.Set.SearchSet(re2_options())
    for _e, p, _c, _r in pats:
        rset.Add(compiled_form(p, "re2"))
    if pats:
        rset.Compile()
    ranks = [r for _e, _p, _c, r in pats]
    rank_of = ranks.__getitem__

    def search(text: str) -> int | None:
        if not ranks:
            return None
        hits: list[int] | None = rset.Match(text)
        if not hits:
            return None
        return hits[0] if len(hits) == 1 else max(hits, key=rank_of)

    return search


def _re_search(pats: list[tuple[CatalogEntry, str, float, tuple[int, int]]]) -> Callable[[str], int | None]:
    # Fallback without RE2: still one compiled expression, not a Python loop. Each pattern is a
    # named group inside a lookahead anchored at the start, most specific first, so the first
    # alternative that succeeds is the most specific pattern found anywhere in the message
    # (a plain alternation would return the leftmost match instead). Correct, but sre tries the
    # alternatives one after the other: far slower than RE2's single DFA pass.
    order = sorted(range(len(pats)), key=lambda i: pats[i][3], reverse=True)
    if not order:
        return lambda _text: None
    alts = "|".join(f"(?=(?s:.*?)(?P<p{i}>{compiled_form(pats[i][1], 're')}))" for i in order)
    big = re.compile(f"^(?:{alts})")

    def search(text: str) -> int | None:
        m = big.match(text)
        if m is None or m.lastgroup is None:
            return None
        return int(m.lastgroup[1:])

    return search


class Matcher:
    """Matches codes and messages against one catalog (optionally a file it keeps reloading).

    ``engine``: "re2" (google-re2, required), "re" (the standard library) or "auto" (RE2 when
    installed); both give the same result for every catalog and message. ``metrics``: count hits and misses in the
    prometheus_client default registry. ``clock``: a clock that only moves forward, for the
    reload interval of ``from_file`` (default ``time.monotonic``; tests pass their own).
    Raises RuntimeError for engine "re2" without google-re2.
    """

    def __init__(self, spec: FailureCatalogSpec, *, engine: Engine = "auto", metrics: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._engine: Engine = engine
        self._metrics = metrics
        self._clock = clock
        self._state = _compile(spec, engine)
        self._path: Path | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._reload_interval = 1.0
        # clock reading after which the file is looked at again; None: at the next match
        # (never 0.0: a monotonic clock's origin is unspecified, no reading means "long ago")
        self._next_check: float | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_catalog(cls, spec: FailureCatalogSpec | dict[str, Any], **kw: Any) -> Matcher:
        """From a spec model, a spec dict, a FailureCatalog manifest or a rendered catalog.json."""
        if isinstance(spec, dict):
            spec = FailureCatalogSpec.model_validate(spec_of(spec))
        return cls(spec, **kw)

    @classmethod
    def default(cls, **kw: Any) -> Matcher:
        return cls(load_default_catalog(), **kw)

    @classmethod
    def from_file(cls, path: str | Path = "/etc/rollguard/catalog/catalog.json", *,
                  reload_interval: float = 1.0, **kw: Any) -> Matcher:
        """Read a catalog file and re-read it when it changes.

        The change check is a ``stat`` at most every ``reload_interval`` seconds, done inside
        ``match``; a Kubernetes ConfigMap volume swaps a symlink, which changes the inode.
        A file that fails to load keeps the previous version (and logs why).
        """
        p = Path(path)
        m = cls(load_catalog_file(p), **kw)
        m._path, m._stamp, m._reload_interval = p, _stamp(p), reload_interval
        m._next_check = m._clock() + reload_interval
        return m

    # ---------------------------------------------------------------- properties
    @property
    def spec(self) -> FailureCatalogSpec:
        return self._state.spec

    @property
    def engine(self) -> str:
        return self._state.engine

    @property
    def codes(self) -> list[str]:
        return list(self._state.by_code)

    def get(self, code: str) -> CatalogEntry | None:
        return self._state.by_code.get(code)

    # ---------------------------------------------------------------- matching
    def match(self, code_or_message: str) -> MatchResult:
        if self._path is not None:
            self._maybe_reload()
        st = self._state
        result = self._match(st, code_or_message)
        if self._metrics:
            if result.entry is not None:
                st.hit_counters[result.entry.code].inc()
            else:
                catalog_metrics.MISSES.inc()
        return result

    def match_exception(self, exc: BaseException) -> MatchResult:
        """Match ``"ExceptionType: message"``, the way a traceback's last line reads."""
        return self.match(f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _match(st: _Compiled, text: str) -> MatchResult:
        key = text.strip()
        entry = st.by_code.get(key)
        if entry is not None:
            return MatchResult(entry, "exact", CONFIDENCE_EXACT)
        if len(key) <= 128:
            entry = st.by_alias.get(key.casefold())
            if entry is not None:
                return MatchResult(entry, "alias", CONFIDENCE_ALIAS)
        i = st.search(text[:MAX_MESSAGE_CHARS])
        if i is None:
            return st.unknown
        e, p, conf, _rank = st.patterns[i]
        return MatchResult(e, "pattern", conf, p)

    # ---------------------------------------------------------------- hot reload
    def reload(self) -> bool:
        """Re-read the file now; True when a new version was loaded."""
        if self._path is None:
            return False
        with self._lock:
            stamp = _stamp(self._path)
            if stamp == self._stamp:
                return False
            try:
                state = _compile(load_catalog_file(self._path), self._engine)
            except Exception as e:  # keep serving the last good version
                log.warning("rollguard: keeping the previous catalog, %s does not load: %s", self._path, e)
                self._stamp = stamp
                return False
            self._state, self._stamp = state, stamp
            log.info("rollguard: catalog reloaded from %s (%d entries)", self._path, len(state.by_code))
            return True

    def _maybe_reload(self) -> None:
        now = self._clock()
        if self._next_check is not None and now < self._next_check:
            return
        self._next_check = now + self._reload_interval
        self.reload()


_default: Matcher | None = None
_default_lock = threading.Lock()


def default_matcher() -> Matcher:
    """The process-wide matcher: the catalog the operator mounts (/etc/rollguard/catalog/catalog.json,
    re-read when it changes) or, where none is mounted (a laptop, a unit test), the shipped default
    catalog."""
    global _default
    with _default_lock:
        if _default is None:
            path = Path(MOUNT_PATH)
            _default = Matcher.from_file(path) if path.is_file() else Matcher.default()
        return _default


def match(code_or_message: str) -> MatchResult:
    """Match an error code or message with the process-wide matcher (see ``default_matcher``)."""
    return default_matcher().match(code_or_message)


def _stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


__all__ = ["CONFIDENCE_ALIAS", "CONFIDENCE_EXACT", "UNKNOWN_CODE", "MatchResult", "Matcher", "default_matcher", "match",
           "pattern_confidence"]

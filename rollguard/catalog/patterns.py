"""What a message pattern is: a case-insensitive regex in the syntax Python `re` and RE2 share,
with one meaning in both (``rollguard.catalog.portable``).

``specificity`` ranks patterns: the minimum number of literal characters any match must
contain. "connection to server at .{0,80}failed" (29) beats "connection refused" (18),
which beats "\\btimeout\\b" (7): the more a pattern pins down, the more it says.
"""

from __future__ import annotations

import functools
import re

# Python 3.11+: the regex parser lives in re._parser (used only to measure specificity)
from re import _constants as sre_constants  # type: ignore[attr-defined,unused-ignore]
from re import _parser as sre_parse  # type: ignore[attr-defined,unused-ignore]
from typing import Any

from rollguard.catalog.portable import NotPortable, Target, translate

try:
    import re2 as _re2  # type: ignore[import-untyped]  # google-re2 ships no stubs
except ImportError:  # pragma: no cover - exercised by the "re" engine tests
    _re2 = None

HAVE_RE2 = _re2 is not None
PY_FLAGS = re.IGNORECASE


def _min_literals(items: Any) -> int:
    total = 0
    for op, av in items:
        if op is sre_constants.LITERAL:
            total += 1
        elif op is sre_constants.SUBPATTERN:
            total += _min_literals(av[-1])
        elif op is sre_constants.BRANCH:
            total += min((_min_literals(alt) for alt in av[1]), default=0)
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            lo, _hi, body = av
            total += min(lo, 3) * _min_literals(body)
    return total


def specificity(pattern: str) -> int:
    """Minimum count of literal characters in any match of ``pattern`` (0 if it does not parse)."""
    try:
        return _min_literals(sre_parse.parse(pattern, PY_FLAGS))
    except (re.error, RecursionError):
        return 0


@functools.lru_cache(maxsize=8192)
def compiled_form(pattern: str, target: Target) -> str:
    """What the matcher compiles for ``pattern`` with engine ``target`` ("re2" or "re"):
    the pattern with its one meaning written out, matched case-sensitively.

    Raises ``re.error`` (does not parse) or ``portable.NotPortable``.
    """
    return translate(pattern, target)


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is unusable in a catalog, or None.

    Checked: it compiles in Python ``re`` and, when google-re2 is installed, in RE2 (as
    written, for readers of catalog.json in other languages, and as the matcher compiles it);
    it has one meaning in both engines (``portable.translate``); it does not match the empty
    string; it has no named groups.
    """
    try:
        compiled = re.compile(compiled_form(pattern, "re"))  # first: it refuses "[[" before re warns
        raw = re.compile(pattern, PY_FLAGS)
    except re.error as e:
        return f"does not compile: {e}"
    except NotPortable as e:
        return f"does not mean the same in RE2/Go and Python: {e}"
    if compiled.search("") is not None:
        return "matches the empty string (it would match every message)"
    if raw.groupindex:
        return "named groups are not allowed (the matcher names the groups itself)"
    if _re2 is not None:
        try:
            _re2.compile(pattern, _re2_options(case_sensitive=False))
            _re2.compile(compiled_form(pattern, "re2"), _re2_options(case_sensitive=True))
        except _re2.error as e:
            return f"not supported by RE2 (no lookaround or backreferences): {e}"
    return None


def _re2_options(case_sensitive: bool) -> Any:
    assert _re2 is not None
    opts = _re2.Options()
    opts.case_sensitive = case_sensitive
    opts.log_errors = False
    opts.max_mem = 64 << 20  # DFA budget for a whole catalog's set
    return opts


def re2_options() -> Any:
    """RE2 options for the matcher's set: case-sensitive, since ``compiled_form`` spells out
    case-insensitivity itself (RE2's own folding differs from Python's)."""
    return _re2_options(case_sensitive=True)


def re2_module() -> Any:
    return _re2

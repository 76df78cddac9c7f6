"""One meaning for a catalog pattern, whichever regex engine runs it.

A catalog pattern is written in the syntax Python ``re`` and RE2 share, and matched
case-insensitively. The two engines give that syntax different meanings: Python's ``\\d``,
``\\w``, ``\\s`` and ``\\b`` are Unicode-aware, RE2's (and Go's) are ASCII; Python folds
case by its own rules (``i`` matches the dotted capital and the dotless i), RE2 by Unicode's case-folding orbits;
Python's ``$`` also matches before a final newline. So the same catalog could classify
"user José not found" one way with google-re2 and another way with the ``re`` fallback.

Here the meaning is fixed once, as RE2 and Go read a pattern, and written out explicitly:
``translate`` parses a pattern and prints it again for one engine with

- ``\\d`` = ``[0-9]``, ``\\w`` = ``[0-9A-Za-z_]``, ``\\s`` = ``[\\t\\n\\f\\r ]`` (RE2's sets;
  no-break spaces and non-ASCII digits are not matched by the shorthands);
- ``\\b`` / ``\\B``: a boundary between a character of ``[0-9A-Za-z_]`` and one that is not
  (RE2's own ``\\b``; lookarounds on those classes for Python, whose ``\\b`` is Unicode);
- case-insensitivity as explicit classes: a character matches every character with the
  same ``str.casefold()`` (``k``, ``K`` and the Kelvin sign; ``ß`` and ``ẞ``), nothing else;
  both engines then match case-sensitively;
- ``$`` = end of the text (``\\Z`` for Python), ``.`` = any character but ``\\n``.

Constructs that cannot mean the same in both engines, or that RE2/Go read differently from
Python, are refused (``NotPortable``): lookaround, backreferences, atomic groups, possessive
repeats, ``{,n}``, POSIX classes and nested sets, ``\\u``/``\\U``/``\\N`` escapes, ``\\Z``,
the flags ``a``, ``u``, ``L`` and ``x``, ``(?#...)`` comments, repeats over 1000.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
import warnings
from collections.abc import Iterable
from re import _constants as sre_constants  # type: ignore[attr-defined,unused-ignore]
from re import _parser as sre_parse  # type: ignore[attr-defined,unused-ignore]
from typing import Any, Literal

Target = Literal["re2", "re"]

MAX_CODEPOINT = sys.maxunicode
# No character above U+1FFFF has another case (the last cased script, Adlam, ends at U+1E95F).
_LAST_CASED = 0x1FFFF
# RE2's (and Go's) sets; Python's shorthands would be Unicode-aware.
_DIGIT = [(0x30, 0x39)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE = [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]
_WORD_CLASS = "[0-9A-Za-z_]"
# RE2 refuses repeats above 1000 (Go too).
MAX_REPEAT = 1000

Ranges = list[tuple[int, int]]


class NotPortable(ValueError):
    """The pattern has a construct that RE2/Go and Python cannot give one meaning; the
    message says which and what to write instead."""


# ------------------------------------------------------------------------- case folding
@functools.cache
def _fold_table() -> tuple[list[int], dict[int, tuple[int, ...]]]:
    """Every code point whose case class has more than one member, sorted, and its class.

    Computed once per process (about 0.1 s) from ``str.casefold``: two characters are the
    same letter when their case-folds are equal.
    """
    groups: dict[str, list[int]] = {}
    for cp in range(_LAST_CASED + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        folded = ch.casefold()
        if folded != ch or ch.upper() != ch or ch.lower() != ch:
            groups.setdefault(folded, []).append(cp)
    orbit: dict[int, tuple[int, ...]] = {}
    for folded, members in groups.items():
        if len(folded) == 1 and ord(folded) not in members:
            members.append(ord(folded))
        if len(members) > 1:
            t = tuple(sorted(members))
            for m in t:
                orbit[m] = t
    return sorted(orbit), orbit


# The case classes of ASCII letters, without scanning Unicode: the two non-ASCII members are
# the Kelvin sign and the long s (a test checks this against ``_fold_table``). Most catalogs
# are ASCII, so most processes never pay for the full table.
_ASCII_OTHERS = {ord("k"): (0x212A,), ord("s"): (0x17F,)}


def _ascii_variants(cp: int) -> tuple[int, ...]:
    ch = chr(cp)
    if not ch.isalpha():
        return (cp,)
    low = ord(ch.lower())
    return tuple(sorted({low, ord(ch.upper()), *_ASCII_OTHERS.get(low, ())}))


def case_variants(cp: int) -> tuple[int, ...]:
    """The characters ``chr(cp)`` matches case-insensitively, itself included: every
    character with the same ``str.casefold()``."""
    if cp < 0x80:
        return _ascii_variants(cp)
    return _fold_table()[1].get(cp, (cp,))


def _fold(ranges: Ranges) -> Ranges:
    if all(hi < 0x80 for _lo, hi in ranges):
        return _normalise(ranges + [(v, v) for lo, hi in ranges for cp in range(lo, hi + 1)
                                    for v in _ascii_variants(cp)])
    cased, orbit = _fold_table()
    extra: list[tuple[int, int]] = []
    for lo, hi in ranges:
        for cp in cased[bisect.bisect_left(cased, lo):bisect.bisect_right(cased, hi)]:
            extra.extend((v, v) for v in orbit[cp])
    return _normalise(ranges + extra)


def _normalise(ranges: Iterable[tuple[int, int]]) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _complement(ranges: Ranges) -> Ranges:
    out: Ranges = []
    nxt = 0
    for lo, hi in _normalise(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAX_CODEPOINT:
        out.append((nxt, MAX_CODEPOINT))
    return out


# ------------------------------------------------------------------------- printing
def _char(cp: int, target: Target) -> str:
    """One character, escaped so that both engines read it the same inside or outside []."""
    ch = chr(cp)
    if ch.isascii() and ch.isalnum():
        return ch
    if cp == 0x20:
        return " "
    if 0x20 < cp < 0x7F:
        return "\\" + ch  # ASCII punctuation: a backslash makes it literal in both engines
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if target == "re2":
        return f"\\x{{{cp:x}}}"
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _class(ranges: Ranges, target: Target) -> str:
    if not ranges:
        return f"[^{_char(0, target)}-{_char(MAX_CODEPOINT, target)}]"  # matches nothing, in both
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char(ranges[0][0], target)
    body = "".join(_char(lo, target) if lo == hi else f"{_char(lo, target)}-{_char(hi, target)}"
                   for lo, hi in ranges)
    return f"[{body}]"


def _category(cat: Any, fold: bool) -> Ranges:
    positive = {sre_constants.CATEGORY_DIGIT: _DIGIT, sre_constants.CATEGORY_WORD: _WORD,
                sre_constants.CATEGORY_SPACE: _SPACE}
    negative = {sre_constants.CATEGORY_NOT_DIGIT: _DIGIT, sre_constants.CATEGORY_NOT_WORD: _WORD,
                sre_constants.CATEGORY_NOT_SPACE: _SPACE}
    if cat in positive:
        return _fold(positive[cat]) if fold else list(positive[cat])
    if cat in negative:
        return _complement(_fold(negative[cat]) if fold else negative[cat])
    raise NotPortable(f"unsupported character category {cat}")


def _in(items: list[tuple[Any, Any]], fold: bool) -> Ranges:
    negate = False
    plain: Ranges = []
    cats: Ranges = []
    for op, av in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            plain.append((av, av))
        elif op is sre_constants.RANGE:
            plain.append((av[0], av[1]))
        elif op is sre_constants.CATEGORY:
            cats.extend(_category(av, fold))
        else:
            raise NotPortable(f"unsupported item in a character class: {op}")
    ranges = _normalise((_fold(plain) if fold else plain) + cats)
    return _complement(ranges) if negate else ranges


def _boundary(target: Target, negated: bool) -> str:
    if target == "re2":
        return "\\B" if negated else "\\b"
    w = _WORD_CLASS
    if negated:
        return f"(?:(?<={w})(?={w})|(?<!{w})(?!{w}))"
    return f"(?:(?<={w})(?!{w})|(?<!{w})(?={w}))"


_REFUSED = {
    "ASSERT": "lookaround is not supported by RE2/Go",
    "ASSERT_NOT": "lookaround is not supported by RE2/Go",
    "GROUPREF": "backreferences are not supported by RE2/Go",
    "GROUPREF_EXISTS": "conditional groups are not supported by RE2/Go",
    "ATOMIC_GROUP": "atomic groups are not supported by RE2/Go",
    "POSSESSIVE_REPEAT": "possessive repeats are not supported by RE2/Go",
}


def _emit(items: Any, flags: int, target: Target) -> str:
    out: list[str] = []
    fold = bool(flags & re.IGNORECASE)
    for op, av in items:
        name = str(op)
        if name in _REFUSED:
            raise NotPortable(_REFUSED[name])
        if op is sre_constants.LITERAL:
            out.append(_class(_normalise((v, v) for v in case_variants(av)), target) if fold else _char(av, target))
        elif op is sre_constants.NOT_LITERAL:
            members = case_variants(av) if fold else (av,)
            out.append(_class(_complement(_normalise((v, v) for v in members)), target))
        elif op is sre_constants.IN:
            out.append(_class(_in(av, fold), target))
        elif op is sre_constants.ANY:
            out.append("(?s:.)" if flags & re.DOTALL else "[^\\n]")
        elif op is sre_constants.AT:
            out.append(_anchor(av, flags, target))
        elif op is sre_constants.BRANCH:
            out.append("(?:" + "|".join(_emit(alt, flags, target) for alt in av[1]) + ")")
        elif op is sre_constants.SUBPATTERN:
            _group, add, dele, body = av
            if (add | dele) & ~(re.IGNORECASE | re.DOTALL | re.MULTILINE):
                raise NotPortable("only the flags i, s and m mean the same in RE2/Go and Python")
            out.append("(?:" + _emit(body, (flags | add) & ~dele, target) + ")")
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            lo, hi, body = av
            if lo > MAX_REPEAT or (hi != sre_constants.MAXREPEAT and hi > MAX_REPEAT):
                raise NotPortable(f"RE2/Go allow at most {MAX_REPEAT} repetitions")
            quant = f"{{{lo},}}" if hi == sre_constants.MAXREPEAT else f"{{{lo},{hi}}}"
            lazy = "?" if op is sre_constants.MIN_REPEAT else ""
            out.append("(?:" + _emit(body, flags, target) + ")" + quant + lazy)
        else:
            raise NotPortable(f"unsupported construct {name}")
    return "".join(out)


def _anchor(at: Any, flags: int, target: Target) -> str:
    multiline = bool(flags & re.MULTILINE)
    if at is sre_constants.AT_BEGINNING:
        return "(?m:^)" if multiline else "\\A"
    if at is sre_constants.AT_BEGINNING_STRING:
        return "\\A"
    if at is sre_constants.AT_END and multiline:
        return "(?m:$)"
    if at in (sre_constants.AT_END, sre_constants.AT_END_STRING):
        return "\\z" if target == "re2" else "\\Z"
    if at is sre_constants.AT_BOUNDARY:
        return _boundary(target, negated=False)
    if at is sre_constants.AT_NON_BOUNDARY:
        return _boundary(target, negated=True)
    raise NotPortable(f"unsupported anchor {at}")


# Text the parser accepts silently but RE2/Go read otherwise (or not at all).
_RAW_CHECKS = [
    (re.compile(r"(?<!\\)\{,\d*\}"), "'{,n}' is a repeat in Python but literal text in RE2/Go; write '{0,n}'"),
    (re.compile(r"\\[uUN]"), "\\u, \\U and \\N{...} escapes are Python-only; write the character itself"),
    (re.compile(r"\\Z"), "\\Z is Python-only; '$' is the end of the message"),
    (re.compile(r"(?<!\\)\(\?#"), "(?#...) comments are not supported by RE2/Go"),
    (re.compile(r"(?<!\\)\(\?[imsxauL-]*[xauL]"), "only the flags i, s and m mean the same in RE2/Go and Python"),
]


def _unescaped(pattern: str) -> str:
    """The pattern with escaped characters blanked, so raw checks see only real syntax."""
    return re.sub(r"\\\\", "__", pattern)


def translate(pattern: str, target: Target, *, ignore_case: bool = True) -> str:
    """``pattern`` printed for ``target`` ("re2" or "re") with the fixed meaning above, to be
    compiled case-sensitively (for Python: no flags).

    Raises ``re.error`` when the pattern does not parse, ``NotPortable`` when it uses a
    construct without one meaning in RE2/Go and Python.
    """
    raw = _unescaped(pattern)
    for rx, why in _RAW_CHECKS:
        if rx.search(raw):
            raise NotPortable(why)
    with warnings.catch_warnings():
        # Python warns about "[[", "--", "&&", "~~", "||" inside a set: RE2 reads those otherwise
        warnings.simplefilter("error", FutureWarning)
        try:
            parsed = sre_parse.parse(pattern, re.IGNORECASE if ignore_case else 0)
        except FutureWarning as w:
            raise NotPortable(f"ambiguous character set ({w}); escape the [ or the doubled operator") from None
    flags = parsed.state.flags
    if flags & (re.ASCII | re.VERBOSE | re.LOCALE):
        raise NotPortable("only the flags i, s and m mean the same in RE2/Go and Python")
    return _emit(parsed.data, flags, target)


__all__ = ["MAX_REPEAT", "NotPortable", "Target", "case_variants", "translate"]

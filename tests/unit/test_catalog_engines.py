"""One catalog, one classification: google-re2 and the Python ``re`` fallback agree on every
message, non-ASCII text included (shorthand classes, word boundaries, case-folding)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rollguard.catalog import load_default_catalog, validate
from rollguard.catalog.patterns import compiled_form, pattern_problem, re2_module
from rollguard.catalog.portable import _ascii_variants, _fold_table, case_variants
from rollguard.sdk.matcher import Matcher

re2 = re2_module()
pytestmark = pytest.mark.skipif(re2 is None, reason="google-re2 is a dependency; the comparison needs it")

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters where the engines' defaults part: letters with unusual case partners (Kelvin
# sign, long s, dotless i, dotted I, sharp s, final sigma), non-ASCII letters and digits,
# no-break and other Unicode spaces, a combining accent, a newline.
TRICKY = "kKKsS\u017fiI\u0131İßẞ\u03c3ςΣéÉøØжЖ٣\uff11\u07c0\xa0\u2003\u2028\x0b\u0301\n_-.:/?=&"
TEXT = st.text(alphabet=st.sampled_from(TRICKY + "abcdefghijklmnopqrstuvwxyz0123456789 "), max_size=40)


def entry(code: str, pattern: str) -> dict[str, Any]:
    return {"code": code, "category": "INTERNAL", "severity": "LOW", "retryable": False,
            "recovery": {"mode": "ESCALATE"}, "match": {"patterns": [pattern]}}


def matchers(*patterns: str) -> tuple[Matcher, Matcher]:
    spec = {"version": "1", "entries": [entry(f"C{i}", p) for i, p in enumerate(patterns)]}
    return (Matcher.from_catalog(spec, engine="re2", metrics=False),
            Matcher.from_catalog(spec, engine="re", metrics=False))


@pytest.mark.parametrize(("pattern", "text"), [
    (r"user \w+ not found", "user José not found"),    # \w: ASCII in RE2, Unicode in re
    (r"took\s+long", "took\xa0long"),                     # \s and a no-break space
    (r"exit code \d+", "exit code ٣"),                    # \d and an Arabic-Indic digit
    (r"\bcafe\b", "caféteria"),                           # \b next to a non-ASCII letter
    (r"line$", "last line\n"),                            # $ before a final newline
    ("invalid", "İNVALİD"),                               # dotted capital I
    ("limit", "l\u0131m\u0131t"),                                   # dotless i
])
def test_issue_examples_get_one_answer_from_both_engines(pattern: str, text: str) -> None:
    fast, fallback = matchers(pattern)
    assert fast.match(text).code == fallback.match(text).code == "UNKNOWN_ERROR"


def test_the_shared_meaning_still_matches_what_it_should() -> None:
    fast, fallback = matchers(r"user \w+ not found", r"status\s*=\s*\d{3}", r"\bkey\b")
    for m in (fast, fallback):
        assert m.match("user jose_42 not found").code == "C0"
        assert m.match("STATUS = 503").code == "C1"
        assert m.match("missing key: 'x'").code == "C2"
        assert m.match("USER BOB NOT FOUND").code == "C0"  # case-insensitive
        assert m.match("user \u212aelvin not found").code == "C0"  # folded like RE2: K, k and the Kelvin sign
        assert m.match("user José not found").code == "UNKNOWN_ERROR"  # \w is ASCII


def test_case_variants_are_casefold_classes() -> None:
    assert {chr(c) for c in case_variants(ord("k"))} == {"k", "K", "\u212a"}
    assert {chr(c) for c in case_variants(ord("ß"))} == {"ß", "ẞ"}
    assert {chr(c) for c in case_variants(ord("\u03c3"))} == {"\u03c3", "ς", "Σ"}
    assert {chr(c) for c in case_variants(ord("i"))} == {"i", "I"}  # not the dotless i, not İ
    _cased, orbit = _fold_table()
    assert all(orbit.get(c, (c,)) == _ascii_variants(c) for c in range(128))


@pytest.mark.parametrize(("pattern", "why"), [
    (r"(?<!read )timeout", "lookaround"),
    (r"(\w+) \1", "backreferences"),
    (r"a{,3}b", "{,n}"),
    (r"[[:digit:]]+", "ambiguous character set"),
    (r"done\Z", "\\Z"),
    (r"caf\u00e9", "\\u"),
    (r"(?a)\w+ failed", "flags"),
    (r"(?x) a b", "flags"),
    (r"x*+y", "possessive"),
])
def test_constructs_without_one_meaning_are_refused(pattern: str, why: str) -> None:
    problem = pattern_problem(pattern)
    assert problem is not None and why in problem, problem
    msgs = validate({"version": "1", "entries": [entry("A", pattern)]})
    assert len(msgs) == 1 and msgs[0].startswith("entries[0] (A).match.patterns[0]:")


DEFAULT_PATTERNS = [p for e in load_default_catalog().entries for p in e.match.patterns]
DEFAULT_RE2 = Matcher.default(engine="re2", metrics=False)
DEFAULT_RE = Matcher.default(engine="re", metrics=False)


@SETTINGS
@given(pattern=st.sampled_from(DEFAULT_PATTERNS), before=TEXT, after=TEXT, data=st.data())
def test_default_catalog_same_answer_from_both_engines(pattern: str, before: str, after: str,
                                                       data: st.DataObject) -> None:
    # a text the pattern matches in Python's own reading, with tricky characters around it
    middle = data.draw(st.from_regex(re.compile(pattern, re.IGNORECASE), fullmatch=True).filter(
        lambda s: len(s) < 80))
    text = before + middle + after
    assert DEFAULT_RE2.match(text).code == DEFAULT_RE.match(text).code


PIECES = st.sampled_from([
    r"\w", r"\w+", r"\W", r"\d", r"\d+", r"\D", r"\s", r"\s*", r"\S+", r"\b", r"\B", ".", "$", "^",
    "k", "s", "i", "é", "ß", "\u03c3", "x", "[a-f]", "[^a-z]", r"[\w-]", r"[^\s]", "(?-i:k)", "(?s:.)", "(?:ab|é)",
    "[é-ø]", "[Ѐ-ӿ]", "error", " ", "=", "[0-9]{2}",
])


@SETTINGS
@given(parts=st.lists(PIECES, min_size=1, max_size=6), texts=st.lists(TEXT, min_size=1, max_size=8))
def test_generated_patterns_same_answer_from_both_engines(parts: list[str], texts: list[str]) -> None:
    pattern = "".join(parts)
    assume(pattern_problem(pattern) is None)
    fast, fallback = matchers(pattern)
    for text in texts:
        assert fast.match(text).code == fallback.match(text).code, (pattern, text)


@SETTINGS
@given(parts=st.lists(PIECES, min_size=1, max_size=6), texts=st.lists(TEXT, min_size=1, max_size=8))
def test_the_shared_meaning_is_re2s_own(parts: list[str], texts: list[str]) -> None:
    # what another language's RE2/Go regexp does with the pattern as written in catalog.json
    pattern = "".join(parts)
    assume(pattern_problem(pattern) is None)
    native_opts = re2.Options()
    native_opts.case_sensitive = False
    native = re2.compile(pattern, native_opts)
    sensitive = re2.Options()
    sensitive.case_sensitive = True
    ours = re2.compile(compiled_form(pattern, "re2"), sensitive)
    for text in texts:
        assert (native.search(text) is None) == (ours.search(text) is None), (pattern, text)

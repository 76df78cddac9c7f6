"""Warnings about patterns that are valid but risky: shapes that match where they should not.

A pattern should anchor on the error's own shape (exception class, status name, errno), never
on a free word that also appears in URLs, identifiers or other exceptions' names. Each rule
below detects one such shape and says what to write instead. They are warnings, not errors:
``rollguard catalog validate`` prints them (``--strict`` fails on them); the operator does
not refuse a catalog for them.

Rules (the name opens each warning):

- ``query-string-word``: the pattern is one bare word that URLs commonly carry (``URL_WORDS``)
  and it matches that word as a URL query parameter (``?timeout=32s``): kubectl, client-go
  and most HTTP clients print the request URL inside their errors, so ``\\btimeout\\b``
  classifies an x509 error as a timeout.
- ``inside-camelcase-name``: the pattern starts with an exception name (a word ending in
  ``error`` or ``exception``, such as ``keyerror``) that nothing keeps from matching the end
  of a longer name:
  ``keyerror`` fires inside ``DuplicateKeyError``. Put ``\\b`` or the module path before it.
- ``inside-number``: the pattern starts or ends with a number of 3+ digits that nothing
  keeps from matching inside a longer number: ``503 server error`` fires on ``1503``.
"""

from __future__ import annotations

import re
from re import _constants as sre_constants  # type: ignore[attr-defined,unused-ignore]
from re import _parser as sre_parse  # type: ignore[attr-defined,unused-ignore]
from typing import Any

from rollguard.catalog.patterns import PY_FLAGS, compiled_form, pattern_problem
from rollguard.models.catalog import FailureCatalogSpec

# Exception and error type names end like this (Python, Java, .NET, JavaScript).
TYPE_SUFFIXES = ("error", "exception")
# Words that URLs commonly carry as query parameters or path segments (Kubernetes API
# parameters, REST pagination and retry knobs, health and status paths): a pattern that is
# only one of them matches the request URL that clients print inside their errors.
URL_WORDS = frozenset((
    "timeout", "timeoutseconds", "limit", "continue", "watch", "token", "expired", "expires", "deadline",
    "retry", "retries", "wait", "force", "page", "size", "offset", "cursor", "quota", "conflict", "forbidden",
    "unauthorized", "error", "errors", "status", "state", "health", "healthz", "ready", "readyz", "ratelimit",
    "throttle", "notfound", "invalid", "cancel",
))


def _runs(items: Any) -> list[str]:
    """Maximal runs of consecutive literal characters (top level and inside groups)."""
    out: list[str] = []
    cur: list[str] = []
    for op, av in items:
        if op is sre_constants.LITERAL:
            cur.append(chr(av))
            continue
        if cur:
            out.append("".join(cur))
            cur = []
        if op is sre_constants.SUBPATTERN:
            out.extend(_runs(av[-1]))
        elif op is sre_constants.BRANCH:
            for alt in av[1]:
                out.extend(_runs(alt))
    if cur:
        out.append("".join(cur))
    return out


def _leading(items: Any) -> list[tuple[bool, str]]:
    """(guarded, literal run) for each way the pattern can start with literal characters;
    guarded when an anchor (``\\b``, ``^``) comes before the run."""
    if not items:
        return []
    op, av = items[0]
    if op is sre_constants.AT:
        return [(True, r) for _g, r in _leading(items[1:])]
    if op is sre_constants.SUBPATTERN:
        return _leading(list(av[-1]) + list(items[1:]))
    if op is sre_constants.BRANCH:
        return [x for alt in av[1] for x in _leading(list(alt) + list(items[1:]))]
    run = []
    for op2, av2 in items:
        if op2 is not sre_constants.LITERAL:
            break
        run.append(chr(av2))
    return [(False, "".join(run))] if run else []


def _trailing_digits(items: Any) -> str:
    run = []
    for op, av in reversed(list(items)):
        if op is not sre_constants.LITERAL or not chr(av).isdigit():
            break
        run.append(chr(av))
    return "".join(reversed(run))


def pattern_warnings(pattern: str) -> list[str]:
    """The risky shapes of one valid pattern, each as ``rule: explanation``; [] for an
    invalid pattern (validation reports that)."""
    if pattern_problem(pattern) is not None:
        return []
    rx = re.compile(compiled_form(pattern, "re"))
    items = list(sre_parse.parse(pattern, PY_FLAGS))
    out: list[str] = []
    words = [w.lower() for r in _runs(items) for w in re.findall(r"[A-Za-z]+", r)]
    only_punct = all(re.fullmatch(r"[A-Za-z]*", r) for r in _runs(items))
    if len(words) == 1 and only_punct and words[0] in URL_WORDS:
        probe = f"GET https://api.example.internal:6443/api/v1/pods?{words[0]}=32s&watch=true"
        if rx.search(probe):
            out.append(f"query-string-word: {words[0]!r} alone matches the URL query parameter in {probe!r}; "
                       "anchor the pattern on the error's own shape (exception class, status, errno)")
    for guarded, run in _leading(items):
        name = re.match(r"[A-Za-z]+", run)
        if guarded or name is None or run[name.end():name.end() + 1] == "_":
            continue
        low = name.group().lower()
        if not any(low.endswith(sfx) and len(low) > len(sfx) for sfx in TYPE_SUFFIXES):
            continue
        probe = f"pkg.errors.Duplicate{low[0].upper()}{name.group()[1:]}{run[name.end():]}"
        if rx.search(probe):
            out.append(f"inside-camelcase-name: matches inside the longer name {probe!r}; put \\b or the "
                       "module path before the name")
            break
    lead = next((run for guarded, run in _leading(items) if not guarded and re.match(r"\d{3}", run)), None)
    if lead is not None and rx.search("1" + lead):
        out.append(f"inside-number: matches inside the longer number in {'1' + lead!r}; put \\b before it")
    elif len(_trailing_digits(items)) >= 3:
        last = _runs(items)[-1]
        if rx.search(last + "1"):
            out.append(f"inside-number: matches inside the longer number in {last + '1'!r}; put \\b after it")
    return out


def lint(spec: FailureCatalogSpec) -> list[str]:
    """Warnings for every pattern of ``spec``, each naming the entry (index and code), the
    pattern and the rule: ``entries[3] (RATE_LIMITED).match.patterns[1]: '...' query-string-word: ...``."""
    out = []
    for i, entry in enumerate(spec.entries):
        for j, pattern in enumerate(entry.match.patterns):
            for w in pattern_warnings(pattern):
                out.append(f"entries[{i}] ({entry.code}).match.patterns[{j}]: {pattern!r} {w}")
    return out


__all__ = ["lint", "pattern_warnings"]

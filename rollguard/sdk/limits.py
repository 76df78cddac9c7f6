"""What one failure event may carry, in one place for both ends of the wire.

The failures service refuses an event beyond these limits with a 422 that names the field,
before anything is stored (so no stored row can break a later read); the SDK reporter makes
its events fit before it spools them (so the service never refuses them for their size, and
nothing the caller reported is lost). Source of the numbers: the failures table's column widths
for the text fields; for ``context`` (free-form JSON) numbers chosen here to keep one event, JSON
encoded with every character escaped (12 bytes for a non-BMP one), far below the request body
limit, and every stored context far below the nesting depth at which JSON encoders and
serializers give up (pydantic's serializer stops at a few hundred levels, Python's json at the
interpreter's recursion limit).
"""

from __future__ import annotations

import math
import re
import reprlib
from itertools import islice
from typing import Any

# One request body, in bytes (the service answers 413 beyond it, before parsing).
MAX_BODY_BYTES = 2 * 1024 * 1024
# Events per POST /batch.
MAX_BATCH_EVENTS = 1000

# Text fields of an event, in characters (Unicode code points), as in the table's columns.
RUN_ID_MAX = 255
ERROR_CODE_MAX = 255
ERROR_MESSAGE_MAX = 20_000
SKILL_ID_MAX = 100
RECOVERED_BY_MAX = 100
NOTES_MAX = 10_000

# `context`, a JSON object.
CONTEXT_MAX_DEPTH = 16  # nesting levels; the context object itself is level 1
CONTEXT_MAX_VALUES = 1_000  # keys, array items and values, counted together
CONTEXT_MAX_KEY_CHARS = 256
CONTEXT_MAX_STRING_CHARS = 8_192
CONTEXT_MAX_TOTAL_CHARS = 32_768  # every key and string value together

# What a read still shows of a stored context (rows written before these limits, or around the
# service): deeper than this it is withheld rather than breaking the response.
READ_MAX_DEPTH = 64

CONTEXT_RULES = (f"a JSON object at most {CONTEXT_MAX_DEPTH} levels deep, with at most {CONTEXT_MAX_VALUES} "
                 f"keys and values, keys of at most {CONTEXT_MAX_KEY_CHARS} characters, strings of at most "
                 f"{CONTEXT_MAX_STRING_CHARS}, {CONTEXT_MAX_TOTAL_CHARS} characters of keys and strings in all; "
                 "numbers finite; text valid Unicode (no lone surrogate)")


def is_unicode(text: str) -> bool:
    """False when ``text`` holds a lone surrogate (valid in a JSON escape and in a Python str,
    but not Unicode text: UTF-8, PostgreSQL and the regex engine refuse it)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """``value`` made storable: NUL (which PostgreSQL text and JSONB cannot hold) and lone
    surrogates replaced by U+FFFD. The common case, plain ASCII without NUL, is returned as is."""
    if value.isascii() and "\x00" not in value:
        return value
    return _UNSTORABLE.sub("\ufffd", value)


def check_json(value: Any, *, max_depth: int = CONTEXT_MAX_DEPTH, max_values: int = CONTEXT_MAX_VALUES,
               max_key: int = CONTEXT_MAX_KEY_CHARS, max_string: int = CONTEXT_MAX_STRING_CHARS,
               max_total: int = CONTEXT_MAX_TOTAL_CHARS) -> str | None:
    """The first way ``value`` (a parsed JSON value: dict, list, str, int, float, bool, None)
    breaks the limits, as a sentence that quotes nothing of the value; None if it fits.

    Iterative, so that no nesting depth, however large, can exhaust the interpreter's stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    values = total = 0
    while stack:
        node, depth = stack.pop()
        values += 1
        if values > max_values:
            return f"more than {max_values} keys and values"
        if isinstance(node, dict):
            if depth > max_depth:
                return f"nested more than {max_depth} levels deep"
            for k, v in node.items():
                if not isinstance(k, str):
                    return "an object key is not a string"
                if len(k) > max_key:
                    return f"a key is longer than {max_key} characters"
                if not is_unicode(k):
                    return "a key is not valid Unicode (lone surrogate)"
                total += len(k)
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                return f"nested more than {max_depth} levels deep"
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            if len(node) > max_string:
                return f"a string is longer than {max_string} characters"
            if not is_unicode(node):
                return "a string is not valid Unicode (lone surrogate)"
            total += len(node)
        elif isinstance(node, float):
            if not math.isfinite(node):
                return "a number is not finite"
        elif node is not None and not isinstance(node, int):
            return f"a value of type {type(node).__name__} is not JSON"
        if total > max_total:
            return f"more than {max_total} characters of keys and strings"
    return None


_preview = reprlib.Repr()
_preview.maxlevel, _preview.maxdict, _preview.maxlist, _preview.maxstring, _preview.maxother = 3, 20, 20, 200, 100


def fit_context(context: Any) -> tuple[dict[str, Any], str | None]:
    """``context`` as a JSON object within the limits, and what had to change (None: nothing).

    What a caller hands the SDK is any Python value: values JSON cannot carry become their
    ``str()`` (as ``json.dumps(default=str)`` would), text is made storable (`clean_text`), and a
    context that still does not fit is replaced by ``{"_rollguard_context_replaced": <why>,
    "preview": <a short repr>}``, so that the event itself is never refused for its context."""
    if not context:
        return {}, None
    problem = check_json(context) if isinstance(context, dict) else "not a JSON object"
    if problem is None:
        return context, None
    fixed: Any = None
    try:
        fixed = _jsonable(context)
    except (RecursionError, ValueError):
        fixed = None
    if isinstance(fixed, dict) and check_json(fixed) is None:
        return fixed, problem
    why = problem if fixed is None or not isinstance(fixed, dict) else (check_json(fixed) or problem)
    try:
        preview = clean_text(_preview.repr(context))
    except Exception:  # a caller's __repr__ may raise anything; the event still goes
        preview = f"<{type(context).__name__}>"
    return {"_rollguard_context_replaced": why, "preview": preview[:1000]}, why


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-able copy: str keys, clean text, non-finite floats as None, other objects as str()."""
    # Bounded copying (the caller checks the limits again): never deeper or wider than could fit.
    if depth > CONTEXT_MAX_DEPTH + 1:
        return "…"
    if isinstance(value, dict):
        return {clean_text(str(k)): _jsonable(v, depth + 1)
                for k, v in islice(value.items(), CONTEXT_MAX_VALUES + 1)}
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in islice(value, CONTEXT_MAX_VALUES + 1)]
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return clean_text(str(value))

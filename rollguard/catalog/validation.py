"""Offline validation of a catalog: what the CRD schema cannot say (regexes compile, do not
match the empty string, codes and aliases unique...). Used by the operator (Valid=False) and
by `rollguard catalog validate` (CI, GitOps repos). Every message names the entry and field."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rollguard.catalog.patterns import pattern_problem
from rollguard.models.catalog import RETRY_MODES, TERMINAL_MODES, FailureCatalogSpec


def _where(raw_entries: Any, loc: tuple[int | str, ...]) -> str:
    """`entries[3] (RATE_LIMITED).recovery.mode` from a pydantic error location."""
    parts: list[str] = []
    i = 0
    while i < len(loc):
        item = loc[i]
        if isinstance(item, int):
            label = f"[{item}]"
            if parts == ["entries"] and isinstance(raw_entries, list) and item < len(raw_entries):
                code = raw_entries[item].get("code") if isinstance(raw_entries[item], dict) else None
                if isinstance(code, str):
                    label += f" ({code})"
            parts[-1] = parts[-1] + label if parts else label
        else:
            parts.append(str(item))
        i += 1
    return ".".join(parts) or "spec"


def _schema_messages(raw: dict[str, Any], err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and x.startswith(("function-", "literal["))))
        msg = e["msg"]
        if e["type"] == "literal_error":
            msg = f"unknown value {e.get('input')!r}: {msg}"
        out.append(f"{_where(raw.get('entries'), loc)}: {msg}")
    return out


def spec_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The spec part of a FailureCatalog manifest, a rendered catalog.json, or a bare spec."""
    if isinstance(doc.get("spec"), dict):
        spec: dict[str, Any] = doc["spec"]
        return spec
    return {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata", "name", "contentHash")}


def _duplicates(codes: list[Any]) -> list[str]:
    first: dict[str, int] = {}
    out = []
    for i, code in enumerate(codes):
        if not isinstance(code, str):
            continue
        if code in first:
            out.append(f"entries[{i}] ({code}).code: duplicate code, first defined at entries[{first[code]}]")
        else:
            first[code] = i
    return out


def validate(spec: FailureCatalogSpec | dict[str, Any]) -> list[str]:
    """Problems with ``spec`` (a model, a spec dict or a whole manifest); empty when valid."""
    if isinstance(spec, dict):
        raw = spec_of(spec)
        try:
            model = FailureCatalogSpec.model_validate(raw)
        except ValidationError as e:
            entries = raw.get("entries")
            items = entries if isinstance(entries, list) else []
            codes = [x.get("code") if isinstance(x, dict) else None for x in items]
            return _duplicates(codes) + _schema_messages(raw, e)
    else:
        model = spec
    problems = _duplicates([e.code for e in model.entries])
    names: dict[str, str] = {}  # casefolded code/alias -> where it was defined
    for i, entry in enumerate(model.entries):
        names.setdefault(entry.code.casefold(), f"entries[{i}].code")
    for i, entry in enumerate(model.entries):
        where = f"entries[{i}] ({entry.code})"
        for j, alias in enumerate(entry.match.aliases):
            key = alias.strip().casefold()
            other = names.get(key)
            if not key:
                problems.append(f"{where}.match.aliases[{j}]: empty alias")
            elif other is not None and other != f"entries[{i}].code":
                problems.append(f"{where}.match.aliases[{j}]: {alias!r} is already used by {other}")
            else:
                names[key] = f"entries[{i}].match.aliases[{j}]"
        seen: set[str] = set()
        for j, pattern in enumerate(entry.match.patterns):
            if pattern in seen:
                problems.append(f"{where}.match.patterns[{j}]: duplicate pattern {pattern!r}")
            seen.add(pattern)
            why = pattern_problem(pattern)
            if why:
                problems.append(f"{where}.match.patterns[{j}]: {pattern!r} {why}")
        mode = entry.recovery.mode
        if mode in RETRY_MODES and not entry.retryable:
            problems.append(f"{where}.retryable: recovery.mode {mode} requires retryable: true")
        if mode in TERMINAL_MODES and entry.retryable:
            problems.append(f"{where}.recovery.mode: {mode} is inconsistent with retryable: true")
        b = entry.recovery.backoff
        if b is not None and b.max_seconds < b.initial_seconds:
            problems.append(f"{where}.recovery.backoff.maxSeconds: must be >= initialSeconds")
    return problems

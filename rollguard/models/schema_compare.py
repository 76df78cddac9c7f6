"""Compare a CRD's OpenAPI v3 schema with a pydantic model's JSON schema.

The CRD (crds/) is the API contract the apiserver enforces; the pydantic models are what the
operator, CLI and SDK use. This walks both side by side and lists every difference in
property names, required fields, JSON types and enums, so a test can keep them in step.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _resolve(schema: Schema, defs: dict[str, Schema]) -> Schema:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    # Optional[X] is anyOf [X, null]: "not required" already says it may be absent.
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            if len(options) == 1:
                merged = {k: v for k, v in schema.items() if k != key}
                merged.update(_resolve(options[0], defs))
                return merged
    if "allOf" in schema and len(schema["allOf"]) == 1:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        merged.update(_resolve(schema["allOf"][0], defs))
        return merged
    return schema


def _json_type(schema: Schema) -> str | None:
    if "type" in schema:
        t = schema["type"]
        return t if isinstance(t, str) else None
    if "const" in schema:
        return {str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(schema["const"]))
    if schema.get("enum"):
        return {str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(schema["enum"][0]))
    if "properties" in schema:
        return "object"
    return None


def _enum(schema: Schema) -> set[Any] | None:
    if "enum" in schema:
        return set(schema["enum"])
    if "const" in schema:
        return {schema["const"]}
    return None


def compare(crd: Schema, model: Schema, defs: dict[str, Schema] | None = None, path: str = "") -> list[str]:
    """Differences between ``crd`` (OpenAPI v3, structural) and ``model`` (pydantic JSON schema)."""
    defs = defs if defs is not None else model.get("$defs", {})
    model = _resolve(model, defs)
    here = path or "<root>"
    problems: list[str] = []

    if crd.get("x-kubernetes-int-or-string"):
        types = {o.get("type") for o in model.get("anyOf", [])}
        if not {"integer", "string"} <= types:
            problems.append(f"{here}: CRD is int-or-string, model is {model}")
        return problems
    if crd.get("x-kubernetes-preserve-unknown-fields") and "properties" not in crd:
        if _json_type(model) not in (None, "object") or model.get("properties"):
            problems.append(f"{here}: CRD keeps unknown fields (free-form), model has a fixed shape")
        return problems

    ctype, mtype = crd.get("type"), _json_type(model)
    if ctype != mtype and not (ctype == "number" and mtype == "integer"):
        problems.append(f"{here}: type differs: CRD {ctype!r}, model {mtype!r}")
        return problems

    cenum, menum = _enum(crd), _enum(model)
    if (cenum is not None or menum is not None) and cenum != menum:
        problems.append(f"{here}: enum differs: CRD {sorted(map(str, cenum or []))}, "
                        f"model {sorted(map(str, menum or []))}")

    if ctype == "object":
        cprops: Schema = crd.get("properties", {})
        mprops: Schema = model.get("properties", {})
        if cprops or mprops:
            for name in sorted(set(cprops) - set(mprops)):
                problems.append(f"{path}.{name}: in the CRD, not in the model")
            for name in sorted(set(mprops) - set(cprops)):
                problems.append(f"{path}.{name}: in the model, not in the CRD")
            creq, mreq = set(crd.get("required", [])), set(model.get("required", []))
            if creq != mreq:
                problems.append(f"{here}: required differs: CRD {sorted(creq)}, model {sorted(mreq)}")
            for name in sorted(set(cprops) & set(mprops)):
                problems += compare(cprops[name], mprops[name], defs, f"{path}.{name}")
        cadd, madd = crd.get("additionalProperties"), model.get("additionalProperties")
        if isinstance(cadd, dict) and isinstance(madd, dict):
            problems += compare(cadd, madd, defs, f"{path}.*")
        elif isinstance(cadd, dict) != isinstance(madd, dict) and not (cprops or mprops):
            problems.append(f"{here}: map values: CRD {cadd!r}, model {madd!r}")
    elif ctype == "array":
        problems += compare(crd.get("items", {}), model.get("items", {}), defs, f"{path}[]")
    return problems

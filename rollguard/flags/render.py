"""The two files every backend pod gets per environment: ``flags.json`` and ``flagd.json``.

Both are deterministic (sorted keys, no timestamps): the same flags give the same bytes, so
the operator's apply of an unchanged ConfigMap is a no-op and never wakes the pods' watchers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from rollguard.flags.evaluate import EnvValue, SignoffVerdict, default_env_var
from rollguard.models.flag import FeatureFlag

FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
FLAGS_FILE = "flags.json"
FLAGD_FILE = "flagd.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Evaluated:
    """One flag evaluated for one environment: what both renderers need."""

    flag: FeatureFlag
    value: EnvValue
    verdict: SignoffVerdict


def flag_entry(e: Evaluated) -> dict[str, Any]:
    spec = e.flag.spec
    entry: dict[str, Any] = {
        "value": e.value.value,
        "enabled": e.value.value is True,  # readers that only know on/off read `.flags.<name>.enabled`
        "type": spec.type,
        "default": spec.default_value,
        "desired": e.value.desired,
        "source": e.value.source,
        "blocked": e.value.blocked,
        "owner": spec.owner,
        "requiresSignoff": spec.requires_signoff,
        "signoff": e.verdict.state,
        "envVars": sorted({v for v in (spec.env_var, default_env_var(e.flag.key)) if v}),
        "resource": e.flag.name,
    }
    if spec.description:
        entry["description"] = spec.description
    if e.value.reason:
        entry["reason"] = e.value.reason
        entry["message"] = e.value.message
    if spec.signoff is not None:
        entry["signoffBy"] = spec.signoff.by
    return entry


def render_flags(environment: str, namespace: str, flags: list[Evaluated]) -> dict[str, Any]:
    """``flags.json``: key -> value plus the flag's metadata, for ``rollguard.sdk.flags``."""
    return {
        "version": FORMAT_VERSION,
        "environment": environment,
        "namespace": namespace,
        "flags": {e.flag.key: flag_entry(e) for e in sorted(flags, key=lambda e: e.flag.key)},
    }


def render_flagd(environment: str, namespace: str, flags: list[Evaluated]) -> dict[str, Any]:
    """``flagd.json``: flagd's flag-definition format, read by OpenFeature's flagd provider in file mode.

    A blocked flag stays ENABLED with defaultVariant "off": a DISABLED flag makes flagd answer
    "flag not found", and the caller's own code default (maybe true) would then win over the gate.
    """
    out: dict[str, Any] = {}
    for e in sorted(flags, key=lambda e: e.flag.key):
        meta: dict[str, str | bool] = {
            "owner": e.flag.spec.owner,
            "source": e.value.source,
            "requiresSignoff": e.flag.spec.requires_signoff,
        }
        if e.value.reason:
            meta["reason"] = e.value.reason
        out[e.flag.key] = {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on" if e.value.value else "off",
            "metadata": meta,
        }
    return {
        "$schema": FLAGD_SCHEMA,
        "metadata": {"environment": environment, "namespace": namespace, "generator": "rollguard"},
        "flags": out,
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def files_digest(files: dict[str, str]) -> str:
    """A short digest of a flags ConfigMap's files (16 hex characters), written as an annotation so
    a change is visible at a glance. Not a catalog version's ``content_hash``: that names a version."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()[:16]

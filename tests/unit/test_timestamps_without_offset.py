"""Every timestamp in every model is read as UTC when it carries no offset, and one flag that
cannot be evaluated is reported on that flag while the rest of its namespace is delivered."""

from __future__ import annotations

import datetime as dt
import importlib
import typing
from typing import Any

import pytest
from pydantic import AfterValidator, BaseModel

from rollguard.flags import plan_namespace
from rollguard.flags.evaluate import next_transition, signoff_verdict
from rollguard.models.canary import CanaryRolloutStatus
from rollguard.models.catalog import FailureCatalogStatus
from rollguard.models.common import Condition, as_utc
from rollguard.models.flag import FeatureFlag, FeatureFlagSpec, Signoff

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
MODULES = ("rollguard.models.common", "rollguard.models.flag", "rollguard.models.catalog",
           "rollguard.models.canary")


def _plain(tp: Any) -> bool | None:
    """True: ``tp`` holds a datetime that is not read as UTC; False: only UTC-read ones; None: none."""
    if tp is dt.datetime:
        return True
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        if base is dt.datetime:
            return not any(isinstance(m, AfterValidator) and m.func is as_utc for m in meta)
        return _plain(base)
    found = [r for r in map(_plain, typing.get_args(tp)) if r is not None]
    return any(found) if found else None


def _timestamp_fields() -> list[tuple[str, bool]]:
    """Every model field holding a timestamp, and whether it stays naive without an offset."""
    out = []
    for mod in MODULES:
        for obj in vars(importlib.import_module(mod)).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == mod:
                for name, f in obj.model_fields.items():
                    if f.annotation is dt.datetime:  # pydantic lifts a top-level Annotated's metadata
                        out.append((f"{obj.__name__}.{name}", not any(
                            isinstance(m, AfterValidator) and m.func is as_utc for m in f.metadata)))
                    elif (plain := _plain(f.annotation)) is not None:
                        out.append((f"{obj.__name__}.{name}", plain))
    return out


def test_every_timestamp_field_of_every_model_reads_a_time_without_offset_as_utc() -> None:
    fields = _timestamp_fields()
    assert {f.split(".")[0] for f, _ in fields} >= {"Signoff", "Condition", "CanaryRolloutStatus", "HistoryItem",
                                                    "HistoryEntry", "SignoffStatus"}
    assert [f for f, plain in fields if plain] == []


def signoff_spec(at: str, expires: str | None = None, **extra: Any) -> FeatureFlagSpec:
    s: dict[str, Any] = {"by": "sre", "at": at, "evidence": {"kind": "Manual"}}
    if expires:
        s["expiresAt"] = expires
    return FeatureFlagSpec.model_validate({"owner": "o", "defaultValue": False, "requiresSignoff": True,
                                           "environments": {"staging": True}, "signoff": s, **extra})


def test_a_signoff_at_without_offset_is_utc_and_the_gate_decides() -> None:
    spec = signoff_spec("2026-11-23T09:00:00")
    assert spec.signoff is not None and spec.signoff.at == dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
    assert signoff_verdict(spec, NOW).state == "Valid"
    assert signoff_verdict(spec, dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)).state == "NotYetValid"


def test_an_expiry_without_offset_is_utc_and_expires() -> None:
    spec = signoff_spec("2026-11-23T09:00:00Z", "2026-11-23T11:00:00")
    assert signoff_verdict(spec, NOW).state == "Expired"
    assert next_transition(spec, dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)) == \
        dt.datetime(2026, 11, 23, 11, tzinfo=dt.UTC)


def test_an_offset_is_kept() -> None:
    s = Signoff.model_validate({"by": "x", "at": "2026-11-23T09:00:00+02:00", "evidence": {"kind": "Manual"}})
    assert s.at == dt.datetime(2026, 11, 23, 7, tzinfo=dt.UTC)


@pytest.mark.parametrize("model", [
    lambda: Condition.model_validate({"type": "Ready", "status": "True", "reason": "R",
                                      "lastTransitionTime": "2026-11-23T09:00:00"}).last_transition_time,
    lambda: CanaryRolloutStatus.model_validate({"startedAt": "2026-11-23T09:00:00"}).started_at,
    lambda: FailureCatalogStatus.model_validate({"history": [{"hash": "a" * 64, "configMapName": "c",
                                                              "version": "1", "entryCount": 1,
                                                              "createdAt": "2026-11-23T09:00:00"}]})
    .history[0].created_at,
], ids=["condition", "canary-status", "catalog-history"])
def test_statuses_read_times_without_offset_as_utc(model: Any) -> None:
    got = model()
    assert got == dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC) and got.tzinfo is not None


def ff(name: str, spec: FeatureFlagSpec) -> FeatureFlag:
    return FeatureFlag(metadata={"name": name, "namespace": "ns",
                                 "creationTimestamp": "2026-11-01T00:00:00Z"}, spec=spec)


def test_a_flag_that_cannot_be_evaluated_is_left_out_and_the_others_are_delivered() -> None:
    good = ff("expiring", signoff_spec("2026-11-23T09:00:00Z", "2026-11-23T11:00:00Z", key="expiring"))
    broken_spec = signoff_spec("2026-11-23T09:00:00Z", key="broken")
    assert broken_spec.signoff is not None
    # a fault a model check cannot catch (here built past the model: a naive time)
    broken_spec.signoff = Signoff.model_construct(by="x", at=dt.datetime(2026, 11, 23, 9),
                                                  expires_at=None, evidence=broken_spec.signoff.evidence)
    plan = plan_namespace([good, ff("broken", broken_spec)], [], "ns", NOW)
    assert list(plan.faults) == ["broken"] and "TypeError" in plan.faults["broken"]
    assert "FeatureFlag broken" in plan.faults["broken"]
    assert list(plan.flags) == ["expiring"]
    assert plan.flags["expiring"].values["staging"].value.value is False  # its expired sign-off still turns it off
    assert '"broken"' not in plan.files["staging"]["flags.json"]

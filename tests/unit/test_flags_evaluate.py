"""Per-environment evaluation and the sign-off gate (pure core, no cluster)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollguard.flags import default_env_var, evaluate, signoff_verdict
from rollguard.flags.evaluate import CLOCK_SKEW, next_transition
from rollguard.models.flag import FeatureFlagSpec

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def spec(**over: Any) -> FeatureFlagSpec:
    raw: dict[str, Any] = {"owner": "platform", "defaultValue": False}
    raw.update(over)
    return FeatureFlagSpec.model_validate(raw)


def signoff(at: dt.datetime = NOW - dt.timedelta(hours=1), expires: dt.datetime | None = None,
            kind: str = "ShadowRun", mismatches: int | None = 0) -> dict[str, Any]:
    s: dict[str, Any] = {"by": "sre@example.com", "at": at.isoformat(), "evidence": {"kind": kind}}
    if mismatches is not None:
        s["evidence"]["mismatches"] = mismatches
    if expires is not None:
        s["expiresAt"] = expires.isoformat()
    return s


def test_override_wins_over_default_per_environment() -> None:
    s = spec(defaultValue=False, environments={"staging": True})
    assert evaluate(s, "staging", NOW).value is True
    assert evaluate(s, "staging", NOW).source == "Override"
    assert evaluate(s, "production", NOW).value is False
    assert evaluate(s, "production", NOW).source == "Default"


def test_override_can_turn_a_default_true_flag_off() -> None:
    s = spec(defaultValue=True, environments={"production": False})
    assert evaluate(s, "production", NOW).value is False
    assert evaluate(s, "dev", NOW).value is True


def test_gated_flag_without_signoff_is_blocked_with_reason() -> None:
    s = spec(requiresSignoff=True, environments={"staging": True})
    v = evaluate(s, "staging", NOW)
    assert (v.value, v.desired, v.source, v.reason) == (False, True, "Blocked", "SignoffMissing")
    assert v.message is not None and "rollguard flags signoff" in v.message
    # where the flag is meant to be off anyway nothing is blocked
    assert evaluate(s, "production", NOW).source == "Default"


def test_gated_flag_with_valid_signoff_is_true() -> None:
    s = spec(requiresSignoff=True, environments={"staging": True}, signoff=signoff(expires=NOW + dt.timedelta(days=1)))
    assert signoff_verdict(s, NOW).state == "Valid"
    assert evaluate(s, "staging", NOW).value is True


def test_expired_signoff_blocks() -> None:
    s = spec(requiresSignoff=True, defaultValue=True,
             signoff=signoff(at=NOW - dt.timedelta(days=2), expires=NOW - dt.timedelta(seconds=1)))
    v = evaluate(s, "production", NOW)
    assert v.value is False and v.reason == "SignoffExpired"
    # exactly at expiry it is already expired
    s2 = spec(requiresSignoff=True, defaultValue=True, signoff=signoff(at=NOW - dt.timedelta(days=1), expires=NOW))
    assert signoff_verdict(s2, NOW).state == "Expired"


def test_signoff_with_mismatches_is_not_valid() -> None:
    s = spec(requiresSignoff=True, defaultValue=True, signoff=signoff(mismatches=3))
    v = signoff_verdict(s, NOW)
    assert v.state == "Invalid" and "3 mismatches" in v.message
    assert evaluate(s, "x", NOW).reason == "SignoffEvidenceFailed"


def test_signoff_from_the_future_is_not_yet_valid_beyond_clock_skew() -> None:
    ahead = NOW + CLOCK_SKEW + dt.timedelta(minutes=1)
    later = spec(requiresSignoff=True, defaultValue=True, signoff=signoff(at=ahead))
    assert signoff_verdict(later, NOW).state == "NotYetValid"
    skewed = spec(requiresSignoff=True, defaultValue=True, signoff=signoff(at=NOW + dt.timedelta(minutes=1)))
    assert signoff_verdict(skewed, NOW).state == "Valid"


def test_manual_evidence_without_mismatch_count_is_valid() -> None:
    s = spec(requiresSignoff=True, defaultValue=True, signoff=signoff(kind="Manual", mismatches=None))
    assert signoff_verdict(s, NOW).state == "Valid"


def test_ungated_flag_ignores_signoff() -> None:
    s = spec(defaultValue=True, signoff=signoff(mismatches=5))
    assert signoff_verdict(s, NOW).state == "NotRequired"
    assert evaluate(s, "prod", NOW).value is True


def test_next_transition_is_the_expiry() -> None:
    exp = NOW + dt.timedelta(hours=3)
    assert next_transition(spec(requiresSignoff=True, signoff=signoff(expires=exp)), NOW) == exp
    assert next_transition(spec(requiresSignoff=False, signoff=signoff(expires=exp)), NOW) is None


@pytest.mark.parametrize(("key", "var"), [
    ("failure_catalog_runtime_integration", "AOS_FEATURE_FAILURE_CATALOG_RUNTIME_INTEGRATION"),
    ("new-checkout.v2", "AOS_FEATURE_NEW_CHECKOUT_V2"),
])
def test_default_env_var(key: str, var: str) -> None:
    assert default_env_var(key) == var


times = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 1, 1),
                     timezones=st.just(dt.UTC))


@given(
    default=st.booleans(),
    overrides=st.dictionaries(st.sampled_from(["staging", "production", "dev"]), st.booleans()),
    env=st.sampled_from(["staging", "production", "dev", "qa"]),
    has_signoff=st.booleans(),
    at=times, expires=st.one_of(st.none(), times), mismatches=st.one_of(st.none(), st.integers(0, 3)),
    kind=st.sampled_from(["ShadowRun", "GoldenReplay", "Manual"]), now=times,
)
def test_gated_flag_is_never_true_without_a_valid_unexpired_signoff(
        default: bool, overrides: dict[str, bool], env: str, has_signoff: bool, at: dt.datetime,
        expires: dt.datetime | None, mismatches: int | None, kind: str, now: dt.datetime) -> None:
    if expires is not None and expires <= at:
        expires = at + dt.timedelta(seconds=1)  # the CRD refuses the other case
    if kind == "ShadowRun" and mismatches is None:
        mismatches = 0
    raw: dict[str, Any] = {"owner": "o", "defaultValue": default, "environments": overrides, "requiresSignoff": True}
    if has_signoff:
        raw["signoff"] = signoff(at=at, expires=expires, kind=kind, mismatches=mismatches)
    s = FeatureFlagSpec.model_validate(raw)
    v = evaluate(s, env, now)
    desired = overrides.get(env, default)
    assert v.desired == desired
    signoff_ok = (has_signoff and at - CLOCK_SKEW <= now and (expires is None or expires > now)
                  and not (mismatches or 0))
    assert v.value == (desired and signoff_ok)
    if desired and not signoff_ok:
        assert v.source == "Blocked" and v.reason and v.message

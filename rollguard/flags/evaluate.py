"""Per-environment evaluation of a flag and the sign-off gate. Pure: no I/O, ``now`` is an argument.

Rule of the gate: a flag with ``requiresSignoff`` is never true in any environment unless its
sign-off is valid *now* (given, not in the future, not expired, and its evidence shows no
mismatches). Where the gate keeps a flag off, the result says Blocked and why.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from rollguard.models.flag import FeatureFlag, FeatureFlagSpec, SignoffState, ValueSource

ENV_VAR_PREFIX = "AOS_FEATURE_"

# A sign-off recorded a little in the future (clock skew between the signer's laptop and the
# cluster) is still accepted; anything further ahead is NotYetValid.
CLOCK_SKEW = dt.timedelta(minutes=5)

REASON_BY_STATE: dict[SignoffState, str] = {
    "Missing": "SignoffMissing",
    "Expired": "SignoffExpired",
    "NotYetValid": "SignoffNotYetValid",
    "Invalid": "SignoffEvidenceFailed",
}


def default_env_var(key: str) -> str:
    """``AOS_FEATURE_<KEY>``: the key upper-cased, every run of other characters turned into ``_``."""
    return ENV_VAR_PREFIX + re.sub(r"[^A-Z0-9]+", "_", key.upper()).strip("_")


@dataclass(frozen=True)
class SignoffVerdict:
    state: SignoffState
    message: str
    expires_at: dt.datetime | None = None

    @property
    def allows_enable(self) -> bool:
        return self.state in ("NotRequired", "Valid")

    @property
    def reason(self) -> str:
        return REASON_BY_STATE.get(self.state, "Signoff" + self.state)


def signoff_verdict(spec: FeatureFlagSpec, now: dt.datetime) -> SignoffVerdict:
    """Whether the flag may be true now, as far as the sign-off gate is concerned."""
    s = spec.signoff
    if not spec.requires_signoff:
        return SignoffVerdict("NotRequired", "flag does not require a sign-off")
    if s is None:
        return SignoffVerdict("Missing", "flag requires a sign-off and none is recorded (spec.signoff); "
                                         "give one with `rollguard flags signoff NAME --by ... --evidence FILE`")
    expires = s.expires_at
    if s.at - CLOCK_SKEW > now:
        return SignoffVerdict("NotYetValid", f"sign-off by {s.by} is dated {_iso(s.at)}, in the future", expires)
    if expires is not None and expires <= now:
        return SignoffVerdict("Expired", f"sign-off by {s.by} expired at {_iso(expires)}", expires)
    ev = s.evidence
    if ev.mismatches is not None and ev.mismatches > 0:
        return SignoffVerdict("Invalid", f"sign-off evidence ({ev.kind}) reports {ev.mismatches} mismatches; "
                                         "a sign-off needs 0", expires)
    detail = f"{ev.kind}" + (f", {ev.mismatches} mismatches" if ev.mismatches is not None else "")
    until = f", expires {_iso(expires)}" if expires else ""
    return SignoffVerdict("Valid", f"signed off by {s.by} at {_iso(s.at)} ({detail}){until}", expires)


@dataclass(frozen=True)
class EnvValue:
    """The value of one flag in one environment."""

    environment: str
    value: bool
    desired: bool
    source: ValueSource
    reason: str | None = None
    message: str | None = None

    @property
    def blocked(self) -> bool:
        return self.source == "Blocked"


def evaluate(spec: FeatureFlagSpec, environment: str, now: dt.datetime,
             verdict: SignoffVerdict | None = None) -> EnvValue:
    """The flag's value in ``environment``: override, else default; the gate can only turn it off."""
    overrides = spec.environments or {}
    desired = overrides.get(environment, spec.default_value)
    source: ValueSource = "Override" if environment in overrides else "Default"
    if not desired:
        return EnvValue(environment, False, False, source)
    v = verdict or signoff_verdict(spec, now)
    if not v.allows_enable:
        return EnvValue(environment, False, True, "Blocked", v.reason, v.message)
    return EnvValue(environment, True, True, source)


def flag_environments(flag: FeatureFlag) -> set[str]:
    """The environments a flag names itself: its overrides and its targets."""
    envs = set(flag.spec.environments or {})
    envs.update(t.environment for t in flag.spec.targets or [])
    return envs


def next_transition(spec: FeatureFlagSpec, now: dt.datetime) -> dt.datetime | None:
    """When the gate's verdict will change by itself (a sign-off starting or expiring), if ever."""
    s = spec.signoff
    if not spec.requires_signoff or s is None:
        return None
    if s.at - CLOCK_SKEW > now:
        return s.at - CLOCK_SKEW
    if s.expires_at is not None and s.expires_at > now:
        return s.expires_at
    return None


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

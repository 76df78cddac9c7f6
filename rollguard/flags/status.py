"""A flag's new status and the Events to emit, from its plan and its previous status. Pure.

History and Events come from comparing the previous status with the new one, so a restarted
operator that re-reconciles an unchanged flag records nothing new and emits nothing twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from rollguard.flags.plan import FlagPlan, configmap_name
from rollguard.models.common import Condition, Event, set_condition
from rollguard.models.flag import HISTORY_MAX, EnvironmentStatus, FeatureFlagStatus, HistoryEntry, SignoffStatus


def _b(v: bool) -> str:
    return "true" if v else "false"


def summary(envs: list[EnvironmentStatus]) -> str:
    return " ".join(f"{e.name}={_b(e.value)}" + ("(blocked)" if e.source == "Blocked" else "") for e in envs)


def build_status(p: FlagPlan, prev: FeatureFlagStatus | None, generation: int | None, actor: str,
                 now: dt.datetime) -> tuple[FeatureFlagStatus, list[Event]]:
    prev = prev or FeatureFlagStatus()
    envs = [EnvironmentStatus(
        name=env, value=ev.value.value, desired=ev.value.desired, source=ev.value.source,
        reason=ev.value.reason, message=ev.value.message,
        config_map=configmap_name(env) if not any(r == "DuplicateKey" for r, _ in p.problems) else None,
        deployments=p.deployments.get(env) or None,
    ) for env, ev in sorted(p.values.items())]
    blocked = [e for e in envs if e.source == "Blocked"]
    blocked_reasons = [f"{e.name}: {e.message}" for e in blocked]
    phase: Literal["Ready", "Blocked", "Invalid"] = "Invalid" if p.problems else ("Blocked" if blocked else "Ready")

    conditions = list(prev.conditions or [])
    if p.problems:
        reason, _ = p.problems[0]
        ready = Condition(type="Ready", status="False", reason=reason,
                          message="; ".join(m for _, m in p.problems), last_transition_time=now,
                          observed_generation=generation)
    else:
        msg = f"delivered to {len(envs)} environment(s)"
        if p.missing:
            msg += f"; target Deployments not found (yet): {', '.join(sorted(set(p.missing)))}"
        ready = Condition(type="Ready", status="True", reason="Delivered", message=msg,
                          last_transition_time=now, observed_generation=generation)
    conditions = set_condition(conditions, ready)
    if blocked:
        cond = Condition(type="Blocked", status="True", reason=p.verdict.reason,
                         message="kept false in " + ", ".join(e.name for e in blocked) + ": " + p.verdict.message,
                         last_transition_time=now, observed_generation=generation)
    else:
        cond = Condition(type="Blocked", status="False",
                         reason="SignoffValid" if p.verdict.state == "Valid" else "NotBlocked",
                         message=p.verdict.message, last_transition_time=now, observed_generation=generation)
    conditions = set_condition(conditions, cond)

    # What changed, for the history and the Events.
    events: list[Event] = []
    changes: list[str] = []
    before = {e.name: e for e in prev.environments or []}
    for e in envs:
        old = before.get(e.name)
        if old is None:
            changes.append(f"{e.name}: {_b(e.value)} ({e.source})")
        elif old.value != e.value or old.source != e.source:
            changes.append(f"{e.name}: {_b(old.value)} -> {_b(e.value)} ({e.source})")
    changes += [f"{name}: removed" for name in sorted(before.keys() - {e.name for e in envs})]
    old_signoff = prev.signoff.state if prev.signoff else None
    if old_signoff is not None and old_signoff != p.verdict.state:
        changes.append(f"signoff: {old_signoff} -> {p.verdict.state}")
    elif prev.signoff is not None and p.verdict.state == "Valid" and prev.signoff.message != p.verdict.message:
        changes.append(f"signoff renewed: {p.verdict.message}")  # a new approval, same state
    history = list(prev.history or [])
    if changes:
        change = "; ".join(changes)
        history.append(HistoryEntry(time=now, actor=actor, generation=generation, change=change))
        events.append(Event("Normal", "FlagChanged", f"{change} (by {actor})"))
    history = history[-HISTORY_MAX:]

    newly_blocked = bool(blocked) and (prev.phase != "Blocked" or prev.observed_generation != generation
                                       or old_signoff != p.verdict.state)
    if newly_blocked:
        events.append(Event("Warning", p.verdict.reason, "flag kept false in " + ", ".join(e.name for e in blocked)
                            + ": " + p.verdict.message))
    if p.problems and (prev.phase != "Invalid" or prev.observed_generation != generation):
        events.append(Event("Warning", p.problems[0][0], "; ".join(m for _, m in p.problems)))

    status = FeatureFlagStatus(
        observed_generation=generation, phase=phase, key=p.flag.key, summary=summary(envs) or None,
        environments=envs or None, blocked_reasons=blocked_reasons or None,
        signoff=SignoffStatus(state=p.verdict.state, message=p.verdict.message, expires_at=p.verdict.expires_at),
        history=history or None, conditions=conditions)
    return status, events

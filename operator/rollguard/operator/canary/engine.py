"""The canary engine: a pure function ``decide(spec, status, observations, now) -> (status, actions)``.

No I/O, no clock, no randomness: the kopf handler gathers observations (object states, smoke
result, metric query results, a manual request), calls :func:`decide`, writes the returned
status and carries out the actions in order. Everything the rollout knows lives in the status,
so a restarted operator resumes exactly where it stood, and every action is idempotent.

Phases: Pending -> (Blocked) -> Initializing -> Progressing <-> Paused -> Promoting -> Succeeded,
or -> RollingBack -> RolledBack; Failed when even the rollback does not complete in time (the
engine keeps asking for it and says why).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from rollguard.kube.names import SIGNOFF_ANNOTATION, canary_name
from rollguard.models.canary import (
    LIVE_PHASES,
    TERMINAL_PHASES,
    BaselineValue,
    CanaryRolloutSpec,
    CanaryRolloutStatus,
    ManualAction,
    Metric,
    MetricDelta,
    MetricStatus,
    Phase,
    Report,
    Sample,
    SmokeStatus,
    StepReport,
    Verdict,
    parse_duration,
)
from rollguard.models.common import Condition, set_condition
from rollguard.operator.canary.actions import (
    Action,
    ApplyChangeToStable,
    CreateCanary,
    DeleteCanary,
    EmitEvent,
    LabelStablePods,
    RestoreStable,
    RunSmoke,
    SetWeight,
    WriteReport,
)
from rollguard.operator.canary.analysis import Evaluation, evaluate, is_golden
from rollguard.operator.canary.observations import ManualRequest, Observations, SmokeResult, TargetState
from rollguard.operator.canary.simulate import World, passing_metrics
from rollguard.operator.metrics.base import MetricObservation, QueryError
from rollguard.operator.metrics.window import analysis_window, confirmation_gap, duration, window_of

__all__ = ["ManualRequest", "Observations", "SmokeResult", "TargetState", "analysis_due", "attempt_json", "decide",
           "plan", "quiet", "running_spec", "spec_edited", "spec_hash"]

MAX_SAMPLES = 20
MAX_MANUAL_ACTIONS = 50

# --------------------------------------------------------------------------- the attempt's spec

# Spec fields that an attempt reads live from the object: editing them changes nothing the canary
# runs or how it is judged. Every other field is the attempt's, fixed when it starts.
LIVE_FIELDS = ("progressDeadlineSeconds", "requiresSignoff")
# Phases in which an attempt has acted (a canary, traffic, the stable) and not yet finished or
# begun to undo it: an edit to the spec there starts the rollout over with the new spec.
RESTARTABLE_PHASES: frozenset[Phase] = frozenset({"Initializing", "Progressing", "Paused", "Promoting"})


def _judged(spec: CanaryRolloutSpec) -> dict[str, object]:
    raw = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return {k: v for k, v in raw.items() if k not in LIVE_FIELDS}


def attempt_json(spec: CanaryRolloutSpec) -> str:
    """The judged part of ``spec`` (everything but :data:`LIVE_FIELDS`) as canonical JSON."""
    return json.dumps(_judged(spec), sort_keys=True, separators=(",", ":"))


def spec_hash(spec: CanaryRolloutSpec) -> str:
    """A hash of what a rollout changes, where, and how it is judged (see :func:`attempt_json`)."""
    return "sha256:" + hashlib.sha256(attempt_json(spec).encode()).hexdigest()[:32]


def running_spec(spec: CanaryRolloutSpec, status: CanaryRolloutStatus) -> CanaryRolloutSpec:
    """The spec the current attempt runs with: the one recorded in ``status.attemptSpec`` when
    the attempt started (with the live fields from ``spec``), else ``spec``. The reconciler
    observes and acts with it, so an edit never reaches a running attempt half-way."""
    if status.attempt_spec is None:
        return spec
    raw = json.loads(status.attempt_spec)
    raw.update(spec.model_dump(by_alias=True, include={"progress_deadline_seconds", "requires_signoff"}))
    return CanaryRolloutSpec.model_validate(raw)


def spec_edited(spec: CanaryRolloutSpec, status: CanaryRolloutStatus) -> bool:
    """Whether ``spec`` differs, in a judged field, from what the running attempt runs with."""
    return (status.phase in RESTARTABLE_PHASES and status.spec_hash is not None
            and status.restart_pending is None and status.spec_hash != spec_hash(spec))


def _differences(old: object, new: object, path: str = "", depth: int = 0) -> list[str]:
    """The dotted paths (two levels deep at most) at which ``old`` and ``new`` differ."""
    if old == new:
        return []
    if depth < 2 and isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += _differences(old.get(k), new.get(k), f"{path}.{k}" if path else str(k), depth + 1)
        return out
    return [path or "spec"]


# --------------------------------------------------------------------------- helpers

@dataclass
class _Ctx:
    spec: CanaryRolloutSpec
    st: CanaryRolloutStatus
    obs: Observations
    now: dt.datetime
    actions: list[Action] = field(default_factory=list)
    hold: bool = False  # a manual request moved the rollout this tick: analyse, but do not advance

    def emit(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.actions.append(EmitEvent(type_, reason, message))

    def since(self, t: dt.datetime | None) -> float:
        return 0.0 if t is None else (self.now - t).total_seconds()

    @property
    def deadline(self) -> float:
        return float(self.spec.progress_deadline_seconds)

    def where(self) -> str:
        return f"step {self.st.current_step} (weight {self.st.canary_weight}%)"


def _condition(ctx: _Ctx, type_: str, status: Literal["True", "False", "Unknown"], reason: str, message: str) -> None:
    ctx.st.conditions = set_condition(ctx.st.conditions, Condition(
        type=type_, status=status, reason=reason, message=message[:32768], last_transition_time=ctx.now,
        observed_generation=ctx.st.observed_generation))


def _set_phase(ctx: _Ctx, phase: Phase, reason: str, message: str,
               event: Literal["Normal", "Warning"] = "Normal") -> None:
    st = ctx.st
    changed = st.phase != phase
    st.phase, st.reason, st.message = phase, reason, message
    if phase == "Progressing" and st.analysis_waiting_since is not None:
        # an outage outlasts the transition (a resume while Prometheus is away): the top of the
        # status goes on saying so until a check reaches Prometheus again
        st.reason = "WaitingForPrometheus"
        st.message = (f"{message}; analysis waiting for Prometheus at {ctx.spec.analysis.prometheus.address} "
                      f"since {st.analysis_waiting_since:%Y-%m-%dT%H:%M:%SZ}")
    if phase != "Paused":
        st.paused_manually = False  # only a Paused rollout can be paused by hand
    if phase not in LIVE_PHASES:
        st.analysis_waiting_since = None  # analysis runs only in the live phases
    if changed:
        st.phase_since = ctx.now
        st.progress_at = ctx.now
        ctx.emit(event, phase, message)
    running = phase not in TERMINAL_PHASES and phase != "Failed"
    _condition(ctx, "Progressing", "True" if running else "False", st.reason, st.message)


def analysis_due(spec: CanaryRolloutSpec, status: CanaryRolloutStatus, now: dt.datetime) -> bool:
    """Whether the reconciler should query the metrics before the next :func:`decide`.

    Analysis runs every interval while Progressing or Paused; the first check at a new weight
    waits a full interval so that it measures traffic at that weight. With the scrape interval
    known, no check comes before the canary has been ready for a window plus two scrape
    intervals: its series start at its first scrape (up to one interval after it is ready), and
    a window's last requests reach Prometheus with the scrape after them. An earlier window of
    the canary holds fewer samples than it should, or none (no traffic, a breach under
    ``onNoData: fail``) although requests reach it.
    """
    if status.phase not in LIVE_PHASES:
        return False
    if status.canary_ready_at is not None and status.scrape_interval:
        young = parse_duration(window_of(spec.analysis, status)) + 2 * parse_duration(status.scrape_interval)
        if (now - status.canary_ready_at).total_seconds() < young:
            return False
    anchors = [t for t in (status.last_analysis_at, status.weight_changed_at) if t is not None]
    if not anchors:
        return True
    return (now - max(anchors)).total_seconds() >= parse_duration(spec.analysis.interval)


def quiet(spec: CanaryRolloutSpec, status: CanaryRolloutStatus, now: dt.datetime) -> bool:
    """True when nothing can change before the next analysis: the reconciler may skip observing.

    Between analysis checks a setWeight step, a paused rollout and an elapsed watch window only
    move on a check; a pause with a duration only at its end. Skipping those ticks keeps an
    operator with many rollouts from reading every object every second.
    """
    if status.phase not in LIVE_PHASES or analysis_due(spec, status, now):
        return False
    if status.phase == "Paused":
        return True
    i = status.current_step
    if i < len(spec.steps):
        pause = spec.steps[i].pause
        if pause is not None and pause.duration is not None and status.step_started_at is not None:
            return (now - status.step_started_at).total_seconds() < parse_duration(pause.duration)
        return True
    if status.watch_started_at is None:
        return False
    return (now - status.watch_started_at).total_seconds() < parse_duration(spec.watch)


def build_report(spec: CanaryRolloutSpec, st: CanaryRolloutStatus, now: dt.datetime, success: bool) -> Report:
    promoted, manual = success, st.promoted_by is not None
    promotion: Literal["automatic", "manual"] | None = None
    if promoted:
        promotion = "manual" if manual else "automatic"
        # A promotion by hand before any check passed put the change live without evidence:
        # the report must not call that a success (the phase still says Succeeded: it is live).
        success = not manual or st.checks_passed > 0
    return Report(
        success=success,
        rollback_triggered=not promoted,
        rollback_reason=None if promoted else st.rollback_reason,
        smoke_returncode=st.smoke.returncode if st.smoke else None,
        metrics_delta={m.name: MetricDelta(canary=m.canary_value, baseline=m.baseline_value, delta=m.delta,
                                           verdict=m.verdict) for m in st.metrics},
        steps=[h.model_copy() for h in st.history],
        started_at=st.started_at,
        finished_at=now,
        duration_seconds=None if st.started_at is None else (now - st.started_at).total_seconds(),
        dry_run=spec.dry_run,
        promotion=promotion,
        promoted_by=st.promoted_by if promotion == "manual" else None,
        checks_passed=st.checks_passed,
        applied_changes=list(st.applied_changes),
    )


def _close_history(ctx: _Ctx, outcome: Literal["completed", "rolledBack", "promoted"]) -> None:
    if ctx.st.history and ctx.st.history[-1].finished_at is None:
        h = ctx.st.history[-1]
        h.finished_at, h.outcome, h.checks = ctx.now, outcome, ctx.st.step_checks


# --------------------------------------------------------------------------- transitions

def _start_rollback(ctx: _Ctx, trigger: str, reason: str) -> None:
    st = ctx.st
    if st.phase in ("RollingBack", "RolledBack", "Failed"):
        return
    st.rollback_reason = reason
    _close_history(ctx, "rolledBack")
    if st.phase in ("Pending", "Blocked"):
        # nothing was created, no traffic moved: there is nothing to undo, and the canary objects
        # and the route may be another rollout's (the one this rollout waited for)
        _rolled_back(ctx, trigger)
        return
    _set_phase(ctx, "RollingBack", trigger, f"rolling back: {reason}", "Warning")
    _rolling_back(ctx)


def _rollback_done(ctx: _Ctx) -> bool:
    o = ctx.obs
    restored = not ctx.st.change_applied_to_stable or not o.target.has_change
    return not o.canary_exists and o.traffic_weight in (None, 0) and restored


def _rolled_back(ctx: _Ctx, reason: str) -> None:
    st = ctx.st
    st.canary_weight = 0
    st.change_applied_to_stable = False  # restored (or never applied)
    st.finished_at = ctx.now
    st.report = build_report(ctx.spec, st, ctx.now, success=False)
    _set_phase(ctx, "RolledBack", reason, f"rolled back: {st.rollback_reason}", "Warning")
    ctx.actions.append(WriteReport(st.report))


def _restart(ctx: _Ctx) -> None:
    """The edited attempt's canary is out: start over with the object's spec as a new attempt."""
    old, why = ctx.st, ctx.st.restart_pending or "spec edited"
    message = f"{why}; attempt {old.attempt + 1} starts with the new spec"
    ctx.st = CanaryRolloutStatus(manual_actions=old.manual_actions, last_request_id=old.last_request_id,
                                 attempt=old.attempt + 1, observed_generation=old.observed_generation,
                                 conditions=old.conditions, restarted_for=why, started_at=ctx.now)
    _set_phase(ctx, "Pending", "SpecChanged", message)


def _rolling_back(ctx: _Ctx) -> None:
    st = ctx.st
    if _rollback_done(ctx):
        if st.restart_pending is not None:
            _restart(ctx)
            return
        _rolled_back(ctx, st.reason or "RolledBack")
        return
    # traffic to stable first, then the canary objects, then whatever the change touched
    st.canary_weight = 0
    ctx.actions.append(SetWeight(0))
    ctx.actions.append(DeleteCanary())
    if st.change_applied_to_stable and ctx.obs.target.exists:
        ctx.actions.append(RestoreStable(dict(st.stable_snapshot or {})))
    if st.phase == "RollingBack" and ctx.since(st.phase_since) > ctx.deadline:
        why = ctx.obs.action_error or "canary objects or traffic still present"
        _set_phase(ctx, "Failed", "RollbackIncomplete",
                   f"rollback not complete after {ctx.deadline:.0f}s ({why}); still retrying; "
                   f"rollback reason: {st.rollback_reason}", "Warning")


def _enter_progressing(ctx: _Ctx) -> None:
    _set_phase(ctx, "Progressing", "CanaryReady", "canary ready, starting the traffic steps")
    _start_step(ctx, 0)


def _step_status(ctx: _Ctx) -> tuple[str, str]:
    """The reason and message of a Progressing rollout: the step it stands at, and what moves it on."""
    st, steps = ctx.st, ctx.spec.steps
    i, w = st.current_step, st.canary_weight
    if i >= len(steps):
        return "Watching", f"all steps done; watching for {ctx.spec.watch} at weight {w}%"
    step = steps[i]
    if step.set_weight is not None:
        return "StepStarted", f"step {i}: canary weight {w}%, advancing on a passing analysis check"
    if step.pause is not None and step.pause.duration is not None:
        return "StepStarted", f"step {i}: pause for {step.pause.duration} at weight {w}%"
    return "WaitingForResume", f"step {i}: paused until resumed"


def _start_step(ctx: _Ctx, index: int) -> None:
    st, steps = ctx.st, ctx.spec.steps
    st.current_step, st.step_started_at, st.step_checks, st.step_passes = index, ctx.now, 0, 0
    st.progress_at = ctx.now
    if st.phase == "Progressing" and st.analysis_waiting_since is None:
        st.reason, st.message = _step_status(ctx)
    if index >= len(steps):
        st.watch_started_at = ctx.now
        if parse_duration(ctx.spec.watch) == 0 and st.last_check_verdict == "pass":
            _enter_promoting(ctx, f"all steps passed at weight {st.canary_weight}%")
            return
        st.history.append(StepReport(index=index, kind="watch", weight=st.canary_weight, started_at=ctx.now))
        ctx.emit("Normal", "Watching", f"all steps done; watching for {ctx.spec.watch} at weight {st.canary_weight}%")
        return
    step = steps[index]
    if step.set_weight is not None:
        st.canary_weight, st.weight_changed_at = step.set_weight, ctx.now
        st.history.append(StepReport(index=index, kind="setWeight", weight=step.set_weight, started_at=ctx.now))
        ctx.actions.append(SetWeight(step.set_weight))
        ctx.emit("Normal", "StepStarted", f"step {index}: canary weight {step.set_weight}%")
    else:
        assert step.pause is not None
        st.history.append(StepReport(index=index, kind="pause", weight=st.canary_weight, started_at=ctx.now))
        what = f"for {step.pause.duration}" if step.pause.duration else "until resumed"
        ctx.emit("Normal", "StepStarted", f"step {index}: pause {what} at weight {st.canary_weight}%")
        if step.pause.until_resumed:
            _set_phase(ctx, "Paused", "WaitingForResume",
                       f"step {index}: paused until resumed (analysis continues; a breach rolls back)")


def _advance(ctx: _Ctx) -> None:
    _close_history(ctx, "completed")
    _start_step(ctx, ctx.st.current_step + 1)


def _enter_promoting(ctx: _Ctx, message: str) -> None:
    _close_history(ctx, "promoted")
    _set_phase(ctx, "Promoting", "Promoting", message)
    _promoting(ctx)


def _promoting(ctx: _Ctx) -> None:
    st, o = ctx.st, ctx.obs
    if not o.target.exists:
        _start_rollback(ctx, "ObjectMissing", f"targetRef.name: Deployment {ctx.spec.target_ref.name} not found "
                                              "(deleted while the change was being promoted)")
        return
    if o.target.has_change and o.target.available and not o.canary_exists and o.traffic_weight in (None, 0):
        st.canary_weight = 0
        st.finished_at = ctx.now
        st.report = build_report(ctx.spec, st, ctx.now, success=True)
        if st.promoted_by is None:
            _set_phase(ctx, "Succeeded", "Promoted", "change promoted to the stable target; canary removed")
        else:
            evidence = (f"{st.checks_passed} analysis check(s) passed before" if st.checks_passed
                        else "no analysis check passed: promoted without evidence")
            _set_phase(ctx, "Succeeded", "PromotedManually",
                       f"change promoted by hand by {st.promoted_by} ({evidence}); canary removed",
                       "Normal" if st.checks_passed else "Warning")
        ctx.actions.append(WriteReport(st.report))
        return
    if not o.target.has_change or not st.change_applied_to_stable:
        st.change_applied_to_stable = True
        ctx.actions.append(ApplyChangeToStable())
    elif o.target.available:
        # the stable runs the change: all traffic back to it, then the canary goes
        st.canary_weight = 0
        ctx.actions.append(SetWeight(0))
        ctx.actions.append(DeleteCanary())
    if ctx.since(st.phase_since) > ctx.deadline:
        _start_rollback(ctx, "ProgressDeadlineExceeded",
                        f"progress deadline exceeded: stable target not available with the change after "
                        f"{ctx.deadline:.0f}s ({o.target.message or 'not available'})")


# --------------------------------------------------------------------------- analysis

def _metric_status(st: CanaryRolloutStatus, name: str) -> MetricStatus:
    for m in st.metrics:
        if m.name == name:
            return m
    ms = MetricStatus(name=name)
    st.metrics.append(ms)
    return ms


def _analyse(ctx: _Ctx, results: dict[str, MetricObservation]) -> str | None:
    """Evaluate every metric, update the counters; return a rollback reason or None."""
    spec, st, a = ctx.spec, ctx.st, ctx.spec.analysis
    st.analysis_runs += 1
    st.last_analysis_at = ctx.now
    st.step_checks += 1
    if st.analysis_window is None:
        _settle_window(ctx)  # a rollout started before windows were fixed at the start
    rollback: str | None = None
    verdicts: list[Verdict] = []
    breaches: list[str] = []
    unavailable: list[str] = []
    hint = _window_hint(ctx)
    for m in a.metrics:
        obs = results.get(m.name)
        if obs is None:
            obs = MetricObservation(QueryError("not queried"), QueryError("not queried"))
        ms = _metric_status(st, m.name)
        ev = evaluate(m, obs, a.profile, st.current_step, st.canary_weight, ms.last_baseline, hint)
        if ev.measured_baseline is not None:
            ms.last_baseline = BaselineValue(value=ev.measured_baseline, time=ctx.now, step=st.current_step,
                                             weight=st.canary_weight)
        ev = _confirm(ctx, m, ev)
        if ev.reason == "QueryError":
            unavailable.append(ev.message)
        counted, why = _apply_verdict(ctx, m, ev)
        verdicts.append("breach" if counted else ev.verdict)
        if counted:
            breaches.append(ev.message)
        if why and rollback is None:
            rollback = why
    if "breach" in verdicts:
        st.last_check_verdict = "breach"
        _condition(ctx, "AnalysisHealthy", "False", "Breach", "; ".join(breaches))
    elif all(v == "pass" for v in verdicts):
        st.last_check_verdict = "pass"
        st.step_passes += 1
        st.checks_passed += 1
        _condition(ctx, "AnalysisHealthy", "True", "Pass", f"all {len(verdicts)} metrics pass at {ctx.where()}")
    else:
        st.last_check_verdict = "inconclusive"
        _condition(ctx, "AnalysisHealthy", "Unknown", "Inconclusive",
                   f"inconclusive at {ctx.where()}: the step does not advance on this check")
    _waiting_for_prometheus(ctx, unavailable)
    del spec
    return rollback


def _waiting_for_prometheus(ctx: _Ctx, errors: list[str]) -> None:
    """Say at the top of the status (reason, message, ``analysisWaitingSince``) that analysis is
    waiting for Prometheus, and since when; and that it is not once a check reaches it again."""
    st, a = ctx.st, ctx.spec.analysis
    was_waiting = st.analysis_waiting_since is not None
    if not errors:
        st.analysis_waiting_since = None
        if was_waiting:
            ctx.emit("Normal", "MetricsAvailable", f"analysis reached Prometheus at {a.prometheus.address} again")
            _live_message(ctx)
        return
    if st.analysis_waiting_since is None:
        st.analysis_waiting_since = ctx.now
    since = f"{st.analysis_waiting_since:%Y-%m-%dT%H:%M:%SZ}"
    note = (f"analysis waiting for Prometheus at {a.prometheus.address} since {since}: "
            f"{len(errors)} of {len(a.metrics)} queries failing ({errors[0]}); "
            f"nothing advances until a check passes (onUnavailable: {a.on_unavailable})")
    if st.phase == "Progressing":
        st.reason, st.message = "WaitingForPrometheus", note
    else:
        _live_message(ctx)
        st.message = f"{st.message}; {note}"


def _live_message(ctx: _Ctx) -> None:
    """The reason and message of a live rollout from its state (after an outage note is lifted)."""
    st = ctx.st
    if st.phase == "Paused":
        if st.paused_manually:
            st.reason, st.message = "PausedManually", f"paused manually at {ctx.where()}"
        else:
            st.reason, st.message = "WaitingForResume", f"step {st.current_step}: paused until resumed"
    elif st.phase == "Progressing":
        st.reason, st.message = _step_status(ctx)


def _settle_window(ctx: _Ctx) -> None:
    """Fix the query window for this attempt: ``analysis.interval``, widened to four scrape
    intervals (``analysis.scrapeInterval``, else what Prometheus reports); the reason in status
    and an Event."""
    st, a = ctx.st, ctx.spec.analysis
    w = analysis_window(a, ctx.obs.scrape_interval)
    st.analysis_window, st.analysis_window_reason = w.range, w.reason
    st.scrape_interval = None if w.scrape_interval is None else duration(w.scrape_interval)
    st.scrape_interval_source = w.scrape_source
    if w.reason is not None:
        ctx.emit("Warning", "AnalysisWindowWidened" if w.scrape_interval is not None else "ScrapeIntervalUnknown",
                 w.reason)


def _window_hint(ctx: _Ctx) -> str:
    """The window and the scrape interval, for a no-data verdict's likely causes."""
    st = ctx.st
    window = window_of(ctx.spec.analysis, st)
    if st.scrape_interval is None:
        return (f", or a window ({{{{interval}}}} = {window}) shorter than four scrape intervals: the scrape "
                "interval is unknown, set analysis.scrapeInterval")
    return f"; window {{{{interval}}}} = {window}, scrape interval {st.scrape_interval} ({st.scrape_interval_source})"


def _confirm(ctx: _Ctx, m: Metric, ev: Evaluation) -> Evaluation:
    """A maxIncrease breach counts only when a later check, at least one scrape interval after the
    first sighting, still sees the canary ahead. The range since the canary started keeps a real
    increase in every later reading; an event on both tracks at one moment reads as the canary
    ahead only until the baseline's next scrape."""
    ms = _metric_status(ctx.st, m.name)
    if ev.kind != "maxIncrease":
        return ev
    if ev.verdict == "pass":
        ms.unconfirmed_since = None
        return ev
    if ev.verdict != "breach":
        return ev
    first, gap = ms.unconfirmed_since, confirmation_gap(ctx.st)
    if first is not None and first < ctx.now and (ctx.now - first).total_seconds() >= gap:
        return dataclasses.replace(ev, message=f"{ev.message}; confirmed (canary ahead since "
                                               f"{first:%Y-%m-%dT%H:%M:%SZ})")
    if first is None:
        ms.unconfirmed_since = ctx.now
    message = ev.message.replace(": breach at", ": unconfirmed at", 1)
    return dataclasses.replace(ev, verdict="inconclusive", reason="Unconfirmed", message=(
        f"{message}; the canary is ahead: the next check at least one scrape interval later confirms it "
        "(an event on both tracks at one moment reads as the canary ahead until both are scraped)"))


def _apply_verdict(ctx: _Ctx, m: Metric, ev: Evaluation) -> tuple[bool, str | None]:
    """Record one evaluation; return (counted as a failure, rollback reason)."""
    st, a = ctx.st, ctx.spec.analysis
    ms = _metric_status(st, m.name)
    ms.verdict, ms.reason, ms.message = ev.verdict, ev.reason, ev.message
    ms.canary_value, ms.baseline_value, ms.delta = ev.canary, ev.baseline, ev.delta
    ms.threshold, ms.sample_count, ms.last_checked_at = ev.threshold, ev.sample_count, ctx.now
    ms.samples = [*ms.samples, Sample(time=ctx.now, step=st.current_step, weight=st.canary_weight,
                                      canary=ev.canary, baseline=ev.baseline, verdict=ev.verdict)][-MAX_SAMPLES:]
    counted = ev.verdict == "breach"
    if ev.verdict == "pass":
        ms.passes += 1
        ms.consecutive_failures = 0
        return False, None
    if ev.verdict == "inconclusive":
        ms.inconclusive += 1
        if ev.reason == "Unconfirmed":
            if ms.unconfirmed_since == ctx.now:
                ctx.emit("Warning", "AnalysisUnconfirmed", ev.message)
            return False, None
        if ev.reason == "QueryError":
            if a.on_unavailable == "rollback":
                return False, f"{ev.message} (onUnavailable: rollback)"
            ctx.emit("Warning", "MetricsUnavailable", f"{ev.message} (onUnavailable: continue)")
            return False, None
        if a.on_no_data == "rollback":
            return False, f"{ev.message} (onNoData: rollback)"
        if a.on_no_data == "continue":
            ctx.emit("Warning", "AnalysisInconclusive", f"{ev.message} (onNoData: continue)")
            return False, None
        counted = True  # onNoData: fail
        ms.message = f"{ev.message} (onNoData: fail, counted as a failure)"
    ms.failures += 1
    ms.consecutive_failures += 1
    text = ms.message or ev.message
    ctx.emit("Warning", "AnalysisBreach", f"{text} (failures {ms.failures}, limit {m.failure_limit})")
    if is_golden(m):
        return counted, f"{text}: any increase rolls back at once"
    if m.immediate:
        return counted, f"{text}: immediate metric"
    if ms.failures > m.failure_limit:
        return counted, f"{text}: failures {ms.failures} > failureLimit {m.failure_limit}"
    cl = m.consecutive_failure_limit
    if cl is not None and ms.consecutive_failures > cl:
        return counted, (f"{text}: consecutive failures {ms.consecutive_failures} > "
                         f"consecutiveFailureLimit {cl}")
    return counted, None


# --------------------------------------------------------------------------- phases

def _busy(ctx: _Ctx, other: str) -> str:
    target = ctx.spec.target_ref.name
    return (f"targetRef.name: CanaryRollout {other} is already rolling out Deployment {target} (canary "
            f"{canary_name(target)}); this rollout waits until it finishes")


def _preconditions(ctx: _Ctx) -> None:
    spec, st, o = ctx.spec, ctx.st, ctx.obs
    problems: list[str] = []
    t = o.target
    if o.other_rollout is not None:
        problems.append(_busy(ctx, o.other_rollout))
    if not t.exists:
        problems.append(f"target Deployment {spec.target_ref.name} not found")
    elif not t.available:
        problems.append(f"target Deployment {spec.target_ref.name} not available"
                        + (f": {t.message}" if t.message else ""))
    if not o.references_ok:
        problems.append(o.references_message or "referenced flags or catalog are missing or invalid")
    # The other rollout's canary route is its own: while it runs, that is the wait, not a fault.
    if o.router_error and o.other_rollout is None:
        problems.append(o.router_error)
    if not o.prometheus_online:
        addr = spec.analysis.prometheus.address
        if spec.analysis.on_unavailable == "rollback":
            problems.append(f"Prometheus at {addr} unreachable (onUnavailable: rollback)")
        elif st.phase == "Pending":
            ctx.emit("Warning", "MetricsUnavailable", f"Prometheus at {addr} unreachable (onUnavailable: continue)")
    signoff_missing = spec.requires_signoff and not o.signoff
    if signoff_missing:
        problems.append(f"sign-off required: set the annotation {SIGNOFF_ANNOTATION} on this CanaryRollout")
    if problems:
        message = "; ".join(problems)
        # waiting for a human's sign-off, or for another rollout of the target to finish, is not
        # "stuck"; anything else is, after the deadline
        waiting = len(problems) == int(signoff_missing) + int(o.other_rollout is not None)
        reason = ("TargetBusy" if o.other_rollout is not None and waiting and not signoff_missing
                  else "SignoffRequired" if signoff_missing and len(problems) == 1 else "PreconditionsNotMet")
        if st.phase != "Blocked" or st.message != message:
            _set_phase(ctx, "Blocked", reason, message, "Warning")
        _condition(ctx, "Blocked", "True", reason, message)
        if not waiting and ctx.since(st.started_at) > ctx.deadline:
            _start_rollback(ctx, "ProgressDeadlineExceeded",
                            f"progress deadline exceeded after {ctx.deadline:.0f}s while blocked: {message}")
        return
    if st.phase == "Blocked":
        _condition(ctx, "Blocked", "False", "PreconditionsMet", "preconditions met")
    if spec.dry_run:
        _dry_run(ctx)
        return
    st.stable_snapshot, st.stable_had_change = dict(t.snapshot), t.has_change
    st.attempt_spec, st.spec_hash = attempt_json(spec), spec_hash(spec)
    _settle_window(ctx)
    _set_phase(ctx, "Initializing", "CreatingCanary", "preconditions met; creating the canary")
    _initializing(ctx)


def _dry_run(ctx: _Ctx) -> None:
    st = ctx.st
    st.planned_actions = [f"{when}: {a.describe()}" for when, a in plan(ctx.spec, ctx.now)]
    st.finished_at = ctx.now
    st.report = build_report(ctx.spec, st, ctx.now, success=True)
    _set_phase(ctx, "Succeeded", "DryRun",
               f"dry run: {len(st.planned_actions)} actions planned, none applied")
    ctx.actions.append(WriteReport(st.report))


def _initializing(ctx: _Ctx) -> None:
    spec, st, o = ctx.spec, ctx.st, ctx.obs
    if o.other_rollout is not None:
        # another rollout got there first (both left Blocked in one tick): its canary is not ours
        st.attempt_spec = st.spec_hash = st.stable_snapshot = None
        _set_phase(ctx, "Blocked", "TargetBusy", _busy(ctx, o.other_rollout), "Warning")
        _condition(ctx, "Blocked", "True", "TargetBusy", st.message or "")
        return
    gone = _missing(ctx, canary_too=False)
    if gone is not None:
        _start_rollback(ctx, "ObjectMissing", gone)
        return
    if o.canary_ready and st.canary_ready_at is None:
        st.canary_ready_at = ctx.now  # the start of {{sinceCanary}}
    if not o.canary_ready:
        ctx.actions.append(CreateCanary())
        if ctx.since(st.phase_since) > ctx.deadline:
            _start_rollback(ctx, "ProgressDeadlineExceeded",
                            f"progress deadline exceeded: canary not ready after {ctx.deadline:.0f}s"
                            + (f" ({o.action_error})" if o.action_error else ""))
        return
    if spec.smoke is None:
        _enter_progressing(ctx)
        return
    sm = st.smoke or SmokeStatus()
    st.smoke = sm
    if sm.state == "Pending":
        sm.state, sm.started_at = "Running", ctx.now
        ctx.actions.append(RunSmoke())
        ctx.emit("Normal", "SmokeStarted", "smoke test started against the canary")
        return
    if sm.state == "Passed":
        _enter_progressing(ctx)
        return
    r = o.smoke
    if r is not None and r.state == "Passed":
        sm.state, sm.returncode, sm.finished_at, sm.message = "Passed", r.returncode, ctx.now, r.message or None
        ctx.emit("Normal", "SmokePassed", f"smoke test passed (exit {r.returncode})")
        _enter_progressing(ctx)
    elif r is not None and r.state == "Failed":
        sm.state, sm.returncode, sm.finished_at, sm.message = "Failed", r.returncode, ctx.now, r.message or None
        _start_rollback(ctx, "SmokeFailed", f"smoke test failed: exit {r.returncode}"
                        + (f" ({r.message})" if r.message else ""))
    elif ctx.since(sm.started_at) > spec.smoke.timeout_seconds:
        sm.state, sm.finished_at, sm.message = "Failed", ctx.now, "timed out"
        _start_rollback(ctx, "SmokeFailed", f"smoke test timed out after {spec.smoke.timeout_seconds}s")


def _missing(ctx: _Ctx, canary_too: bool) -> str | None:
    """The first object the running rollout needs that is gone, named with the field that names it."""
    spec, o = ctx.spec, ctx.obs
    target = spec.target_ref.name
    service = spec.traffic.stable_service or target
    if not o.target.exists:
        return f"targetRef.name: Deployment {target} not found (deleted while the rollout ran)"
    if not o.stable_service_exists:
        field_name = "traffic.stableService" if spec.traffic.stable_service else "targetRef.name"
        return f"{field_name}: Service {service} not found (deleted while the rollout ran)"
    if o.router_error:
        return f"{o.router_error} (deleted or changed while the rollout ran)"
    if canary_too and not o.canary_exists:
        return f"canary Deployment {canary_name(target)} not found (deleted while the rollout ran)"
    return None


def _adopt_weight(ctx: _Ctx) -> bool:
    """The router carries the weight of the next setWeight step while the status still records
    this one: the tick that set it was not recorded (the operator stopped between acting and
    writing the status). Adopt that step rather than move traffic backwards."""
    st, steps, w = ctx.st, ctx.spec.steps, ctx.obs.traffic_weight
    if w is None or w <= st.canary_weight:
        return False
    for j in range(st.current_step + 1, len(steps)):
        step = steps[j]
        if step.set_weight is not None:
            if step.set_weight != w:
                return False
            _close_history(ctx, "completed")
            _start_step(ctx, j)
            ctx.emit("Normal", "WeightAdopted",
                     f"the router already sends {w}% to the canary (step {j}), more than the {st.canary_weight}% "
                     "recorded: a tick that set it was not recorded; adopted, traffic never moves backwards")
            return True
        if step.pause is not None and step.pause.until_resumed:
            return False  # only a resume passes this step, and a resume is recorded with it
    return False


def _running(ctx: _Ctx) -> None:
    spec, st, o = ctx.spec, ctx.st, ctx.obs
    gone = _missing(ctx, canary_too=True)
    if gone is not None:
        _start_rollback(ctx, "ObjectMissing", gone)
        return
    checked = o.metrics is not None
    if o.metrics is not None:
        why = _analyse(ctx, o.metrics)
        if why is not None:
            _start_rollback(ctx, "AnalysisFailed", why)
            return
    if st.phase == "Paused" or ctx.hold:
        return  # analysis continues; nothing advances until resumed
    if _adopt_weight(ctx):
        return
    if o.router_error or (o.traffic_weight is not None and o.traffic_weight != st.canary_weight):
        # the router has not taken the weight (yet): no check counts toward a step until it has
        ctx.actions.append(SetWeight(st.canary_weight))
        if ctx.since(st.progress_at) > ctx.deadline:
            seen = o.router_error or f"router reports weight {o.traffic_weight}%"
            _start_rollback(ctx, "ProgressDeadlineExceeded",
                            f"progress deadline exceeded: {seen}, wanted {st.canary_weight}% "
                            f"for {ctx.deadline:.0f}s")
        return
    full_pass = checked and st.last_check_verdict == "pass"
    i = st.current_step
    if i < len(spec.steps):
        step = spec.steps[i]
        if step.set_weight is not None:
            if full_pass:
                _advance(ctx)
                return
        elif step.pause is not None and step.pause.duration is not None:
            st.progress_at = ctx.now  # waiting out a pause is progress
            if ctx.since(st.step_started_at) >= parse_duration(step.pause.duration):
                _advance(ctx)
            return
        elif step.pause is not None:
            _set_phase(ctx, "Paused", "WaitingForResume", f"step {i}: paused until resumed")
            return
    else:
        watch = parse_duration(spec.watch)
        elapsed = ctx.since(st.watch_started_at) >= watch
        if not elapsed:
            st.progress_at = ctx.now
        # evidence: the last check passed, and (with a watch window) at least one check passed in it
        if elapsed and st.last_check_verdict == "pass" and (watch == 0 or st.step_passes > 0):
            _enter_promoting(ctx, f"all steps passed; watched {spec.watch} at weight {st.canary_weight}%")
            return
    if ctx.since(st.progress_at) > ctx.deadline:
        last = "; ".join(m.message or "" for m in st.metrics) or "no analysis has run"
        _start_rollback(ctx, "ProgressDeadlineExceeded",
                        f"progress deadline exceeded: no passing check at {ctx.where()} for "
                        f"{ctx.deadline:.0f}s; last: {last}")


# --------------------------------------------------------------------------- manual requests

def _request(ctx: _Ctx, req: ManualRequest) -> None:
    st = ctx.st
    phase = st.phase
    accepted, message = False, ""
    if req.action == "abort":
        if phase in TERMINAL_PHASES or phase in ("RollingBack", "Failed"):
            message = f"abort ignored: nothing to abort in phase {phase}"
        else:
            accepted, message = True, f"aborted manually in phase {phase}"
    elif req.action == "promote":
        if phase in LIVE_PHASES and st.last_check_verdict == "breach":
            message = (f"promote refused: the last check at {ctx.where()} breached; "
                       "wait for a passing check or abort")
        elif phase in LIVE_PHASES:
            evidence = (f"{st.checks_passed} analysis check(s) passed so far" if st.checks_passed
                        else "no analysis check has passed: promoting without evidence")
            accepted, message = True, (f"promoted manually by {req.by or 'unknown'} at {ctx.where()}, "
                                       f"skipping the remaining steps ({evidence})")
        else:
            message = f"promote ignored: only a Progressing or Paused rollout can be promoted (phase {phase})"
    elif req.action == "pause":
        if phase == "Progressing":
            accepted, message = True, f"paused manually at {ctx.where()}"
        else:
            message = f"pause ignored: only a Progressing rollout can be paused (phase {phase})"
    elif req.action == "resume":
        if phase == "Paused":
            accepted, message = True, f"resumed manually at {ctx.where()}"
        else:
            message = f"resume ignored: the rollout is not paused (phase {phase})"
    elif req.action == "retry":
        if phase == "RolledBack":
            accepted, message = True, f"retry: attempt {st.attempt + 1} starts from the first step"
        else:
            message = f"retry ignored: only a RolledBack rollout can be retried (phase {phase})"
    st.manual_actions = [*st.manual_actions, ManualAction(
        action=req.action, request_id=req.request_id, at=ctx.now, accepted=accepted, phase=phase,
        message=message, by=req.by)][-MAX_MANUAL_ACTIONS:]
    ctx.emit("Normal" if accepted else "Warning", f"Manual{req.action.capitalize()}", message)
    if not accepted:
        return
    if req.action == "abort":
        _start_rollback(ctx, "Aborted", message)
    elif req.action == "promote":
        st.promoted_by = req.by or "unknown"
        _enter_promoting(ctx, message)
    elif req.action == "pause":
        st.paused_manually = True
        _set_phase(ctx, "Paused", "PausedManually", message)
    elif req.action == "resume":
        st.paused_manually = False
        _set_phase(ctx, "Progressing", "Resumed", message)
        step = ctx.spec.steps[st.current_step] if st.current_step < len(ctx.spec.steps) else None
        if step is not None and step.pause is not None and step.pause.until_resumed:
            _advance(ctx)
    elif req.action == "retry":
        ctx.st = CanaryRolloutStatus(manual_actions=st.manual_actions, last_request_id=st.last_request_id,
                                     attempt=st.attempt + 1, observed_generation=st.observed_generation,
                                     conditions=st.conditions)
        ctx.st.started_at = ctx.now
        _set_phase(ctx, "Pending", "Retry", message)


# --------------------------------------------------------------------------- entry point

def _spec_changed(ctx: _Ctx, spec: CanaryRolloutSpec) -> None:
    """The object's spec was edited in a judged field while this attempt runs: take the canary
    out (and undo a promotion under way), then start over with the new spec (:func:`_restart`).
    The running attempt goes on with the spec it was judged with until then."""
    st = ctx.st
    if st.attempt_spec is None:
        return
    fields = _differences(json.loads(st.attempt_spec), _judged(spec)) or ["spec"]
    what = (f"spec edited in phase {st.phase} at {ctx.where()} ({', '.join(fields)}): the canary is taken out "
            "and the rollout starts over with the new spec; nothing of the edit is applied before it is analysed")
    st.restart_pending = f"spec edited in phase {st.phase} at {ctx.where()}: {', '.join(fields)}"
    ctx.emit("Warning", "SpecChanged", what)
    _start_rollback(ctx, "SpecChanged", what)


def decide(spec: CanaryRolloutSpec, status: CanaryRolloutStatus, obs: Observations,
           now: dt.datetime) -> tuple[CanaryRolloutStatus, list[Action]]:
    """One reconciliation step. Pure: same inputs, same outputs.

    ``spec`` is the object's spec as it is now; the attempt runs with the spec recorded when it
    started (:func:`running_spec`), and an edit of a judged field starts the rollout over.
    """
    ctx = _Ctx(running_spec(spec, status), status.model_copy(deep=True), obs, now)
    st = ctx.st
    if obs.generation is not None:
        st.observed_generation = obs.generation
    if st.started_at is None:
        st.started_at = st.phase_since = st.progress_at = now
        _condition(ctx, "Progressing", "True", "Pending", "rollout received")
    if st.attempt_spec is None and st.phase in RESTARTABLE_PHASES:
        # an attempt started before its spec was recorded: it runs with the spec it has now
        st.attempt_spec, st.spec_hash = attempt_json(spec), spec_hash(spec)
    req = obs.request
    if req is not None and req.request_id != st.last_request_id:
        st.last_request_id = req.request_id
        before = (st.phase, st.current_step)
        _request(ctx, req)
        if (ctx.st.phase, ctx.st.current_step) != before:
            ctx.hold = True
        if req.action != "retry" and ctx.st.phase not in LIVE_PHASES:
            return ctx.st, ctx.actions  # the request already ran the new phase's first step
        ctx.spec = running_spec(spec, ctx.st)  # a retry starts a new attempt with the spec as it is now
    st = ctx.st
    if (st.phase in RESTARTABLE_PHASES or st.phase in ("RollingBack", "Failed")) and obs.target.exists \
            and obs.target.has_change and not st.stable_had_change and not st.change_applied_to_stable:
        # the change reached the stable in a tick whose status was not recorded: a rollback restores it
        st.change_applied_to_stable = True
    if spec_edited(spec, st):
        _spec_changed(ctx, spec)
        return ctx.st, ctx.actions
    phase = st.phase
    if phase in ("Pending", "Blocked"):
        _preconditions(ctx)
    elif phase == "Initializing":
        _initializing(ctx)
    elif phase in LIVE_PHASES:
        _running(ctx)
    elif phase == "Promoting":
        _promoting(ctx)
    elif phase in ("RollingBack", "Failed"):
        _rolling_back(ctx)
    if ctx.st.phase in LIVE_PHASES:
        # the baseline's track label on the stable's pods, from the tick that sets the first weight
        # on; last, so that it never delays a traffic change
        ctx.actions.append(LabelStablePods())
    return ctx.st, ctx.actions


# --------------------------------------------------------------------------- dry run

def plan(spec: CanaryRolloutSpec, now: dt.datetime, max_ticks: int = 20000) -> list[tuple[str, Action]]:
    """Every mutating action of a rollout in which every check passes, with where it happens."""
    live = spec.model_copy(update={"dry_run": False})
    world = World()
    st = CanaryRolloutStatus()
    tick = max(1.0, min(parse_duration(spec.analysis.interval), 60.0))
    out: list[tuple[str, Action]] = []
    resumes = 0
    for _ in range(max_ticks):
        metrics = passing_metrics(live) if analysis_due(live, st, now) else None
        request = None
        if st.phase == "Paused":
            resumes += 1
            request = ManualRequest("resume", f"dry-run-resume-{resumes}")
        st, actions = decide(live, st, world.observe(metrics=metrics, request=request), now)
        where = f"{st.phase} step {st.current_step}"
        for a in actions:
            world.apply(a)
            if getattr(a, "repeated", False) and any(x == a for _, x in out):
                continue
            if a.mutating and (not out or out[-1][1] != a):
                out.append((where, a))
        if st.phase in TERMINAL_PHASES:
            break
        now += dt.timedelta(seconds=tick)
    return out

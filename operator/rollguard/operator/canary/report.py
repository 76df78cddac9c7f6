"""The rollout report as `rollguard canary run --report` writes it (snake_case JSON), and progress lines."""

from __future__ import annotations

from typing import Any

from rollguard.models.canary import CanaryRolloutStatus, MetricStatus, Report


def report_document(report: Report, *, name: str, namespace: str, phase: str) -> dict[str, Any]:
    """``success``, ``rollback_triggered``, ``rollback_reason``, ``smoke_returncode``, ``metrics_delta``
    as canary runners' reports have them, plus how it was promoted, per-step detail and timings."""
    return {
        "success": report.success,
        "rollback_triggered": report.rollback_triggered,
        "rollback_reason": report.rollback_reason,
        "smoke_returncode": report.smoke_returncode,
        "metrics_delta": {k: v.model_dump(mode="json") for k, v in report.metrics_delta.items()},
        "steps": [s.model_dump(mode="json") for s in report.steps],
        "started_at": report.started_at.isoformat() if report.started_at else None,
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
        "duration_seconds": report.duration_seconds,
        "dry_run": report.dry_run,
        "promotion": report.promotion,
        "promoted_by": report.promoted_by,
        "checks_passed": report.checks_passed,
        "applied_changes": list(report.applied_changes),
        "rollout": name,
        "namespace": namespace,
        "phase": phase,
    }


def metric_line(m: MetricStatus) -> str:
    return m.message or f"{m.name}: not checked yet"


def progress_line(st: CanaryRolloutStatus) -> str:
    return f"[{st.phase}] step {st.current_step} weight {st.canary_weight}% - {st.message or ''}".rstrip(" -")

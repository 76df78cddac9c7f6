"""The operator's metrics: the names in rollguard.metrics_catalog, and the helpers handlers use."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from rollguard.metrics_catalog import METRICS
from rollguard.operator import observability as obs


def _value(name: str, labels: dict[str, str]) -> float:
    v = REGISTRY.get_sample_value(name, labels)
    return 0.0 if v is None else v


def test_every_operator_metric_of_the_catalog_is_registered_with_its_type_and_labels() -> None:
    families = {f.name: f for f in REGISTRY.collect()}
    wanted = [m for m in METRICS if m.exported_by == "operator"]
    assert {m.name for m in wanted} >= {"rollguard_reconcile_duration_seconds", "rollguard_canary_rollouts",
                                        "rollguard_canary_rollbacks_total", "rollguard_canary_analysis_runs_total"}
    for m in wanted:
        family = families[m.name.removesuffix("_total") if m.type == "counter" else m.name]
        assert family.type == m.type, m.name
        assert family.documentation == m.help
    obs.CANARY_ROLLBACKS.labels(reason="golden_mismatch").inc()
    assert _value("rollguard_canary_rollbacks_total", {"reason": "golden_mismatch"}) >= 1
    obs.CANARY_ANALYSIS_RUNS.labels(result="pass").inc()
    assert _value("rollguard_canary_analysis_runs_total", {"result": "pass"}) >= 1


def _count(kind: str) -> float:
    return _value("rollguard_reconcile_duration_seconds_count", {"kind": kind})


def test_timed_observes_sync_and_async_handlers_also_when_they_raise() -> None:
    @obs.timed("UnitSync")
    def handler(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return x * 2

    @obs.timed("UnitAsync")
    async def ahandler(x: int) -> int:
        await asyncio.sleep(0.01)
        return x + 1

    assert handler(2) == 4 and _count("UnitSync") == 1
    with pytest.raises(ValueError, match="negative"):
        handler(-1)
    assert _count("UnitSync") == 2
    assert asyncio.iscoroutinefunction(ahandler)  # kopf runs it on its loop, not in a thread
    assert asyncio.run(ahandler(1)) == 2 and _count("UnitAsync") == 1
    assert _value("rollguard_reconcile_duration_seconds_sum", {"kind": "UnitAsync"}) >= 0.01
    # kopf names a handler after the wrapped function: stored progress keeps matching it.
    assert handler.__name__ == "handler" and handler.__wrapped__.__name__ == "handler"  # type: ignore[attr-defined]


def test_canary_phase_gauge_counts_rollouts_and_survives_repeats() -> None:
    def phases() -> dict[str, float]:
        return {p: _value("rollguard_canary_rollouts", {"phase": p}) for p in obs.CANARY_PHASES}
    base = phases()
    assert set(base) == set(obs.CANARY_PHASES)  # every phase's series exists from the start
    obs.canary_phase("u1", "Progressing")
    obs.canary_phase("u1", "Progressing")  # a handler that runs twice counts once
    obs.canary_phase("u2", "Progressing")
    obs.canary_phase("u3", "Paused")
    now = phases()
    assert now["Progressing"] - base["Progressing"] == 2 and now["Paused"] - base["Paused"] == 1
    obs.canary_phase("u1", "RolledBack")
    obs.forget_canary("u2")
    obs.forget_canary("u2")
    obs.forget_canary("never-seen")
    now = phases()
    assert now["Progressing"] == base["Progressing"] and now["RolledBack"] - base["RolledBack"] == 1
    assert min(now.values()) >= 0

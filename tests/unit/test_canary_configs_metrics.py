"""The shipped rollouts only query metrics that exist: rollguard's own from rollguard/metrics_catalog.py,
the others the app's (the demo backend exports them). A query on a series nobody exports is
"no data" at every check, so the rollout could never pass and would roll back at its deadline."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rollguard.metrics_catalog import metric_names_in, series_names

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "canary-configs").glob("*.yaml"))
ROLLGUARD_PREFIXES = ("failure_", "recovery_", "rollguard_")
# what the example rollouts expect the app to export (the demo backend does, rollguard/demo/backend.py)
APP_METRICS = {"http_requests_total", "http_request_duration_seconds_bucket", "nova_golden_mismatch_total"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_queried_series_is_exported(path: Path) -> None:
    exported = series_names()
    spec = yaml.safe_load(path.read_text())["spec"]
    for metric in spec["analysis"]["metrics"]:
        for key in ("query", "sampleQuery"):
            for series in metric_names_in(metric.get(key, "")):
                if series.startswith(ROLLGUARD_PREFIXES):
                    assert series in exported, f"{path.name}: {metric['name']}.{key} queries {series}, " \
                                               "which rollguard does not export (rollguard/metrics_catalog.py)"
                else:
                    assert series in APP_METRICS, f"{path.name}: {metric['name']}.{key}: unknown series {series}"

"""The Grafana dashboard: loads, shows the failure-catalog and canary panels, and only queries exported
metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollguard.metrics_catalog import EXPORTED_METRIC_NAMES, METRICS, metric_names_in, series_names
from tests.support.helm import CHART

DASHBOARD = CHART / "files" / "dashboards" / "rollguard.json"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in panels:
        yield p
        yield from _panels(p.get("panels", []))  # collapsed rows nest their panels


# One worker runs this module under pytest-xdist: its module fixture is built once.
pytestmark = pytest.mark.xdist_group("chart-dashboard")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in _panels(dashboard["panels"]) if p["type"] != "row"
            for t in p["targets"]]


def test_dashboard_loads_with_a_stable_uid_and_datasource_variable(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "rollguard-overview"
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in _panels(dashboard["panels"]):
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["targets"], p["title"]


def test_failure_catalog_panels_and_canary_panels_are_present(dashboard: dict[str, Any]) -> None:
    titles = {p["title"] for p in _panels(dashboard["panels"])}
    failures = {"Catalog Hit Rate", "Catalog Hits 24h", "Catalog Misses 24h", "Recovery Success Rate",
               "Failure Frequency by Error Code", "Failure Frequency by Category", "Top 10 Unknown Error Classes",
               "Catalog Miss Rate - Drift Signal", "Recovery Success by Mode", "Recovery Failures by Mode"}
    canary = {"Canary Rollouts by Phase", "Canary Rollbacks by Reason", "Analysis Runs by Result"}
    assert failures | canary <= titles, (failures | canary) - titles


def test_every_panel_expression_names_an_exported_metric(dashboard: dict[str, Any]) -> None:
    known = series_names()
    for title, expr in _queries(dashboard):
        names = metric_names_in(expr)
        assert names, f"{title}: {expr!r} selects no metric"
        assert names <= known, f"{title}: {sorted(names - known)} are not exported (rollguard/metrics_catalog.py)"


def test_every_exported_metric_is_on_the_dashboard(dashboard: dict[str, Any]) -> None:
    used: set[str] = set()
    for _, expr in _queries(dashboard):
        used |= metric_names_in(expr)
    for m in METRICS:
        variants = {m.name + s for s in ("_bucket", "_sum", "_count")} if m.type == "histogram" else {m.name}
        assert used & variants, f"{m.name} is exported but no panel shows it"


def test_panel_label_grouping_uses_labels_the_metric_has(dashboard: dict[str, Any]) -> None:
    labels = {m.name: set(m.labels) for m in METRICS}
    for title, expr in _queries(dashboard):
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            wanted = {g.strip() for g in group.split(",")} - {"le"}
            have = set().union(*(labels[n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")]
                                 for n in metric_names_in(expr)))
            assert wanted <= have, f"{title}: groups by {wanted - have}, which its metrics do not carry"


def test_every_panel_expression_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    # Prometheus's own parser (promtool) checks the syntax: Grafana's range variables become
    # durations, and each query a recording rule.
    rules = []
    for i, (_, expr) in enumerate(_queries(dashboard)):
        concrete = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "6h")
        assert "$" not in concrete, expr
        rules.append({"record": f"rollguard:dashboard_query_{i}", "expr": concrete})
    f = tmp_path / "dashboard-queries.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool = shutil.which("promtool")
    assert promtool
    proc = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (error_code) (rate(failure_match_hits_total{category="TRANSIENT"}[5m]))', {"failure_match_hits_total"}),
    ("histogram_quantile(0.95, sum by (le, kind) "
     "(rate(rollguard_reconcile_duration_seconds_bucket[$__rate_interval])))",
     {"rollguard_reconcile_duration_seconds_bucket"}),
    ("a_total / on (job) group_left (instance) b offset 5m > 1e3 and bool c",
     {"a_total", "b", "c"}),
    ('absent(up{job="rollguard-operator"} == 1)', {"up"}),
    ("topk(10, x) or vector(0)", {"x"}),
])
def test_metric_name_extraction(expr: str, names: set[str]) -> None:
    assert metric_names_in(expr) == names


def test_catalog_is_a_flat_tuple_of_unique_names() -> None:
    assert isinstance(EXPORTED_METRIC_NAMES, tuple)
    assert len(set(EXPORTED_METRIC_NAMES)) == len(EXPORTED_METRIC_NAMES)
    for m in METRICS:
        assert (m.type == "counter") == m.name.endswith("_total"), m.name

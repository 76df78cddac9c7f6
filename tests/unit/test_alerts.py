"""Alert rules: `promtool check rules` and `promtool test rules` (real promtool), plus names."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rollguard.metrics_catalog import metric_names_in, series_names
from tests.support.helm import CHART, REPO

RULES = CHART / "files" / "prometheus-rules.yaml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "rules-test.yaml"
# Series that come from Prometheus itself or kube-state-metrics, not from rollguard.
EXTERNAL = {"up", "kube_cronjob_status_last_successful_time"}


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: hack/ensure-deps.sh installs Debian's prometheus package"
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=300)


def _alerts() -> list[dict[str, object]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_check_rules() -> None:
    proc = _promtool("check", "rules", RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in proc.stdout


def test_promtool_unit_tests_pass() -> None:
    proc = _promtool("test", "rules", RULE_TESTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    # The same tests against rules with a different threshold must fail: they pin the numbers.
    rules = RULES.read_text().replace("> 0.30", "> 0.40")
    assert rules != RULES.read_text()
    (tmp_path / "rules.yaml").write_text(rules)
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = ["rules.yaml"]
    # Only the tests of the changed alert: the others would pass and only cost time.
    tests["tests"] = [t for t in tests["tests"] if any(c["alertname"] == "FailureCatalogHighMissRate"
                                                       for c in t.get("alert_rule_test", []))]
    assert tests["tests"]
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(tests))
    proc = _promtool("test", "rules", tmp_path / "test.yaml")
    assert proc.returncode != 0
    assert "FailureCatalogHighMissRate" in proc.stdout + proc.stderr


def test_every_alert_has_a_firing_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in tests for c in t["alert_rule_test"] if not c["exp_alerts"]}
    names = {str(a["alert"]) for a in _alerts()}
    assert names <= fired, names - fired
    assert names <= quiet, names - quiet


def test_the_shipped_alerts_exist_with_their_severities() -> None:
    severity = {str(a["alert"]): a["labels"]["severity"] for a in _alerts()}  # type: ignore[index]
    assert severity == {
        "FailureCatalogHighMissRate": "warning",
        "FailureCatalogCriticalMissRate": "critical",
        "FailureRecoveryLowSuccessRate": "warning",
        "FailureCodeSpike": "warning",
        "FailurePersistDropped": "critical",
        "FailurePersistenceDown": "critical",
        "FailureAggregationStale": "warning",
        "FailureAggregationUploadFailed": "warning",
        "RollguardOperatorDown": "critical",
        "CanaryRolledBack": "warning",
        "CanaryRolloutFailed": "critical",
    }
    for a in _alerts():
        assert a["annotations"]["summary"] and a["annotations"]["description"], a["alert"]  # type: ignore[index]


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: str(a["alert"]))
def test_alert_expressions_only_use_known_series(alert: dict[str, object]) -> None:
    names = metric_names_in(str(alert["expr"]))
    assert names, alert["alert"]
    assert names <= series_names() | EXTERNAL, names - series_names() - EXTERNAL

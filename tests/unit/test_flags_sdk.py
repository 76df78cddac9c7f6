"""rollguard.sdk.flags reading files rendered by the operator's own renderer (no cluster)."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

import pytest

import rollguard.sdk.flags as sdk
from rollguard.flags import evaluate, render_flags, signoff_verdict
from rollguard.flags.render import FLAGS_FILE, Evaluated, dumps
from rollguard.models.flag import FeatureFlag
from rollguard.sdk.flags import FlagReader

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def flag(name: str, **spec: Any) -> FeatureFlag:
    raw: dict[str, Any] = {"owner": "platform", "defaultValue": False}
    raw.update(spec)
    return FeatureFlag.model_validate({"metadata": {"name": name}, "spec": raw})


GATED = flag("failure-catalog", key="failure_catalog_runtime_integration", requiresSignoff=True,
             envVar="AOS_FEATURE_FAILURE_CATALOG", environments={"staging": True})
PLAIN = flag("cost-simulator", key="cost_simulator_runtime_integration", environments={"staging": True})


def write_configmap_volume(directory: Path, content: str, version: int) -> None:
    """Write the file the way kubelet updates a ConfigMap volume: new dir, then an atomic symlink swap."""
    data = directory / f"..{version}"
    data.mkdir(parents=True)
    (data / FLAGS_FILE).write_text(content)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(data.name)
    os.replace(tmp, directory / "..data")
    link = directory / FLAGS_FILE
    if not link.is_symlink():
        link.symlink_to(Path("..data") / FLAGS_FILE)


def rendered(flags: list[FeatureFlag], env: str = "staging") -> str:
    """flags.json for ``env`` exactly as the operator renders it."""
    evaluated = []
    for f in flags:
        verdict = signoff_verdict(f.spec, NOW)
        evaluated.append(Evaluated(f, evaluate(f.spec, env, NOW, verdict), verdict))
    return dumps(render_flags(env, "shop", evaluated))


@pytest.fixture
def flags_dir(tmp_path: Path) -> Path:
    d = tmp_path / "flags"
    write_configmap_volume(d, rendered([GATED, PLAIN]), 1)
    return d


def test_reads_values_and_environment(flags_dir: Path) -> None:
    r = FlagReader(flags_dir, environ={})
    assert r.is_enabled("cost_simulator_runtime_integration") is True
    assert r.is_enabled("failure_catalog_runtime_integration") is False  # gated, no sign-off
    assert r.environment() == "staging"
    assert FlagReader(flags_dir, environ={"ROLLGUARD_ENVIRONMENT": "qa"}).environment() == "qa"


def test_reloads_when_the_configmap_changes_without_restart(flags_dir: Path) -> None:
    r = FlagReader(flags_dir, environ={}, check_interval=0)
    assert r.is_enabled("cost_simulator_runtime_integration") is True
    write_configmap_volume(flags_dir, rendered([flag("cost-simulator", key="cost_simulator_runtime_integration")]), 2)
    assert r.is_enabled("cost_simulator_runtime_integration") is False


class FakeClock:
    """A monotonic clock the test moves by hand: no dependence on uptime or speed."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


# A machine booted 5 s ago, one up for a year, and a clock whose origin is not the boot:
# the first read loads the file whatever the clock reads.
@pytest.mark.parametrize("start", [5.0, 365 * 86400.0, -1000.0])
def test_check_interval_limits_how_often_the_file_is_looked_at(flags_dir: Path, start: float) -> None:
    clock = FakeClock(start)
    r = FlagReader(flags_dir, environ={}, check_interval=3600, clock=clock)
    assert r.is_enabled("cost_simulator_runtime_integration") is True  # first read: loaded
    write_configmap_volume(flags_dir, rendered([]), 2)
    clock.now += 3599
    assert r.is_enabled("cost_simulator_runtime_integration") is True  # within the interval: not looked at
    clock.now += 1
    assert r.is_enabled("cost_simulator_runtime_integration") is False  # interval over: the change is seen
    write_configmap_volume(flags_dir, rendered([GATED, PLAIN]), 3)
    assert r.reload() is True  # an explicit reload does not wait for the interval
    assert r.is_enabled("cost_simulator_runtime_integration") is True


@pytest.mark.parametrize(("var", "raw", "expected"), [
    ("AOS_FEATURE_COST_SIMULATOR_RUNTIME_INTEGRATION", "false", False),
    ("AOS_FEATURE_COST_SIMULATOR_RUNTIME_INTEGRATION", "0", False),
    ("AOS_FEATURE_COST_SIMULATOR_RUNTIME_INTEGRATION", "maybe", True),  # ignored: file value
])
def test_env_override_first(flags_dir: Path, var: str, raw: str, expected: bool) -> None:
    assert FlagReader(flags_dir, environ={var: raw}).is_enabled("cost_simulator_runtime_integration") is expected


def test_declared_env_var_of_a_gated_flag_can_turn_it_off_but_not_on(flags_dir: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    key = "failure_catalog_runtime_integration"
    on = FlagReader(flags_dir, environ={"AOS_FEATURE_FAILURE_CATALOG": "true"})
    with caplog.at_level(logging.WARNING, "rollguard.flags"):
        assert on.is_enabled(key) is False
        assert on.is_enabled(key) is False
    assert sum("requires a sign-off" in m for m in caplog.messages) == 1
    signed = flag("failure-catalog", **{**GATED.spec.model_dump(by_alias=True, exclude_none=True),
                                        "signoff": {"by": "sre", "at": "2026-11-23T00:00:00Z",
                                                    "evidence": {"kind": "Manual"}}})
    write_configmap_volume(flags_dir, rendered([signed], env="production"), 2)
    r = FlagReader(flags_dir, environ={"AOS_FEATURE_FAILURE_CATALOG": "true"})
    assert r.is_enabled(key) is True  # signed off: the pod's override may turn it on in production
    off = FlagReader(flags_dir, environ={"AOS_FEATURE_FAILURE_CATALOG": "off"})
    assert off.is_enabled(key) is False


def test_unknown_flag_is_false_and_logged_once(flags_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    r = FlagReader(flags_dir, environ={})
    with caplog.at_level(logging.WARNING, "rollguard.flags"):
        assert r.is_enabled("nope") is False
        assert r.is_enabled("nope") is False
    assert sum("unknown flag 'nope'" in m for m in caplog.messages) == 1


def test_corrupt_file_keeps_last_good_values_and_says_so(flags_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    r = FlagReader(flags_dir, environ={}, check_interval=0)
    assert r.is_enabled("cost_simulator_runtime_integration") is True
    write_configmap_volume(flags_dir, '{"flags": {"cost_simulator_runtime_integration": ', 2)
    with caplog.at_level(logging.ERROR, "rollguard.flags"):
        assert r.is_enabled("cost_simulator_runtime_integration") is True
        assert r.is_enabled("cost_simulator_runtime_integration") is True
    assert sum("is corrupt" in m and "keeping the last good values (2 flags)" in m for m in caplog.messages) == 1
    assert r.last_error and "corrupt" in r.last_error
    write_configmap_volume(flags_dir, rendered([]), 3)  # fixed: picked up again
    assert r.is_enabled("cost_simulator_runtime_integration") is False and r.last_error is None


def test_no_file_means_false_but_overrides_work(tmp_path: Path) -> None:
    r = FlagReader(tmp_path / "missing", environ={"AOS_FEATURE_NEW_CHECKOUT": "yes"})
    assert r.is_enabled("new_checkout") is True
    assert r.is_enabled("other") is False
    assert r.environment() == "development"


def test_module_functions_use_rollguard_flags_dir(flags_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk, "_default", None)
    monkeypatch.setenv("ROLLGUARD_FLAGS_DIR", str(flags_dir))
    assert sdk.reload_flags() is True
    assert sdk.is_flag_enabled("cost_simulator_runtime_integration") is True
    assert sdk.get_environment() == "staging"

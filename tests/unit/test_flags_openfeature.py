"""The real OpenFeature SDK + flagd provider (file mode) reads our flagd.json with the same values as our SDK."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType

from rollguard.flags import plan_namespace
from rollguard.flags.render import FLAGD_FILE, FLAGS_FILE
from rollguard.models.flag import FeatureFlag
from rollguard.sdk.flags import FlagReader
from tests.support.kube import eventually

NOW = dt.datetime.now(dt.UTC)


def flag(name: str, **spec: Any) -> FeatureFlag:
    raw: dict[str, Any] = {"owner": "platform", "defaultValue": False}
    raw.update(spec)
    return FeatureFlag.model_validate({"metadata": {"name": name}, "spec": raw})


SIGNOFF = {"by": "sre", "at": (NOW - dt.timedelta(hours=1)).isoformat(), "evidence": {"kind": "ShadowRun",
                                                                                       "mismatches": 0}}
FLAGS = [
    flag("failure-catalog", key="failure_catalog_runtime_integration", requiresSignoff=True,
         environments={"staging": True, "production": True}, signoff=SIGNOFF),
    flag("cost-simulator", key="cost_simulator_runtime_integration", requiresSignoff=True,
         environments={"staging": True}),  # gated, no sign-off: blocked
    flag("new-checkout", defaultValue=True, environments={"production": False}),
    flag("dark-mode", environments={"dev": True}),
]


def write_env(directory: Path, env: str) -> dict[str, bool]:
    directory.mkdir(parents=True, exist_ok=True)
    files = plan_namespace(FLAGS, [], "shop", NOW).files[env]
    for name, content in files.items():
        (directory / name).write_text(content)
    return {f.key: FlagReader(directory, environ={}).is_enabled(f.key) for f in FLAGS}


@pytest.fixture
def client_for() -> Iterator[Any]:
    providers: list[FlagdProvider] = []

    def make(path: Path, deadline_ms: int = 500) -> Any:
        provider = FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path),
                                 deadline_ms=deadline_ms)
        domain = f"rollguard-{uuid.uuid4().hex[:8]}"
        api.set_provider_and_wait(provider, domain=domain)
        providers.append(provider)
        return api.get_client(domain=domain)

    yield make
    for p in providers:
        p.shutdown()


@pytest.mark.parametrize("env", ["staging", "production", "dev"])
def test_flagd_file_provider_agrees_with_rollguard_sdk(tmp_path: Path, env: str, client_for: Any) -> None:
    ours = write_env(tmp_path, env)
    client = client_for(tmp_path / FLAGD_FILE)
    for key, value in ours.items():
        # the code default is the opposite of our value: agreement cannot come from falling back to it
        details = client.get_boolean_details(key, not value)
        assert details.value is value, f"{env}/{key}: flagd {details.value} != sdk {value} ({details})"
        assert details.error_code is None and details.variant == ("on" if value else "off")
    assert (tmp_path / FLAGS_FILE).exists()


def test_expected_values_per_environment(tmp_path: Path) -> None:
    # what the agreement above is about, spelled out once
    assert write_env(tmp_path / "s", "staging") == {
        "failure_catalog_runtime_integration": True, "cost_simulator_runtime_integration": False,
        "new-checkout": True, "dark-mode": False}
    assert write_env(tmp_path / "p", "production")["new-checkout"] is False


def test_flagd_provider_picks_up_a_rewritten_file(tmp_path: Path, client_for: Any) -> None:
    write_env(tmp_path, "staging")
    client = client_for(tmp_path / FLAGD_FILE, deadline_ms=100)
    assert client.get_boolean_value("new-checkout", False) is True
    time.sleep(0.05)
    write_env(tmp_path / "next", "production")
    os.replace(tmp_path / "next" / FLAGD_FILE, tmp_path / FLAGD_FILE)
    eventually(lambda: client.get_boolean_value("new-checkout", True) is False, timeout=10,
               what="flagd provider to reload flagd.json")

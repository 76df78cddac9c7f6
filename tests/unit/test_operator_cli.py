"""`rollguard operator run`: the kopf command line it builds, peering priorities above all."""

from __future__ import annotations

import os
import time

import pytest
from click.testing import CliRunner

from rollguard.cli import operator_cmd
from rollguard.cli.main import cli


def _priority(args: list[str]) -> int:
    return int(args[args.index("--priority") + 1])


def _args(**kw: object) -> list[str]:
    base: dict[str, object] = {"namespaces": (), "standalone": False, "peering_name": "rollguard",
                               "priority": None, "liveness": "", "verbose": False}
    return operator_cmd.kopf_args(**{**base, **kw})  # type: ignore[arg-type]


def test_replicas_get_distinct_priorities_and_the_older_one_leads() -> None:
    started = []
    for _ in range(50):  # replicas starting one after the other, microseconds apart at least
        started.append(_priority(_args()))
        time.sleep(0.00002)
    assert len(set(started)) == 50  # kopf pauses all replicas that share a priority
    # The older leads: a restarted pod stands by; the working leader stays.
    assert started == sorted(started, reverse=True)
    newer = started
    # `kopf freeze` (100) and `--dev` (666) still pause an in-cluster replica.
    assert all(p < 0 for p in newer)


def test_explicit_priority_and_standalone() -> None:
    args = _args(priority=42, namespaces=("a", "b"))
    assert args[args.index("--peering") + 1] == "rollguard" and _priority(args) == 42
    assert args[4:8] == ["-n", "a", "-n", "b"]
    args = _args(standalone=True)
    assert "--standalone" in args and "--priority" not in args and "--peering" not in args


Exec = tuple[int, list[str], dict[str, str], str]


def _run(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Exec:
    seen: list[str] = []
    seen_env: dict[str, str] = {}

    def fake_exec(_file: str, argv_: list[str], env_: dict[str, str]) -> None:
        seen.extend(argv_)
        seen_env.update(env_)
    monkeypatch.setattr(os, "execvpe", fake_exec)
    # No cluster here: the peering object check (tests/unit/test_operator_peering_setup.py) is skipped.
    monkeypatch.setattr(operator_cmd, "_custom_objects_api", lambda: None)
    monkeypatch.setattr(operator_cmd, "ensure_peering", lambda *_a, **_k: True)
    for k in ("ROLLGUARD_PEERING_PRIORITY", "ROLLGUARD_METRICS_PORT", "ROLLGUARD_PEERING_LIFETIME",
              "ROLLGUARD_LIVENESS"):
        monkeypatch.delenv(k, raising=False)
    result = CliRunner().invoke(cli, ["operator", "run", *argv], env=env)
    return result.exit_code, seen, seen_env, result.output


def test_priority_and_metrics_port_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    code, argv, env, out = _run([], {"ROLLGUARD_PEERING_PRIORITY": "7", "ROLLGUARD_METRICS_PORT": "9100"},
                                monkeypatch)
    assert code == 0, out
    assert _priority(argv) == 7
    assert env["ROLLGUARD_METRICS_PORT"] == "9100" and env["ROLLGUARD_PEERING_LIFETIME"] == "60"
    code, argv, env, out = _run(["--priority", "9", "--metrics-port", "0", "--peering-lifetime", "15"],
                           {"ROLLGUARD_PEERING_PRIORITY": "7"}, monkeypatch)
    assert code == 0, out
    assert _priority(argv) == 9  # the option wins over the environment
    assert env["ROLLGUARD_METRICS_PORT"] == "0" and env["ROLLGUARD_PEERING_LIFETIME"] == "15"


def test_the_liveness_endpoint_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two operators on one host (a laptop, a test run) must not both take port 8080."""
    def liveness(argv: list[str]) -> str | None:
        return argv[argv.index("--liveness") + 1] if "--liveness" in argv else None
    code, argv, _, out = _run([], {}, monkeypatch)
    assert code == 0, out
    assert liveness(argv) == "http://0.0.0.0:8080/healthz"
    code, argv, _, out = _run([], {"ROLLGUARD_LIVENESS": "http://127.0.0.1:18080/healthz"}, monkeypatch)
    assert code == 0, out
    assert liveness(argv) == "http://127.0.0.1:18080/healthz"
    code, argv, _, out = _run(["--liveness", ""], {"ROLLGUARD_LIVENESS": "http://127.0.0.1:18080/healthz"},
                              monkeypatch)
    assert code == 0, out
    assert liveness(argv) is None  # '' disables it, and the option wins over the environment


@pytest.mark.parametrize(("argv", "env", "named"), [
    ([], {"ROLLGUARD_PEERING_PRIORITY": "high"}, "--priority"),
    (["--metrics-port", "70000"], {}, "--metrics-port"),
    ([], {"ROLLGUARD_METRICS_PORT": "-1"}, "--metrics-port"),
    (["--peering-lifetime", "1"], {}, "--peering-lifetime"),
])
def test_bad_values_name_the_option(argv: list[str], env: dict[str, str], named: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    code, execd, _, out = _run(argv, env, monkeypatch)
    assert code == 2 and named in out and not execd, out

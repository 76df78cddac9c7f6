"""`rollguard operator run`: the kopf operator, as the chart's Deployment runs it."""

from __future__ import annotations

import os
import sys
import time

import click

# kopf's `--dev` mode runs at priority 666 and `kopf freeze` at 100: a replica's default priority
# stays below both (it is negative), so a developer's operator or a freeze still pauses it.
DEV_PRIORITY = 666


def default_priority() -> int:
    """A peering priority that differs between replicas and favours the oldest one.

    kopf pauses *every* replica that sees a live peer with the same priority, so replicas must
    differ: this is minus the start time in microseconds (two pods do not start in the same
    microsecond). A replica started later (a restarted or rescheduled pod) has a lower priority
    and stands by instead of taking over from a leader that works. About -1.8e15: below 2**53,
    exact in any JSON reader.
    """
    return -(time.time_ns() // 1000)


@click.group("operator")
def operator() -> None:
    """Run the rollguard operator (kopf)."""


@operator.command("run")
@click.option("--namespace", "-n", "namespaces", multiple=True,
              help="Watch only these namespaces (repeatable). Default: all namespaces.")
@click.option("--standalone/--peering", default=False,
              help="Standalone: no peering (one replica only). Default: kopf peering, so two replicas never act twice.")
@click.option("--peering-name", default="rollguard", show_default=True, help="kopf peering object name.")
@click.option("--priority", type=int, envvar="ROLLGUARD_PEERING_PRIORITY", show_envvar=True, default=None,
              help="kopf peering priority: of the live replicas only the highest acts, the others stand by. "
                   "Default: negative, from this process's start time (the oldest replica leads; "
                   f"`--dev` operators ({DEV_PRIORITY}) and `kopf freeze` (100) win over it). "
                   "Replicas with equal priorities all pause: never give two replicas the same value.")
@click.option("--peering-lifetime", type=click.IntRange(5, 3600), envvar="ROLLGUARD_PEERING_LIFETIME",
              show_envvar=True, default=60, show_default=True,
              help="Seconds a replica's keep-alive counts as live: a standby takes over at most this "
                   "long after the leader dies without saying goodbye (killed, node lost).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), envvar="ROLLGUARD_METRICS_PORT", show_envvar=True,
              default=8081, show_default=True, help="Serve Prometheus metrics on this port (/metrics); 0 disables.")
@click.option("--liveness", default="http://0.0.0.0:8080/healthz", show_default=True,
              help="Liveness endpoint for Kubernetes probes ('' to disable).")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def run(namespaces: tuple[str, ...], standalone: bool, peering_name: str, priority: int | None,
        peering_lifetime: int, metrics_port: int, liveness: str, verbose: bool) -> None:
    """Start the operator against the cluster in KUBECONFIG (or in-cluster credentials)."""
    args = kopf_args(namespaces=namespaces, standalone=standalone, peering_name=peering_name, priority=priority,
                     liveness=liveness, verbose=verbose)
    # Settings kopf's CLI has no option for reach the operator module (its startup handlers) by env.
    env = {**os.environ, "ROLLGUARD_METRICS_PORT": str(metrics_port),
           "ROLLGUARD_PEERING_LIFETIME": str(peering_lifetime)}
    os.execvpe(sys.executable, [sys.executable, "-m", *args], env)  # noqa: S606 (replace this process with kopf)


def kopf_args(*, namespaces: tuple[str, ...], standalone: bool, peering_name: str, priority: int | None,
              liveness: str, verbose: bool) -> list[str]:
    """The `kopf run` command line (without the interpreter)."""
    args = ["kopf", "run", "-m", "rollguard.operator.main"]
    args += ["--all-namespaces"] if not namespaces else [a for ns in namespaces for a in ("-n", ns)]
    if standalone:
        args += ["--standalone"]
    else:
        args += ["--peering", peering_name, "--priority", str(default_priority() if priority is None else priority)]
    if liveness:
        args += ["--liveness", liveness]
    if verbose:
        args += ["--verbose"]
    return args

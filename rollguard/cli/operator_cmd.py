"""`rollguard operator run`: the kopf operator, as the chart's Deployment runs it."""

from __future__ import annotations

import os
import sys

import click


@click.group("operator")
def operator() -> None:
    """Run the rollguard operator (kopf)."""


@operator.command("run")
@click.option("--namespace", "-n", "namespaces", multiple=True,
              help="Watch only these namespaces (repeatable). Default: all namespaces.")
@click.option("--standalone/--peering", default=False,
              help="Standalone: no peering (one replica only). Default: kopf peering, so two replicas never act twice.")
@click.option("--peering-name", default="rollguard", show_default=True, help="kopf peering object name.")
@click.option("--liveness", default="http://0.0.0.0:8080/healthz", show_default=True,
              help="Liveness endpoint for Kubernetes probes ('' to disable).")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def run(namespaces: tuple[str, ...], standalone: bool, peering_name: str, liveness: str, verbose: bool) -> None:
    """Start the operator against the cluster in KUBECONFIG (or in-cluster credentials)."""
    args = ["kopf", "run", "-m", "rollguard.operator.main"]
    args += ["--all-namespaces"] if not namespaces else [a for ns in namespaces for a in ("-n", ns)]
    args += ["--standalone"] if standalone else ["--peering", peering_name]
    if liveness:
        args += ["--liveness", liveness]
    if verbose:
        args += ["--verbose"]
    os.execvp(sys.executable, [sys.executable, "-m", *args])  # noqa: S606 (replace this process with kopf)

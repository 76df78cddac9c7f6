"""`rollguard operator run`: the kopf operator, as the chart's Deployment runs it."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

log = logging.getLogger("rollguard.operator.run")

PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"
# How often a missing peering object is looked for again, and how often that is said again.
PEERING_POLL_SECONDS = 2.0
PEERING_WARN_EVERY_SECONDS = 30.0

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
              help="Standalone: no peering (one replica only). Default: kopf peering, so two replicas never act "
                   "twice; the peering object is created if missing (or, without the rights, the command "
                   "says at WARNING that it waits for it).")
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
@click.option("--liveness", envvar="ROLLGUARD_LIVENESS", show_envvar=True,
              default="http://0.0.0.0:8080/healthz", show_default=True,
              help="Liveness endpoint for Kubernetes probes ('' to disable).")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def run(namespaces: tuple[str, ...], standalone: bool, peering_name: str, priority: int | None,
        peering_lifetime: int, metrics_port: int, liveness: str, verbose: bool) -> None:
    """Start the operator against the cluster in KUBECONFIG (or in-cluster credentials).

    With peering (the default), kopf handles nothing until its peering object exists: the
    command creates it when it is missing (the Helm chart ships it) and, where it may not,
    says at WARNING what it waits for and how to fix it. --standalone needs none.
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[%(asctime)s] %(name)-24s [%(levelname)-8s] %(message)s")
    if not standalone:
        ensure_peering(_custom_objects_api(), namespaces, peering_name)
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


def _custom_objects_api() -> Any:
    from kubernetes import client, config
    try:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    except Exception:  # no usable kubeconfig: in a pod, its service account, as kopf does
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.CustomObjectsApi()


def peering_manifest(namespace: str | None, name: str) -> str:
    """The peering object to create by hand: ClusterKopfPeering for all namespaces, else KopfPeering."""
    kind = "ClusterKopfPeering" if namespace is None else "KopfPeering"
    ns = "" if namespace is None else f", namespace: {namespace}"
    return f"{{apiVersion: {PEERING_GROUP}/{PEERING_VERSION}, kind: {kind}, metadata: {{name: {name}{ns}}}}}"


def ensure_peering(api: Any, namespaces: tuple[str, ...], name: str, *,
                   sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                   give_up_after: float | None = None) -> bool:
    """Make sure kopf's peering object exists in each watched namespace (or cluster-wide).

    kopf with `--peering NAME` silently waits for that object and handles nothing until it
    exists. A missing one is created (a laptop user's credentials may); where it cannot be, this
    says at WARNING what the operator waits for and how to fix it, and waits, repeating the
    warning, until it appears. Returns False only if ``give_up_after`` seconds passed (tests).
    """
    from kubernetes.client.exceptions import ApiException

    start = clock()
    scopes: list[str | None] = list(namespaces) or [None]
    last_warned: dict[str | None, float] = {}
    while True:
        missing: list[str | None] = []
        for ns in scopes:
            where = "cluster-wide" if ns is None else f"namespace {ns}"
            kind = "ClusterKopfPeering" if ns is None else "KopfPeering"
            try:
                _get_peering(api, ns, name)
                continue
            except ApiException as e:
                if e.status != 404:
                    raise click.ClickException(f"cannot read {kind} {name!r} ({where}): {e.status} {e.reason}") from e
            try:
                _create_peering(api, ns, name)
                log.info("created %s %r (%s): the peering object through which operator replicas see each "
                         "other; --standalone runs without one", kind, name, where)
                continue
            except ApiException as e:
                why = f"{e.status} {e.reason}"
            missing.append(ns)
            t = clock()
            if ns not in last_warned or t - last_warned[ns] >= PEERING_WARN_EVERY_SECONDS:
                last_warned[ns] = t
                log.warning(
                    "the operator waits for %s %r (%s), which does not exist and could not be created (%s): "
                    "until it exists, kopf handles nothing. Fix: create it (kubectl apply -f - <<< '%s'; "
                    "the Helm chart ships it), or run a single operator with --standalone.",
                    kind, name, where, why, peering_manifest(ns, name))
        if not missing:
            return True
        if give_up_after is not None and clock() - start >= give_up_after:
            return False
        scopes = missing
        sleep(PEERING_POLL_SECONDS)


def _get_peering(api: Any, ns: str | None, name: str) -> Any:
    if ns is None:
        return api.get_cluster_custom_object(PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", name)
    return api.get_namespaced_custom_object(PEERING_GROUP, PEERING_VERSION, ns, "kopfpeerings", name)


def _create_peering(api: Any, ns: str | None, name: str) -> Any:
    body = {"apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
            "kind": "ClusterKopfPeering" if ns is None else "KopfPeering", "metadata": {"name": name}}
    if ns is None:
        return api.create_cluster_custom_object(PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", body)
    return api.create_namespaced_custom_object(PEERING_GROUP, PEERING_VERSION, ns, "kopfpeerings", body)

"""Every shipped ``canary-configs/*.yaml``, run as a new user runs it, on the local cluster.

The cluster is the realistic one: Deployments roll out into pods the pod runner runs (the demo
backend, :mod:`rollguard.demo.backend`, on their pod addresses); Prometheus finds the pods
through the API with the chart's backend PodMonitor (``metrics.backendPodMonitor``: the ``app``
and ``rollguard.io/track`` pod labels copied into the series), scraping every 5 s or every 15 s.
No test writes a label, a status or a metric: the tracks are labelled by the operator, the
series come from the backends, and every query is the shipped one.

Each config is applied as shipped except for these substitutions, all of documented fields
(:func:`substituted`), which a user makes too:

- ``analysis.interval``: 20 s, so that a rollout takes minutes, not the shipped half hour. At a
  5 s scrape that window covers four scrapes; at a 15 s scrape the operator widens the
  ``[{{interval}}]`` windows to four scrapes (60 s) itself, as it does for a user's config;
- ``steps[].pause.duration``: 1 s, and ``watch``: 0 s (a check at weight 100 still has to
  pass: ``setWeight: 100`` is a step);
- ``smoke.http.url``: the namespace in the canary Service's in-cluster address becomes the run's
  (each run has its own namespace, where the configs name ``staging``);
- ``change.catalog.hash``: the content hash of the catalog version the test rendered.

The in-cluster addresses stay as shipped: the operator reaches ``prometheus.monitoring.svc:9090``
(the world's Prometheus) and the canary Service's ``*.svc`` name through the local cluster's
service proxy (:mod:`rollguard.localenv.svcproxy`, its cluster DNS and kube-proxy), as an operator
in a cluster reaches them.

The traffic is the users', and all of it comes through the Ingress (nginx configs) or the
HTTPRoute (Gateway API configs): the test plays the ingress controller / gateway as the demo
does, reading the canary weight the operator writes, so at weight 100 the stable gets no
request at all. The stable never errs (no transient errors); the failing canary answers 25 %
of its runs with HTTP 500 (the backend's ``fail_rate``, set as each canary pod comes up).
No code exports a ``code="500"`` series before a 500 happened (``--declare-codes ""``), as
most instrumented services behave.

All configs and both scenarios of one scrape interval run at once (eight namespaces, one
operator, one Prometheus), so a world's wall time is its slowest rollout's; the 5 s world runs
first, then the 15 s one (one module fixture), and the tests read the outcome of each. The ingress controller / gateway,
and the users are :mod:`tests.support.traffic`, as for the reaction bench.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.podrunner import RUN_LABEL, PodRunner
from rollguard.localenv.prometheus import Prometheus
from rollguard.localenv.svcproxy import ServiceProxy
from rollguard.models.canary import parse_duration
from tests.integration.test_canary_gateway_api import httproute_crd
from tests.support.kube import REPO, Kubectl, OperatorProcess, eventually
from tests.support.traffic import Gateway, answers, control, endpoints
from tests.support.xdist import HEAVY_E2E

CONFIG_DIR = REPO / "canary-configs"
CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
SCENARIOS = ("healthy", "failing")
# Both scrape intervals' worlds run on one cluster (one module fixture); the first test pays for
# building them and running every rollout to its end, which takes longer than the suite's
# default timeout of 10 minutes on a busy machine.
pytestmark = [pytest.mark.integration, HEAVY_E2E, pytest.mark.timeout(1800)]
SCRAPES = ("5s", "15s")
# analysis.interval per scrape interval; the window the operator queries is at least four scrapes
ANALYSIS_INTERVAL = {"5s": "20s", "15s": "20s"}
PORT = 8000
# Setup waits (a controller mounting flags or a catalog, pods answering, the first scrape) are not
# what the tests measure: generous, because one operator starts for eight namespaces at once on
# a busy machine (its first reconcile came 60-90 s after its start on two loaded cores).
SETUP_TIMEOUT = 240
FAIL_RATE = 0.25
TRACK_LABEL = "rollguard.io/track"
LIVE = {"Progressing", "Paused"}
FINAL = {"Succeeded", "RolledBack", "Failed"}
RG = ("rollguard.io", "v1alpha1", "canaryrollouts")
__all__ = ["httproute_crd"]  # the Gateway API CRD fixture, used here by name


def test_the_configs_are_the_four_shipped_ones() -> None:
    assert CONFIGS == ["agent_flags_canary", "catalog_version_canary", "image_canary", "staging_soft_canary"]


# --------------------------------------------------------------------------- one rollout

@dataclass
class Run:
    config: str
    scenario: str
    ns: str
    shipped: dict[str, Any]
    substitutions: dict[str, Any] = field(default_factory=dict)
    gateway: Gateway | None = None
    status: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    stable_before: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # uid -> (pod, pid, restarts)
    stable_changes: list[str] = field(default_factory=list)  # what changed on the stable's pods while live
    labelled: bool = False  # every stable pod carried rollguard.io/track=stable while live
    stable_series: bool = False  # Prometheus scraped the stable's pods as rollguard_io_track="stable"
    failing_pods: set[str] = field(default_factory=set)
    error: str = ""

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.shipped["spec"]
        return spec

    @property
    def target(self) -> str:
        return str(self.spec["targetRef"]["name"])

    @property
    def name(self) -> str:
        return str(self.shipped["metadata"]["name"])

    @property
    def provider(self) -> str:
        return str(self.spec["traffic"]["provider"])

    @property
    def route(self) -> str:
        t = self.spec["traffic"]
        return str(t["ingress"]["name"] if self.provider == "nginx" else t["httpRoute"]["name"])

    def rps(self, window: float) -> float:
        """Enough users that every check at the first weight has 1.5 times the samples the
        config asks, in a query window of ``window`` seconds (at least 10 requests a second)."""
        first = next(s["setWeight"] for s in self.spec["steps"] if "setWeight" in s)
        need = max([m.get("minSampleCount") or 0 for m in self.spec["analysis"]["metrics"]] + [1])
        return float(min(90, max(10, math.ceil(1.5 * need / (first / 100 * window)))))

    def describe(self) -> str:
        st = self.status
        report = st.get("report") or {}
        return (f"{self.config}/{self.scenario} in {self.ns}: phase {st.get('phase')} ({st.get('reason')}) after "
                f"{self.seconds:.0f}s: {st.get('message')}; rollback reason {report.get('rollbackReason')}; "
                f"metrics {[(m.get('name'), m.get('verdict'), m.get('message')) for m in st.get('metrics') or []]}; "
                f"traffic {self.traffic()}; weights {self.gateway.weights if self.gateway else None}; "
                f"substituted {self.substitutions}" + (f"; error {self.error}" if self.error else ""))

    def traffic(self) -> dict[str, dict[str, int]]:
        return {t: dict(c) for t, c in self.gateway.sent.items()} if self.gateway else {}


def backend_deployment(run: Run) -> dict[str, Any]:
    """The target: the demo backend, two replicas, no transient errors (the stable never errs);
    the catalog config's target classifies its failures with the mounted catalog, as the
    catalog rollout expects (failure_match_* counters), and then sees a few transient ones
    (2 % of the steps), retried as the catalog says: a run fails only when all its attempts do."""
    catalog = "catalog" in run.spec["change"]
    labels = {"app": run.target}
    container = {
        "name": run.target, "image": f"example.org/{run.target}:1.0",
        "command": ["python", "-m", "rollguard.demo.backend"],
        "args": ["--host", "$(POD_IP)", "--port", str(PORT), "--track", "$(TRACK)", "--spool",
                 "/var/lib/backend/spool.db", "--failures-url", "http://127.0.0.1:9",
                 "--transient-rate", "0.02" if catalog else "0", "--declare-codes", ""],
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "TRACK", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{TRACK_LABEL}']"}}},
                *([{"name": "AOS_FEATURE_FAILURE_CATALOG_RUNTIME_INTEGRATION", "value": "true"}] if catalog else [])],
        "volumeMounts": [{"name": "spool", "mountPath": "/var/lib/backend"}],
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": run.target, "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": {**labels, RUN_LABEL: "true"}},
                                  "spec": {"containers": [container],
                                           "volumes": [{"name": "spool", "emptyDir": {}}]}}}}


def route_objects(run: Run) -> list[dict[str, Any]]:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": run.target},
               "spec": {"selector": {"app": run.target},
                        "ports": [{"name": "http", "port": PORT, "targetPort": "http"}]}}
    if run.provider == "nginx":
        route: dict[str, Any] = {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": run.route},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": f"{run.target}.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": run.target, "port": {"number": PORT}}}}]}}]}}
    else:
        route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": run.route},
                 "spec": {"parentRefs": [{"name": "gw"}], "hostnames": [f"{run.target}.example"],
                          "rules": [{"backendRefs": [{"name": run.target, "port": PORT}]}]}}
    return [service, route]


def feature_flags(run: Run) -> list[dict[str, Any]]:
    flags = run.spec["change"].get("flags")
    if not flags:
        return []
    env = flags["environment"]
    return [{"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag",
             "metadata": {"name": key.replace("_", "-")},
             "spec": {"key": key, "owner": "platform-team", "defaultValue": False, "environments": {env: False},
                      "targets": [{"environment": env, "deployments": [run.target]}]}}
            for key in flags["values"]]


def catalog_versions(kubectl: Kubectl, run: Run) -> str:
    """The documented catalog workflow: the default catalog (v1) mounted into the target and
    pinned, then a new version applied (rendered, not mounted while pinned). Returns v2's hash."""
    name = run.spec["change"]["catalog"]["name"]
    text = subprocess.run([sys.executable, "-m", "rollguard.cli.main", "catalog", "default", "--name", name,
                           "--target", run.target], check=True, capture_output=True, text=True).stdout
    # the CLI's text as it prints it: a YAML round trip here would re-quote nothing and let
    # kubectl read aliases such as '08001' as integers
    kubectl.apply(text, namespace=run.ns)

    def cat() -> dict[str, Any]:
        st: dict[str, Any] = kubectl.get_json("failurecatalog", name, namespace=run.ns).get("status") or {}
        return st
    v1: str = eventually(lambda: cat().get("activeHash"), timeout=SETUP_TIMEOUT, what=f"{name} v1 mounted")
    version = yaml.safe_load(text)["spec"]["version"]
    for patch in ({"spec": {"pinnedHash": v1[:10]}}, {"spec": {"version": f"{version}-2"}}):  # 1. pin, 2. the edit
        kubectl("patch", "failurecatalog", name, "--type", "merge", "-p", json.dumps(patch), namespace=run.ns)

    def rendered() -> str | None:
        st = cat()
        h = st.get("contentHash")
        return str(h) if h and h != v1 and any(x["hash"] == h for x in st.get("history") or []) else None
    v2: str = eventually(rendered, timeout=SETUP_TIMEOUT, what=f"{name} v2 rendered while pinned")
    return v2


def substituted(run: Run, interval: str, catalog_hash: str | None) -> dict[str, Any]:
    """The shipped CanaryRollout with the substitutions the module docstring lists (recorded in
    ``run.substitutions``); nothing else changes."""
    obj = copy.deepcopy(run.shipped)
    spec, subs = obj["spec"], run.substitutions
    subs["analysis.interval"] = spec["analysis"]["interval"] = interval
    for i, step in enumerate(spec["steps"]):
        if (step.get("pause") or {}).get("duration"):
            subs[f"steps[{i}].pause.duration"] = step["pause"]["duration"] = "1s"
    if spec.get("watch"):
        subs["watch"] = spec["watch"] = "0s"
    smoke = spec.get("smoke") or {}
    if smoke.get("http"):
        url = smoke["http"]["url"]
        assert f"{run.target}-canary.staging.svc:" in url, url
        subs["smoke.http.url"] = smoke["http"]["url"] = url.replace(".staging.svc:", f".{run.ns}.svc:")
    if catalog_hash:
        subs["change.catalog.hash"] = spec["change"]["catalog"]["hash"] = catalog_hash
    return obj


def stable_pods(core: Any, run: Run, runner: PodRunner) -> dict[str, tuple[str, int, int]]:
    """uid -> (pod name, its process id, restart count) of the target's own running pods."""
    out = {}
    procs = runner.processes()
    for p in core.list_namespaced_pod(run.ns, label_selector=f"app={run.target}").items:
        if p.metadata.deletion_timestamp is not None or p.status.phase != "Running":
            continue
        restarts = sum(cs.restart_count or 0 for cs in p.status.container_statuses or [])
        out[p.metadata.uid] = (p.metadata.name, procs.get(f"{run.ns}/{p.metadata.name}/{run.target}", 0), restarts)
    return out


class World:
    """Everything of one scrape interval's runs: namespaces, targets, users, the operator."""

    def __init__(self, control_plane: ControlPlane, kubectl: Kubectl, runner: PodRunner, prometheus: Prometheus,
                 proxy: ServiceProxy, scrape: str, workdir: Path) -> None:
        self.kubectl, self.runner, self.prom, self.scrape = kubectl, runner, prometheus, scrape
        self.control_plane, self.proxy = control_plane, proxy
        self.interval = ANALYSIS_INTERVAL[scrape]
        # the operator's query window: the interval, widened to four scrapes
        self.window = max(parse_duration(self.interval), 4 * parse_duration(scrape))
        self.workdir, self.kubeconfig = workdir, control_plane.kubeconfig
        self.api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.runs = [Run(c, s, f"s{scrape}-{c.split('_')[0]}-{s[0]}-{uuid.uuid4().hex[:6]}",
                         yaml.safe_load((CONFIG_DIR / f"{c}.yaml").read_text()))
                     for c in CONFIGS for s in SCENARIOS]
        self.operator: OperatorProcess | None = None
        self.stopped = False
        self.seconds = 0.0

    def prepare(self, run: Run) -> dict[str, Any]:
        k, ns = self.kubectl, run.ns
        for obj in [*feature_flags(run), backend_deployment(run), *route_objects(run)]:
            k.apply(obj, namespace=ns)
        catalog_hash = catalog_versions(k, run) if "catalog" in run.spec["change"] else None
        if run.spec["change"].get("flags"):
            eventually(lambda: any(v["name"] == "rollguard-flags" for v in k.get_json(
                "deployment", run.target, namespace=ns)["spec"]["template"]["spec"].get("volumes") or []),
                timeout=SETUP_TIMEOUT, what=f"{ns}: the flags mounted into {run.target}")
        k("rollout", "status", f"deployment/{run.target}", "--timeout=110s", namespace=ns)  # kubectl: 120 s limit
        eventually(lambda: len(eps := endpoints(self.core, ns, run.target)) == 2 and all(answers(e) for e in eps),
                   timeout=SETUP_TIMEOUT, what=f"{ns}: the stable's pods answering")
        up = f'up{{namespace="{ns}", pod=~"{run.target}-.*"}} == 1'
        eventually(lambda: len(self.prom.query(up)) == 2, timeout=SETUP_TIMEOUT,
                   what=f"{ns}: Prometheus scraping the stable")
        run.gateway = Gateway(self.api, ns, run.provider, run.route, run.target, run.rps(self.window)).start()
        return substituted(run, self.interval, catalog_hash)

    def status(self, run: Run) -> dict[str, Any]:
        cr: Any = self.custom.get_namespaced_custom_object(*RG[:2], run.ns, RG[2], run.name)
        st: dict[str, Any] = cr.get("status") or {}
        return st

    def annotate(self, run: Run, annotations: dict[str, str]) -> None:
        self.custom.patch_namespaced_custom_object(*RG[:2], run.ns, RG[2], run.name,
                                                   {"metadata": {"annotations": annotations}})

    def drive(self, run: Run, obj: dict[str, Any], deadline: float) -> None:
        """Apply the rollout and play the humans the config asks for (sign-off, resume), the bad
        build (failing scenario) and the observer of the stable's pods, until it ends."""
        t0 = time.monotonic()
        run.stable_before = stable_pods(self.core, run, self.runner)
        self.kubectl.apply(obj, namespace=run.ns)
        if obj["spec"].get("requiresSignoff"):
            self.annotate(run, {"rollguard.io/signoff": "e2e: shadow run, 0 mismatches"})
        resumed: set[int] = set()
        while time.monotonic() < deadline:
            st = run.status = self.status(run)
            phase = st.get("phase")
            if run.scenario == "failing":
                for ep in endpoints(self.core, run.ns, f"{run.target}-canary"):
                    if ep not in run.failing_pods and answers(ep):
                        control(ep, {"fail_rate": FAIL_RATE})
                        run.failing_pods.add(ep)
            if phase == "Paused" and st.get("reason") == "WaitingForResume" and st["currentStep"] not in resumed:
                resumed.add(st["currentStep"])
                self.annotate(run, {"rollguard.io/request": "resume", "rollguard.io/request-id": uuid.uuid4().hex})
            if phase in LIVE:
                self._observe_stable(run)
            if phase in FINAL:
                break
            time.sleep(0.5)
        run.seconds = time.monotonic() - t0
        if run.gateway is not None:
            with run.gateway._lock:
                run.gateway.counting = False

    def _observe_stable(self, run: Run) -> None:
        now = stable_pods(self.core, run, self.runner)
        if now != run.stable_before:
            # the status was read before the pods: a promotion that began in between rolls the
            # change out to the stable, as it should. Only a change while still live counts.
            phase = self.status(run).get("phase")
            if phase not in LIVE:
                return
            change = f"stable pods {run.stable_before} became {now} in phase {phase}"
            if change not in run.stable_changes:
                run.stable_changes.append(change)
        pods: Any = self.core.list_namespaced_pod(run.ns, label_selector=f"app={run.target}").items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        if live and all((p.metadata.labels or {}).get(TRACK_LABEL) == "stable" for p in live):
            run.labelled = True
        if not run.stable_series:
            q = f'up{{namespace="{run.ns}", app="{run.target}", rollguard_io_track="stable"}} == 1'
            run.stable_series = len(self.prom.query(q)) == len(run.stable_before)

    def run_all(self) -> None:
        t0 = time.monotonic()
        objs: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}
        for run in self.runs:
            self.kubectl("create", "namespace", run.ns)
        # the configs' Prometheus address, prometheus.monitoring.svc:9090, is this world's Prometheus
        self.control_plane.add_service_of_process("monitoring", "prometheus", 9090, self.prom.url)
        # one operator for all: its FeatureFlag and FailureCatalog controllers mount the targets' files;
        # it reaches in-cluster addresses as an operator run from a shell on the local cluster does
        self.operator = OperatorProcess(self.kubeconfig, self.workdir / "operator.log",
                                        namespaces=tuple(r.ns for r in self.runs),
                                        extra_env={"http_proxy": self.proxy.url, "no_proxy": "localhost,127.0.0.1"},
                                        ).start()

        def prepare(run: Run) -> None:
            try:
                objs[run.ns] = self.prepare(run)
            except Exception as e:  # reported by that run's tests
                errors[run.ns] = f"setup: {type(e).__name__}: {e}"
        threads = [threading.Thread(target=prepare, args=(r,), daemon=True) for r in self.runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        longest = max(sum(1 for s in r.spec["steps"] if "setWeight" in s) for r in self.runs)
        # a check per weight, one interval each, the first once the canary is a window and two
        # scrapes old (the engine's rule), plus the smoke test and the promotion: twice that, as
        # a guard against a hung rollout only (a passing world ends when its last rollout does)
        deadline = time.monotonic() + 240 + 2 * ((longest + 2) * parse_duration(self.interval)
                                                 + 2 * parse_duration(self.scrape))

        def drive(run: Run) -> None:
            if run.ns in errors:
                run.error = errors[run.ns]
                return
            try:
                self.drive(run, objs[run.ns], deadline)
            except Exception as e:
                run.error = f"{type(e).__name__}: {e}"
        threads = [threading.Thread(target=drive, args=(r,), daemon=True) for r in self.runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.seconds = time.monotonic() - t0

    def stop(self) -> None:
        """Stop the operator and the users, delete the namespaces; the outcomes stay. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        if self.operator is not None:
            self.operator.stop()
        for run in self.runs:
            if run.gateway is not None:
                run.gateway.stop()
            self.kubectl.delete_namespace(run.ns)

    def run_of(self, config: str, scenario: str) -> Run:
        return next(r for r in self.runs if r.config == config and r.scenario == scenario)

    def report(self) -> str:
        return "\n".join([f"{self.scrape} scrape, analysis every {self.interval}: all runs took {self.seconds:.0f}s",
                          *(r.describe() for r in self.runs)])


@pytest.fixture(scope="module")
def shipped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, World]]:
    """Both worlds (5 s and 15 s scrape), built and run on the worker's cluster, one after the
    other; each world has its namespaces, its Prometheus and its operator."""
    request.getfixturevalue("httproute_crd")
    cp: ControlPlane = request.getfixturevalue("control_plane")
    worlds = {s: World(cp, request.getfixturevalue("kubectl"), request.getfixturevalue("pod_runner"),
                       request.getfixturevalue(f"pod_prometheus_{s}"), request.getfixturevalue("service_proxy"), s,
                       tmp_path_factory.mktemp(f"shipped-{s}"))
              for s in SCRAPES}
    try:
        # one world after the other: both at once (sixteen namespaces of pods and users) starve
        # two cores until pods answer late and the stable drops requests, which no user would see
        for w in worlds.values():
            w.run_all()
            print(w.report())
            (w.workdir / "report.txt").write_text(w.report() + "\n")
            if w.operator is not None:
                (w.workdir / "operator.tail.log").write_text(w.operator.output()[-20000:])
            w.stop()  # its users and pods off the machine before the next world starts
        yield worlds
    finally:
        for w in worlds.values():
            if w.operator is not None:
                print(w.operator.output()[-20000:])  # shown by pytest when a test fails
            w.stop()


def world(request: pytest.FixtureRequest, scrape: str) -> World:
    worlds: dict[str, World] = request.getfixturevalue("shipped")
    return worlds[scrape]


# --------------------------------------------------------------------------- what a user expects

@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("scrape", SCRAPES)
def test_a_shipped_config_promotes_a_healthy_canary(request: pytest.FixtureRequest, scrape: str, config: str) -> None:
    run = world(request, scrape).run_of(config, "healthy")
    assert not run.error, run.describe()
    st = run.status
    assert st.get("phase") == "Succeeded", run.describe()
    assert st["report"]["success"] is True and st["report"]["rollbackTriggered"] is False, run.describe()
    # no track fails runs; but the catalog config's target sees transient errors, retried up to
    # the catalog's maxAttempts (3 for some codes), so a run whose every attempt failed, rare,
    # is an HTTP 500 on either track (one in 586 canary runs, once)
    limit = 0.01 if "catalog" in run.spec["change"] else 0.0
    for track, sent in run.traffic().items():
        runs = sum(n for code, n in sent.items() if code != "error")
        assert sent.get("500", 0) <= limit * runs, f"{track}: {run.describe()}"


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("scrape", SCRAPES)
def test_a_shipped_config_rolls_back_a_canary_failing_a_quarter_of_its_requests(
        request: pytest.FixtureRequest, scrape: str, config: str) -> None:
    run = world(request, scrape).run_of(config, "failing")
    assert not run.error, run.describe()
    st = run.status
    assert st.get("phase") == "RolledBack", run.describe()
    # by the analysis, not by a deadline: the reason names a metric's breach
    assert st.get("reason") == "AnalysisFailed", run.describe()
    assert "error-rate" in st["report"]["rollbackReason"], run.describe()
    # the stable never erred; the canary did, about a quarter of its runs
    traffic = run.traffic()
    assert not traffic["stable"].get("500"), run.describe()
    canary_runs = sum(v for k, v in traffic["canary"].items() if k != "error")
    assert canary_runs and 0.1 < traffic["canary"].get("500", 0) / canary_runs < 0.45, run.describe()


@pytest.mark.parametrize("scrape", SCRAPES)
def test_a_service_reached_only_through_the_ingress_is_promoted(request: pytest.FixtureRequest, scrape: str) -> None:
    """All traffic enters through the Ingress (or HTTPRoute): at weight 100 the stable gets no
    request, so every baseline query there is empty. Each healthy rollout still passed a check
    at weight 100 (``setWeight: 100`` is a step) and was promoted."""
    w = world(request, scrape)
    for name in CONFIGS:
        run = w.run_of(name, "healthy")
        assert not run.error, run.describe()
        assert run.gateway is not None and 100 in run.gateway.weights, run.describe()
        assert run.gateway.stable_at_100 == 0, run.describe()
        steps = (run.status.get("report") or {}).get("steps") or []
        at_100 = [s for s in steps if s["kind"] == "setWeight" and s["weight"] == 100]
        assert at_100 and at_100[-1].get("checks", 0) >= 1, run.describe()
        assert run.status.get("phase") == "Succeeded", run.describe()


@pytest.mark.parametrize("scrape", SCRAPES)
def test_the_stables_pods_are_labelled_and_never_restarted_by_the_analysis(
        request: pytest.FixtureRequest, scrape: str) -> None:
    """While a rollout is live, the target's own pods carry ``rollguard.io/track=stable`` (the
    operator's label patch) and Prometheus scrapes them with ``rollguard_io_track="stable"``;
    their UIDs, processes and restart counts are those from before the rollout started."""
    w = world(request, scrape)
    for run in w.runs:
        assert not run.error, run.describe()
        assert len(run.stable_before) == 2, run.describe()
        assert run.labelled, f"the stable's pods never all carried {TRACK_LABEL}=stable: {run.describe()}"
        assert run.stable_series, f"no rollguard_io_track=\"stable\" targets in Prometheus: {run.describe()}"
        assert not run.stable_changes, run.stable_changes

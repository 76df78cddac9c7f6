"""The demo orchestrator: starts everything on loopback, runs two CanaryRollouts, prints the story.

It runs on the local cluster of :mod:`rollguard.localenv` (kube-apiserver, the workload
controllers, kube-scheduler, kwok nodes): the Deployments roll out into ReplicaSets and pods
that the pod runner starts as local processes on their pod addresses, with their env and
mounted ConfigMaps as the kubelet gives them. Prometheus finds the pods through the API
(a PodMonitor's relabelling). The failures API runs as a pod too; its database is a local
PostgreSQL (SQLite when PostgreSQL is not installed).

One thing is played by the demo itself, in the open: the *ingress controller*. The load
generator sends each request to a ready pod of the Service the Ingress names (the pods its
selector picks: the apiserver refuses EndpointSlices with loopback addresses), choosing the
canary Ingress' Service by the weight the operator writes on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rollguard.cli.canary_cmd import BANNER_FAILED, BANNER_PROMOTED
from rollguard.demo import manifests as m
from rollguard.localenv import _proc
from rollguard.localenv.controlplane import REPO_ROOT, ControlPlane
from rollguard.localenv.ingress import read_nginx_canary
from rollguard.localenv.podrunner import RUN_LABEL, PodRunner
from rollguard.localenv.prometheus import Prometheus, podmonitor

NAMESPACE = "rollguard-demo"
FLAGS_CONFIGMAP = f"rollguard-flags-{m.ENVIRONMENT}"
TRACKS = ("stable", "canary")
TRACK_LABEL = "rollguard.io/track"
CANARY = f"{m.TARGET}-canary"
API = "failures-api"
API_PORT = 8080
INTERNAL_SHARE = 0.25
FINAL = {"Succeeded", "RolledBack", "Failed"}


@dataclass
class DemoResult:
    reports: dict[str, dict[str, Any]]
    phases: dict[str, str]
    stats: dict[str, Any]
    reported: dict[str, dict[str, int]]          # track -> error code -> failures it reported
    requests: dict[str, dict[str, int]]          # track -> HTTP status -> requests the load generator sent
    stable_env: dict[str, str]
    weights: dict[str, list[int]]
    seconds: float
    stable_flags: dict[str, bool] = field(default_factory=dict)  # rollguard-flags-<env>: what the stable reads


def _http(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None,
          timeout: float = 5.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback URLs we built)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
            return int(r.status), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return int(e.code), json.loads(raw or b"null")
        except ValueError:
            return int(e.code), raw.decode(errors="replace")


def _answers(url: str) -> bool:
    """Whether something answers 200 at ``url`` yet."""
    try:
        return _http("GET", url, timeout=2.0)[0] == 200
    except OSError:
        return False


class Demo:
    """The whole demo: ``run()`` starts everything, runs both rollouts and returns a :class:`DemoResult`."""

    def __init__(self, workdir: Path | None = None, *, db: str = "auto", interval: str = "4s", rps: float = 20.0,
                 out: Callable[[str], None] | None = None, keep: bool = False) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="rollguard-demo-"))
        self.db, self.interval, self.rps, self.keep = db, interval, rps, keep
        self._out = out or (lambda s: print(s, flush=True))
        self.t0 = time.monotonic()
        self.cp: ControlPlane | None = None
        self.prom: Prometheus | None = None
        self.runner: PodRunner | None = None
        self.pg: Any = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_url = ""
        self.rejected = 0  # failures the service refused, set aside in the pods' spools
        self.write_token = self.read_token = ""
        self.weight = 0
        # what the ingress controller routes to: Service name -> ready endpoints (ip:port)
        self.endpoints: dict[str, list[str]] = {}
        self.routes: tuple[str, str | None] = (m.TARGET, None)  # (stable Service, canary Service)
        self.sent: dict[str, Counter[str]] = {t: Counter() for t in TRACKS}
        self.weights: dict[str, list[int]] = {}  # rollout -> Ingress canary weights the load generator used
        self._stop = threading.Event()
        self._load_stop = threading.Event()  # the load generator only
        self._threads: list[threading.Thread] = []
        self._loadgens: list[threading.Thread] = []
        self._core: Any = None
        self._apps: Any = None
        self._net: Any = None
        self._custom: Any = None

    # ------------------------------------------------------------------ output
    def say(self, msg: str) -> None:
        self._out(f"[{time.monotonic() - self.t0:6.1f}s] {msg}")

    # ------------------------------------------------------------------ helpers
    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.cp is not None
        p = subprocess.run([str(self.cp.kubectl), "--kubeconfig", str(self.cp.kubeconfig), *args], input=input,
                           capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {p.stderr.strip()}")
        return p

    def apply(self, obj: dict[str, Any] | str) -> None:
        text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
        self.kubectl("apply", "-n", NAMESPACE, "--server-side", "--field-manager", "rollguard-demo",
                     "-f", "-", input=text)

    def _env(self) -> dict[str, str]:
        assert self.cp is not None
        path = os.environ.get("PATH", "")
        return {**os.environ, "KUBECONFIG": str(self.cp.kubeconfig), "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
                "PATH": path}

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = _proc.start(args, self.workdir / "logs" / f"{name}.log", env=env or self._env())
        self.procs[name] = proc
        return proc

    def _wait(self, check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                value = check()
                if value:
                    return value
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}); see {self.workdir}/logs/{name}.log")
            time.sleep(0.3)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

    def show(self, *args: str) -> None:
        """Print a kubectl command and its output into the transcript."""
        out = self.kubectl(*args, check=False)
        self._out(f"$ kubectl {' '.join(args)}\n{(out.stdout or out.stderr).rstrip()}")

    # ------------------------------------------------------------------ start-up
    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.say(f"state directory {self.workdir}")
        self.cp = ControlPlane(self.workdir / "controlplane")
        st = self.cp.start()
        self.say(f"cluster up at {st.server} in {st.started_seconds:.1f}s: etcd, kube-apiserver, "
                 "kube-controller-manager, kube-scheduler, kwok")
        self.show("get", "nodes", "-o", "wide")
        crds = sorted((REPO_ROOT / "crds").glob("*.yaml"))
        for p in crds:
            self.kubectl("apply", "--server-side", "-f", str(p))
        for p in crds:
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(p))
        self.kubectl("create", "namespace", NAMESPACE)
        self.say(f"CRDs installed ({len(crds)} files); namespace {NAMESPACE}")
        self._clients()
        self.runner = PodRunner(self.cp.kubeconfig, self.workdir / "pods").start()
        self.say(f"pod runner started: pods labelled {RUN_LABEL}=true run as local processes on their pod IPs")

        monitor = podmonitor(f"{m.TARGET}-pods", NAMESPACE, port="http",
                             selector={"matchExpressions": [{"key": "app", "operator": "In",
                                                             "values": [m.TARGET, CANARY, API]}]},
                             pod_target_labels=[TRACK_LABEL])
        self.prom = Prometheus(self.workdir / "prometheus", kubernetes=self.cp.prometheus_api(),
                               pod_monitors=[monitor])
        self.prom.start()
        self.say(f"Prometheus at {self.prom.url}: pod discovery through the API, PodMonitor {NAMESPACE}/"
                 f"{m.TARGET}-pods (port http, scrape 1s)")

        self._start("operator", [sys.executable, "-m", "rollguard.cli.main", "operator", "run", "--standalone",
                                 "-n", NAMESPACE, "--liveness", ""])
        self.say(f"operator started (rollguard operator run --standalone -n {NAMESPACE})")

        catalog = subprocess.run([sys.executable, "-m", "rollguard.cli.main", "catalog", "default", "--name",
                                  "agents", "--target", m.TARGET, "--target", API], check=True,
                                 capture_output=True, text=True, env=self._env()).stdout
        self.apply(catalog)
        self._start_api()
        for obj in [m.token_secret(self.write_token), *m.target_objects(self.api_url), *m.flags()]:
            self.apply(obj)
        self.say(f"applied Secret {m.TOKEN_SECRET}, Deployment/Service/Ingress {m.TARGET}, FeatureFlags "
                 f"{m.CATALOG_FLAG}, {m.COST_FLAG} (false in '{m.ENVIRONMENT}')")
        self._wait(lambda: self._mounts(m.TARGET) >= 2, "the operator to mount the catalog and flags", 60)
        self._wait(lambda: self._rolled_out(m.TARGET), f"Deployment {m.TARGET} to roll out", 90)
        self._wait(lambda: len(self._ready_pods(m.LABELS)) == m.REPLICAS
                   and all(_http("GET", f"http://{ip}:{m.PORT}/healthz")[0] == 200
                           for ip in self._ready_pods(m.LABELS)), f"the {m.TARGET} pods to answer", 60)
        self.say(f"{m.TARGET} rolled out with the catalog and flags the operator mounted; its pods answer:")
        self.show("get", "pods", "-n", NAMESPACE, "-o", "wide")
        self._wait(lambda: len(self.prom.query(f'up{{namespace="{NAMESPACE}", pod=~"{m.TARGET}-.*"}} == 1'))
                   == m.REPLICAS if self.prom else False, "Prometheus to discover and scrape the pods", 60)
        self.say(f"Prometheus scrapes {m.REPLICAS} {m.TARGET} pods it found through the API")
        for target in (self._watch, self._loadgen, self._loadgen):
            th = threading.Thread(target=target, daemon=True)
            th.start()
            self._threads.append(th)
            if target == self._loadgen:
                self._loadgens.append(th)
        self.say(f"load generator: ~{self.rps:.0f} runs/s; {INTERNAL_SHARE:.0%} in-cluster (Service -> stable), "
                 "the rest through the Ingress, split by its canary weight")

    def _clients(self) -> None:
        from kubernetes import client, config

        assert self.cp is not None
        api = config.new_client_from_config(config_file=str(self.cp.kubeconfig))  # type: ignore[no-untyped-call]
        self._core, self._apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self._net, self._custom = client.NetworkingV1Api(api), client.CustomObjectsApi(api)

    def _start_api(self) -> None:
        """The failures API as a pod of Deployment ``failures-api``; its database runs on this machine."""
        have_pg = shutil.which("initdb") is not None or any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if self.db == "postgres" or (self.db == "auto" and have_pg):
            from rollguard.localenv.postgres import Postgres

            self.pg = Postgres(self.workdir / "postgres")
            self.pg.start()
            url, what = self.pg.url, f"PostgreSQL on 127.0.0.1:{self.pg.port}"
        else:
            url, what = f"sqlite:///{self.workdir / 'failures.db'}", "SQLite"
        cli = [sys.executable, "-m", "rollguard.cli.main", "api"]
        subprocess.run([*cli, "migrate", "--database-url", url], check=True, capture_output=True, env=self._env())

        def token(scopes: str) -> str:
            return subprocess.run([*cli, "token", "create", "--database-url", url, "--tenant", "demo",
                                   "--scopes", scopes, "--description", "rollguard demo"], check=True,
                                  capture_output=True, text=True, env=self._env()).stdout.strip()

        self.write_token, self.read_token = token("failures:write"), token("failures:read")
        labels = {"app": API}
        self.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{API}-db"},
                    "type": "Opaque", "stringData": {"url": url}})
        self.apply({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": API, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": {**labels, RUN_LABEL: "true"}}, "spec": {"containers": [{
                         "name": "api", "image": "example.org/rollguard:0.1.0",
                         "command": ["python", "-m", "rollguard.cli.main", "api", "serve"],
                         "args": ["--host", "$(POD_IP)", "--port", str(API_PORT), "--no-migrate",
                                  "--log-level", "warning"],
                         "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                                 {"name": "ROLLGUARD_API_DATABASE_URL",
                                  "valueFrom": {"secretKeyRef": {"name": f"{API}-db", "key": "url"}}}],
                         "ports": [{"name": "http", "containerPort": API_PORT}]}]}}},
        })
        self._wait(lambda: self._mounts(API) >= 1, f"the operator to mount the catalog into {API}", 60)
        self._wait(lambda: self._rolled_out(API), f"Deployment {API} to roll out", 90)
        ip = self._wait(lambda: next(iter(self._ready_pods(labels)), None), f"a ready {API} pod", 60)
        self.api_url = f"http://{ip}:{API_PORT}"
        self._wait(lambda: _http("GET", f"{self.api_url}/readyz")[0] == 200, "the failures API", 60)
        self.say(f"failures API pod at {self.api_url} ({what}), with the FailureCatalog mounted; "
                 "tokens for tenant 'demo'")

    # ------------------------------------------------------------------ reading the cluster
    def _deployment(self, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj: dict[str, Any] = self._apps.api_client.sanitize_for_serialization(
                self._apps.read_namespaced_deployment(name, NAMESPACE))
            return obj
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def _rolled_out(self, name: str) -> bool:
        """What ``kubectl rollout status`` waits for: the controller saw the newest spec and every
        replica is updated and available."""
        dep = self._deployment(name) or {}
        st, want = dep.get("status") or {}, (dep.get("spec") or {}).get("replicas", 1)
        return bool(dep) and st.get("observedGeneration", 0) >= dep["metadata"]["generation"] and \
            st.get("updatedReplicas", 0) == want and st.get("availableReplicas", 0) == want and \
            st.get("replicas", 0) == want

    def _ready_pods(self, labels: dict[str, str]) -> list[str]:
        sel = ",".join(f"{k}={v}" for k, v in labels.items())
        pods = self._core.list_namespaced_pod(NAMESPACE, label_selector=sel).items
        return [p.status.pod_ip for p in pods if p.status.pod_ip and p.metadata.deletion_timestamp is None
                and p.status.phase == "Running"]

    def _mounts(self, name: str) -> int:
        dep = self._deployment(name) or {}
        vols = dep.get("spec", {}).get("template", {}).get("spec", {}).get("volumes") or []
        return sum(1 for v in vols if v.get("configMap"))

    def _read_route(self) -> tuple[int, str | None]:
        """The nginx canary Ingress as an ingress controller reads it: (weight, canary Service)."""
        return read_nginx_canary(self._net, NAMESPACE, f"{m.TARGET}-canary")

    def _service_endpoints(self, service: str) -> list[str]:
        """Ready endpoints of ``service`` as ``ip:port``: its selector's Running pods and the
        container port its ``targetPort`` names (what an EndpointSlice would list)."""
        svc = self._core.read_namespaced_service(service, NAMESPACE)
        port = svc.spec.ports[0].target_port
        out = []
        for pod in self._core.list_namespaced_pod(NAMESPACE, label_selector=",".join(
                f"{k}={v}" for k, v in (svc.spec.selector or {}).items())).items:
            if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running" \
                    or not pod.status.pod_ip:
                continue
            numbers = [p.container_port for c in pod.spec.containers for p in c.ports or []
                       if p.name == port or p.container_port == port]
            out += [f"{pod.status.pod_ip}:{n}" for n in numbers[:1]]
        return sorted(out)

    def _watch(self) -> None:
        """The ingress controller's view, refreshed twice a second."""
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                weight, canary = self._read_route()
                eps = {m.TARGET: self._service_endpoints(m.TARGET)}
                if canary:
                    eps[canary] = self._service_endpoints(canary)
                self.endpoints, self.routes = eps, (m.TARGET, canary)
                # nginx sends no canary traffic while the canary Service has no ready endpoint
                self.weight = weight if canary and eps.get(canary) else 0
            self._stop.wait(0.5)

    # ------------------------------------------------------------------ load generator
    def _loadgen(self) -> None:
        period = 2.0 / self.rps  # two generator threads
        while not self._stop.is_set() and not self._load_stop.is_set():
            t0 = time.monotonic()
            # A quarter of the runs come from in-cluster callers through the Service, which selects
            # only the stable pods; the rest come through the Ingress, split by the canary weight.
            # So the baseline keeps traffic (and metrics) even at 100 %, as in a real cluster.
            internal = random.random() < INTERNAL_SHARE
            stable_svc, canary_svc = self.routes
            to_canary = canary_svc is not None and not internal and random.uniform(0, 100) < self.weight
            service = canary_svc if to_canary and canary_svc else stable_svc
            endpoints = self.endpoints.get(service) or []
            track = "canary" if to_canary else "stable"
            # ~10 % of the runs are big ones, over the cost simulator's $1 budget
            tokens = random.randint(25_000, 40_000) if random.random() < 0.1 else random.randint(1_000, 15_000)
            if endpoints:
                with contextlib.suppress(Exception):
                    code, _ = _http("POST", f"http://{random.choice(endpoints)}/run",
                                    {"run_id": f"run-{random.getrandbits(32):08x}", "tokens": tokens})
                    self.sent[track][str(code)] += 1
            self._load_stop.wait(max(0.0, period - (time.monotonic() - t0)))

    def _canary_pods(self) -> list[str]:
        return self._ready_pods({"app": CANARY})

    def _no_pod_terminating(self) -> bool:
        """Whether no pod is on its way out: the API lists no canary pod (the garbage collector
        deletes them after their Deployment) and the pod runner runs no process for a pod the
        API no longer lists, so each deleted pod's process has flushed and printed its FINAL line.

        Both halves are needed because kwok removes a deleted pod from the API at once, where a
        kubelet would keep it Terminating until its container exited: here the pod runner (the
        kubelet's other half) stops the process on its next pass, up to its grace period later."""
        assert self.runner is not None
        # The processes first: a pod deleted between the two reads then shows as running and
        # not listed (wait), never as listed and already stopped out of sight.
        running = {key.split("/")[1] for key in self.runner.processes() if key.startswith(f"{NAMESPACE}/")}
        pods = self._core.list_namespaced_pod(NAMESPACE).items
        listed = {p.metadata.name for p in pods if p.metadata.deletion_timestamp is None}
        canary = [p for p in pods if (p.metadata.labels or {}).get("app") == CANARY]
        return not canary and running <= listed

    # ------------------------------------------------------------------ rollouts
    def rollout(self, name: str, flag_key: str, misbehave_at: int | None = None) -> dict[str, Any]:
        assert self.prom is not None
        obj = m.rollout(name, flag_key, prometheus_url=self.prom.url, interval=self.interval)
        self.say(f"=== CanaryRollout {name}: {flag_key}=true in '{m.ENVIRONMENT}', steps 25% -> 50% -> 100%, "
                 f"analysis every {self.interval}")
        self.apply(obj)
        last: tuple[Any, ...] = ()
        last_analysis = None
        misbehaving = False
        deadline = time.monotonic() + 180
        st: dict[str, Any] = {}
        seen = self.weights.setdefault(name, [])
        shown_pods = False
        while time.monotonic() < deadline:
            if not seen or seen[-1] != self.weight:
                seen.append(self.weight)
            cr = self._custom.get_namespaced_custom_object("rollguard.io", "v1alpha1", NAMESPACE,
                                                           "canaryrollouts", name)
            st = cr.get("status") or {}
            key = (st.get("phase"), st.get("currentStep"), st.get("canaryWeight"))
            if key != last and st.get("phase"):
                self.say(f"{name}: phase {st.get('phase')}, step {st.get('currentStep')}, weight "
                         f"{st.get('canaryWeight')}%" + (f" - {st['message']}" if st.get("message") else ""))
                last = key
            if st.get("lastAnalysisAt") and st.get("lastAnalysisAt") != last_analysis:
                last_analysis = st["lastAnalysisAt"]
                for metric in st.get("metrics") or []:
                    self.say(f"    {metric.get('message') or metric.get('name')}")
                self.say(f"    traffic so far: stable {dict(self.sent['stable'])}, canary {dict(self.sent['canary'])}")
            if not shown_pods and (st.get("canaryWeight") or 0) > 0:
                self.show("get", "pods", "-n", NAMESPACE, "-L", TRACK_LABEL)
                shown_pods = True
            if misbehave_at is not None and not misbehaving and (st.get("canaryWeight") or 0) >= misbehave_at:
                # kwok reports a pod Ready before its process listens (no readiness probe runs)
                self._wait(lambda: all(_answers(f"http://{ip}:{m.PORT}/healthz") for ip in self._canary_pods()),
                           "the canary pods to answer", 60)
                for ip in self._canary_pods():
                    _http("POST", f"http://{ip}:{m.PORT}/control", {"error_rate": 0.2})
                misbehaving = True
                self.say("  [demo] the canary starts failing: 20 % of its workflow steps now raise "
                         "non-retryable errors (DB_SCHEMA_MISMATCH, NULL_REFERENCE)")
            if st.get("phase") in FINAL:
                break
            time.sleep(0.5)
        if st.get("phase") not in FINAL:
            raise TimeoutError(f"{name} did not finish: {st.get('phase')} {st.get('message')}")
        # The operator takes the canary out of traffic before it writes the final phase, and
        # the ingress view reads the route on its own pass: record the weight it ends at.
        self._wait(lambda: self.weight == 0, "the ingress to send no traffic to the canary", 30)
        if seen[-1] != self.weight:
            seen.append(self.weight)
        report = st.get("report") or {}
        env = self._stable_env()
        self.say(f"{name}: {st['phase']}; the stable reads {self._stable_flags()} from "
                 f"{FLAGS_CONFIGMAP} (env overrides: "
                 f"{ {k: v for k, v in env.items() if k.startswith('AOS_FEATURE_')} or 'none'})")
        self._banner(name, st["phase"], report)
        return st

    def _stable_flags(self) -> dict[str, bool]:
        """The flag values the stable's pods read from their mounted flags file, once every pod
        agrees with the ConfigMap (promotion writes them into the FeatureFlags; the file follows)."""
        def agreed() -> dict[str, bool] | None:
            cm = self._core.read_namespaced_config_map(FLAGS_CONFIGMAP, NAMESPACE)
            flags = json.loads((cm.data or {}).get("flags.json") or "{}").get("flags") or {}
            want = {k: bool(v.get("value")) for k, v in sorted(flags.items())}
            seen = [_http("GET", f"http://{ip}:{m.PORT}/control")[1]["flags"]
                    for ip in self._ready_pods(m.LABELS)]
            return want if seen and all(s == want for s in seen) else None
        try:
            return dict(self._wait(agreed, "the stable pods to read the flags file", 30))
        except TimeoutError:  # a demo line, not a decision: show what the pods read
            return dict(_http("GET", f"http://{self._ready_pods(m.LABELS)[0]}:{m.PORT}/control")[1]["flags"])

    def _stable_env(self) -> dict[str, str]:
        dep = self._deployment(m.TARGET) or {}
        return {e["name"]: e.get("value", "") for c in dep["spec"]["template"]["spec"]["containers"]
                for e in c.get("env") or []}

    def _banner(self, name: str, phase: str, report: dict[str, Any]) -> None:
        ok = phase == "Succeeded"
        lines = ["=" * 72, f"{BANNER_PROMOTED if ok else BANNER_FAILED:^72}", f"rollout: {name}"]
        if report.get("rollbackReason"):
            lines.append(f"Rollback reason: {report['rollbackReason']}")
        lines.append(f"success={report.get('success')} rollback_triggered={report.get('rollbackTriggered')} "
                     f"smoke_returncode={report.get('smokeReturncode')} "
                     f"duration={report.get('durationSeconds', 0):.1f}s")
        for metric, d in (report.get("metricsDelta") or {}).items():
            lines.append(f"  {metric:<16} canary {_fmt(d.get('canary'))}  baseline {_fmt(d.get('baseline'))}  "
                         f"delta {_fmt(d.get('delta'))}  {d.get('verdict')}")
        for s in report.get("steps") or []:
            lines.append(f"  step {s['index']} {s['kind']:<9} weight {s['weight']:>3}%  checks {s.get('checks', 0)}  "
                         f"{s.get('outcome')}")
        lines.append("=" * 72)
        for line in lines:
            self._out(line)

    # ------------------------------------------------------------------ the failures recorded
    def failures(self) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
        # The load stops first: counts read from the pods and from the API must cover the same runs.
        self._load_stop.set()
        for th in self._loadgens:
            th.join(10)
        # A pod counts either live (its /control) or gone (its FINAL line); one on its way out is
        # neither, and what it reported would be missing from the count while the API has it. A
        # rollout is finished once the canary Deployment is deleted, not its pods: the rolled-back
        # canary's pods may still be on their way out here, with every broken-build failure.
        self._wait(self._no_pod_terminating, "the deleted pods' processes to end", 60)
        # Every pod's SDK spool must be empty: then the API has every failure the pods reported.
        # Pods deleted during the run (the canary's, the stable's replaced by a rollout) told
        # what they reported in their last log line.
        assert self.runner is not None
        live = self._ready_pods({"app": m.TARGET}) + self._canary_pods()

        def drained() -> bool:
            return all(_http("GET", f"http://{ip}:{m.PORT}/control")[1]["spool_pending"] == 0 for ip in live)
        self._wait(drained, "the SDK spools to drain into the failures API", 60)
        reported: dict[str, Counter[str]] = {t: Counter() for t in TRACKS}
        for ip in live:
            state = _http("GET", f"http://{ip}:{m.PORT}/control")[1]
            reported[state["track"]].update(state["reported"])
            self.rejected += int(state.get("spool_rejected") or 0)
        for gone in self.runner.finished:
            if gone.labels.get("app") not in (m.TARGET, CANARY):
                continue
            log_text = (gone.directory / f"{gone.container}.log").read_text(errors="replace")
            final = [line for line in log_text.splitlines() if line.startswith("FINAL ")]
            if not final and "SERVING on " not in log_text:
                continue  # deleted before it listened (a rollout replaced it at once): it served nothing
            if not final:
                raise RuntimeError(f"pod {gone.key} ended without its FINAL line; see {gone.directory}")
            state = json.loads(final[-1][len("FINAL "):])
            if state["spool_pending"]:
                raise RuntimeError(f"pod {gone.key} ended with {state['spool_pending']} failures not delivered")
            reported[state["track"]].update(state["reported"])
            self.rejected += int(state.get("spool_rejected") or 0)
        code, stats = _http("GET", f"{self.api_url}/api/v1/failures/stats?since_hours=1", token=self.read_token)
        if code != 200:
            raise RuntimeError(f"stats: HTTP {code}: {stats}")
        return stats, {t: dict(c) for t, c in reported.items()}

    def print_failures(self, stats: dict[str, Any], reported: dict[str, dict[str, int]]) -> None:
        self._out("=" * 72)
        self._out(f"{'FAILURES RECORDED (GET /api/v1/failures/stats, tenant demo)':^72}")
        rate = stats.get("hit_rate")
        rec = stats.get("recovery_success_rate")
        self._out(f"total {stats['total']}, matched {stats['matched']} (hit rate "
                  f"{'-' if rate is None else f'{rate:.0%}'}), recovery attempted {stats['recovery_attempted']}, "
                  f"succeeded {stats['recovery_succeeded']} ({'-' if rec is None else f'{rec:.0%}'})")
        self._out("by code:      " + ", ".join(f"{c['error_code']} {c['count']}" for c in stats["by_code"][:8]))
        self._out("by category:  " + ", ".join(f"{c['category'] or 'unmatched'} {c['count']}"
                                              for c in stats["by_category"]))
        for t, codes in reported.items():
            self._out(f"reported by the {t} track: " + (", ".join(f"{k} {v}" for k, v in sorted(codes.items()))
                                                          or "none"))
        self._out("=" * 72)

    # ------------------------------------------------------------------ the whole story
    def run(self) -> DemoResult:
        t0 = time.monotonic()
        self.start()
        time.sleep(3)  # some traffic on the stable before the first canary
        first = self.rollout("enable-failure-catalog", m.CATALOG_FLAG)
        second = self.rollout("enable-cost-simulator", m.COST_FLAG, misbehave_at=25)
        stats, reported = self.failures()
        self.print_failures(stats, reported)
        env = self._stable_env()
        table = self.kubectl("get", "canaryrollouts", "-n", NAMESPACE, check=False).stdout.rstrip()
        self._out(f"$ kubectl get canaryrollouts -n {NAMESPACE}\n{table}")
        seconds = time.monotonic() - t0
        return DemoResult(
            reports={"enable-failure-catalog": first.get("report") or {},
                     "enable-cost-simulator": second.get("report") or {}},
            phases={"enable-failure-catalog": first["phase"], "enable-cost-simulator": second["phase"]},
            stats=stats, reported=reported, requests={t: dict(c) for t, c in self.sent.items()},
            stable_env=env, weights=self.weights, seconds=seconds, stable_flags=self._stable_flags())

    def stop(self) -> None:
        self._stop.set()
        self._load_stop.set()
        for th in self._threads:
            th.join(5)
        # backends first (their SDK flushes), the operator before the control plane
        # the pods' processes first (their SDK flushes), the operator before the control plane
        if self.runner is not None:
            self.runner.stop()
        for p in self.procs.values():
            _proc.stop_pid(p.pid)
        self.procs.clear()
        if self.prom is not None:
            self.prom.stop()
        if self.pg is not None:
            self.pg.stop()
        if self.cp is not None:
            self.cp.stop()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "inf" if v == float("inf") else f"{v:.4g}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m rollguard.demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["auto", "postgres", "sqlite"], default="auto",
                    help="failures API database (auto: PostgreSQL when installed, else SQLite)")
    ap.add_argument("--interval", default="4s", help="analysis interval of the rollouts (default 4s)")
    ap.add_argument("--rps", type=float, default=20.0, help="load generator rate (default 20 runs/s)")
    ap.add_argument("--keep", action="store_true", help="keep the state directory (logs) afterwards")
    args = ap.parse_args(argv)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    demo = Demo(db=args.db, interval=args.interval, rps=args.rps, keep=args.keep)
    code = 0
    try:
        result = demo.run()
        ok = (result.phases == {"enable-failure-catalog": "Succeeded", "enable-cost-simulator": "RolledBack"})
        demo.say(f"demo finished in {result.seconds:.0f}s: first rollout {result.phases['enable-failure-catalog']}, "
                 f"second {result.phases['enable-cost-simulator']}")
        code = 0 if ok else 1
    except KeyboardInterrupt:
        demo.say("interrupted")
        code = 130
    except Exception as exc:
        demo.say(f"demo failed: {exc}")
        demo.keep = True
        code = 1
    finally:
        demo.say("stopping every process" + ("" if demo.keep else " and removing the state directory"))
        demo.stop()
        if demo.keep:
            demo.say(f"logs kept in {demo.workdir}/logs")
    return code

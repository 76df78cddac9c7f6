"""The demo orchestrator: starts everything on loopback, runs two CanaryRollouts, prints the story.

Nothing is mocked. What a cluster's nodes would do is done here in the open, by small loops:

- *kubelet*: pods never run on a node-less control plane, so the demo marks Deployments
  available (status subresource), copies the ConfigMaps a Deployment mounts (catalog, flags)
  into that track's directory, and hands the pod template's ``AOS_FEATURE_*`` env to the
  track's process (``POST /control``);
- *ingress controller*: the load generator splits requests between the tracks by the canary
  weight the operator writes on the nginx canary Ingress.
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
from rollguard.localenv.prometheus import Prometheus

NAMESPACE = "rollguard-demo"
FLAGS_CONFIGMAP = f"rollguard-flags-{m.ENVIRONMENT}"
TRACKS = ("stable", "canary")
CANARY = f"{m.TARGET}-canary"
WEIGHT_ANNOTATION = "nginx.ingress.kubernetes.io/canary-weight"
INTERNAL_SHARE = 0.25
FINAL = {"Succeeded", "RolledBack", "Failed"}


@dataclass
class Track:
    name: str
    port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None
    mounted: dict[str, str] = field(default_factory=dict)  # ConfigMap name -> resourceVersion copied

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


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


class Demo:
    def __init__(self, workdir: Path | None = None, *, db: str = "auto", interval: str = "4s", rps: float = 20.0,
                 out: Callable[[str], None] | None = None, keep: bool = False) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="rollguard-demo-"))
        self.db, self.interval, self.rps, self.keep = db, interval, rps, keep
        self._out = out or (lambda s: print(s, flush=True))
        self.t0 = time.monotonic()
        self.cp: ControlPlane | None = None
        self.prom: Prometheus | None = None
        self.pg: Any = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.tracks = {t: Track(t, _proc.free_port(), self.workdir / "tracks" / t) for t in TRACKS}
        self.api_url = ""
        self.write_token = self.read_token = ""
        self.weight = 0
        self.sent: dict[str, Counter[str]] = {t: Counter() for t in TRACKS}
        self.weights: dict[str, list[int]] = {}  # rollout -> Ingress canary weights the load generator used
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
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

    # ------------------------------------------------------------------ start-up
    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.say(f"state directory {self.workdir}")
        self.cp = ControlPlane(self.workdir / "controlplane")
        st = self.cp.start()
        self.say(f"control plane up (etcd, kube-apiserver, kube-controller-manager) at {st.server} "
                 f"in {st.started_seconds:.1f}s")
        crds = sorted((REPO_ROOT / "crds").glob("*.yaml"))
        for p in crds:
            self.kubectl("apply", "--server-side", "-f", str(p))
        for p in crds:
            self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(p))
        self.kubectl("create", "namespace", NAMESPACE)
        self.say(f"CRDs installed ({len(crds)} files); namespace {NAMESPACE}")
        self._clients()

        self.prom = Prometheus(self.workdir / "prometheus")
        self.prom.start()
        for t in self.tracks.values():
            self.prom.set_targets(t.name, [f"127.0.0.1:{t.port}"],
                                  {"namespace": NAMESPACE, "rollguard_io_track": t.name})
        self.say(f"Prometheus at {self.prom.url} (scrape 1s; tracks labelled rollguard_io_track=stable|canary)")

        self._start("operator", [sys.executable, "-m", "rollguard.cli.main", "operator", "run", "--standalone",
                                 "-n", NAMESPACE, "--liveness", ""])
        self.say("operator started (rollguard operator run --standalone -n rollguard-demo)")

        catalog = subprocess.run([sys.executable, "-m", "rollguard.cli.main", "catalog", "default", "--name",
                                  "agents", "--target", m.TARGET], check=True, capture_output=True, text=True,
                                 env=self._env()).stdout
        for obj in [*m.target_objects(), *m.flags()]:
            self.apply(obj)
        self.apply(catalog)
        self._mark_available(m.TARGET)
        self.say(f"applied Deployment/Service/Ingress {m.TARGET}, FailureCatalog agents (default catalog), "
                 f"FeatureFlags {m.CATALOG_FLAG}, {m.COST_FLAG} (false in '{m.ENVIRONMENT}')")
        self._wait(lambda: self._mounts(m.TARGET) >= 2, "the operator to mount the catalog and flags", 60)
        self._sync_track(self.tracks["stable"], m.TARGET)
        self._sync_track(self.tracks["canary"], m.TARGET)
        cm = {k for k in self.tracks["stable"].mounted}
        self.say(f"operator mounted ConfigMaps {', '.join(sorted(cm))} into {m.TARGET}; copied to each track")
        self._start_api()

        for t in self.tracks.values():
            self._start_track(t)
        self._wait(lambda: all(_http("GET", f"{t.url}/healthz")[0] == 200 for t in self.tracks.values()),
                   "the backend tracks", 30)
        for t in self.tracks.values():
            self._push_env(t)
        self._wait(lambda: len(self.prom.query(f'up{{namespace="{NAMESPACE}"}} == 1')) == 2 if self.prom else False,
                   "Prometheus scraping both tracks", 30)
        self.say(f"backend tracks up: stable {self.tracks['stable'].url}, canary {self.tracks['canary'].url}")
        for target in (self._kubelet, self._loadgen, self._loadgen):
            th = threading.Thread(target=target, daemon=True)
            th.start()
            self._threads.append(th)
        self.say(f"load generator: ~{self.rps:.0f} runs/s; {INTERNAL_SHARE:.0%} in-cluster (Service -> stable), "
                 "the rest through the Ingress, split by its canary weight")

    def _clients(self) -> None:
        from kubernetes import client, config

        assert self.cp is not None
        api = config.new_client_from_config(config_file=str(self.cp.kubeconfig))  # type: ignore[no-untyped-call]
        self._core, self._apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self._net, self._custom = client.NetworkingV1Api(api), client.CustomObjectsApi(api)

    def _start_api(self) -> None:
        have_pg = shutil.which("initdb") is not None or any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if self.db == "postgres" or (self.db == "auto" and have_pg):
            from rollguard.localenv.postgres import Postgres

            self.pg = Postgres(self.workdir / "postgres")
            self.pg.start()
            url, what = self.pg.url, f"PostgreSQL on 127.0.0.1:{self.pg.port}"
        else:
            url, what = f"sqlite:///{self.workdir / 'failures.db'}", "SQLite"
        cli = [sys.executable, "-m", "rollguard.cli.main", "api"]

        def token(scopes: str) -> str:
            return subprocess.run([*cli, "token", "create", "--database-url", url, "--tenant", "demo",
                                   "--scopes", scopes, "--description", "rollguard demo"], check=True,
                                  capture_output=True, text=True, env=self._env()).stdout.strip()

        self.write_token, self.read_token = token("failures:write"), token("failures:read")
        port = _proc.free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        catalog = self.tracks["stable"].directory / "catalog" / "catalog.json"
        self._start("failures-api", [*cli, "serve", "--database-url", url, "--port", str(port),
                                     "--catalog", str(catalog), "--log-level", "warning"])
        self._wait(lambda: _http("GET", f"{self.api_url}/readyz")[0] == 200, "the failures API", 60)
        self.say(f"failures API at {self.api_url} ({what}); tokens for tenant 'demo'")

    def _start_track(self, t: Track) -> None:
        env = {**self._env(), "ROLLGUARD_FLAGS_DIR": str(t.directory / "flags"), "ROLLGUARD_ENVIRONMENT": m.ENVIRONMENT}
        t.proc = self._start(f"backend-{t.name}", [
            sys.executable, "-m", "rollguard.demo.backend", "--port", str(t.port), "--track", t.name,
            "--catalog", str(t.directory / "catalog" / "catalog.json"), "--failures-url", self.api_url,
            "--token", self.write_token, "--spool", str(t.directory / "spool.db")], env)

    # ------------------------------------------------------------------ the "kubelet"
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

    def _mark_available(self, name: str) -> None:
        """No node runs pods here: say what kubelet and the Deployment controller would say."""
        self._apps.patch_namespaced_deployment_status(name, NAMESPACE, {"status": {
            "replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1}})

    def _mounts(self, name: str) -> int:
        dep = self._deployment(name) or {}
        vols = dep.get("spec", {}).get("template", {}).get("spec", {}).get("volumes") or []
        return sum(1 for v in vols if v.get("configMap"))

    def _sync_track(self, t: Track, deployment: str) -> dict[str, Any] | None:
        """Give track ``t`` what a pod of ``deployment`` would get: its ConfigMap files and env."""
        dep = self._deployment(deployment)
        if dep is None:
            return None
        pod = dep["spec"]["template"]["spec"]
        for vol in pod.get("volumes") or []:
            cm_name = (vol.get("configMap") or {}).get("name")
            if not cm_name:
                continue
            cm = self._core.read_namespaced_config_map(cm_name, NAMESPACE)
            if t.mounted.get(cm_name) == cm.metadata.resource_version:
                continue
            for fname, content in (cm.data or {}).items():
                sub = "catalog" if fname == "catalog.json" else "flags"
                path = t.directory / sub / fname
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(content)
                tmp.rename(path)  # atomic, as kubelet swaps a ConfigMap volume
            t.mounted[cm_name] = cm.metadata.resource_version
        env = {e["name"]: e.get("value", "") for c in pod.get("containers") or [] for e in c.get("env") or []
               if e["name"].startswith("AOS_FEATURE_")}
        t.env = env
        return dep

    def _push_env(self, t: Track) -> None:
        _http("POST", f"{t.url}/control", {"env": t.env or {}})

    def _kubelet(self) -> None:
        pushed: dict[str, dict[str, str] | None] = {t: None for t in TRACKS}
        canary_seen = False
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self._sync_track(self.tracks["stable"], m.TARGET)
                canary = self._deployment(CANARY)
                if canary is not None:
                    if (canary.get("status") or {}).get("availableReplicas", 0) < 1:
                        self._mark_available(CANARY)
                    self._sync_track(self.tracks["canary"], CANARY)
                    if not canary_seen:
                        self.say(f"  [kubelet] canary Deployment {CANARY} created: marked available, its "
                                 f"pod env {self.tracks['canary'].env} handed to the canary track")
                    canary_seen = True
                else:
                    canary_seen = False
                    self._sync_track(self.tracks["canary"], m.TARGET)  # idle canary track: a stable copy
                for name, t in self.tracks.items():
                    if t.env != pushed[name]:
                        self._push_env(t)
                        pushed[name] = dict(t.env or {})
                self.weight = self._read_weight()
            self._stop.wait(0.5)

    def _read_weight(self) -> int:
        from kubernetes.client.exceptions import ApiException

        try:
            ing = self._net.read_namespaced_ingress(f"{m.TARGET}-canary", NAMESPACE)
        except ApiException as e:
            if e.status == 404:
                return 0
            raise
        ann = ing.metadata.annotations or {}
        if ann.get("nginx.ingress.kubernetes.io/canary") != "true":
            return 0
        return int(ann.get(WEIGHT_ANNOTATION) or 0)

    # ------------------------------------------------------------------ load generator
    def _loadgen(self) -> None:
        period = 2.0 / self.rps  # two generator threads
        while not self._stop.is_set():
            t0 = time.monotonic()
            # A quarter of the runs come from in-cluster callers through the Service, which selects
            # only the stable pods; the rest come through the Ingress, split by the canary weight.
            # So the baseline keeps traffic (and metrics) even at 100 %, as in a real cluster.
            internal = random.random() < INTERNAL_SHARE
            track = "canary" if not internal and random.uniform(0, 100) < self.weight else "stable"
            # ~10 % of the runs are big ones, over the cost simulator's $1 budget
            tokens = random.randint(25_000, 40_000) if random.random() < 0.1 else random.randint(1_000, 15_000)
            with contextlib.suppress(Exception):
                code, _ = _http("POST", f"{self.tracks[track].url}/run",
                                {"run_id": f"run-{random.getrandbits(32):08x}", "tokens": tokens})
                self.sent[track][str(code)] += 1
            self._stop.wait(max(0.0, period - (time.monotonic() - t0)))

    # ------------------------------------------------------------------ rollouts
    def rollout(self, name: str, flag_key: str, misbehave_at: int | None = None) -> dict[str, Any]:
        assert self.prom is not None
        obj = m.rollout(name, flag_key, namespace=NAMESPACE, prometheus_url=self.prom.url,
                        smoke_url=f"{self.tracks['canary'].url}/healthz", interval=self.interval)
        self.say(f"=== CanaryRollout {name}: {flag_key}=true in '{m.ENVIRONMENT}', steps 25% -> 50% -> 100%, "
                 f"analysis every {self.interval}")
        self.apply(obj)
        last: tuple[Any, ...] = ()
        last_analysis = None
        misbehaving = False
        deadline = time.monotonic() + 180
        st: dict[str, Any] = {}
        seen = self.weights.setdefault(name, [])
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
            if misbehave_at is not None and not misbehaving and (st.get("canaryWeight") or 0) >= misbehave_at:
                _http("POST", f"{self.tracks['canary'].url}/control", {"error_rate": 0.2})
                misbehaving = True
                self.say("  [demo] the canary starts failing: 20 % of its workflow steps now raise "
                         "non-retryable errors (DB_SCHEMA_MISMATCH, NULL_REFERENCE)")
            if st.get("phase") in FINAL:
                break
            time.sleep(0.5)
        if misbehaving:
            _http("POST", f"{self.tracks['canary'].url}/control", {"error_rate": 0.0})
        if st.get("phase") not in FINAL:
            raise TimeoutError(f"{name} did not finish: {st.get('phase')} {st.get('message')}")
        report = st.get("report") or {}
        env = self._stable_env()
        self.say(f"{name}: {st['phase']}; the stable reads {self._stable_flags()} from "
                 f"{FLAGS_CONFIGMAP} (env overrides: "
                 f"{ {k: v for k, v in env.items() if k.startswith('AOS_FEATURE_')} or 'none'})")
        self._banner(name, st["phase"], report)
        return st

    def _stable_flags(self) -> dict[str, bool]:
        """The values in the flags file the stable mounts (promotion writes them into the FeatureFlags)."""
        try:
            cm = self._core.read_namespaced_config_map(FLAGS_CONFIGMAP, NAMESPACE)
            flags = json.loads((cm.data or {}).get("flags.json") or "{}").get("flags") or {}
        except Exception:  # a demo line, not a decision
            return {}
        return {k: bool(v.get("value")) for k, v in sorted(flags.items())}

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
        # Every track's SDK spool must be empty: then the API has every failure the tracks reported.
        def drained() -> bool:
            return all(_http("GET", f"{t.url}/control")[1]["spool_pending"] == 0 for t in self.tracks.values())
        self._wait(drained, "the SDK spools to drain into the failures API", 60)
        reported = {t.name: dict(_http("GET", f"{t.url}/control")[1]["reported"]) for t in self.tracks.values()}
        code, stats = _http("GET", f"{self.api_url}/api/v1/failures/stats?since_hours=1", token=self.read_token)
        if code != 200:
            raise RuntimeError(f"stats: HTTP {code}: {stats}")
        return stats, reported

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
        for th in self._threads:
            th.join(5)
        # backends first (their SDK flushes), the operator before the control plane
        for name in [n for n in self.procs if n.startswith("backend-")] + ["operator", "failures-api"]:
            p = self.procs.pop(name, None)
            if p is not None:
                _proc.stop_pid(p.pid)
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

"""A small real Kubernetes cluster on loopback: control plane, workload controllers, nodes.

etcd + kube-apiserver (RBAC on, client-certificate auth) + kube-controller-manager with the
workload controllers (:data:`KCM_CONTROLLERS`: deployments roll out through ReplicaSets, Jobs
run, nodes' taints follow their readiness, namespaces and owned objects are cleaned up) + kube-scheduler +
kwok, which manages :data:`rollguard.localenv.kwok.NODE_COUNT` nodes and plays their kubelets:
pods are scheduled, get a loopback address (127.10.<node>.<n>) and become Running and Ready, so
a Deployment becomes Available with no one writing its status by hand. No container runs:
the pod runner (:mod:`rollguard.localenv.podrunner`) starts a local process for the pods that
ask for one.

    python -m rollguard.localenv.controlplane up|down|env [--dir DIR]

is what ``hack/control-plane.sh`` runs; ``tests/conftest.py`` uses :class:`ControlPlane`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rollguard.localenv import _proc, kwok, podnet
from rollguard.localenv.certs import CertificateAuthority, service_account_key
from rollguard.localenv.podrunner import RUN_LABEL
from rollguard.localenv.prometheus import KubernetesAPI, Prometheus, backend_podmonitor
from rollguard.localenv.svcproxy import ADDRESS_ANNOTATION

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = Path(os.environ.get("ROLLGUARD_CACHE", Path.home() / ".cache" / "rollguard")) / "controlplane"
KCM_CONTROLLERS = ",".join([
    "deployment-controller", "replicaset-controller", "job-controller",
    # lifts the not-ready taint the apiserver puts on every new node once kwok reports it Ready
    "node-lifecycle-controller",
    # Not the endpoints and endpointslice controllers: the apiserver refuses Endpoints and
    # EndpointSlices with loopback addresses ("may not be in the loopback range"), and every
    # pod address here is one, so they would only retry. Who needs a Service's endpoints
    # (the demo's ingress stand-in) reads the pods its selector picks, as they would.
    "serviceaccount-controller",
    "garbage-collector-controller", "namespace-controller",
])
# Prometheus reads pods through the API with an identity of its own (read-only, see
# PROMETHEUS_RBAC), as kube-prometheus' Prometheus does with its ServiceAccount.
PROMETHEUS_USER = "rollguard-local:prometheus"


def binaries_dir() -> Path:
    """Where etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok are.

    Builds them (``hack/build-control-plane.sh``) when they are missing; ``ROLLGUARD_BIN_DIR``
    names a directory that already has them.
    """
    override = os.environ.get("ROLLGUARD_BIN_DIR")
    if override:
        return Path(override)
    script = REPO_ROOT / "hack" / "build-control-plane.sh"
    if not script.exists():
        raise RuntimeError("ROLLGUARD_BIN_DIR is not set and hack/build-control-plane.sh is not here")
    # The script prints progress on stderr (passed through) and the bin dir on stdout.
    out = subprocess.run(["bash", str(script)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


@dataclass
class State:
    workdir: str
    bin_dir: str
    server: str
    kubeconfig: str
    etcd_pid: int = 0
    apiserver_pid: int = 0
    kcm_pid: int = 0
    scheduler_pid: int = 0
    kwok_pid: int = 0
    pod_net: int = kwok.DEFAULT_POD_NET  # pods get 127.<pod_net>.<node>.<n> (rollguard.localenv.podnet)
    started_seconds: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)


class ControlPlane:
    """Start/stop the control plane in ``workdir``; everything it writes stays there."""

    def __init__(self, workdir: Path, bin_dir: Path | None = None) -> None:
        self.workdir = workdir
        self.bin_dir = bin_dir
        self.state: State | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self.pod_net = kwok.DEFAULT_POD_NET

    # -- paths -------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def kubectl(self) -> Path:
        assert self.bin_dir is not None
        return self.bin_dir / "kubectl"

    def _bin(self, name: str) -> str:
        assert self.bin_dir is not None
        return str(self.bin_dir / name)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> State:
        t0 = time.monotonic()
        if self.bin_dir is None:
            self.bin_dir = binaries_dir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki = self.workdir / "pki"
        ca = CertificateAuthority(pki)
        serving = ca.issue("apiserver", cn="kube-apiserver", server=True,
                           hosts=("127.0.0.1", "localhost", "kubernetes", "kubernetes.default"))
        admin = ca.issue("admin", cn="rollguard-admin", org="system:masters")
        # The controller manager runs with its own identity (no per-controller service accounts,
        # nothing issues their tokens here), so it needs the rights of all the controllers it runs.
        kcm = ca.issue("kube-controller-manager", cn="system:kube-controller-manager", org="system:masters")
        # The scheduler and kwok get the identities the bootstrap RBAC knows (scheduler) or the
        # rights a kubelet and node controller need between them (kwok, in system:masters).
        scheduler = ca.issue("kube-scheduler", cn="system:kube-scheduler")
        kwok_id = ca.issue("kwok", cn="system:kwok", org="system:masters")
        sa_key = service_account_key(pki / "sa.key")

        etcd_port, etcd_peer, api_port, kcm_port, sched_port, kwok_port = (_proc.free_port() for _ in range(6))
        # Claimed for this process now, and for the cluster's own processes once they run (an
        # `up` cluster outlives the command that started it).
        self.pod_net = podnet.claim()
        logs = self.workdir / "logs"

        etcd = _proc.start([
            self._bin("etcd"), "--name", "rollguard", "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
            "--initial-cluster", f"rollguard=http://127.0.0.1:{etcd_peer}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ], logs / "etcd.log")
        self._procs.append(etcd)
        _proc.wait_for(lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"), timeout=timeout,
                       what="etcd", proc=etcd, log=logs / "etcd.log")

        server = f"https://127.0.0.1:{api_port}"
        apiserver = _proc.start([
            self._bin("kube-apiserver"),
            "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(api_port),
            "--tls-cert-file", str(serving.cert), "--tls-private-key-file", str(serving.key),
            "--client-ca-file", str(ca.pair.cert),
            "--authorization-mode", "RBAC",
            "--service-account-issuer", server,
            "--service-account-key-file", str(sa_key),
            "--service-account-signing-key-file", str(sa_key),
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--allow-privileged=true",
            # nothing creates ServiceAccount tokens or default service accounts here
            "--disable-admission-plugins", "ServiceAccount",
            "--cert-dir", str(pki),
            "-v", "1",
        ], logs / "kube-apiserver.log")
        self._procs.append(apiserver)

        _write_kubeconfig(self.kubeconfig, server, ca.pair.cert, admin.cert, admin.key, user="rollguard-admin")
        ctx = _tls_context(ca.pair.cert, admin.cert, admin.key)
        _proc.wait_for(lambda: _http_ok(f"{server}/readyz", ctx), timeout=timeout, what="kube-apiserver",
                       proc=apiserver, log=logs / "kube-apiserver.log")

        kcm_kubeconfig = self.workdir / "kube-controller-manager.kubeconfig"
        _write_kubeconfig(kcm_kubeconfig, server, ca.pair.cert, kcm.cert, kcm.key,
                          user="system:kube-controller-manager")
        controller_manager = _proc.start([
            self._bin("kube-controller-manager"),
            "--kubeconfig", str(kcm_kubeconfig),
            "--authentication-kubeconfig", str(kcm_kubeconfig),
            "--authorization-kubeconfig", str(kcm_kubeconfig),
            "--authentication-skip-lookup=true",
            "--controllers", KCM_CONTROLLERS,
            "--leader-elect=false", "--use-service-account-credentials=false",
            "--bind-address", "127.0.0.1", "--secure-port", str(kcm_port),
            "--cert-dir", str(self.workdir / "kcm-certs"),
            "-v", "1",
        ], logs / "kube-controller-manager.log")
        self._procs.append(controller_manager)

        sched_kubeconfig = self.workdir / "kube-scheduler.kubeconfig"
        _write_kubeconfig(sched_kubeconfig, server, ca.pair.cert, scheduler.cert, scheduler.key,
                          user="system:kube-scheduler")
        kube_scheduler = _proc.start([
            self._bin("kube-scheduler"),
            "--kubeconfig", str(sched_kubeconfig),
            "--authentication-kubeconfig", str(sched_kubeconfig),
            "--authorization-kubeconfig", str(sched_kubeconfig),
            "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", str(sched_port),
            "-v", "1",
        ], logs / "kube-scheduler.log")
        self._procs.append(kube_scheduler)

        kwok_kubeconfig = self.workdir / "kwok.kubeconfig"
        _write_kubeconfig(kwok_kubeconfig, server, ca.pair.cert, kwok_id.cert, kwok_id.key, user="system:kwok")
        kwok_proc = _proc.start(kwok.command(self._bin("kwok"), kwok_kubeconfig,
                                             kwok.write_config(self.workdir / "kwok.yaml"), kwok_port,
                                             net=self.pod_net),
                                logs / "kwok.log")
        self._procs.append(kwok_proc)

        self.state = State(workdir=str(self.workdir), bin_dir=str(self.bin_dir), server=server,
                           kubeconfig=str(self.kubeconfig), etcd_pid=etcd.pid, apiserver_pid=apiserver.pid,
                           kcm_pid=controller_manager.pid, scheduler_pid=kube_scheduler.pid,
                           kwok_pid=kwok_proc.pid, pod_net=self.pod_net)
        podnet.hold(self.pod_net, [etcd.pid, apiserver.pid, kwok_proc.pid])
        (self.workdir / "state.json").write_text(json.dumps(asdict(self.state), indent=2))
        self._add_nodes(timeout)
        self._apply(PROMETHEUS_RBAC)
        self.state.started_seconds = round(time.monotonic() - t0, 2)
        (self.workdir / "state.json").write_text(json.dumps(asdict(self.state), indent=2))
        return self.state

    def _apply(self, manifest: str) -> None:
        subprocess.run([str(self.kubectl), "--kubeconfig", str(self.kubeconfig), "apply", "--server-side",
                        "--field-manager", "rollguard-localenv", "-f", "-"],
                       input=manifest, text=True, check=True, capture_output=True, timeout=60)

    def _add_nodes(self, timeout: float) -> None:
        """Register kwok's nodes and wait until every one is Ready (kwok marks them).

        A cluster started again in the same directory (``down``, then ``up``) keeps its etcd,
        and with it the nodes of the last run; when this run holds another pod network (the
        last one was still in use), those nodes' ``spec.podCIDR``, which cannot change, is
        wrong: they are deleted first, as a node that comes back with a new range is, and the
        pods bound to them go with them (their Deployments recreate them on the new nodes)."""
        wanted = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in kwok.nodes(net=self.pod_net)}
        listed = subprocess.run([str(self.kubectl), "--kubeconfig", str(self.kubeconfig), "get", "nodes", "-o",
                                 'jsonpath={range .items[*]}{.metadata.name}={.spec.podCIDR}{"\\n"}{end}'],
                                capture_output=True, text=True, timeout=30, check=True).stdout
        stale = [name for name, cidr in (line.split("=", 1) for line in listed.split() if "=" in line)
                 if name in wanted and cidr != wanted[name]]
        if stale:
            subprocess.run([str(self.kubectl), "--kubeconfig", str(self.kubeconfig), "delete", "node", *stale,
                            "--wait=true"], capture_output=True, text=True, timeout=60, check=True)
        self._apply(kwok.nodes_json(net=self.pod_net))
        names = [n["metadata"]["name"] for n in self.nodes()]

        def ready() -> bool:
            out = subprocess.run([str(self.kubectl), "--kubeconfig", str(self.kubeconfig), "get", "nodes", "-o",
                                  'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")]'
                                  '.status}{"\\n"}{end}'], capture_output=True, text=True, timeout=30).stdout
            status = dict(line.split("=", 1) for line in out.split() if "=" in line)
            return all(status.get(n) == "True" for n in names)

        _proc.wait_for(ready, timeout=timeout, what="kwok nodes Ready", log=self.workdir / "logs" / "kwok.log")

    def stop(self) -> None:
        state = self.state or _load_state(self.workdir)
        if state is None:
            return
        addons = [int(state.extra[k]) for k in ("podrunner_pid", "svcproxy_pid", "prometheus_pid") if k in state.extra]
        for pid in (*addons, state.kwok_pid, state.scheduler_pid, state.kcm_pid, state.apiserver_pid, state.etcd_pid):
            if pid:
                _proc.stop_pid(pid)
        for p in self._procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        self._procs.clear()
        (self.workdir / "state.json").unlink(missing_ok=True)
        podnet.release(state.pod_net)

    def add_service_of_process(self, namespace: str, name: str, port: int, url: str) -> None:
        """A Service ``<name>.<namespace>.svc:<port>`` for one of the local cluster's own processes
        (no pod): the service proxy sends its connections to ``url``'s host and port."""
        address = url.removeprefix("http://").rstrip("/")
        self._apply(f"""apiVersion: v1
kind: Namespace
metadata: {{name: {namespace}}}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {namespace}
  annotations: {{"{ADDRESS_ANNOTATION}": "{address}"}}
spec:
  ports: [{{name: http, port: {port}, targetPort: {port}}}]
""")

    def nodes(self) -> list[dict[str, Any]]:
        """The Node objects of this cluster, with their pod ranges (``127.<pod_net>.<i>.0/24``)."""
        return kwok.nodes(net=self.state.pod_net if self.state else self.pod_net)

    def is_running(self) -> bool:
        state = self.state or _load_state(self.workdir)
        if state is None:
            return False
        try:
            os.kill(state.apiserver_pid, 0)
        except ProcessLookupError:
            return False
        return True

    def prometheus_api(self) -> KubernetesAPI:
        """How Prometheus reaches this apiserver: its URL and Prometheus' own read-only identity."""
        assert self.state is not None
        ca = CertificateAuthority(self.workdir / "pki")
        pair = ca.issue("prometheus", cn=PROMETHEUS_USER)
        return KubernetesAPI(self.state.server, ca.pair.cert, pair.cert, pair.key)

    def kubeconfig_for(self, name: str, *, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for another client identity (for RBAC tests): CN=user, O=groups."""
        assert self.state is not None
        ca = CertificateAuthority(self.workdir / "pki")
        pair = ca.issue(f"user-{name}", cn=user, org=groups or None)
        path = self.workdir / f"{name}.kubeconfig"
        _write_kubeconfig(path, self.state.server, ca.pair.cert, pair.cert, pair.key, user=user)
        return path


# Services get cluster IPs in the loopback range too: no private or public range is used.
SERVICE_CIDR = "127.96.0.0/16"

PROMETHEUS_RBAC = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "rollguard-local:prometheus"}}
rules:
- apiGroups: [""]
  resources: [pods, services, endpoints, namespaces]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "rollguard-local:prometheus"}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "rollguard-local:prometheus"}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: "{PROMETHEUS_USER}"}}]
"""


def _load_state(workdir: Path) -> State | None:
    f = workdir / "state.json"
    if not f.exists():
        return None
    return State(**json.loads(f.read_text()))


def _tls_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _http_ok(url: str, ctx: ssl.SSLContext | None = None) -> bool:
    with urllib.request.urlopen(url, timeout=2, context=ctx) as r:  # noqa: S310 (loopback URL we built)
        return bool(r.status == 200)


def _write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, *, user: str) -> None:
    cfg = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "rollguard-local", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "rollguard-local", "context": {"cluster": "rollguard-local", "user": user}}],
        "current-context": "rollguard-local",
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    path.chmod(0o600)


def _print_env(state: State) -> None:
    print(f"export KUBECONFIG={state.kubeconfig}")
    print(f'export PATH="{state.bin_dir}:$PATH"')
    if "svcproxy_url" in state.extra:  # in-cluster addresses (http://<service>.<namespace>.svc) answer
        print(f"export http_proxy={state.extra['svcproxy_url']}")
        print('export no_proxy="localhost,127.0.0.1${no_proxy:+,$no_proxy}"')


def _start_addons(args: argparse.Namespace, cp: ControlPlane, state: State) -> None:
    """The pod runner, the service proxy and a Prometheus with the chart's backend PodMonitor, as
    background processes; Prometheus answers at ``http://prometheus.monitoring.svc:9090`` too."""
    port = _proc.free_port()
    proxy = _proc.start([sys.executable, "-m", "rollguard.localenv.svcproxy", "--kubeconfig", state.kubeconfig,
                         "--port", str(port)], args.dir / "logs" / "svcproxy.log")
    state.extra["svcproxy_pid"] = str(proxy.pid)
    state.extra["svcproxy_url"] = f"http://127.0.0.1:{port}"
    _proc.wait_for(lambda: _port_open(port), timeout=30, what="the service proxy", proc=proxy,
                   log=args.dir / "logs" / "svcproxy.log")
    runner = _proc.start([sys.executable, "-m", "rollguard.localenv.podrunner", "--kubeconfig", state.kubeconfig,
                          "--dir", str(args.dir / "pods"), "--service-proxy", state.extra["svcproxy_url"]],
                         args.dir / "logs" / "podrunner.log")
    state.extra["podrunner_pid"] = str(runner.pid)
    prom = Prometheus(args.dir / "prometheus", scrape_interval=args.scrape_interval,
                      kubernetes=cp.prometheus_api(), pod_monitors=[backend_podmonitor()])
    prom.start()
    state.extra["prometheus_pid"] = str(prom.pid)
    state.extra["prometheus_url"] = prom.url
    cp.add_service_of_process("monitoring", "prometheus", 9090, prom.url)
    (args.dir / "state.json").write_text(json.dumps(asdict(state), indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="control-plane", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "env", "status"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"state directory (default {DEFAULT_DIR})")
    parser.add_argument("--scrape-interval", default="15s",
                        help="Prometheus' scrape interval for the pods it discovers (default 15s)")
    args = parser.parse_args(argv)
    cp = ControlPlane(args.dir)
    if args.command == "up":
        if cp.is_running():
            state = _load_state(args.dir)
            assert state is not None
            print(f"control plane already running at {state.server}", file=sys.stderr)
        else:
            print("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok ...", file=sys.stderr)
            state = cp.start()
            _start_addons(args, cp, state)
            print(f"cluster up at {state.server} in {state.started_seconds}s with {len(cp.nodes())} kwok nodes, "
                  f"the pod runner, the service proxy at {state.extra['svcproxy_url']} and Prometheus at "
                  f"{state.extra['prometheus_url']} (http://prometheus.monitoring.svc:9090 through the proxy; "
                  f"logs: {args.dir}/logs)",
                  file=sys.stderr)
        print("use it with:\n", file=sys.stderr)
        _print_env(state)
        print(f"\n# kubectl get nodes; pods labelled {RUN_LABEL}=true run as local processes;"
              f"\n# stop with: hack/control-plane.sh down --dir {args.dir}", file=sys.stderr)
        return 0
    if args.command == "down":
        running = cp.is_running()
        cp.stop()
        print("control plane stopped" if running else "control plane was not running", file=sys.stderr)
        return 0
    state = _load_state(args.dir)
    if state is None or not cp.is_running():
        print(f"no control plane running in {args.dir}; start one with: hack/control-plane.sh up", file=sys.stderr)
        return 1
    if args.command == "env":
        _print_env(state)
    else:
        print(json.dumps(asdict(state), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

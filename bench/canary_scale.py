"""One operator running N CanaryRollouts at once: wall time to finish, operator CPU and memory.

Baseline measured in the same run: the same operator idle (no rollouts) for the same length
of time. Each rollout has its own target Deployment, Service and Ingress; all query the same
real Prometheus.

    PYTHONPATH=. .venv/bin/python bench/canary_scale.py [--rollouts 100] [--interval 5]

(from the checkout's root: it imports the test support code; ``bash bench/run`` sets the path itself)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.prometheus import Prometheus
from tests.integration.test_canary_rollout import App
from tests.support.kube import CRD_DIR, Kubectl, OperatorProcess, eventually

TICKS = os.sysconf("SC_CLK_TCK")
AVAILABLE = {"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1}}


class Sampler:
    """CPU seconds and RSS of one process, sampled every 0.5 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.rss_max, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _run(self) -> None:
        while not self.stop.is_set():
            self.rss_max = max(self.rss_max, int(self.rss_mb()))
            time.sleep(0.5)

    def measure(self, seconds: float | None = None, until: Any = None) -> tuple[float, float, int]:
        """(wall seconds, CPU seconds, max RSS MB) over a fixed time or until ``until()`` is true."""
        self.rss_max = 0
        self.stop.clear()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        c0, t0 = self.cpu(), time.monotonic()
        if seconds is not None:
            time.sleep(seconds)
        else:
            while not until():
                time.sleep(1)
        wall, cpu = time.monotonic() - t0, self.cpu() - c0
        self.stop.set()
        self.thread.join()
        return wall, cpu, self.rss_max


def objects(i: int, ns: str, prom: str, interval: int) -> list[dict[str, Any]]:
    name = f"web{i}"
    labels = {"app": name}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
         "spec": {"selector": labels, "ports": [{"port": 80}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name, "namespace": ns},
         "spec": {"rules": [{"host": f"{name}.example", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                  "backend": {"service": {"name": name, "port": {"number": 80}}}}]}}]}},
    ]


def rollout(i: int, ns: str, prom: str, interval: int) -> dict[str, Any]:
    q = 'max(app_error_ratio{namespace="' + ns + '", track="{{track}}"})'
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "CanaryRollout",
            "metadata": {"name": f"web{i}", "namespace": ns},
            "spec": {"targetRef": {"name": f"web{i}"}, "change": {"image": {"container": "web", "image": "web:2"}},
                     "traffic": {"provider": "nginx", "ingress": {"name": f"web{i}"}},
                     "steps": [{"setWeight": 20}, {"setWeight": 50}, {"setWeight": 100}],
                     "progressDeadlineSeconds": 1800,
                     "analysis": {"interval": f"{interval}s", "prometheus": {"address": prom}, "metrics": [
                         {"name": "error-rate", "query": q, "rule": {"maxDeltaPercent": 50}}]}}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rollouts", type=int, default=100)
    ap.add_argument("--interval", type=int, default=5)
    args = ap.parse_args()
    n, ns = args.rollouts, "scale"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cp, prom = ControlPlane(tmp / "cp"), Prometheus(tmp / "prom")
        cp.start()
        prom.start()
        op: OperatorProcess | None = None
        apps: list[App] = []
        try:
            k = Kubectl(cp.kubectl, cp.kubeconfig)
            for p in sorted(CRD_DIR.glob("*.yaml")):
                k("apply", "--server-side", "-f", str(p))
            k("create", "namespace", ns)
            apps = [App(tmp, t) for t in ("stable", "canary")]
            for app, track in zip(apps, ("stable", "canary"), strict=True):
                prom.set_targets(track, [f"127.0.0.1:{app.port}"], {"track": track, "namespace": ns})
            eventually(lambda: len(prom.query(f'app_error_ratio{{namespace="{ns}"}}')) == 2, timeout=30)
            config.load_kube_config(config_file=str(cp.kubeconfig))
            api = client.ApiClient()
            apps_api, co = client.AppsV1Api(api), client.CustomObjectsApi(api)
            from kubernetes.utils import create_from_dict
            for i in range(n):
                for obj in objects(i, ns, prom.url, args.interval):
                    create_from_dict(api, obj)
                apps_api.patch_namespaced_deployment_status(f"web{i}", ns, AVAILABLE)
            op = OperatorProcess(cp.kubeconfig, tmp / "operator.log", namespaces=(ns,)).start()
            time.sleep(5)  # startup
            assert op.proc is not None
            sampler = Sampler(op.proc.pid)
            idle = sampler.measure(seconds=20)
            for i in range(n):
                co.create_namespaced_custom_object("rollguard.io", "v1alpha1", ns, "canaryrollouts",
                                                   rollout(i, ns, prom.url, args.interval))
            stop = threading.Event()

            def mark_canaries() -> None:  # no kubelet: say the canary pods are available
                while not stop.is_set():
                    for dep in apps_api.list_namespaced_deployment(ns, label_selector="rollguard.io/track").items:
                        if dep.metadata and dep.metadata.name and not (dep.status and dep.status.available_replicas):
                            apps_api.patch_namespaced_deployment_status(dep.metadata.name, ns, AVAILABLE)
                    time.sleep(1)

            marker = threading.Thread(target=mark_canaries, daemon=True)
            marker.start()

            def listed() -> list[dict[str, Any]]:
                got: Any = co.list_namespaced_custom_object("rollguard.io", "v1alpha1", ns, "canaryrollouts")
                return list(got["items"])

            def done() -> bool:
                items = listed()
                phases = [(o.get("status") or {}).get("phase") for o in items]
                return all(p in ("Succeeded", "RolledBack", "Failed") for p in phases)

            busy = sampler.measure(until=done)
            stop.set()
            items = listed()
            phases: dict[str, int] = {}
            for o in items:
                phase = (o.get("status") or {}).get("phase", "?")
                phases[phase] = phases.get(phase, 0) + 1
        finally:
            if op is not None:
                op.stop()
            for app in apps:
                app.stop()
            prom.stop()
            cp.stop()
    wall, cpu, rss = busy
    iwall, icpu, irss = idle
    ideal = 3 * args.interval
    print(f"{n} rollouts, 3 weight steps each, analysis interval {args.interval}s "
          f"(a lone rollout needs >= {ideal}s); outcomes: {phases}")
    print(f"wall time to all finished: {wall:.1f}s ({wall / ideal:.2f}x a lone rollout's minimum)")
    print(f"operator CPU: {cpu:.1f}s over {wall:.1f}s = {100 * cpu / wall:.0f}% of one core; max RSS {rss} MB")
    print(f"baseline, same operator idle: {100 * icpu / iwall:.1f}% of one core; max RSS {irss} MB")
    print(f"ratio busy/idle: CPU {(cpu / wall) / max(icpu / iwall, 1e-3):.1f}x, RSS {rss / max(irss, 1):.2f}x")


if __name__ == "__main__":
    main()

"""Time from a breach becoming visible in Prometheus to the canary's traffic weight being 0.

Target: within one analysis interval plus 1 s. Baseline measured in the same run: a manual
`abort` request to weight 0 (the operator's own reaction time, without waiting for analysis).

On the realistic local cluster: the target is the demo backend as pods (the pod runner runs
them), Prometheus finds them through the API with the chart's backend PodMonitor (scraping
every second), the operator labels the tracks, and the users' traffic enters through the
Ingress, split by the canary weight the operator writes (the test suite's ingress player). No
status, label or metric is written by the bench. The breach: the canary's pods start failing
half of their runs (the backend's ``fail_rate``); "visible" is the first moment the rollout's
own error-rate query, rendered for the canary, returns more than its threshold.

    PYTHONPATH=. .venv/bin/python bench/canary_reaction.py [--runs 3] [--interval 4]

(from the checkout's root: it imports the test support code; ``bash bench/run`` sets the path itself)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client, config

from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.podrunner import RUN_LABEL, PodRunner
from rollguard.localenv.prometheus import Prometheus, backend_podmonitor
from tests.support.kube import CRD_DIR, Kubectl, OperatorProcess, eventually
from tests.support.traffic import Gateway, answers, control, endpoints

TARGET = "web"
THRESHOLD = 0.05
SEL = 'namespace="{{namespace}}", rollguard_io_track="{{track}}"'
ERROR_RATE = (f'sum(rate(http_requests_total{{{SEL}, code=~"5.."}}[{{{{interval}}}}]))'
              f" / sum(rate(http_requests_total{{{SEL}}}[{{{{interval}}}}]))")


def target_objects() -> list[dict[str, Any]]:
    labels = {"app": TARGET}
    container = {"name": TARGET, "image": "example.org/web:1", "command": ["python", "-m", "rollguard.demo.backend"],
                 "args": ["--host", "$(POD_IP)", "--port", "8000", "--spool", "/var/lib/web/spool.db",
                          "--failures-url", "http://127.0.0.1:9", "--transient-rate", "0"],
                 "ports": [{"name": "http", "containerPort": 8000}],
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
                 "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                 "volumeMounts": [{"name": "spool", "mountPath": "/var/lib/web"}]}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": TARGET, "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": {**labels, RUN_LABEL: "true"}},
                               "spec": {"containers": [container], "volumes": [{"name": "spool", "emptyDir": {}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": TARGET},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 8000, "targetPort": "http"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": TARGET},
         "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example", "http": {"paths": [
             {"path": "/", "pathType": "Prefix",
              "backend": {"service": {"name": TARGET, "port": {"number": 8000}}}}]}}]}},
    ]


def rollout(prom: Prometheus, interval: int) -> dict[str, Any]:
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "CanaryRollout", "metadata": {"name": "web-canary-rollout"},
            "spec": {"targetRef": {"name": TARGET},
                     "change": {"image": {"container": TARGET, "image": "example.org/web:2"}},
                     "traffic": {"provider": "nginx", "ingress": {"name": TARGET}},
                     "steps": [{"setWeight": 20}, {"pause": {"duration": "1h"}}, {"setWeight": 100}],
                     "progressDeadlineSeconds": 600,
                     "analysis": {"interval": f"{interval}s", "prometheus": {"address": prom.url},
                                  "onNoData": "continue",
                                  "metrics": [{"name": "error-rate", "query": ERROR_RATE, "rule": {"max": THRESHOLD},
                                               "failureLimit": 0}]}}}


def canary_weight(k: Kubectl, ns: str) -> int:
    p = k("get", "ingress", "web-canary", "-o",
          "jsonpath={.metadata.annotations.nginx\\.ingress\\.kubernetes\\.io/canary-weight}", namespace=ns, check=False)
    return int(p.stdout) if p.returncode == 0 and p.stdout.strip() else 0


def one(k: Kubectl, api: Any, prom: Prometheus, tmp: Path, kubeconfig: Path, interval: int, mode: str) -> float:
    ns = f"b-{uuid.uuid4().hex[:8]}"
    k("create", "namespace", ns)
    (tmp / ns).mkdir()
    core = client.CoreV1Api(api)
    op = OperatorProcess(kubeconfig, tmp / ns / "operator.log", namespaces=(ns,)).start()
    gw: Gateway | None = None
    try:
        for obj in target_objects():
            k.apply(obj, namespace=ns)
        k("rollout", "status", f"deployment/{TARGET}", "--timeout=120s", namespace=ns)
        eventually(lambda: all(answers(e) for e in endpoints(core, ns, TARGET) or ["-"]), timeout=60)
        gw = Gateway(api, ns, "nginx", TARGET, TARGET, 30.0).start()
        k.apply(rollout(prom, interval), namespace=ns)
        eventually(lambda: canary_weight(k, ns) == 20, timeout=120, what="weight 20")
        canary = eventually(lambda: [e for e in endpoints(core, ns, f"{TARGET}-canary") if answers(e)], timeout=60)
        time.sleep(2 * interval)  # a couple of passing checks
        if mode == "breach":
            for ep in canary:
                control(ep, {"fail_rate": 0.5})
            q = ERROR_RATE.replace("{{namespace}}", ns).replace("{{track}}", "canary") \
                .replace("{{interval}}", f"{interval}s")
            eventually(lambda: (r := prom.query(q)) and float(r[0]["value"][1]) > THRESHOLD, timeout=60,
                       interval=0.05, what="the breach visible in Prometheus")
        else:
            k("annotate", "canaryrollout", "web-canary-rollout", "rollguard.io/request=abort",
              f"rollguard.io/request-id={uuid.uuid4().hex}", "--overwrite", namespace=ns)
        t0 = time.monotonic()
        eventually(lambda: canary_weight(k, ns) == 0, timeout=60, interval=0.05, what="weight 0")
        return time.monotonic() - t0
    finally:
        if gw is not None:
            gw.stop()
        op.stop()
        k("delete", "namespace", ns, "--wait=false", check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--interval", type=int, default=4, help="analysis interval, s (the scrape is 1 s: >= 4 scrapes)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cp = ControlPlane(tmp / "cp")
        cp.start()
        prom = Prometheus(tmp / "prom", scrape_interval="1s", kubernetes=cp.prometheus_api(),
                          pod_monitors=[backend_podmonitor()])
        runner = PodRunner(cp.kubeconfig, tmp / "pods")
        try:
            prom.start()
            runner.start()
            k = Kubectl(cp.kubectl, cp.kubeconfig)
            for p in sorted(CRD_DIR.glob("*.yaml")):
                k("apply", "--server-side", "-f", str(p))
            api = config.new_client_from_config(config_file=str(cp.kubeconfig))
            breach = [one(k, api, prom, tmp, cp.kubeconfig, args.interval, "breach") for _ in range(args.runs)]
            abort = [one(k, api, prom, tmp, cp.kubeconfig, args.interval, "abort") for _ in range(args.runs)]
        finally:
            runner.stop()
            prom.stop()
            cp.stop()
    target = args.interval + 1.0
    b, a = statistics.median(breach), statistics.median(abort)
    print("cluster: local (kube-apiserver, controllers, kwok nodes, pod runner, Prometheus pod discovery, 1 s scrape)")
    print(f"analysis interval: {args.interval}s; target: breach visible -> weight 0 within {target:.1f}s")
    print(f"breach visible in Prometheus -> weight 0: median {b:.2f}s, max {max(breach):.2f}s "
          f"({', '.join(f'{x:.2f}' for x in breach)})")
    print(f"baseline, abort request -> weight 0:      median {a:.2f}s, max {max(abort):.2f}s "
          f"({', '.join(f'{x:.2f}' for x in abort)})")
    print(f"ratio breach/baseline: {b / a:.2f}x; worst breach / target: {max(breach) / target:.2f} "
          f"({'within' if max(breach) <= target else 'OVER'} target)")


if __name__ == "__main__":
    main()

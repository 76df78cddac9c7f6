"""Time from a breach becoming visible in Prometheus to the canary's traffic weight being 0.

Target: within one analysis interval plus 1 s. Baseline measured in the same run: a manual
`abort` request to weight 0 (the operator's own reaction time, without waiting for analysis).

    python bench/canary_reaction.py [--runs 3] [--interval 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.prometheus import Prometheus
from tests.integration.test_canary_rollout import App, rollout, setup_target
from tests.support.kube import CRD_DIR, Kubectl, OperatorProcess, eventually


def canary_weight(k: Kubectl, ns: str) -> int:
    p = k("get", "ingress", "web-canary", "-o",
          "jsonpath={.metadata.annotations.nginx\\.ingress\\.kubernetes\\.io/canary-weight}", namespace=ns, check=False)
    return int(p.stdout) if p.returncode == 0 and p.stdout.strip() else 0


def mark_canary(k: Kubectl, ns: str) -> bool:
    if k("get", "deployment", "web-canary", namespace=ns, check=False).returncode != 0:
        return False
    k("patch", "deployment", "web-canary", "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1}}), namespace=ns)
    return True


def one(k: Kubectl, prom: Prometheus, tmp: Path, kubeconfig: Path, interval: int, mode: str) -> float:
    ns = f"b-{uuid.uuid4().hex[:8]}"
    k("create", "namespace", ns)
    (tmp / ns).mkdir()
    apps = {t: App(tmp / ns, t) for t in ("stable", "canary")}
    for track, app in apps.items():
        prom.set_targets(f"{ns}-{track}", [f"127.0.0.1:{app.port}"], {"track": track, "namespace": ns})
    op = OperatorProcess(kubeconfig, tmp / ns / "operator.log", namespaces=(ns,)).start()
    try:
        eventually(lambda: len(prom.query(f'app_error_ratio{{namespace="{ns}"}}')) == 2, timeout=30)
        setup_target(k, ns)
        obj = rollout(ns, prom, steps=[{"setWeight": 20}, {"pause": {"duration": "1h"}}, {"setWeight": 100}])
        obj["spec"]["analysis"]["interval"] = f"{interval}s"
        k.apply(obj, namespace=ns)
        eventually(lambda: mark_canary(k, ns), timeout=60, what="canary deployment")
        eventually(lambda: canary_weight(k, ns) == 20, timeout=60, what="weight 20")
        time.sleep(interval)  # let a couple of passing checks happen
        if mode == "breach":
            apps["canary"].set(error_ratio=0.05, golden=0)
            q = f'max(app_error_ratio{{namespace="{ns}", track="canary"}})'
            eventually(lambda: float(prom.query(q)[0]["value"][1]) == 0.05, timeout=30, interval=0.05)
        else:
            k("annotate", "canaryrollout", "web-canary-rollout", "rollguard.io/request=abort",
              f"rollguard.io/request-id={uuid.uuid4().hex}", "--overwrite", namespace=ns)
        t0 = time.monotonic()
        eventually(lambda: canary_weight(k, ns) == 0, timeout=60, interval=0.05, what="weight 0")
        return time.monotonic() - t0
    finally:
        op.stop()
        for track, app in apps.items():
            prom.remove_targets(f"{ns}-{track}")
            app.stop()
        k("delete", "namespace", ns, "--wait=false", check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--interval", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cp, prom = ControlPlane(tmp / "cp"), Prometheus(tmp / "prom")
        cp.start()
        prom.start()
        try:
            k = Kubectl(cp.kubectl, cp.kubeconfig)
            for p in sorted(CRD_DIR.glob("*.yaml")):
                k("apply", "--server-side", "-f", str(p))
            breach = [one(k, prom, tmp, cp.kubeconfig, args.interval, "breach") for _ in range(args.runs)]
            abort = [one(k, prom, tmp, cp.kubeconfig, args.interval, "abort") for _ in range(args.runs)]
        finally:
            prom.stop()
            cp.stop()
    target = args.interval + 1.0
    b, a = statistics.median(breach), statistics.median(abort)
    print(f"analysis interval: {args.interval}s; target: breach visible -> weight 0 within {target:.1f}s")
    print(f"breach visible in Prometheus -> weight 0: median {b:.2f}s, max {max(breach):.2f}s "
          f"({', '.join(f'{x:.2f}' for x in breach)})")
    print(f"baseline, abort request -> weight 0:      median {a:.2f}s, max {max(abort):.2f}s "
          f"({', '.join(f'{x:.2f}' for x in abort)})")
    print(f"ratio breach/baseline: {b / a:.2f}x; worst breach / target: {max(breach) / target:.2f} "
          f"({'within' if max(breach) <= target else 'OVER'} target)")


if __name__ == "__main__":
    main()

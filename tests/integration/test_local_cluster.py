"""The local cluster behaves as a cluster: Deployments roll out into Running pods on kwok's
nodes, pods have loopback addresses, the pod runner runs the pods that ask with their env and
volumes, and Prometheus finds pods through the API with the chart's PodMonitor relabelling."""

from __future__ import annotations

import ipaddress
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rollguard.localenv import podnet
from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.podrunner import RUN_LABEL, PodRunner
from rollguard.localenv.prometheus import Prometheus
from tests.support.kube import Kubectl, eventually

pytestmark = pytest.mark.integration
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def deployment(name: str, *, replicas: int = 1, image: str = "web:1", run: bool = False,
               container: dict[str, Any] | None = None, volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    c = {"name": name, "image": image, **(container or {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": {**labels, **({RUN_LABEL: "true"} if run else {})}},
                                  "spec": {"containers": [c], "volumes": volumes or []}}}}


def pods(kubectl: Kubectl, ns: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.get_json("pods", "-l", f"app={app}", namespace=ns)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as r:
        return str(r.read().decode())


def answer(url: str) -> str | None:
    """The body at ``url``, or None while nothing answers there (the process is starting)."""
    try:
        return http_get(url)
    except OSError:
        return None


def test_a_deployment_rolls_out_into_running_pods_on_kwok_nodes(control_plane: ControlPlane, kubectl: Kubectl,
                                                                namespace: str) -> None:
    kubectl.apply(deployment("web", replicas=3), namespace=namespace)
    kubectl("rollout", "status", "deployment/web", "--timeout=90s", namespace=namespace)
    dep = kubectl.get_json("deployment", "web", namespace=namespace)
    assert dep["status"]["availableReplicas"] == 3
    assert {"type": "Available", "status": "True"}.items() <= \
        next(c for c in dep["status"]["conditions"] if c["type"] == "Available").items()
    running = pods(kubectl, namespace, "web")
    nodes = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in control_plane.nodes()}
    assert len(running) == 3
    for p in running:
        assert p["status"]["phase"] == "Running"
        ip = ipaddress.ip_address(p["status"]["podIP"])
        assert ip in LOOPBACK and ip in ipaddress.ip_network(nodes[p["spec"]["nodeName"]])

    # a template edit rolls out through a new ReplicaSet, by the real Deployment controller
    kubectl("set", "image", "deployment/web", "web=web:2", namespace=namespace)
    kubectl("rollout", "status", "deployment/web", "--timeout=90s", namespace=namespace)
    sets = kubectl.get_json("replicasets", "-l", "app=web", namespace=namespace)["items"]
    by_image = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in sets}
    assert set(by_image) == {"web:1", "web:2"}
    assert by_image["web:1"]["spec"]["replicas"] == 0 and by_image["web:2"]["status"]["readyReplicas"] == 3
    assert eventually(lambda: sorted(p["spec"]["containers"][0]["image"] for p in pods(kubectl, namespace, "web"))
                      == ["web:2"] * 3, timeout=30, what="only web:2 pods left")


def backend(name: str) -> dict[str, Any]:
    """The demo backend as a pod: it listens on its pod address, which it reads from the downward API."""
    return deployment(name, run=True, container={
        "command": ["python", "-m", "rollguard.demo.backend"],
        "args": ["--host", "$(POD_IP)", "--port", "8000", "--failures-url", "http://127.0.0.1:9",
                 "--spool", "/var/lib/backend/spool.db"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "http", "containerPort": 8000}],
        # Ready once it answers, as a real backend's Deployment says (the pod runner runs the probe)
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
        "volumeMounts": [{"name": "spool", "mountPath": "/var/lib/backend"}]},
        volumes=[{"name": "spool", "emptyDir": {}}])


@pytest.mark.parametrize("interval", ["5s", "15s"])
def test_a_backend_pod_answers_on_its_ip_and_prometheus_finds_it_through_the_api(
        request: pytest.FixtureRequest, kubectl: Kubectl, namespace: str, pod_runner: PodRunner,
        interval: str) -> None:
    prom: Prometheus = request.getfixturevalue(f"pod_prometheus_{interval}")
    kubectl.apply(backend("demo-backend"), namespace=namespace)
    kubectl("rollout", "status", "deployment/demo-backend", "--timeout=90s", namespace=namespace)
    [pod] = pods(kubectl, namespace, "demo-backend")
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    assert json.loads(eventually(lambda: answer(f"http://{ip}:8000/healthz"), timeout=60,
                                 what="the backend answering on its pod IP")) == {"ok": True}

    # discovered through the API; the series carry the pod's namespace, name and app label
    up = f'up{{namespace="{namespace}", pod="{name}", app="demo-backend", job="monitoring/rollguard-backends"}}'
    eventually(lambda: prom.query(f"{up} == 1"), timeout=90, what=f"Prometheus scraping {name}")
    series = prom.query(f'http_requests_total{{namespace="{namespace}", pod="{name}"}}')
    assert {s["metric"]["container"] for s in series} == {"demo-backend"}
    [target] = [t for t in prom.targets() if t["labels"].get("pod") == name]
    assert target["scrapeInterval"] == interval and target["scrapeUrl"] == f"http://{ip}:8000/metrics"

    # the pod goes: its process stops and Prometheus drops the target; the Deployment replaces it
    key = f"{namespace}/{name}/demo-backend"
    assert key in pod_runner.processes()
    kubectl("delete", "pod", name, "--wait=true", namespace=namespace)
    eventually(lambda: key not in pod_runner.processes(), timeout=30, what="the pod's process to stop")
    with pytest.raises(OSError):
        http_get(f"http://{ip}:8000/healthz")
    eventually(lambda: not [t for t in prom.targets() if t["labels"].get("pod") == name], timeout=60,
               what="Prometheus to drop the deleted pod's target")
    [new] = eventually(lambda: [p for p in pods(kubectl, namespace, "demo-backend")
                                if p["metadata"]["name"] != name and p["status"].get("podIP")] or None,
                       timeout=60, what="the replacement pod")
    eventually(lambda: answer(f"http://{new['status']['podIP']}:8000/healthz"), timeout=60,
               what="the replacement pod answering")


def test_the_pod_runner_gives_a_process_its_env_and_volumes_as_the_kubelet_does(
        kubectl: Kubectl, namespace: str, pod_runner: PodRunner) -> None:
    kubectl.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "site"},
                   "data": {"index.html": "v1", "greeting": "hello"}}, namespace=namespace)
    kubectl.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                   "stringData": {"token": "s3cret"}}, namespace=namespace)
    # The process writes its env into an emptyDir and serves it next to the ConfigMap volume.
    script = ('env > /var/www/env.txt && ln -s /etc/site /var/www/site && '
              f'exec {sys.executable} -m http.server --bind "$POD_IP" 8000 --directory /var/www')
    kubectl.apply(deployment("files", run=True, container={
        "command": ["sh", "-c", script],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "site", "key": "greeting"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                {"name": "URL", "value": "http://$(POD_IP):8000"}],
        "volumeMounts": [{"name": "www", "mountPath": "/var/www"},
                         {"name": "site", "mountPath": "/etc/site", "readOnly": True}]},
        volumes=[{"name": "www", "emptyDir": {}}, {"name": "site", "configMap": {"name": "site"}}]),
        namespace=namespace)
    kubectl("rollout", "status", "deployment/files", "--timeout=90s", namespace=namespace)
    [pod] = pods(kubectl, namespace, "files")
    ip = pod["status"]["podIP"]
    env_text = eventually(lambda: answer(f"http://{ip}:8000/env.txt"), timeout=60, what="the pod's env")
    env = dict(line.split("=", 1) for line in env_text.splitlines() if "=" in line)
    assert env["POD_IP"] == ip and env["POD_NAME"] == pod["metadata"]["name"]
    assert env["GREETING"] == "hello" and env["TOKEN"] == "s3cret" and env["URL"] == f"http://{ip}:8000"
    assert http_get(f"http://{ip}:8000/site/index.html") == "v1"
    pid = pod_runner.processes()[f"{namespace}/{pod['metadata']['name']}/files"]

    # a ConfigMap edit reaches the running process' mount (..data swapped), no restart
    kubectl("patch", "configmap", "site", "--type=merge", "-p", json.dumps({"data": {"index.html": "v2"}}),
            namespace=namespace)
    eventually(lambda: answer(f"http://{ip}:8000/site/index.html") == "v2", timeout=30,
               what="the new ConfigMap content in the mount")
    assert pod_runner.processes()[f"{namespace}/{pod['metadata']['name']}/files"] == pid


def job(name: str, script: str, *, restart_policy: str = "Never", backoff_limit: int = 0) -> dict[str, Any]:
    """A Job whose one pod the pod runner runs: ``script`` is its Python program."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": backoff_limit, "template": {
                "metadata": {"labels": {RUN_LABEL: "true"}},
                "spec": {"restartPolicy": restart_policy, "containers": [{
                    "name": "main", "image": "python:3", "command": ["python", "-c", script],
                    "volumeMounts": [{"name": "work", "mountPath": "/var/lib/job"}]}],
                    "volumes": [{"name": "work", "emptyDir": {}}]}}}}


def job_condition(kubectl: Kubectl, ns: str, name: str) -> str | None:
    """``Complete`` or ``Failed`` once the Job has ended (its condition with status True), else None."""
    conditions = kubectl.get_json("job", name, namespace=ns).get("status", {}).get("conditions") or []
    return next((c["type"] for c in conditions if c["status"] == "True" and c["type"] in ("Complete", "Failed")),
                None)


def test_a_job_run_by_the_pod_runner_ends_with_its_process_and_its_exit_code(
        kubectl: Kubectl, namespace: str, pod_runner: PodRunner) -> None:
    """A Job's pod is Running while its process runs, and ends as the process does: Complete on
    exit 0, Failed with the container's exit code otherwise, retried in place on OnFailure."""
    ok = job("ok", "import pathlib, time; time.sleep(2); pathlib.Path('/var/lib/job/done').write_text('1'); "
                   "print('migrated')")
    fails = job("fails", "import sys; print('no database'); sys.exit(3)")
    # OnFailure: the container restarts in the same pod (its emptyDir survives) until it exits 0
    retried = job("retried", "import pathlib, sys; p = pathlib.Path('/var/lib/job/tried'); "
                             "sys.exit(0) if p.exists() else (p.write_text('1'), sys.exit(1))",
                  restart_policy="OnFailure", backoff_limit=3)
    for j in (ok, fails, retried):
        kubectl.apply(j, namespace=namespace)

    def pod_of(name: str) -> dict[str, Any]:
        [pod] = kubectl.get_json("pods", "-l", f"job-name={name}", namespace=namespace)["items"]
        return dict(pod)

    # still running while its process sleeps: kwok does not end it at once
    eventually(lambda: f"{namespace}/{pod_of('ok')['metadata']['name']}/main" in pod_runner.processes(),
               timeout=60, what="the Job's process")
    assert pod_of("ok")["status"]["phase"] == "Running"

    def ended(name: str) -> str:
        return str(eventually(lambda: job_condition(kubectl, namespace, name), timeout=90, what=f"Job {name} to end"))

    assert {n: ended(n) for n in ("ok", "fails", "retried")} == {"ok": "Complete", "fails": "Failed",
                                                                  "retried": "Complete"}
    state = {n: pod_of(n)["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
             for n in ("ok", "fails", "retried")}
    assert state == {"ok": 0, "fails": 3, "retried": 0}
    assert pod_of("fails")["status"]["phase"] == "Failed"
    assert "migrated" in pod_runner.log_of(namespace, pod_of("ok")["metadata"]["name"])
    assert "no database" in pod_runner.log_of(namespace, pod_of("fails")["metadata"]["name"])
    # the retried pod's process ran twice: the kubelet restarts an OnFailure container in place
    assert len(kubectl.get_json("pods", "-l", "job-name=retried", namespace=namespace)["items"]) == 1


ROLLGUARD_IMAGE = "ghcr.io/rollguard/rollguard:0.1.0"


def test_rollguards_image_runs_as_the_chart_runs_it_and_pods_reach_services_by_short_name(
        kubectl: Kubectl, namespace: str, pod_runner: PodRunner) -> None:
    """Two replicas of the failures API from rollguard's image, given only ``args`` and binding
    every address on the same port, as the chart runs them: each answers on its own pod address.
    A pod of the same namespace reaches them by the Service's short name, as ``helm test`` does."""
    api = deployment("api", replicas=2, image=ROLLGUARD_IMAGE, run=True, container={
        "args": ["api", "serve", "--host=0.0.0.0", "--port=8000", "--database-url=$(DATABASE_URL)"],
        "env": [{"name": "DATABASE_URL", "value": "sqlite:////var/lib/api/failures.db"}],
        "ports": [{"name": "http", "containerPort": 8000}],
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/api"}]},
        volumes=[{"name": "data", "emptyDir": {}}])
    kubectl.apply(api, namespace=namespace)
    kubectl.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
                   "spec": {"selector": {"app": "api"}, "ports": [{"port": 8080, "targetPort": "http"}]}},
                  namespace=namespace)
    kubectl("rollout", "status", "deployment/api", "--timeout=90s", namespace=namespace)
    ips = sorted(p["status"]["podIP"] for p in pods(kubectl, namespace, "api"))
    assert len(ips) == 2
    for ip in ips:
        url = f"http://{ip}:8000/readyz"
        body = eventually(lambda: answer(url), timeout=90,  # noqa: B023 (called before the loop moves on)
                          what=f"the API answering on its pod address {ip}")
        assert json.loads(body)["status"] == "ok", body
    # each on its own address: an address of the same pod range that no pod holds gets no answer
    # (a bind to every address would answer there, and the second replica could not bind at all)
    unused = ipaddress.ip_network(f"{ips[0]}/24", strict=False)[250]
    assert str(unused) not in ips
    assert answer(f"http://{unused}:8000/readyz") is None
    assert len([k for k in pod_runner.processes() if k.startswith(f"{namespace}/api-")]) == 2
    assert all(r.restarts == 0 for r in pod_runner.running.values() if r.key.startswith(f"{namespace}/api-"))

    check = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check", "labels": {RUN_LABEL: "true"}},
             "spec": {"restartPolicy": "Never", "containers": [{
                 "name": "check", "image": ROLLGUARD_IMAGE, "command": ["python", "-c"],
                 "args": ["import sys, urllib.request\n"
                          "for url in sys.argv[1:]:\n"
                          "    with urllib.request.urlopen(url, timeout=10) as r:\n"
                          "        print(url, r.status)\n",
                          "http://api:8080/readyz", f"http://api.{namespace}:8080/readyz"]}]}}
    kubectl.apply(check, namespace=namespace)
    phase = eventually(lambda: kubectl.get_json("pod", "check", namespace=namespace)["status"].get("phase")
                       in ("Succeeded", "Failed") and kubectl.get_json("pod", "check", namespace=namespace),
                       timeout=90, what="the check pod to end")["status"]["phase"]
    log = pod_runner.log_of(namespace, "check")
    assert phase == "Succeeded", log
    assert "http://api:8080/readyz 200" in log and f"http://api.{namespace}:8080/readyz 200" in log


def test_a_pod_logs_in_with_its_service_account_and_its_rbac_applies(
        kubectl: Kubectl, namespace: str, pod_runner: PodRunner) -> None:
    """A pod's in-cluster client gets the pod's own identity (a token of its ServiceAccount
    bound to it), so the pod can do what its Role allows and nothing else; a pod that opts out
    of the token gets none."""
    kubectl.apply({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "reader"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"mode": "canary"}},
    ]}, namespace=namespace)
    script = ("import os, sys\n"
              "from kubernetes.client import CoreV1Api\n"
              "from kubernetes.client.exceptions import ApiException\n"
              "from rollguard.kube.client import api_client\n"
              "token = '/var/run/secrets/kubernetes.io/serviceaccount/token'\n"
              "if not os.path.exists(token):\n"
              "    print('no token'); sys.exit(0)\n"
              "ns = open('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read()\n"
              "core = CoreV1Api(api_client())\n"
              "print('mode', core.read_namespaced_config_map('settings', ns).data['mode'])\n"
              "try:\n"
              "    core.list_namespaced_secret(ns)\n"
              "except ApiException as e:\n"
              "    print('secrets', e.status)\n")

    def pod(name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {RUN_LABEL: "true"}},
                "spec": {"restartPolicy": "Never", **spec, "containers": [
                    {"name": "main", "image": ROLLGUARD_IMAGE, "command": ["python", "-c", script]}]}}

    kubectl.apply(pod("with-token", serviceAccountName="reader"), namespace=namespace)
    kubectl.apply(pod("opted-out", serviceAccountName="reader", automountServiceAccountToken=False),
                  namespace=namespace)

    def ended(name: str) -> dict[str, Any]:
        return dict(eventually(lambda: (lambda p: p if p["status"].get("phase") in ("Succeeded", "Failed") else None)(
            kubectl.get_json("pod", name, namespace=namespace)), timeout=90, what=f"pod {name} to end"))

    for name in ("with-token", "opted-out"):
        assert ended(name)["status"]["phase"] == "Succeeded", pod_runner.log_of(namespace, name)
    log = pod_runner.log_of(namespace, "with-token")
    assert "mode canary" in log and "secrets 403" in log, log
    assert "no token" in pod_runner.log_of(namespace, "opted-out")


def test_a_pod_is_ready_only_once_its_readiness_probe_passes(kubectl: Kubectl, namespace: str,
                                                             pod_runner: PodRunner) -> None:
    """As with a kubelet: the pod's process runs, but until it answers its readiness probe the pod
    is not Ready, the Deployment has no available replica and the Service no endpoint. The
    process listens only once the test opens a gate (a key in a mounted ConfigMap)."""
    kubectl.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gate"}, "data": {}},
                  namespace=namespace)
    script = ('until [ -e /etc/gate/open ]; do sleep 0.2; done; '
              f'exec {sys.executable} -m http.server --bind "$POD_IP" 8080')
    kubectl.apply(deployment("slow", run=True, volumes=[{"name": "gate", "configMap": {"name": "gate"}}], container={
        "command": ["sh", "-c", script],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "volumeMounts": [{"name": "gate", "mountPath": "/etc/gate"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1}}),
        namespace=namespace)

    def probed() -> list[bool] | None:  # the runner's probe results for the pod's container, once some ran
        with pod_runner._lock:
            runs = [r for r in pod_runner.running.values() if r.key.startswith(f"{namespace}/slow-")]
        return runs[0].readiness.history if runs and len(runs[0].readiness.history) >= 2 else None
    assert eventually(probed, timeout=90, what="two readiness probes of the waiting process") == [False, False]

    def ready(pod: dict[str, Any]) -> str:
        return str(next(c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"))
    [pod] = pods(kubectl, namespace, "slow")
    assert pod["status"]["phase"] == "Running" and ready(pod) == "False"
    assert [cs["ready"] for cs in pod["status"]["containerStatuses"]] == [False]
    assert not kubectl.get_json("deployment", "slow", namespace=namespace)["status"].get("availableReplicas")

    kubectl("patch", "configmap", "gate", "--type", "merge", "-p", json.dumps({"data": {"open": "1"}}),
            namespace=namespace)
    kubectl("rollout", "status", "deployment/slow", "--timeout=90s", namespace=namespace)
    [pod] = pods(kubectl, namespace, "slow")
    assert ready(pod) == "True" and [cs["ready"] for cs in pod["status"]["containerStatuses"]] == [True]
    assert answer(f"http://{pod['status']['podIP']}:8080/") is not None


def test_a_cluster_started_again_in_its_directory_with_another_pod_network_comes_up(tmp_path: Path) -> None:
    """`down` then `up` keeps etcd, and with it the last run's nodes; when the last network is
    still in use (a pod's process still listening), the new run gets another one, and the old
    nodes' pod ranges, which cannot change, are replaced instead of stopping `up`."""
    cp = ControlPlane(tmp_path / "cp")
    first = cp.start().pod_net
    cp.stop()
    held = podnet.claim()  # the first run's network, as a lingering process would hold it
    try:
        assert held == first
        second = ControlPlane(tmp_path / "cp")
        try:
            assert second.start().pod_net != first
            k = Kubectl(second.kubectl, second.kubeconfig)
            cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in k.get_json("nodes")["items"]}
            assert cidrs == {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in second.nodes()}
            net = ipaddress.IPv4Network(f"127.{second.pod_net}.0.0/16")
            assert all(ipaddress.IPv4Network(c).subnet_of(net) for c in cidrs.values())
        finally:
            second.stop()
    finally:
        podnet.release(held)

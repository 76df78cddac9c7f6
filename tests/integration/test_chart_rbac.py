"""The real operator, running with the chart's ServiceAccount identity (not admin).

The chart is installed into the real apiserver; the operator then authenticates as
`system:serviceaccount:<ns>:rg-rollguard-operator` (a client certificate with that user name:
RBAC binds ServiceAccount subjects by that name) and must start, keep its kopf peering alive
and reconcile what it watches, while the same identity is refused Secrets, any Pod verb but `list`
and `patch`, and namespaces it does not watch.

With these credentials the operator carries out a whole FailureCatalog mount (ConfigMap,
server-side apply on the Deployment, status, Events) and whole CanaryRollouts against a real
Prometheus scraping two real local HTTP tracks (the fixtures of test_canary_rollout.py):
- promoted through nginx: canary Deployment, Service and flags ConfigMap created, canary Ingress
  weights 20/50/100, the image written to the stable Deployment, the flag value into the
  FeatureFlag and the catalog version through the FailureCatalog's pin (merge patches), canary
  objects deleted;
- rolled back on an error-rate breach (the stable never sees the change);
- rolled back on a failed smoke Job (created and deleted by the operator; its exit code read
  from the Job's pod, which the chart's `list` on Pods allows);
- promoted through the Gateway API (the real HTTPRoute CRD; the router replaces the route:
  `get` and `update` on httproutes).
Any 403 in the operator's log fails a test: the chart's RBAC must cover everything it does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.podrunner import RUN_LABEL, PodRunner
from rollguard.localenv.prometheus import Prometheus
from tests.integration import test_canary_gateway_api, test_canary_rollout
from tests.integration.test_canary_catalog_flags import feature_flag, flags_file, two_catalog_versions
from tests.integration.test_canary_gateway_api import backend_weights
from tests.integration.test_canary_rollout import (
    App,
    Watcher,
    image_of,
    rollout,
    setup_target,
    status,
    wait_rolled_out,
)
from tests.integration.test_catalog_operator import catalog, deployment, entry, events, hash_of, wait_mounted
from tests.support.helm import CHART, helm
from tests.support.kube import REPO, Kubectl, eventually

pytestmark = pytest.mark.integration

# The canary tests' fixture (two real local HTTP tracks scraped by the real Prometheus), shared.
apps = test_canary_rollout.apps
httproute_crd = test_canary_gateway_api.httproute_crd  # the real HTTPRoute CRD (gateway-api module)

RELEASE = "rg"
SA_NAME = "rg-rollguard-operator"
REFUSAL = re.compile(r"Forbidden|status=403|\(403\)|'code': 403")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ChartOperator:
    """The chart's operator command line, run locally with the chart's ServiceAccount identity."""

    proc: subprocess.Popen[bytes]
    log: Path
    kubeconfig: Path
    kubectl_as_sa: Kubectl
    health_url: str
    pod_id: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False


def _chart_operator_args(release_ns: str, values: list[str]) -> list[str]:
    """The operator container's args exactly as the chart renders them."""
    objs = helm().template(*values, namespace=release_ns, release=RELEASE)
    dep = next(o for o in objs if o["kind"] == "Deployment")
    args: list[str] = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


@contextlib.contextmanager
def _start(control_plane: ControlPlane, kubectl: Kubectl, release_ns: str, values: list[str],
           tmp_path: Path) -> Iterator[ChartOperator]:
    h = helm()
    h("install", RELEASE, str(CHART), "-n", release_ns, "--kubeconfig", str(control_plane.kubeconfig),
      "--skip-crds", "--set", "crds.install=false", *values, "--timeout", "60s")
    kubeconfig = control_plane.kubeconfig_for(
        f"sa-{release_ns}", user=f"system:serviceaccount:{release_ns}:{SA_NAME}", groups=("system:serviceaccounts",))
    port = _free_port()
    args = [a if not a.startswith("--liveness=") else f"--liveness=http://127.0.0.1:{port}/healthz"
            for a in _chart_operator_args(release_ns, values)]
    log = tmp_path / "operator.log"
    pod_id = f"{SA_NAME}-test-{port}"
    # The chart's default metrics port (8081) may be taken on a shared machine.
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_ID": pod_id, "POD_NAMESPACE": release_ns,
           "ROLLGUARD_METRICS_PORT": str(_free_port())}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "rollguard.cli.main", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=REPO)
    op = ChartOperator(proc, log, kubeconfig, Kubectl(kubectl.binary, kubeconfig),
                       f"http://127.0.0.1:{port}/healthz", pod_id)
    try:
        eventually(op.healthy, timeout=60, what=f"operator liveness; log:\n{op.output()}")
        yield op
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        h("uninstall", RELEASE, "-n", release_ns, "--kubeconfig", str(control_plane.kubeconfig), check=False)


@pytest.fixture
def cluster_operator(control_plane: ControlPlane, kubectl: Kubectl, namespace: str,
                     tmp_path: Path) -> Iterator[ChartOperator]:
    # The ClusterKopfPeering is cluster-scoped: a name per test keeps tests independent.
    with _start(control_plane, kubectl, namespace, ["--set", f"operator.peering.name={namespace}"], tmp_path) as op:
        yield op


def _forbidden(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode != 0 and "forbidden" in proc.stderr.lower()


def _terminating(line: str) -> bool:
    """A create refused because its namespace is being deleted (another test's namespace, for a
    cluster-wide operator): the NamespaceLifecycle admission plugin's 403, not RBAC's."""
    return "NamespaceTerminating" in line or "because it is being terminated" in line


def assert_never_refused(op: ChartOperator) -> None:
    """No 403 in the operator's log but a terminating namespace's (:func:`_terminating`). Matched
    as the kubernetes client and kopf print it (a bare "403" also matches the millisecond field
    of a log timestamp)."""
    refusals = [ln for ln in op.output().splitlines() if REFUSAL.search(ln) and not _terminating(ln)]
    assert not refusals, refusals[:20]


def test_operator_runs_cluster_wide_with_the_chart_service_account(
        cluster_operator: ChartOperator, kubectl: Kubectl, namespace: str) -> None:
    op = cluster_operator
    # kopf keeps this replica's keep-alive in the chart's ClusterKopfPeering: proof that the
    # peering works under these credentials (without it, two replicas would both act).
    def peer_alive() -> bool:
        status = kubectl.get_json("clusterkopfpeering", namespace).get("status", {})
        return op.pod_id in status
    eventually(peer_alive, timeout=30, what=f"peering keep-alive; log:\n{op.output()}")
    sa = op.kubectl_as_sa
    # What the operator must be able to do, done with its own credentials.
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rbac-probe"}, "data": {"a": "b"}}
    sa.apply(cm, namespace=namespace)
    sa("delete", "configmap", "rbac-probe", namespace=namespace)
    sa("get", "deployments", "-A")
    # A promoting canary pins the FeatureFlag and FailureCatalog it changes (a merge patch on
    # their spec) and JSON-patches the stable Deployment. HTTPRoutes: the Gateway API test.
    for verb, resource in [("patch", "featureflags.rollguard.io"), ("patch", "failurecatalogs.rollguard.io"),
                           ("patch", "deployments.apps")]:
        answer = sa("auth", "can-i", verb, resource, namespace=namespace, check=False).stdout.strip()
        assert answer == "yes", (verb, resource, answer)
    # ...and what it must not.
    assert _forbidden(sa("get", "secrets", namespace=namespace, check=False))
    assert _forbidden(sa("get", "secrets", "-A", check=False))
    assert _forbidden(sa("create", "secret", "generic", "x", "--from-literal=a=b", namespace=namespace, check=False))
    # Pods: list and patch (the stable's track label, a smoke Job's exit code), nothing else.
    sa("get", "pods", namespace=namespace)
    assert _forbidden(sa("get", "pod", "nope", namespace=namespace, check=False))
    for verb, resource in [("delete", "pods"), ("create", "pods"), ("update", "pods"), ("get", "pods/log")]:
        answer = sa("auth", "can-i", verb, resource, namespace=namespace, check=False).stdout.strip()
        assert answer == "no", (verb, resource, answer)
    assert _forbidden(sa("delete", "namespace", namespace, "--dry-run=server", check=False))
    assert _forbidden(sa("create", "clusterrolebinding", "escalate", "--clusterrole=cluster-admin",
                         f"--user=system:serviceaccount:{namespace}:{SA_NAME}", check=False))
    # Nothing the operator did so far was refused.
    assert_never_refused(op)


def test_operator_mounts_a_catalog_with_the_chart_service_account(
        cluster_operator: ChartOperator, kubectl: Kubectl, namespace: str) -> None:
    """A FailureCatalog reconciled end to end by the operator under the chart's RBAC (the
    objects themselves are created by the admin, as a user or Argo CD would)."""
    op, ns = cluster_operator, namespace
    kubectl.apply(deployment("api"), namespace=ns)
    v1 = catalog(version="1")
    kubectl.apply(v1, namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(v1), timeout=60)
    st = eventually(lambda: (kubectl.get_json("failurecatalog", "cat", namespace=ns).get("status") or {})
                    .get("phase") == "Ready", what=f"phase Ready; log:\n{op.output()}")
    assert st
    # A new version: a second immutable ConfigMap, the mount moves, an Event per version.
    v2 = catalog(version="2", entries=[entry(), entry("OTHER_GREMLINS", "other gremlins")])
    kubectl.apply(v2, namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(v2), timeout=60)
    assert kubectl.get_json("configmap", f"cat-{hash_of(v2)[:10]}", namespace=ns)["immutable"] is True
    eventually(lambda: len(events(kubectl, ns, "VersionMounted")) == 2, what="two VersionMounted events")
    # Deletion runs the finalizer under the same identity: the mount is taken out again.
    kubectl("delete", "failurecatalog", "cat", "--timeout=60s", namespace=ns)
    vols = kubectl.get_json("deployment", "api", namespace=ns)["spec"]["template"]["spec"].get("volumes") or []
    assert not any(v["name"] == "rollguard-catalog" for v in vols)
    assert_never_refused(op)

    # The operator reads ReplicaSets (which catalog versions old pods still mount) and does
    # nothing else with them; it never touches Secrets, and reads no single Pod.
    sa = op.kubectl_as_sa
    sa("get", "replicasets", namespace=ns)
    assert _forbidden(sa("get", "replicaset", "nope", namespace=ns, check=False))
    assert _forbidden(sa("delete", "replicaset", "nope", namespace=ns, check=False))
    assert _forbidden(sa("get", "secrets", namespace=ns, check=False))
    assert _forbidden(sa("get", "pod", "nope", namespace=ns, check=False))
    for verb, resource in [("watch", "replicasets.apps"), ("patch", "replicasets.apps"),
                           ("escalate", "clusterroles"), ("bind", "clusterroles"), ("create", "pods/exec")]:
        answer = sa("auth", "can-i", verb, resource, namespace=ns, check=False).stdout.strip()
        assert answer == "no", (verb, resource, answer)


def _wait_phase(kubectl: Kubectl, ns: str, phases: set[str], op: ChartOperator,
                timeout: float = 120) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        st = status(kubectl, ns)
        return st if st.get("phase") in phases else None
    try:
        result: dict[str, Any] = eventually(check, timeout=timeout, interval=0.5, what=f"phase in {phases}")
    except AssertionError:
        print(op.output()[-8000:])
        print(status(kubectl, ns))
        raise
    return result


def test_operator_promotes_a_canary_with_the_chart_service_account(
        cluster_operator: ChartOperator, kubectl: Kubectl, namespace: str, prometheus: Prometheus,
        apps: dict[str, App]) -> None:
    """A CanaryRollout carried to Succeeded under the chart's RBAC: the rollout, the target and the
    stable Ingress are the admin's (a user or Argo CD); every write the canary makes is the
    operator's own, with the ServiceAccount identity."""
    op, ns = cluster_operator, namespace
    setup_target(kubectl, ns)
    kubectl.apply(feature_flag("failure-catalog", "failure_catalog_runtime_integration", gated=False), namespace=ns)
    v1, v2 = two_catalog_versions(kubectl, ns)  # v1 pinned and mounted, v2 rendered
    eventually(lambda: "rollguard-flags-staging" in json.dumps(kubectl.get_json("deployment", "web", namespace=ns)),
               timeout=60, what="web mounts rollguard-flags-staging")
    wait_rolled_out(kubectl, ns, "web")
    w = Watcher(kubectl, ns)
    obj = rollout(ns, prometheus)
    obj["spec"]["change"].update(catalog={"name": "aos-failures", "hash": v2},
                                 flags={"environment": "staging",
                                        "values": {"failure_catalog_runtime_integration": True}})
    kubectl.apply(obj, namespace=ns)
    st = _wait_phase(kubectl, ns, {"Succeeded", "RolledBack", "Failed"}, op)
    weights = w.close()
    assert st["phase"] == "Succeeded", (st.get("message"), op.output()[-6000:])
    # Traffic went 20 -> 50 -> 100 % through the canary Ingress the operator created, then back.
    assert [x for x in weights if x] == [20, 50, 100], weights
    assert weights[-1] == 0
    # The change reached the stable: image on the Deployment, no flag env override left, the flag
    # value in the FeatureFlag and its flags file, v2 mounted after the pin was cleared.
    assert image_of(kubectl, ns) == "web:2"
    template = kubectl.get_json("deployment", "web", namespace=ns)["spec"]["template"]
    env = template["spec"]["containers"][0].get("env") or []
    assert not [e for e in env if e["name"].startswith("AOS_FEATURE_")], env
    flag = kubectl.get_json("featureflag", "failure-catalog", namespace=ns)["spec"]
    assert flag["environments"]["staging"] is True
    assert flags_file(kubectl, ns, "rollguard-flags-staging")["failure_catalog_runtime_integration"]["value"] is True
    assert "pinnedHash" not in kubectl.get_json("failurecatalog", "aos-failures", namespace=ns)["spec"]
    vols = {v["name"]: v for v in template["spec"].get("volumes") or []}
    assert vols["rollguard-catalog"]["configMap"]["name"] == f"aos-failures-{v2[:10]}", (v1, vols)
    assert not kubectl.exists("configmap", "web-canary-flags", namespace=ns)
    # The canary objects the operator created are gone again.
    for kind in ("deployment", "service", "ingress"):
        assert not kubectl.exists(kind, "web-canary", namespace=ns), kind
    report = st["report"]
    assert report["success"] and not report["rollbackTriggered"]
    ev = kubectl("get", "events", "--field-selector", "involvedObject.name=web-canary-rollout",
                 namespace=ns).stdout
    assert "Promoting" in ev and "StepStarted" in ev
    assert_never_refused(op)


def test_operator_rolls_a_canary_back_with_the_chart_service_account(
        cluster_operator: ChartOperator, kubectl: Kubectl, namespace: str, prometheus: Prometheus,
        apps: dict[str, App]) -> None:
    op, ns = cluster_operator, namespace
    setup_target(kubectl, ns)
    w = Watcher(kubectl, ns)
    obj = rollout(ns, prometheus, steps=[{"setWeight": 20}, {"pause": {"duration": "1h"}}, {"setWeight": 100}])
    kubectl.apply(obj, namespace=ns)
    try:
        eventually(lambda: status(kubectl, ns).get("currentStep") == 1, timeout=90, what="the pause step")
    except AssertionError:
        print(op.output()[-8000:])
        raise
    assert kubectl.exists("deployment", "web-canary", namespace=ns)
    apps["canary"].set(error_ratio=0.05, golden=0)  # +400 % against moderate's 50 %
    st = _wait_phase(kubectl, ns, {"RolledBack", "Failed", "Succeeded"}, op)
    weights = w.close()
    assert st["phase"] == "RolledBack", (st.get("message"), op.output()[-6000:])
    assert "error-rate" in st["report"]["rollbackReason"]
    assert 20 in weights and weights[-1] == 0 and 100 not in weights, weights
    assert image_of(kubectl, ns) == "web:1"  # the stable never saw the change
    for kind in ("deployment", "service", "ingress"):
        assert not kubectl.exists(kind, "web-canary", namespace=ns), kind
    assert_never_refused(op)


def test_operator_rolls_back_on_a_failed_smoke_job_with_the_chart_service_account(
        cluster_operator: ChartOperator, kubectl: Kubectl, namespace: str, prometheus: Prometheus,
        apps: dict[str, App], pod_runner: PodRunner) -> None:
    """The smoke Job is the operator's to create and delete; its failure is read from the Job,
    its exit code from the Job's pod (the chart grants `list` on Pods)."""
    op, ns = cluster_operator, namespace
    setup_target(kubectl, ns)
    w = Watcher(kubectl, ns)
    smoke: dict[str, Any] = {"job": {"template": {
        "metadata": {"labels": {RUN_LABEL: "true"}},  # the pod runner runs it
        "spec": {"restartPolicy": "Never", "containers": [
            {"name": "smoke", "image": "busybox", "command": ["sh", "-c", "exit 4"]}]}}}, "timeoutSeconds": 60}
    kubectl.apply(rollout(ns, prometheus, smoke=smoke), namespace=ns)
    job = "web-canary-rollout-smoke-1"
    eventually(lambda: kubectl.exists("job", job, namespace=ns),
               timeout=60, what="the smoke Job")
    st = _wait_phase(kubectl, ns, {"RolledBack", "Failed", "Succeeded"}, op, timeout=60)
    weights = w.close()
    assert st["phase"] == "RolledBack", (st.get("message"), op.output()[-6000:])
    assert st["report"]["smokeReturncode"] == 4
    assert "smoke test failed" in st["report"]["rollbackReason"]
    assert set(weights) == {0}
    assert not kubectl.exists("job", job, namespace=ns)
    assert image_of(kubectl, ns) == "web:1"
    assert_never_refused(op)


def test_operator_promotes_a_gateway_api_canary_with_the_chart_service_account(
        cluster_operator: ChartOperator, httproute_crd: None, kubectl: Kubectl, namespace: str,
        prometheus: Prometheus, apps: dict[str, App]) -> None:
    """The Gateway API router writes backend weights into the user's HTTPRoute (a replace
    carrying the resourceVersion it read) under the chart's RBAC."""
    op, ns = cluster_operator, namespace
    setup_target(kubectl, ns)
    kubectl.apply({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
                   "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["web.example"],
                            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}}, namespace=ns)
    w = Watcher(kubectl, ns)  # marks the canary Deployment available
    kubectl.apply(rollout(ns, prometheus, traffic={"provider": "gateway-api", "httpRoute": {"name": "web"}}),
                  namespace=ns)
    seen: list[int] = []

    def done() -> dict[str, Any] | None:
        weight = backend_weights(kubectl, ns).get("web-canary", 0)
        if not seen or seen[-1] != weight:
            seen.append(weight)
        st = status(kubectl, ns)
        return st if st.get("phase") in {"Succeeded", "RolledBack", "Failed"} else None
    try:
        st: dict[str, Any] = eventually(done, timeout=120, interval=0.2, what="the gateway-api rollout to end")
    except AssertionError:
        print(op.output()[-8000:])
        raise
    w.close()
    assert st["phase"] == "Succeeded", (st.get("message"), op.output()[-6000:])
    assert [x for x in seen if x] == [20, 50, 100], seen
    assert backend_weights(kubectl, ns) == {"web": 1}  # back to the stable only
    assert image_of(kubectl, ns) == "web:2"
    assert_never_refused(op)


def test_namespaced_operator_is_refused_outside_its_namespaces(
        control_plane: ControlPlane, kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    watched = f"{namespace}-w"
    kubectl("create", "namespace", watched)
    try:
        with _start(control_plane, kubectl, namespace, ["--set", f"watchNamespaces={{{watched}}}"], tmp_path) as op:
            assert op.healthy()

            def peer_alive() -> bool:
                return op.pod_id in kubectl.get_json("kopfpeering", "rollguard", namespace=watched).get("status", {})
            eventually(peer_alive, timeout=30, what=f"namespaced peering keep-alive; log:\n{op.output()}")
            sa = op.kubectl_as_sa
            sa("get", "configmaps", namespace=watched)
            assert _forbidden(sa("get", "configmaps", namespace=namespace, check=False))
            assert _forbidden(sa("get", "configmaps", "-A", check=False))
            assert _forbidden(sa("get", "deployments", namespace="default", check=False))
            assert _forbidden(sa("get", "secrets", namespace=watched, check=False))
            assert_never_refused(op)
    finally:
        kubectl.delete_namespace(watched)

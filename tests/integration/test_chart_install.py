"""`helm install / upgrade / test / uninstall` of the chart into the real local kube-apiserver.

The chart's pods run: with the local cluster's values (``examples/local-cluster/rollguard-values.yaml``)
the pod runner runs them as processes of this checkout, so (with ``api.enabled=true`` and the
database Secret the user created) the migration Job migrates a real PostgreSQL database, the API
and operator pods serve, ``helm test`` asks them through their Services, and the operator pod,
under the chart's ServiceAccount, reconciles a FeatureFlag. Helm waits for the hook Jobs and the
test Pod to end; the pod runner's record says how each ended (the hook policies delete them once
they succeed). The namespace enforces PodSecurity `restricted`, so the apiserver itself judges
the chart's pods.

The session's cluster has rollguard's CRDs applied already (by the ``kubectl`` fixture), so these
installs leave them alone (``crds.install=false``); what the chart does with its CRDs, and the
default install, is tests/integration/test_chart_lifecycle.py, on a cluster of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.podrunner import PodRunner
from tests.support.helm import CHART, Helm, helm
from tests.support.kube import CRD_DIR, Kubectl, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def h(control_plane: ControlPlane) -> Helm:
    return helm()


@pytest.fixture
def restricted_ns(kubectl: Kubectl, namespace: str) -> str:
    # PodSecurity `restricted`: enforced for Pods, warned about for workload templates.
    for mode in ("enforce", "warn"):
        kubectl("label", "namespace", namespace, f"pod-security.kubernetes.io/{mode}=restricted")
    return namespace


@pytest.fixture
def release(h: Helm, kubeconfig: Path, restricted_ns: str) -> Iterator[str]:
    name = "rg"
    yield name
    h("uninstall", name, "-n", restricted_ns, "--kubeconfig", str(kubeconfig), "--wait=false", check=False)


def _helm_in(h: Helm, kubeconfig: Path, ns: str, *args: str, check: bool = True) -> Any:
    timeout = ["--timeout", "90s"] if args[0] in ("install", "upgrade", "test", "uninstall") else []
    return h(*args, "-n", ns, "--kubeconfig", str(kubeconfig), *timeout, check=check)


LOCAL_VALUES = CHART.parents[1] / "examples" / "local-cluster" / "rollguard-values.yaml"
NO_CRDS = ["--skip-crds", "--set", "crds.install=false"]


def test_install_upgrade_test_uninstall(h: Helm, kubectl: Kubectl, kubeconfig: Path, restricted_ns: str,
                                        release: str, database_url: str, pod_runner: PodRunner) -> None:
    ns = restricted_ns
    # The kubectl fixture applied crds/ already; the peering name is unique per test because
    # the ClusterKopfPeering is cluster-scoped. The API reads the database URL from a Secret the
    # user created (the install checks it exists).
    kubectl("create", "secret", "generic", "pg", f"--from-literal=DATABASE_URL={database_url}", namespace=ns)
    common = [*NO_CRDS, "--set", f"operator.peering.name={ns}", "-f", str(LOCAL_VALUES),
              "--set", "api.enabled=true", "--set", "api.database.existingSecret=pg"]
    def migrations() -> list[tuple[int | None, str]]:
        """(exit code, log) of each migration pod the pod runner ran: the pods themselves are
        gone as soon as they succeed (the hook-succeeded policy deletes the Job)."""
        runs = [r for r in pod_runner.finished + list(pod_runner.running.values())
                if r.key.startswith(f"{ns}/rg-rollguard-api-migrate-")]
        return [(r.exit_code, pod_runner.log_of(ns, r.key.split("/", 1)[1])) for r in runs]

    proc = _helm_in(h, kubeconfig, ns, "install", release, str(CHART), *common)
    assert "would violate PodSecurity" not in proc.stderr, proc.stderr
    assert "STATUS: deployed" in proc.stdout
    # The pre-install migration Job ran to success before the install completed, and migrated.
    [(code, log)] = migrations()
    assert code == 0 and "(head)" in log, log

    def names(kind: str, namespaced: bool = True) -> set[str]:
        items = kubectl.get_json(kind, namespace=ns if namespaced else None)["items"]
        return {i["metadata"]["name"] for i in items
                if i["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == release}

    assert names("deployments") == {"rg-rollguard-operator", "rg-rollguard-api"}
    assert names("services") == {"rg-rollguard-operator", "rg-rollguard-api"}
    assert names("serviceaccounts") == {"rg-rollguard-operator", "rg-rollguard-api"}
    assert names("cronjobs") == {"rg-rollguard-aggregate", "rg-rollguard-prune"}
    assert names("poddisruptionbudgets") == {"rg-rollguard-operator", "rg-rollguard-api"}
    assert names("configmaps") == {"rg-rollguard-dashboard"}
    assert names("secrets") == set(), "the chart creates no Secret: it reads the user's"
    assert not names("jobs"), "the migration Job is deleted once it succeeded"
    assert f"rg-rollguard-operator-{ns}" in names("clusterroles", namespaced=False)
    assert f"rg-rollguard-operator-{ns}" in names("clusterrolebindings", namespaced=False)
    assert ns in names("clusterkopfpeerings", namespaced=False)

    # The apiserver stored what the chart says (defaults applied by the server, not lost).
    op = kubectl.get_json("deployment", "rg-rollguard-operator", namespace=ns)
    assert op["spec"]["template"]["spec"]["serviceAccountName"] == "rg-rollguard-operator"
    assert op["spec"]["template"]["spec"]["containers"][0]["args"][:3] == ["operator", "run", "--peering"]
    # The ServiceAccount's effective permissions, as the apiserver's authorizer sees them.
    sa = f"system:serviceaccount:{ns}:rg-rollguard-operator"
    # (rollguard.io kinds are checked for each CRD present in crds/: kubectl says "no" for an
    # unknown resource.)
    own = [("patch", f"{p.name.split('.')[0]}.rollguard.io", "yes") for p in CRD_DIR.glob("*.rollguard.io.yaml")]
    for verb, res, expected in [*own, ("create", "deployments.apps", "yes"), ("patch", "kopfpeerings.kopf.dev", "yes"),
                                ("get", "secrets", "no"), ("list", "secrets", "no"),
                                ("create", "pods", "no"), ("delete", "customresourcedefinitions", "no")]:
        out = kubectl("auth", "can-i", verb, res, "-A", "--as", sa, check=False).stdout.strip()
        assert out == expected, (verb, res, out)
    api_sa = f"system:serviceaccount:{ns}:rg-rollguard-api"
    out = kubectl("auth", "can-i", "list", "configmaps", "--as", api_sa, namespace=ns, check=False).stdout
    assert out.strip() == "no"

    # Upgrade: the pre-upgrade migration runs again, the change lands.
    _helm_in(h, kubeconfig, ns, "upgrade", release, str(CHART), *common, "--set", "api.replicas=3")
    assert [code for code, _ in migrations()] == [0, 0]
    assert kubectl.get_json("deployment", "rg-rollguard-api", namespace=ns)["spec"]["replicas"] == 3
    history = json.loads(_helm_in(h, kubeconfig, ns, "history", release, "-o", "json").stdout)
    assert [r["status"] for r in history] == ["superseded", "deployed"]

    # `helm test`: its Pod is admitted under PodSecurity `restricted` enforcement, and passes.
    # (Its pod is deleted by the hook-succeeded policy as soon as it succeeds: Helm's report says so.)
    out = _helm_in(h, kubeconfig, ns, "test", release).stdout
    assert "Phase:          Succeeded" in out and "rg-rollguard-test" in out
    checked = pod_runner.log_of(ns, "rg-rollguard-test")
    assert "http://rg-rollguard-api:8000/readyz 200" in checked, checked
    assert "http://rg-rollguard-operator:8080/healthz 200" in checked, checked

    # The chart's operator pod, under the chart's ServiceAccount, reconciles what users apply: a
    # FeatureFlag gets its phase and the flags ConfigMaps of its environments.
    kubectl.apply({"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag", "metadata": {"name": "checkout"},
                   "spec": {"key": "new_checkout", "owner": "shop-team", "defaultValue": False,
                            "environments": {"staging": True, "production": False},
                            "targets": [{"environment": "staging", "deployments": ["web"]}]}}, namespace=ns)
    flag = eventually(lambda: (kubectl.get_json("featureflag", "checkout", namespace=ns).get("status") or {})
                      .get("phase") == "Ready" and kubectl.get_json("featureflag", "checkout", namespace=ns),
                      timeout=60, what="the chart's operator to reconcile the FeatureFlag")
    assert flag["status"]["phase"] == "Ready"
    flags = json.loads(kubectl.get_json("configmap", "rollguard-flags-staging", namespace=ns)["data"]["flags.json"])
    assert flags["flags"]["new_checkout"]["value"] is True, flags

    # Uninstall removes the release's objects, cluster-scoped ones included.
    _helm_in(h, kubeconfig, ns, "uninstall", release, "--wait")
    eventually(lambda: not names("deployments") and not names("services"), timeout=30, what="objects deleted")
    assert f"rg-rollguard-operator-{ns}" not in names("clusterroles", namespaced=False)
    assert ns not in names("clusterkopfpeerings", namespaced=False)


def test_namespaced_install_gets_roles_only_in_watched_namespaces(
        h: Helm, kubectl: Kubectl, kubeconfig: Path, restricted_ns: str, release: str) -> None:
    ns = restricted_ns
    watched = [f"{ns}-a", f"{ns}-b"]
    for w in watched:
        kubectl("create", "namespace", w)
    try:
        _helm_in(h, kubeconfig, ns, "install", release, str(CHART), *NO_CRDS,
                 "--set", f"watchNamespaces={{{','.join(watched)}}}")
        sa = f"system:serviceaccount:{ns}:rg-rollguard-operator"
        for w in watched:
            assert kubectl.get_json("role", "rg-rollguard-operator", namespace=w)["rules"]
            assert kubectl.get_json("kopfpeering", "rollguard", namespace=w)
            assert kubectl("auth", "can-i", "patch", "deployments.apps", "--as", sa,
                           namespace=w, check=False).stdout.strip() == "yes"
        # Not outside the watched namespaces, not cluster-wide, and never Secrets.
        for where in (["-n", ns], ["-n", "default"], ["-A"]):
            assert kubectl("auth", "can-i", "patch", "deployments.apps", "--as", sa, *where,
                           check=False).stdout.strip() == "no", where
        assert kubectl("auth", "can-i", "get", "secrets", "--as", sa, namespace=watched[0],
                       check=False).stdout.strip() == "no"
        # kopf's cluster-scoped reads still work.
        assert kubectl("auth", "can-i", "watch", "customresourcedefinitions", "--as", sa,
                       check=False).stdout.strip() == "yes"
    finally:
        for w in watched:
            kubectl.delete_namespace(w)


def test_install_with_values_violating_the_schema_fails_and_creates_nothing(
        h: Helm, kubectl: Kubectl, kubeconfig: Path, restricted_ns: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("api:\n  port: 70000\noperator:\n  replicas: two\n")
    proc = _helm_in(h, kubeconfig, restricted_ns, "install", "bad", str(CHART), *NO_CRDS, "-f", str(bad),
                    check=False)
    assert proc.returncode != 0
    assert "at '/api/port': maximum: got 70,000, want 65,535" in proc.stderr
    assert "at '/operator/replicas': got string, want integer" in proc.stderr
    assert kubectl.get_json("deployments", namespace=restricted_ns)["items"] == []
    assert "bad" not in _helm_in(h, kubeconfig, restricted_ns, "list", "-q").stdout.split()


def test_default_install_notes_say_the_api_is_opt_in(h: Helm, kubeconfig: Path, restricted_ns: str) -> None:
    ns = restricted_ns
    notes = _helm_in(h, kubeconfig, ns, "install", "rg", str(CHART), "--dry-run=server", *NO_CRDS).stdout
    assert "Failures API: not installed (api.enabled=false, the default)" in notes
    assert f"helm upgrade rg <chart> -n {ns} --reuse-values \\\n" in notes
    assert "--set api.enabled=true --set api.database.existingSecret=<secret>" in notes
    assert f"helm test rg -n {ns}" in notes


def test_api_with_a_missing_database_secret_fails_naming_it_and_creates_nothing(
        h: Helm, kubectl: Kubectl, kubeconfig: Path, restricted_ns: str) -> None:
    """The install stops while rendering (a template's `fail`), before it creates anything: no
    migration Job waits for a Secret that is not there until Helm's timeout."""
    ns = restricted_ns
    api = [*NO_CRDS, "--set", "api.enabled=true", "--set", "api.database.existingSecret=pg"]

    def nothing_created() -> None:
        assert kubectl.get_json("jobs", namespace=ns)["items"] == []
        assert kubectl.get_json("deployments", namespace=ns)["items"] == []
        assert "rg" not in _helm_in(h, kubeconfig, ns, "list", "-q", "-a").stdout.split()

    proc = _helm_in(h, kubeconfig, ns, "install", "rg", str(CHART), *api, check=False)
    assert proc.returncode != 0
    assert (f'api.enabled=true: the database Secret "pg" (key "DATABASE_URL") does not exist in namespace "{ns}"'
            in proc.stderr), proc.stderr
    assert f"kubectl -n {ns} create secret generic pg --from-literal=DATABASE_URL=" in proc.stderr
    nothing_created()
    # Neither existingSecret nor url: the Secret the chart names by default is checked the same way.
    proc = _helm_in(h, kubeconfig, ns, "install", "rg", str(CHART), *NO_CRDS, "--set", "api.enabled=true",
                    check=False)
    assert proc.returncode != 0
    assert 'the database Secret "rg-rollguard-database" (key "DATABASE_URL") does not exist' in proc.stderr

    # The Secret exists, under another key: the message names the key it lacks and the keys it has.
    kubectl("create", "secret", "generic", "pg", "--from-literal=URL=postgresql://x", namespace=ns)
    proc = _helm_in(h, kubeconfig, ns, "install", "rg", str(CHART), *api, check=False)
    assert proc.returncode != 0
    assert f'Secret "pg" in namespace "{ns}" has no key "DATABASE_URL" (api.database.key); its keys: URL' in proc.stderr
    nothing_created()

    # With the key it renders against the cluster, and the NOTES say where the API answers.
    proc = _helm_in(h, kubeconfig, ns, "install", "rg", str(CHART), *api, "--set", "api.database.key=URL",
                    "--dry-run=server")
    assert f"Failures API: http://rg-rollguard-api.{ns}.svc:8000" in proc.stdout


def test_the_migration_hook_gates_the_release(h: Helm, kubectl: Kubectl, kubeconfig: Path, restricted_ns: str) -> None:
    """With every node cordoned the migration Job's pod cannot run: the install must not report
    success (so the tests above prove the Job ran, not that it was skipped)."""
    nodes = [n["metadata"]["name"] for n in kubectl.get_json("nodes")["items"]]
    for n in nodes:
        kubectl("cordon", n)
    try:
        t0 = time.monotonic()
        proc = h("install", "rg", str(CHART), "-n", restricted_ns, "--kubeconfig", str(kubeconfig), *NO_CRDS,
                 "--set", "api.enabled=true",
                 "--set", "api.database.url=postgresql+psycopg://rollguard:pw@db:5432/rollguard",
                 "--timeout", "5s", check=False)
        assert proc.returncode != 0 and time.monotonic() - t0 >= 5
        assert "failed pre-install" in proc.stderr, proc.stderr
        job = kubectl.get_json("job", "rg-rollguard-api-migrate", namespace=restricted_ns)
        assert not job.get("status", {}).get("succeeded")
        assert kubectl.get_json("deployments", namespace=restricted_ns)["items"] == []
    finally:
        for n in nodes:
            kubectl("uncordon", n)

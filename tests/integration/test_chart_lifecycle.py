"""The chart's lifecycle on a cluster that has never seen rollguard, as a user runs it:

- `helm install rollguard charts/rollguard` with the local cluster's values only (its pod
  runner's label) succeeds: it installs rollguard's CRDs (chart templates, not crds/) and the
  operator, and needs no database; the chart's operator pod, run by the pod runner under the
  chart's ServiceAccount, reconciles a FeatureFlag, and `helm test` passes;
- `helm upgrade` with a changed CRD (a copy of the chart whose FeatureFlag CRD gains a printer
  column) changes the CRD in the apiserver, which Helm never does for crds/;
- `helm uninstall` keeps the CRDs and the users' objects (`helm.sh/resource-policy: keep`) and
  removes the rest; installing again takes the kept CRDs back; deleting the CRDs (docs/chart.md's
  command) is what removes them and their objects.

This module starts a cluster of its own: the session's cluster has crds/ applied by its fixture,
and the point here is what the chart does where nothing is installed yet.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollguard.localenv.controlplane import ControlPlane
from rollguard.localenv.podrunner import PodRunner
from rollguard.localenv.svcproxy import ServiceProxy
from tests.support.helm import CHART, REPO, Helm, helm
from tests.support.kube import Kubectl, eventually

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("chart-lifecycle")]

RELEASE = NS = "rollguard"
OPERATOR = "rollguard-operator"  # the chart's name for release "rollguard"
OWN_CRDS = {"failurecatalogs.rollguard.io", "featureflags.rollguard.io", "canaryrollouts.rollguard.io"}
KOPF_CRDS = {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
LOCAL_VALUES = REPO / "examples" / "local-cluster" / "rollguard-values.yaml"
COLUMN = {"name": "Owner", "type": "string", "jsonPath": ".spec.owner"}


@pytest.fixture(scope="module")
def empty_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(tmp_path_factory.mktemp("empty-cluster"))
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def k(empty_cluster: ControlPlane) -> Kubectl:
    return Kubectl(empty_cluster.kubectl, empty_cluster.kubeconfig)


@pytest.fixture(scope="module")
def runner(empty_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodRunner]:
    """The cluster's pod runner, its pods' HTTP clients reaching Services (`helm test`'s pod)."""
    proxy = ServiceProxy(empty_cluster.kubeconfig).start()
    r = PodRunner(empty_cluster.kubeconfig, tmp_path_factory.mktemp("empty-cluster-pods"),
                  service_proxy=proxy.url).start()
    try:
        yield r
    finally:
        r.stop()
        proxy.stop()


@pytest.fixture
def without_crds(k: Kubectl) -> Kubectl:
    """The cluster without rollguard's CRDs (each test here starts where nothing is installed)."""
    k("delete", "crd", *sorted(OWN_CRDS), "--ignore-not-found")
    assert not OWN_CRDS & set(_crds(k))
    return k


def _helm(h: Helm, cp: ControlPlane, *args: str) -> str:
    return h(*args, "-n", NS, "--kubeconfig", str(cp.kubeconfig), "--timeout", "90s").stdout


def _crds(k: Kubectl) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in k.get_json("customresourcedefinitions")["items"]}


def _flag_value(k: Kubectl, ns: str) -> Any:
    cm = k.find("configmap", "rollguard-flags-staging", namespace=ns)
    entry = json.loads(cm["data"]["flags.json"])["flags"].get("checkout_v2") if cm else None
    return None if entry is None else entry["value"]


def test_default_install_reconciles_upgrade_changes_a_crd_uninstall_keeps_crds_and_objects(
        empty_cluster: ControlPlane, without_crds: Kubectl, runner: PodRunner, tmp_path: Path) -> None:
    cp, h, k = empty_cluster, helm(), without_crds

    # 1. The default install: no database, nothing created beforehand.
    out = _helm(h, cp, "install", RELEASE, str(CHART), "--create-namespace", "-f", str(LOCAL_VALUES))
    assert "STATUS: deployed" in out and "Failures API: not installed" in out, out
    crds = _crds(k)
    assert set(crds) >= OWN_CRDS | KOPF_CRDS
    for name in OWN_CRDS:
        annotations = crds[name]["metadata"]["annotations"]
        assert annotations["helm.sh/resource-policy"] == "keep", name
        assert annotations["meta.helm.sh/release-name"] == RELEASE, name
    assert {d["metadata"]["name"] for d in k.get_json("deployments", namespace=NS)["items"]} == {OPERATOR}
    # no migration Job and no database Secret: Helm's own release record is the only Secret
    assert not k.get_json("jobs", namespace=NS)["items"]
    assert {s["type"] for s in k.get_json("secrets", namespace=NS)["items"]} == {"helm.sh/release.v1"}

    # 2. The chart's operator pod (a process the pod runner started, with the pod's ServiceAccount
    # token) reconciles a FeatureFlag in another namespace into its flags ConfigMap.
    k("create", "namespace", "shop")
    k.apply({"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag", "metadata": {"name": "checkout"},
             "spec": {"key": "checkout_v2", "owner": "shop-team", "defaultValue": False,
                      "environments": {"staging": True}}}, namespace="shop")

    def operator_log() -> str:
        pods = [r.key.split("/", 1)[1] for r in [*runner.running.values(), *runner.finished]
                if r.key.startswith(f"{NS}/{OPERATOR}-")]
        return "\n".join(runner.log_of(NS, pod)[-4000:] for pod in pods) or "(the pod runner ran no operator pod)"

    def reconciled() -> bool:
        status = k.get_json("featureflag", "checkout", namespace="shop").get("status") or {}
        return status.get("phase") == "Ready" and _flag_value(k, "shop") is True

    try:
        eventually(reconciled, timeout=120, what="the chart's operator to reconcile the FeatureFlag")
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- the operator pod's log:\n{operator_log()}") from None

    # `helm test`, as the NOTES say: with the API off, its pod asks the operator's /healthz.
    out = _helm(h, cp, "test", RELEASE)
    assert "Phase:          Succeeded" in out, out
    checked = runner.log_of(NS, "rollguard-test")
    assert "http://rollguard-operator:8080/healthz 200" in checked and "rollguard-api" not in checked, checked

    # 3. `helm upgrade` with a changed CRD (a new printer column) changes it in the apiserver.
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    crd_file = chart / "files" / "crds" / "featureflags.rollguard.io.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    assert COLUMN not in crd["spec"]["versions"][0]["additionalPrinterColumns"]
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(COLUMN)
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))
    _helm(h, cp, "upgrade", RELEASE, str(chart), "-f", str(LOCAL_VALUES))
    assert COLUMN in _crds(k)["featureflags.rollguard.io"]["spec"]["versions"][0]["additionalPrinterColumns"]
    header, row = k("get", "featureflags", "checkout", namespace="shop").stdout.splitlines()
    assert header.split()[-1] == "OWNER" and row.split()[-1] == "shop-team", (header, row)

    # 4. `helm uninstall` keeps the CRDs and the FeatureFlag; the operator's objects go.
    out = _helm(h, cp, "uninstall", RELEASE, "--wait")
    assert "kept due to the resource policy" in out, out
    assert set(_crds(k)) >= OWN_CRDS
    assert k.get_json("featureflag", "checkout", namespace="shop")["spec"]["owner"] == "shop-team"
    assert not k.get_json("deployments", namespace=NS)["items"]
    assert not k.exists("clusterkopfpeering", "rollguard")

    # 5. Installing again takes the kept CRDs back (they still name this release): the chart's
    # own CRD replaces the upgraded one, and the FeatureFlag is still there.
    _helm(h, cp, "install", RELEASE, str(CHART), "-f", str(LOCAL_VALUES))
    assert COLUMN not in _crds(k)["featureflags.rollguard.io"]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert k.exists("featureflag", "checkout", namespace="shop")

    # 6. Deleting rollguard for good, as docs/chart.md says: uninstall, then delete the CRDs on
    # purpose, which takes the users' objects with them.
    _helm(h, cp, "uninstall", RELEASE, "--wait")
    k("delete", "crd", "failurecatalogs.rollguard.io", "featureflags.rollguard.io", "canaryrollouts.rollguard.io")
    assert not OWN_CRDS & set(_crds(k))
    assert k("get", "featureflags.rollguard.io", "-A", check=False).returncode != 0


def test_upgrading_a_release_whose_crds_came_from_the_charts_crds_folder(
        empty_cluster: ControlPlane, without_crds: Kubectl, tmp_path: Path) -> None:
    """A release of the earlier chart (its CRDs in crds/, which Helm installs without marking them
    as the release's) upgrades as docs/chart.md says: a plain `helm upgrade` is refused naming the
    CRD, `--take-ownership` makes them the release's, kept on uninstall from then on."""
    cp, h, k = empty_cluster, helm(), without_crds
    # The earlier chart: this one with its CRDs in crds/ instead of templates.
    old = tmp_path / "old-chart"
    shutil.copytree(CHART, old)
    for f in (old / "files" / "crds").glob("*.yaml"):
        f.rename(old / "crds" / f.name)
    (old / "templates" / "crds.yaml").unlink()
    ns, peering = "earlier", ["--set", "operator.peering.name=earlier"]
    h("install", "rg", str(old), "-n", ns, "--create-namespace", "--kubeconfig", str(cp.kubeconfig), *peering)
    assert "helm.sh/resource-policy" not in (_crds(k)["featureflags.rollguard.io"]["metadata"].get("annotations") or {})

    upgrade = ["upgrade", "rg", str(CHART), "-n", ns, "--kubeconfig", str(cp.kubeconfig), *peering]
    refused = h(*upgrade, check=False)
    assert refused.returncode != 0
    assert "exists and cannot be imported into the current release" in refused.stderr, refused.stderr
    assert "STATUS: deployed" in h(*upgrade, "--take-ownership", "--reset-then-reuse-values").stdout
    for name in OWN_CRDS:
        annotations = _crds(k)[name]["metadata"]["annotations"]
        assert annotations["helm.sh/resource-policy"] == "keep" and annotations["meta.helm.sh/release-name"] == "rg"
    out = h("uninstall", "rg", "-n", ns, "--kubeconfig", str(cp.kubeconfig)).stdout
    assert "kept due to the resource policy" in out, out
    assert set(_crds(k)) >= OWN_CRDS

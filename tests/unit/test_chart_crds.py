"""crds/ is the one source of truth: the chart's copies must be identical (hack/sync-chart-crds.sh),
and what the chart renders from them is those CRDs plus the chart's labels and annotations.

rollguard's own CRDs are chart templates (templates/crds.yaml reads files/crds/), so `helm
upgrade` upgrades them; kopf's peering CRDs stay in the chart's crds/ folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.helm import CHART, REPO, Helm, find, helm

SRC = REPO / "crds"
OWN = CHART / "files" / "crds"     # rendered by templates/crds.yaml
KOPF = CHART / "crds"              # Helm's crds/ folder: kopf's peering CRDs only
KOPF_CRDS = {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
KEEP = "helm.sh/resource-policy"


def _crds_in(folder: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in folder.glob("*.yaml"):
        for doc in yaml.safe_load_all(p.read_text()):
            if doc:
                assert doc["kind"] == "CustomResourceDefinition", p
                out[doc["metadata"]["name"]] = doc
    return out


@pytest.fixture(scope="module")
def h() -> Helm:
    return helm()


def test_chart_crds_are_exact_copies_of_crds_dir() -> None:
    src = {p.name: p.read_bytes() for p in SRC.glob("*.yaml")}
    dst = {p.name: p.read_bytes() for folder in (OWN, KOPF) for p in folder.glob("*.yaml")}
    assert src, "crds/ is empty"
    missing, stale = sorted(src.keys() - dst.keys()), sorted(dst.keys() - src.keys())
    changed = sorted(n for n in src.keys() & dst.keys() if src[n] != dst[n])
    assert not (missing or stale or changed), (
        f"the chart's CRDs differ from crds/ (missing {missing}, stale {stale}, changed {changed}): "
        "run hack/sync-chart-crds.sh")


def test_helms_crds_folder_holds_only_kopfs_peering_crds() -> None:
    assert set(_crds_in(KOPF)) == KOPF_CRDS
    own = set(_crds_in(OWN))
    assert own == {"failurecatalogs.rollguard.io", "featureflags.rollguard.io", "canaryrollouts.rollguard.io"}


def test_sync_script_check_mode_agrees(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(REPO / "hack" / "sync-chart-crds.sh"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    # On a copy of the tree where a chart copy went stale and one sits in the wrong folder, the
    # check fails naming both, and a sync repairs it.
    tree = tmp_path / "tree"
    for part in ("crds", "hack", "charts/rollguard/crds", "charts/rollguard/files/crds"):
        shutil.copytree(REPO / part, tree / part)
    (tree / "charts/rollguard/files/crds/featureflags.rollguard.io.yaml").write_text("stale\n")
    shutil.copy(SRC / "kopf-peering.yaml", tree / "charts/rollguard/files/crds/kopf-peering.yaml")
    script = tree / "hack" / "sync-chart-crds.sh"
    proc = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "charts/rollguard/files/crds/featureflags.rollguard.io.yaml differs" in proc.stderr
    assert "charts/rollguard/files/crds/kopf-peering.yaml is not a copy" in proc.stderr
    subprocess.run(["bash", str(script)], check=True, capture_output=True, timeout=60)
    proc = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_rendered_crds_are_crds_dir_plus_the_charts_metadata(h: Helm) -> None:
    rendered = {o["metadata"]["name"]: o for o in find(h.template(), "CustomResourceDefinition")}
    src = _crds_in(SRC)
    assert set(rendered) == set(src) - KOPF_CRDS
    for name, crd in rendered.items():
        meta = crd.pop("metadata")
        want = dict(src[name])
        assert want.pop("metadata") == {"name": name}
        assert crd == want, f"{name}: the rendered CRD differs from crds/"
        assert meta["annotations"] == {KEEP: "keep"}, name
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert meta["labels"]["app.kubernetes.io/instance"] == "rg"


def test_crds_install_and_keep_switches(h: Helm) -> None:
    assert not find(h.template("--set", "crds.install=false"), "CustomResourceDefinition")
    unkept = find(h.template("--set", "crds.keep=false"), "CustomResourceDefinition")
    assert len(unkept) == 3 and all(KEEP not in (c["metadata"].get("annotations") or {}) for c in unkept)
    crds = {"annotations": {"team": "platform"}, "additionalLabels": {"tier": "crd"}}
    extra = find(h.template(values={"crds": crds}), "CustomResourceDefinition")
    for c in extra:
        assert c["metadata"]["annotations"] == {KEEP: "keep", "team": "platform"}
        assert c["metadata"]["labels"]["tier"] == "crd"


def test_helm_show_crds_lists_only_kopfs_peering_crds(h: Helm) -> None:
    shown = [d for d in yaml.safe_load_all(h("show", "crds", str(CHART)).stdout) if d]
    assert {d["metadata"]["name"] for d in shown} == KOPF_CRDS

"""crds/ is the one source of truth: the chart's copy must be identical (hack/sync-chart-crds.sh)."""

from __future__ import annotations

import subprocess

import yaml

from tests.support.helm import CHART, REPO

SRC = REPO / "crds"
DST = CHART / "crds"


def test_chart_crds_are_an_exact_copy_of_crds_dir() -> None:
    src = {p.name: p.read_bytes() for p in SRC.glob("*.yaml")}
    dst = {p.name: p.read_bytes() for p in DST.glob("*.yaml")}
    assert src, "crds/ is empty"
    missing, stale = sorted(src.keys() - dst.keys()), sorted(dst.keys() - src.keys())
    changed = sorted(n for n in src.keys() & dst.keys() if src[n] != dst[n])
    assert not (missing or stale or changed), (
        f"charts/rollguard/crds/ differs from crds/ (missing {missing}, stale {stale}, changed {changed}): "
        "run hack/sync-chart-crds.sh")


def test_chart_crds_are_crds_and_include_kopf_peering() -> None:
    names = set()
    for p in DST.glob("*.yaml"):
        for doc in yaml.safe_load_all(p.read_text()):
            if doc:
                assert doc["kind"] == "CustomResourceDefinition", p
                names.add(doc["metadata"]["name"])
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= names
    for n in names - {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}:
        assert n.endswith(".rollguard.io"), n


def test_sync_script_check_mode_agrees() -> None:
    proc = subprocess.run(["bash", str(REPO / "hack" / "sync-chart-crds.sh"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr + proc.stdout

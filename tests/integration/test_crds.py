"""Every rollguard CRD on the real apiserver: a valid object of each kind is accepted, `kubectl get`
shows the CRD's printer columns, and status is written through the status subresource only."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.test_crd_validation_canary import base as valid_rollout
from tests.integration.test_crd_validation_catalog import catalog as valid_catalog
from tests.integration.test_crd_validation_flags import valid_flag
from tests.support.kube import Kubectl

pytestmark = pytest.mark.integration

CRDS = Path(__file__).resolve().parents[2] / "crds"

VALID: dict[str, Callable[[], dict[str, Any]]] = {
    "FailureCatalog": valid_catalog,
    "FeatureFlag": valid_flag,
    "CanaryRollout": valid_rollout,
}


def crd_of(kind: str) -> dict[str, Any]:
    for path in sorted(CRDS.glob("*.rollguard.io.yaml")):
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
        if doc["spec"]["names"]["kind"] == kind:
            return doc
    raise AssertionError(f"no CRD for {kind} in {CRDS}")


def test_every_rollguard_crd_has_a_valid_example() -> None:
    kinds = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"] for p in CRDS.glob("*.rollguard.io.yaml")}
    assert kinds == set(VALID)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_object_round_trip_columns_and_status(kubectl: Kubectl, namespace: str, kind: str) -> None:
    crd = crd_of(kind)
    plural = crd["spec"]["names"]["plural"]
    version = next(v for v in crd["spec"]["versions"] if v["served"] and v["storage"])
    obj = VALID[kind]()
    name = obj["metadata"]["name"]
    kubectl.apply(obj, namespace=namespace)

    # kubectl get prints the CRD's printer columns (in the default, non-priority view)
    table = kubectl("get", plural, name, namespace=namespace).stdout.splitlines()
    header = table[0].split()
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert header[0] == "NAME" and [h for h in header[1:]] == [c for c in " ".join(columns).split()], table
    assert table[1].split()[0] == name

    # short names resolve to the same object
    for short in crd["spec"]["names"].get("shortNames", []):
        assert kubectl.get_json(short, name, namespace=namespace)["metadata"]["name"] == name

    # status goes through the subresource ...
    status = {"status": {"observedGeneration": 1}}
    kubectl("patch", plural, name, "--subresource=status", "--type=merge", "-p", json.dumps(status),
            namespace=namespace)
    got = kubectl.get_json(plural, name, namespace=namespace)
    assert got["status"]["observedGeneration"] == 1
    # ... and a write to the main resource cannot change it (nor does it bump the generation for status)
    generation = got["metadata"]["generation"]
    kubectl("patch", plural, name, "--type=merge", "-p", json.dumps({"status": {"observedGeneration": 7}}),
            namespace=namespace)
    again = kubectl.get_json(plural, name, namespace=namespace)
    assert again["status"]["observedGeneration"] == 1
    assert again["metadata"]["generation"] == generation


def test_names_collide_with_nothing_the_apiserver_serves(kubectl: Kubectl) -> None:
    """No rollguard name (plural, singular, short) is a name any other group the local
    kube-apiserver serves answers to: a new core short name would make `kubectl get rgflag`
    ambiguous. Read from discovery, as kubectl reads it."""
    others: dict[str, str] = {}
    paths = ["/api/v1"] + [f"/apis/{g['preferredVersion']['groupVersion']}"
                           for g in json.loads(kubectl("get", "--raw", "/apis").stdout)["groups"]]
    for path in paths:
        discovered = json.loads(kubectl("get", "--raw", path).stdout)
        if discovered.get("groupVersion", "").startswith("rollguard.io/"):
            continue
        for r in discovered["resources"]:
            if "/" in r["name"]:
                continue  # a subresource
            for n in (r["name"], r.get("singularName") or "", r["kind"].lower(), *r.get("shortNames", [])):
                if n:
                    others.setdefault(n.lower(), f"{discovered['groupVersion']} {r['kind']}")
    assert "deploy" in others and "po" in others, sorted(others)  # discovery was read
    for crd_file in sorted(CRDS.glob("*.rollguard.io.yaml")):
        names = yaml.safe_load(crd_file.read_text())["spec"]["names"]
        for n in (names["plural"], names["singular"], *names["shortNames"]):
            assert n.lower() not in others, f"{names['kind']}'s name {n} is also {others[n.lower()]}"

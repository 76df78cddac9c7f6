"""The tests' in-process reader prints what ``kubectl get -o json`` prints, for every form the
tests use (kind and name, a list, a label or field selector, a short name, a cluster-scoped
kind, a CRD applied after the first read), and fails where kubectl fails."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.kube import Kubectl

pytestmark = pytest.mark.integration


def by_kubectl(kubectl: Kubectl, *args: str, namespace: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json", namespace=namespace).stdout)
    return out


def test_the_reader_prints_what_kubectl_prints(kubectl: Kubectl, namespace: str) -> None:
    for n in ("a", "b"):
        kubectl.apply({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": n, "labels": {"app": n}}, "data": {"k": n}}, namespace=namespace)
    kubectl.apply({"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag", "metadata": {"name": "f"},
                   "spec": {"key": "f", "owner": "team", "defaultValue": False}}, namespace=namespace)
    forms: list[tuple[str, ...]] = [
        ("configmap", "a"), ("cm", "b"), ("configmaps",), ("configmap/a",), ("cm", "-l", "app=a"),
        ("configmap", "a", "--show-managed-fields"), ("featureflag", "f"), ("rgflag",), ("FeatureFlag", "f"),
        ("events", "--field-selector", "involvedObject.name=nothing"),
    ]
    for form in forms:
        assert kubectl.reader.get(form, namespace) is not None, f"{form} is read in process"
        assert kubectl.get_json(*form, namespace=namespace) == by_kubectl(kubectl, *form, namespace=namespace), form
    nodes = kubectl.get_json("nodes")
    assert [n["metadata"]["name"] for n in nodes["items"]] == \
        [n["metadata"]["name"] for n in by_kubectl(kubectl, "nodes")["items"]]
    assert all(n["kind"] == "Node" and n["apiVersion"] == "v1" for n in nodes["items"])


def test_a_missing_object_fails_as_kubectl_does(kubectl: Kubectl, namespace: str) -> None:
    with pytest.raises(AssertionError, match=r"(?i)not ?found|404"):
        kubectl.get_json("configmap", "nothing-here", namespace=namespace)
    assert not kubectl.exists("configmap", "nothing-here", namespace=namespace)
    assert kubectl("get", "configmap", "nothing-here", namespace=namespace, check=False).returncode != 0


def test_a_kind_applied_after_the_first_read_is_found(kubectl: Kubectl, namespace: str) -> None:
    kubectl.get_json("configmaps", namespace=namespace)  # discovery read before the CRD exists
    group = f"g{namespace.removeprefix('t-')}.example.com"
    kubectl.apply({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": f"widgets.{group}"},
                   "spec": {"group": group, "scope": "Namespaced",
                            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                                      "shortNames": [f"w{namespace[-6:]}"]},
                            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                                "openAPIV3Schema": {"type": "object",
                                                    "x-kubernetes-preserve-unknown-fields": True}}}]}})
    try:
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/widgets.{group}")
        kubectl.apply({"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}}, namespace=namespace)
        short = f"w{namespace[-6:]}"
        assert kubectl.get_json(short, "w", namespace=namespace) == by_kubectl(kubectl, short, "w", namespace=namespace)
    finally:
        kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)

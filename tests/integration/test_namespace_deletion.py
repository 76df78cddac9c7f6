"""Deleting a namespace while the operator works in it.

The namespace controller deletes the namespace's objects in no set order, and until it reaches
them the operator's objects are live in a namespace that refuses every create (403,
NamespaceTerminating). Each controller then has something to create (a catalog version's
ConfigMap, a flags file, a canary) and nowhere to create it. A ValidatingAdmissionPolicy keeps the
labelled objects from being deleted, so that window lasts as long as the test needs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from rollguard.localenv.prometheus import Prometheus
from tests.integration.test_canary_rollout import App, apps, rollout, setup_target, status, wait_phase
from tests.integration.test_catalog_operator import catalog, catalog_cms, deployment
from tests.integration.test_flags_operator import flag
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration
__all__ = ["apps"]  # the canary test's fixture, used here

HOLD = "rollguard-test/hold"
# what a controller that retried, or reported the refusal as a failure, would print
FAULTS = re.compile(r"Traceback|Forbidden|\(403\)|failed temporarily|ActionFailed|Handler '[^']*' failed")


def faults(log: str) -> list[str]:
    """The lines of ``log`` that show a fault. Not kopf's own attempts to post an Event, which
    it retries for about a minute and then drops with a warning: an Event is auxiliary, and
    the namespace's deletion would delete it anyway."""
    return [ln for ln in log.splitlines() if FAULTS.search(ln)
            and not ("/events -> " in ln or "Failed to post an event" in ln)]


def held(obj: dict[str, Any]) -> dict[str, Any]:
    obj.setdefault("metadata", {}).setdefault("labels", {})[HOLD] = "true"
    return obj


def _hold_policy(ns: str) -> list[dict[str, Any]]:
    name = f"hold-{ns}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["DELETE"],
                                   "resources": ["*"]}]},
            "validations": [{
                # null for the collection as a whole (the namespace controller's deletecollection)
                "expression": "oldObject == null || !has(oldObject.metadata.labels)"
                              f" || !('{HOLD}' in oldObject.metadata.labels)",
                "message": "held by the test"}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name}, "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    return [policy, binding]


@pytest.fixture
def hold(kubectl: Kubectl, namespace: str) -> Iterator[None]:
    """Labelled objects of ``namespace`` cannot be deleted until the test releases them."""
    objs = _hold_policy(namespace)
    for o in objs:
        kubectl.apply(o)
    kubectl.apply(held({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe"}}), namespace=namespace)

    def effective() -> bool:
        r = kubectl("delete", "secret", "probe", "--dry-run=server", namespace=namespace, check=False)
        return r.returncode != 0 and "held by the test" in r.stderr
    eventually(effective, timeout=30, what="the hold policy in effect")
    try:
        yield
    finally:
        release(kubectl, namespace)


def release(kubectl: Kubectl, ns: str) -> None:
    for o in reversed(_hold_policy(ns)):
        kubectl("delete", o["kind"].lower(), o["metadata"]["name"], "--ignore-not-found", check=False)


def test_a_namespace_being_deleted_gets_no_retries_and_no_failure_status(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess, hold: None) -> None:
    ns = namespace
    # a catalog and a flag mounted into "api", a canary of "web" paused at 40 %
    kubectl.apply(held(deployment("api")), namespace=ns)
    kubectl.apply(held(catalog(targets=[{"name": "api"}])), namespace=ns)
    kubectl.apply(held(flag("checkout", environments={"staging": True},
                            targets=[{"environment": "staging", "deployments": ["api"]}])), namespace=ns)
    setup_target(kubectl, ns)
    for kind in ("deployment", "service", "ingress"):
        kubectl("label", kind, "web", f"{HOLD}=true", namespace=ns)
    # the stable's pods too: a rollout waits for an available target before it starts over
    kubectl("label", "replicasets,pods", "-l", "app=web", f"{HOLD}=true", namespace=ns)
    kubectl.apply(held(rollout(ns, prometheus, steps=[{"setWeight": 40}, {"pause": {"untilResumed": True}},
                                                      {"setWeight": 100}])), namespace=ns)
    wait_phase(kubectl, ns, {"Paused"}, operator)
    eventually(lambda: catalog_cms(kubectl, ns)
               and kubectl.exists("configmap", "rollguard-flags-staging", namespace=ns),
               what="the catalog's and the flag's ConfigMaps")

    kubectl("delete", "namespace", ns, "--wait=false")
    assert kubectl.get_json("namespace", ns)["status"]["phase"] == "Terminating"
    before = len(operator.output())
    # Each controller now has something to create: a new catalog version's ConfigMap, a new
    # environment's flags file, the canary of the edited rollout's new attempt.
    kubectl.apply(held(catalog(version="2", targets=[{"name": "api"}])), namespace=ns)
    kubectl.apply(held(flag("checkout", environments={"staging": True, "production": False},
                            targets=[{"environment": "staging", "deployments": ["api"]}])), namespace=ns)
    kubectl.apply(held(rollout(ns, prometheus, change={"image": {"container": "web", "image": "web:3"}},
                               steps=[{"setWeight": 40}, {"pause": {"untilResumed": True}},
                                      {"setWeight": 100}])), namespace=ns)

    def said(what: str) -> bool:
        return what in operator.output()[before:]
    eventually(lambda: said(f"[{ns}/cat] namespace {ns} is being deleted: the catalog is left to its deletion"),
               timeout=60, what="the catalog controller noticing")
    eventually(lambda: said(f"namespace {ns} is being deleted: its flags are left to its deletion"),
               timeout=60, what="the flags controller noticing")
    eventually(lambda: said(f"{ns}/web-canary-rollout: namespace {ns} is being deleted: the rollout is left to "
                            "its deletion"), timeout=60, what="the canary controller noticing")
    assert not faults(operator.output()[before:]), faults(operator.output()[before:])
    st = status(kubectl, ns)  # no failure written, the edit's new attempt waits
    assert not st.get("lastActionError") and "Forbidden" not in json.dumps(st), st

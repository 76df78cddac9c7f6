"""Deleting a namespace while the operator works in it.

The namespace controller deletes the namespace's objects in no set order, and until it reaches
them the operator's objects are live in a namespace that refuses every create (403,
NamespaceTerminating). Each controller then has something to create (a catalog version's
ConfigMap, a flags file, a canary) and nowhere to create it. A ValidatingAdmissionPolicy keeps the
labelled objects from being deleted, so that window lasts as long as the test needs it.

Released, the namespace must go: the operator's delete handlers run and take kopf's finalizers
off. Since Kubernetes 1.34 the namespace controller deletes the pods first and, while one still
terminates, reports every status condition False; kopf took that for a deleted namespace and
stopped following it, so the delete handlers never ran (operator/rollguard/operator/kopf_namespaces.py).
Whether that window showed depended on how soon kwok finished the pods; a pod kept by a
finalizer of the test's own makes it show every time.
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


STRAGGLER = "rollguard-test/straggler"


@pytest.fixture
def straggler(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """A pod the namespace's deletion marks but cannot remove until the test takes its finalizer
    off: no node takes it (kwok, playing the kubelets, would finish it at once). Its name."""
    kubectl.apply({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "straggler", "finalizers": [STRAGGLER]},
                   "spec": {"nodeSelector": {"rollguard-test/no-such-node": "true"},
                            "containers": [{"name": "app", "image": "straggler"}]}}, namespace=namespace)
    try:
        yield "straggler"
    finally:
        let_go(kubectl, namespace, "straggler")


def let_go(kubectl: Kubectl, ns: str, pod: str) -> None:
    kubectl("patch", "pod", pod, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', namespace=ns, check=False)


def conditions(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    found = kubectl.find("namespace", ns)
    return list(((found or {}).get("status") or {}).get("conditions") or [])


def test_a_namespace_being_deleted_gets_no_retries_and_is_not_held(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess, hold: None, straggler: str) -> None:
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

    # The pods are released first. While a pod's deletion is refused the namespace controller
    # goes on to the rest; once the pods' deletions pass, it deletes the pods first and, while the
    # straggler remains, touches nothing else and reports every condition False: no blocker,
    # though the rollout and the catalog are there with kopf's finalizer. kopf took this for a
    # deleted namespace. The rest stays held until that pass has come (while a web pod's deletion
    # was refused, the controller would delete the rollout in the same pass).
    kubectl("label", "pods", "-l", "app=web", f"{HOLD}-", namespace=ns)
    kubectl("label", "namespace", ns, "rollguard-test/poke=1")  # the namespace controller retries now

    def pods_first_pass() -> bool:
        conds = conditions(kubectl, ns)
        pods = kubectl.get_json("pods", namespace=ns)["items"]
        return (bool(conds) and not [c for c in conds if c.get("status") == "True"]
                and [p["metadata"]["name"] for p in pods] == [straggler])
    eventually(pods_first_pass, timeout=180, what="the namespace controller's pods-first pass, with no blocker: "
               "if this kube-controller-manager now reports the straggler as remaining content "
               "(kubernetes/kubernetes#138208 fixed), this step no longer shows the state kopf misread")
    release(kubectl, ns)
    for kind, name in (("canaryrollout", "web-canary-rollout"), ("failurecatalog", "cat")):
        obj = kubectl.get_json(kind, name, namespace=ns)["metadata"]
        assert not obj.get("deletionTimestamp") and obj.get("finalizers"), (kind, obj)

    # The straggler goes; the next pass deletes the rest: the operator's delete handlers run, the
    # finalizers come off and the namespace goes.
    let_go(kubectl, ns, straggler)

    def gone() -> bool:
        found = kubectl.find("namespace", ns)
        if found is None:
            return True
        raise AssertionError(json.dumps(found.get("status")))
    eventually(gone, timeout=180, what=f"namespace {ns} deleted")
    out = operator.output()[before:]
    assert f"[{ns}/web-canary-rollout] Handler 'canary_deleted' succeeded" in out
    assert f"[{ns}/cat] Handler 'delete' succeeded" in out
    assert not faults(out), faults(out)

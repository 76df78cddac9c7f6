"""CanaryRollouts on a real apiserver under what users and machines do to them mid-rollout: a spec
edited, a second rollout of the same Deployment, the target deleted, the operator killed between
moving traffic and recording it, Prometheus unreachable."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest

from rollguard.localenv import _proc
from rollguard.localenv.prometheus import Prometheus
from tests.integration import test_canary_rollout as base
from tests.integration.test_canary_rollout import (
    App,
    Watcher,
    image_of,
    rollout,
    setup_target,
    status,
    wait_phase,
)
from tests.support.kube import Kubectl, OperatorProcess, eventually

apps = base.apps  # the fixture, shared with the rollout tests

pytestmark = pytest.mark.integration

PAUSED = [{"setWeight": 20}, {"pause": {"untilResumed": True}}, {"setWeight": 100}]


def canary_image(kubectl: Kubectl, ns: str) -> str | None:
    p = kubectl("get", "deployment", "web-canary", "-o", "jsonpath={.spec.template.spec.containers[0].image}",
                namespace=ns, check=False)
    return p.stdout.strip() or None if p.returncode == 0 else None


def request(kubectl: Kubectl, ns: str, action: str, rid: str, name: str = "web-canary-rollout") -> None:
    kubectl("annotate", "--overwrite", "canaryrollout", name, f"rollguard.io/request={action}",
            f"rollguard.io/request-id={rid}", namespace=ns)


def events(kubectl: Kubectl, ns: str, name: str = "web-canary-rollout") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.get_json("events", "--field-selector", f"involvedObject.name={name}",
                                                   namespace=ns)["items"]
    return items


def test_an_image_edited_mid_rollout_is_analysed_before_it_is_promoted(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    kubectl.apply(rollout(namespace, prometheus, steps=PAUSED), namespace=namespace)
    wait_phase(kubectl, namespace, {"Paused"}, operator)
    assert canary_image(kubectl, namespace) == "web:2"
    kubectl("patch", "canaryrollout", "web-canary-rollout", "--type=merge", "-p",
            json.dumps({"spec": {"change": {"image": {"container": "web", "image": "web:3"}}}}), namespace=namespace)
    eventually(lambda: status(kubectl, namespace).get("attempt") == 2
               and status(kubectl, namespace).get("phase") == "Paused", timeout=90, what="attempt 2 paused")
    st = status(kubectl, namespace)
    assert "change.image" in st["restartedFor"], st
    assert canary_image(kubectl, namespace) == "web:3"   # the canary now runs what will be promoted
    assert image_of(kubectl, namespace) == "web:1"       # nothing of the edit reached the stable yet
    changed = [e["message"] for e in events(kubectl, namespace) if e["reason"] == "SpecChanged"]
    assert changed and "change.image" in changed[0], changed
    request(kubectl, namespace, "resume", "resume-1")
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack", "Failed"}, operator)
    assert st["phase"] == "Succeeded", st.get("message")
    assert image_of(kubectl, namespace) == "web:3"
    assert st["report"]["appliedChanges"] == ["Deployment web: image web:3"]


def test_a_second_rollout_of_the_same_deployment_waits_and_leaves_the_first_alone(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    kubectl.apply(rollout(namespace, prometheus, steps=PAUSED), namespace=namespace)
    wait_phase(kubectl, namespace, {"Paused"}, operator)
    w = Watcher(kubectl, namespace)
    second = rollout(namespace, prometheus, name="web-second", steps=PAUSED,
                     change={"image": {"container": "web", "image": "web:3"}})
    kubectl.apply(second, namespace=namespace)
    st2 = eventually(lambda: (status(kubectl, namespace, "web-second") or {}).get("phase") == "Blocked"
                     and status(kubectl, namespace, "web-second"), timeout=60, what="the second Blocked")
    assert st2["reason"] == "TargetBusy"
    assert "CanaryRollout web-canary-rollout is already rolling out Deployment web" in st2["message"]
    kubectl("delete", "canaryrollout", "web-second", "--timeout=60s", namespace=namespace)
    first = status(kubectl, namespace)
    assert first["phase"] == "Paused" and first["canaryWeight"] == 20
    assert canary_image(kubectl, namespace) == "web:2"
    assert set(w.close()) == {20}                        # the first one's traffic never moved


def test_a_target_deleted_mid_rollout_rolls_back_at_once_naming_it(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    # a deadline far beyond the test's wait: the rollback cannot be the deadline's
    kubectl.apply(rollout(namespace, prometheus, steps=PAUSED, progressDeadlineSeconds=3600), namespace=namespace)
    wait_phase(kubectl, namespace, {"Paused"}, operator)
    kubectl("delete", "deployment", "web", "--timeout=60s", namespace=namespace)
    st = wait_phase(kubectl, namespace, {"RolledBack", "Failed", "Succeeded"}, operator)
    assert st["phase"] == "RolledBack", st.get("message")
    assert "targetRef.name: Deployment web not found" in st["report"]["rollbackReason"]
    assert not kubectl.exists("ingress", "web-canary", namespace=namespace)


def test_traffic_set_but_not_recorded_before_a_kill_is_adopted_never_lowered(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    kubectl.apply(rollout(namespace, prometheus, steps=[{"setWeight": 20}, {"pause": {"duration": "1h"}},
                                                        {"setWeight": 50}, {"setWeight": 100}]), namespace=namespace)
    eventually(lambda: status(kubectl, namespace).get("currentStep") == 1, timeout=60, what="the pause step")
    operator.kill()
    # what a killed operator leaves: the route carries the next step's 50 %, the status still 20 %
    kubectl("annotate", "--overwrite", "ingress", "web-canary", "nginx.ingress.kubernetes.io/canary-weight=50",
            namespace=namespace)
    assert status(kubectl, namespace)["canaryWeight"] == 20
    w = Watcher(kubectl, namespace)
    eventually(lambda: w.weights == [50], timeout=10, what="the watcher seeing 50 %")
    operator.start()
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack", "Failed"}, operator)
    weights = w.close()
    assert st["phase"] == "Succeeded", st.get("message")
    assert weights == [50, 100, 0], weights              # never back to 20 %
    assert any(e["reason"] == "WeightAdopted" for e in events(kubectl, namespace))


def test_an_unreachable_prometheus_shows_in_kubectl_get_with_since_when(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    dead = f"http://127.0.0.1:{_proc.free_port()}"      # nothing listens there
    obj = rollout(namespace, cast(Prometheus, SimpleNamespace(url=dead)), steps=PAUSED)
    obj["spec"]["analysis"].update({"prometheus": {"address": dead}, "onUnavailable": "continue",
                                    "scrapeInterval": "1s"})
    kubectl.apply(obj, namespace=namespace)
    st = eventually(lambda: status(kubectl, namespace).get("reason") == "WaitingForPrometheus"
                    and status(kubectl, namespace), timeout=90, what="WaitingForPrometheus")
    assert st["phase"] == "Progressing" and st["analysisWaitingSince"]
    since = st["analysisWaitingSince"][:19]              # the message gives it to the second
    assert f"analysis waiting for Prometheus at {dead} since {since}" in st["message"], st["message"]
    assert "canary ready" not in st["message"]
    shown = kubectl("get", "canaryrollout", "web-canary-rollout", "-o", "wide", namespace=namespace).stdout
    header, row = shown.splitlines()[:2]
    assert "WAITING" in header and "WaitingForPrometheus" in row and "analysis waiting for Prometheus" in row

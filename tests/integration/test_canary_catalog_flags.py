"""Catalog-version and flag rollouts end to end: the real operator (canary, FailureCatalog and
FeatureFlag controllers in one process), kube-apiserver and Prometheus scraping two real local
HTTP tracks. What a user checks: which catalog version each Deployment mounts, what the
FeatureFlags and the flags ConfigMap say, and that nothing of the canary is left."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from rollguard.localenv.prometheus import Prometheus
from tests.integration import test_canary_rollout as base
from tests.integration.test_canary_rollout import (
    App,
    Watcher,
    rollout,
    setup_target,
    status,
    wait_phase,
    wait_rolled_out,
)
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration
apps = base.apps


def catalog(version: str, pattern: str, pinned: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "version": version, "historyLimit": 5, "targets": [{"name": "web"}],
        "entries": [{"code": "UPSTREAM_TIMEOUT", "category": "TIMEOUT", "severity": "MEDIUM", "retryable": True,
                     "recovery": {"mode": "RETRY_EXPONENTIAL", "maxAttempts": 3},
                     "match": {"patterns": [pattern]}}]}
    if pinned:
        spec["pinnedHash"] = pinned
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "FailureCatalog", "metadata": {"name": "aos-failures"},
            "spec": spec}


def cat_status(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    st: dict[str, Any] = kubectl.get_json("failurecatalog", "aos-failures", namespace=ns).get("status") or {}
    return st


def catalog_volume(kubectl: Kubectl, ns: str, deployment: str) -> str | None:
    dep = kubectl.get_json("deployment", deployment, namespace=ns)
    for v in dep["spec"]["template"]["spec"].get("volumes") or []:
        if v["name"] == "rollguard-catalog":
            return str(v["configMap"]["name"])
    return None


def catalog_mount_owner(kubectl: Kubectl, ns: str) -> list[str]:
    dep = kubectl.get_json("deployment", "web", "--show-managed-fields", namespace=ns)
    return [m["manager"] for m in dep["metadata"].get("managedFields") or []
            if '"f:volumes"' in json.dumps(m.get("fieldsV1") or {})
            and "rollguard-catalog" in json.dumps(m.get("fieldsV1") or {})]


def two_catalog_versions(kubectl: Kubectl, ns: str) -> tuple[str, str]:
    """The documented workflow: v1 mounted into web, pinned, then the spec edited to v2. Returns
    (v1, v2) content hashes once v2 is rendered and web still mounts v1."""
    kubectl.apply(catalog("1", "timed out"), namespace=ns)
    v1: str = eventually(lambda: cat_status(kubectl, ns).get("activeHash"), timeout=60, what="v1 mounted")
    eventually(lambda: catalog_volume(kubectl, ns, "web") == f"aos-failures-{v1[:10]}", timeout=30,
               what="web mounts v1")
    kubectl.apply(catalog("1", "timed out", pinned=v1[:10]), namespace=ns)
    kubectl.apply(catalog("2", "(timed|timing) out", pinned=v1[:10]), namespace=ns)

    def rendered() -> str | None:
        st = cat_status(kubectl, ns)
        h = st.get("contentHash")
        return str(h) if h and h != v1 and any(x["hash"] == h for x in st.get("history") or []) else None
    v2: str = eventually(rendered, timeout=60, what="v2 rendered while pinned")
    # rendered while pinned: the new version's ConfigMap exists, web still mounts v1
    kubectl("get", "configmap", f"aos-failures-{v2[:10]}", namespace=ns)
    assert cat_status(kubectl, ns)["activeHash"] == v1
    assert catalog_volume(kubectl, ns, "web") == f"aos-failures-{v1[:10]}"
    wait_rolled_out(kubectl, ns, "web")
    return v1, v2


def catalog_rollout(ns: str, prometheus: Prometheus, h: str, **over: Any) -> dict[str, Any]:
    obj = rollout(ns, prometheus, **over)
    obj["spec"]["change"] = {"catalog": {"name": "aos-failures", "hash": h}}
    return obj


def canary_volumes_seen(kubectl: Kubectl, ns: str, seen: set[str], deadline: float) -> None:
    while time.monotonic() < deadline and not seen:
        dep = kubectl.find("deployment", "web-canary", namespace=ns)
        if dep is not None:
            for v in dep["spec"]["template"]["spec"].get("volumes") or []:
                if v["name"] == "rollguard-catalog":
                    seen.add(v["configMap"]["name"])
        time.sleep(0.2)


def test_catalog_version_rollout_promotes_through_the_failure_catalog(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    v1, v2 = two_catalog_versions(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    kubectl.apply(catalog_rollout(namespace, prometheus, v2[:12],
                                  steps=[{"setWeight": 50}, {"pause": {"duration": "3s"}}, {"setWeight": 100}]),
                  namespace=namespace)
    seen: set[str] = set()
    canary_volumes_seen(kubectl, namespace, seen, time.monotonic() + 60)
    # the canary copy keeps v2 although the catalog (pinned to v1) targets web, not web-canary
    time.sleep(1)
    canary_volumes_seen(kubectl, namespace, seen, time.monotonic() + 1)
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack", "Failed"}, operator)
    weights = w.close()
    assert st["phase"] == "Succeeded", st.get("message")
    assert seen == {f"aos-failures-{v2[:10]}"}, seen
    assert [x for x in weights if x] == [50, 100] and weights[-1] == 0, weights
    spec = kubectl.get_json("failurecatalog", "aos-failures", namespace=namespace)["spec"]
    assert "pinnedHash" not in spec  # v2 is the spec's own content: the pin is cleared
    cst = cat_status(kubectl, namespace)
    assert cst["activeHash"] == v2 and cst["phase"] == "Ready"
    assert catalog_volume(kubectl, namespace, "web") == f"aos-failures-{v2[:10]}"
    assert catalog_mount_owner(kubectl, namespace) == ["rollguard-catalog"]  # the catalog controller's write
    assert not kubectl.exists("deployment", "web-canary", namespace=namespace)
    applied = st["report"]["appliedChanges"]
    assert applied == [f"FailureCatalog aos-failures: spec.pinnedHash cleared, {v2[:10]} is the spec's own "
                       f"content (was {v1[:10]})"], applied

    # and back to v1 through a canary: an older version than the spec's is promoted as a pin
    wait_rolled_out(kubectl, namespace, "web")
    kubectl("delete", "canaryrollout", "web-canary-rollout", namespace=namespace)
    w = Watcher(kubectl, namespace)
    kubectl.apply(catalog_rollout(namespace, prometheus, v1), namespace=namespace)
    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack", "Failed"}, operator)
    w.close()
    assert st["phase"] == "Succeeded", st.get("message")
    spec = kubectl.get_json("failurecatalog", "aos-failures", namespace=namespace)["spec"]
    assert spec["pinnedHash"] == v1
    assert catalog_volume(kubectl, namespace, "web") == f"aos-failures-{v1[:10]}"


def test_catalog_version_rollout_rolls_back_and_leaves_the_pin(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    v1, v2 = two_catalog_versions(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    kubectl.apply(catalog_rollout(namespace, prometheus, v2,
                                  steps=[{"setWeight": 20}, {"pause": {"duration": "1h"}}, {"setWeight": 100}]),
                  namespace=namespace)
    eventually(lambda: status(kubectl, namespace).get("currentStep") == 1, timeout=60, what="the pause step")
    assert catalog_volume(kubectl, namespace, "web-canary") == f"aos-failures-{v2[:10]}"
    apps["canary"].set(error_ratio=0.01, golden=1)  # the new catalog version misclassifies a golden case
    st = wait_phase(kubectl, namespace, {"RolledBack", "Failed"}, operator)
    weights = w.close()
    assert st["phase"] == "RolledBack", st.get("message")
    assert "golden-mismatch" in st["report"]["rollbackReason"]
    assert weights[-1] == 0 and 100 not in weights
    assert kubectl.get_json("failurecatalog", "aos-failures", namespace=namespace)["spec"]["pinnedHash"] == v1[:10]
    assert cat_status(kubectl, namespace)["activeHash"] == v1
    assert catalog_volume(kubectl, namespace, "web") == f"aos-failures-{v1[:10]}"
    assert not kubectl.exists("deployment", "web-canary", namespace=namespace)
    assert st["report"].get("appliedChanges", []) == []  # the stable was never touched


def test_a_catalog_hash_not_in_history_blocks_naming_the_field(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    kubectl.apply(catalog("1", "timed out"), namespace=namespace)
    eventually(lambda: cat_status(kubectl, namespace).get("activeHash"), timeout=60, what="v1 mounted")
    kubectl.apply(catalog_rollout(namespace, prometheus, "0123456789abcdef"), namespace=namespace)
    st = wait_phase(kubectl, namespace, {"Blocked"}, operator)
    assert "change.catalog.hash: 0123456789abcdef is not a version in FailureCatalog aos-failures" in st["message"]
    assert not kubectl.exists("deployment", "web-canary", namespace=namespace)


GATED_KEY = "failure_catalog_runtime_integration"
PLAIN_KEY = "cost_simulator_runtime_integration"


def feature_flag(name: str, key: str, *, gated: bool) -> dict[str, Any]:
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag", "metadata": {"name": name},
            "spec": {"key": key, "owner": "platform-team", "defaultValue": False, "requiresSignoff": gated,
                     "environments": {"staging": False, "production": False},
                     "targets": [{"environment": "staging", "deployments": ["web"]}]}}


def flags_file(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    cm = kubectl.get_json("configmap", name, namespace=ns)
    doc: dict[str, Any] = json.loads(cm["data"]["flags.json"])["flags"]
    return doc


def container_env(kubectl: Kubectl, ns: str, deployment: str) -> dict[str, str]:
    c = kubectl.get_json("deployment", deployment, namespace=ns)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in c.get("env") or []}


def flags_mounted_and_available(kubectl: Kubectl, ns: str) -> None:
    """The flags controller mounted rollguard-flags-staging into web, which then rolled out."""
    def mounted() -> bool:
        vols = kubectl.get_json("deployment", "web", namespace=ns)["spec"]["template"]["spec"].get("volumes")
        return any(v["name"] == "rollguard-flags" for v in vols or [])
    eventually(mounted, timeout=60, what="web mounts rollguard-flags-staging")
    wait_rolled_out(kubectl, ns, "web")


def two_flags_and_a_kill_switch(kubectl: Kubectl, ns: str) -> None:
    """web with an old env kill switch (after promotion the FeatureFlag must decide, not this), a
    gated and a plain FeatureFlag for environment staging, mounted."""
    setup_target(kubectl, ns)
    kubectl("set", "env", "deployment/web", "AOS_FEATURE_COST_SIMULATOR_RUNTIME_INTEGRATION=false", namespace=ns)
    kubectl.apply(feature_flag("failure-catalog", GATED_KEY, gated=True), namespace=ns)
    kubectl.apply(feature_flag("cost-simulator", PLAIN_KEY, gated=False), namespace=ns)
    flags_mounted_and_available(kubectl, ns)


def test_flag_rollout_promotes_into_the_feature_flags(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    two_flags_and_a_kill_switch(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    obj = rollout(namespace, prometheus, requiresSignoff=True,
                  steps=[{"setWeight": 50}, {"pause": {"duration": "3s"}}, {"setWeight": 100}])
    obj["spec"]["change"] = {"flags": {"environment": "staging", "values": {GATED_KEY: True, PLAIN_KEY: True}}}
    obj["metadata"]["annotations"] = {"rollguard.io/signoff": "alice: shadow run clean"}
    hold_the_stables_rolling_update(kubectl, namespace)
    kubectl.apply(obj, namespace=namespace)

    # the canary: env overrides, and its own flags file in which the signed-off gate lets the value through
    # the operator writes the canary's flags file before it creates the canary Deployment
    canary_file: dict[str, Any] = eventually(
        lambda: kubectl.exists("configmap", "web-canary-flags", namespace=namespace)
        and kubectl.exists("deployment", "web-canary", namespace=namespace)
        and flags_file(kubectl, namespace, "web-canary-flags"), timeout=60, what="the canary and its flags file")
    assert canary_file[GATED_KEY]["value"] is True and canary_file[GATED_KEY]["signoff"] == "Valid"
    assert canary_file[PLAIN_KEY]["value"] is True
    assert container_env(kubectl, namespace, "web-canary")["AOS_FEATURE_FAILURE_CATALOG_RUNTIME_INTEGRATION"] == "true"
    assert flags_file(kubectl, namespace, "rollguard-flags-staging")[GATED_KEY]["value"] is False  # stable: not yet

    st = wait_phase(kubectl, namespace, {"Succeeded", "RolledBack", "Failed"}, operator)
    w.close()
    assert st["phase"] == "Succeeded", st.get("message")
    gated = kubectl.get_json("featureflag", "failure-catalog", namespace=namespace)["spec"]
    plain = kubectl.get_json("featureflag", "cost-simulator", namespace=namespace)["spec"]
    assert gated["environments"] == {"staging": True, "production": False}
    assert plain["environments"] == {"staging": True, "production": False}
    assert gated["signoff"]["by"] == "alice: shadow run clean" and "signoff" not in plain
    stable_file = flags_file(kubectl, namespace, "rollguard-flags-staging")
    assert stable_file[GATED_KEY]["value"] is True and stable_file[PLAIN_KEY]["value"] is True
    assert not [k for k in container_env(kubectl, namespace, "web") if k.startswith("AOS_FEATURE_")]
    assert not kubectl.exists("configmap", "web-canary-flags", namespace=namespace)
    assert not kubectl.exists("deployment", "web-canary", namespace=namespace)
    managers = {m["manager"] for m in kubectl.get_json("featureflag", "failure-catalog", "--show-managed-fields",
                                                        namespace=namespace)["metadata"]["managedFields"]}
    assert "rollguard-canary" in managers
    applied = st["report"]["appliedChanges"]
    assert any(a.startswith("FeatureFlag failure-catalog: spec.environments.staging = true, spec.signoff")
               for a in applied), applied
    assert "Deployment web: flag env overrides removed" in applied


def test_a_gated_flag_without_the_rollouts_signoff_blocks(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    setup_target(kubectl, namespace)
    kubectl.apply(feature_flag("failure-catalog", GATED_KEY, gated=True), namespace=namespace)
    obj = rollout(namespace, prometheus)
    obj["spec"]["change"] = {"flags": {"environment": "staging", "values": {GATED_KEY: True, "nope": True}}}
    eventually(lambda: kubectl("get", "configmap", "rollguard-flags-staging", namespace=namespace,
                               check=False).returncode == 0, timeout=60, what="flags rendered")
    kubectl.apply(obj, namespace=namespace)
    st = wait_phase(kubectl, namespace, {"Blocked"}, operator)
    assert f"change.flags.values.{GATED_KEY}: FeatureFlag failure-catalog requires a sign-off" in st["message"]
    assert "change.flags.values.nope: no FeatureFlag with key nope" in st["message"]


def test_the_flags_controller_leaves_an_image_canary_of_a_flags_target_alone(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    """The canary copy carries the target's rollguard-flags-staging volume; a namespace reconcile of
    the flags controller must not take it away as from a Deployment that is no longer a target."""
    setup_target(kubectl, namespace)
    kubectl.apply(feature_flag("cost-simulator", PLAIN_KEY, gated=False), namespace=namespace)
    eventually(lambda: "rollguard-flags-staging" in json.dumps(kubectl.get_json("deployment", "web",
                                                                              namespace=namespace)["spec"]),
               timeout=60, what="web mounts rollguard-flags-staging")
    wait_rolled_out(kubectl, namespace, "web")
    w = Watcher(kubectl, namespace)
    kubectl.apply(rollout(namespace, prometheus, steps=[{"setWeight": 30}, {"pause": {"untilResumed": True}},
                                                        {"setWeight": 100}]), namespace=namespace)
    wait_phase(kubectl, namespace, {"Paused"}, operator)
    kubectl.apply(feature_flag("other", "other_flag", gated=False), namespace=namespace)  # a namespace reconcile
    eventually(lambda: "other_flag" in flags_file(kubectl, namespace, "rollguard-flags-staging"), timeout=30,
               what="the flags controller reconciled")
    # that reconcile unmounts after writing the file, then writes the new flag's status
    eventually(lambda: (kubectl.get_json("featureflag", "other", namespace=namespace).get("status") or {})
               .get("observedGeneration") == 1, timeout=30, what="the new flag's status")
    vols = kubectl.get_json("deployment", "web-canary", namespace=namespace)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "rollguard-flags", "configMap": {"name": "rollguard-flags-staging", "optional": True,
                                                     "defaultMode": 420}} in vols, vols
    w.close()


def hold_the_stables_rolling_update(kubectl: Kubectl, ns: str, seconds: int = 20) -> None:
    """From now on a rolling update of ``web`` lasts ``seconds``: a new pod counts as available
    only after being Ready that long (``minReadySeconds``, a field of the Deployment's own spec)."""
    kubectl("patch", "deployment", "web", "--type=merge", "-p", json.dumps({"spec": {"minReadySeconds": seconds}}),
            namespace=ns)


def kill_mid_promotion_then_finish(kubectl: Kubectl, ns: str, operator: OperatorProcess,
                                   w: Watcher) -> dict[str, Any]:
    """SIGKILL the operator while the rollout is Promoting (the stable's pods still rolling: the
    target's minReadySeconds holds the rolling update), restart it, let the rolling update
    finish: the rollout must end Succeeded."""
    operator.kill()
    time.sleep(2)
    assert status(kubectl, ns)["phase"] == "Promoting"
    operator.start()
    st = wait_phase(kubectl, ns, {"Succeeded", "RolledBack", "Failed"}, operator)
    w.close()
    assert st["phase"] == "Succeeded", st.get("message")
    return st


def event_reasons(kubectl: Kubectl, ns: str) -> list[str]:
    events = kubectl.get_json("events", "--field-selector", "involvedObject.name=web-canary-rollout",
                              namespace=ns)["items"]
    return [e["reason"] for e in events]


def assert_promoted_once(kubectl: Kubectl, ns: str) -> None:
    # the Succeeded Event is posted after the status that says Succeeded
    reasons: list[str] = eventually(lambda: "Succeeded" in (r := event_reasons(kubectl, ns)) and r,
                                    what="the Succeeded Event")
    assert reasons.count("Promoting") == 1 and reasons.count("Succeeded") == 1, reasons


def test_operator_sigkilled_mid_promotion_converges_without_a_second_write(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    """The pin is written, the catalog controller mounted v2, the stable is not available yet (a
    rolling update in progress): SIGKILL. The restarted operator finishes the same promotion."""
    setup_target(kubectl, namespace)
    v1, v2 = two_catalog_versions(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    hold_the_stables_rolling_update(kubectl, namespace)
    kubectl.apply(catalog_rollout(namespace, prometheus, v2, steps=[{"setWeight": 100}], watch="2s"),
                  namespace=namespace)

    def promoting_and_unpinned() -> bool:
        pinned = kubectl.get_json("failurecatalog", "aos-failures", namespace=namespace)["spec"].get("pinnedHash")
        return status(kubectl, namespace).get("phase") == "Promoting" and pinned is None \
            and catalog_volume(kubectl, namespace, "web") == f"aos-failures-{v2[:10]}" \
            and "Promoting" in event_reasons(kubectl, namespace)  # posted after the status: a kill would lose it
    eventually(promoting_and_unpinned, timeout=60, what="Promoting, the pin cleared and v2 mounted")
    generation = kubectl.get_json("failurecatalog", "aos-failures", namespace=namespace)["metadata"]["generation"]
    st = kill_mid_promotion_then_finish(kubectl, namespace, operator, w)
    cat = kubectl.get_json("failurecatalog", "aos-failures", namespace=namespace)
    assert "pinnedHash" not in cat["spec"] and cat["metadata"]["generation"] == generation  # no second write
    assert catalog_volume(kubectl, namespace, "web") == f"aos-failures-{v2[:10]}"
    # the status written before the kill already said what was done; the restart added nothing
    applied = st["report"]["appliedChanges"]
    assert applied == [f"FailureCatalog aos-failures: spec.pinnedHash cleared, {v2[:10]} is the spec's own "
                       f"content (was {v1[:10]})"], applied
    assert_promoted_once(kubectl, namespace)


def test_operator_sigkilled_mid_flag_promotion_converges_without_a_second_write(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    """The FeatureFlags are written (value and, for the gated one, the rollout's sign-off), the
    stable's env overrides removed, its pods still rolling: SIGKILL. The restarted operator
    finishes the same promotion without writing the FeatureFlags again."""
    two_flags_and_a_kill_switch(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    obj = rollout(namespace, prometheus, requiresSignoff=True, steps=[{"setWeight": 100}], watch="2s")
    obj["spec"]["change"] = {"flags": {"environment": "staging", "values": {GATED_KEY: True, PLAIN_KEY: True}}}
    obj["metadata"]["annotations"] = {"rollguard.io/signoff": "alice: shadow run clean"}
    kubectl.apply(obj, namespace=namespace)

    def spec_of(name: str) -> dict[str, Any]:
        spec: dict[str, Any] = kubectl.get_json("featureflag", name, namespace=namespace)["spec"]
        return spec

    def promoting_and_written() -> bool:
        return (status(kubectl, namespace).get("phase") == "Promoting"
                and spec_of("failure-catalog")["environments"]["staging"] is True
                and spec_of("cost-simulator")["environments"]["staging"] is True
                and not [k for k in container_env(kubectl, namespace, "web") if k.startswith("AOS_FEATURE_")]
                and "Promoting" in event_reasons(kubectl, namespace))  # posted after the status: a kill would lose it
    eventually(promoting_and_written, timeout=60, what="Promoting, the FeatureFlags written, overrides removed")
    generations = {n: kubectl.get_json("featureflag", n, namespace=namespace)["metadata"]["generation"]
                   for n in ("failure-catalog", "cost-simulator")}
    kill_mid_promotion_then_finish(kubectl, namespace, operator, w)
    after = {n: kubectl.get_json("featureflag", n, namespace=namespace)["metadata"]["generation"]
             for n in ("failure-catalog", "cost-simulator")}
    assert after == generations  # no second write
    assert spec_of("failure-catalog")["signoff"]["by"] == "alice: shadow run clean"
    stable_file = flags_file(kubectl, namespace, "rollguard-flags-staging")
    assert stable_file[GATED_KEY]["value"] is True and stable_file[PLAIN_KEY]["value"] is True
    assert_promoted_once(kubectl, namespace)


def test_the_canarys_flags_file_follows_feature_flag_edits_during_the_rollout(
        kubectl: Kubectl, namespace: str, prometheus: Prometheus, apps: dict[str, App],
        operator: OperatorProcess) -> None:
    """A FeatureFlag the rollout does not change is edited while the canary runs: the canary's own
    flags file follows (as the stable's does), and the rollout's own value stays."""
    setup_target(kubectl, namespace)
    kubectl.apply(feature_flag("cost-simulator", PLAIN_KEY, gated=False), namespace=namespace)
    other = feature_flag("soft-enforcement", "soft_capability_enforcement", gated=False)
    kubectl.apply(other, namespace=namespace)
    flags_mounted_and_available(kubectl, namespace)
    w = Watcher(kubectl, namespace)
    obj = rollout(namespace, prometheus, steps=[{"setWeight": 50}, {"pause": {"untilResumed": True}},
                                                {"setWeight": 100}])
    obj["spec"]["change"] = {"flags": {"environment": "staging", "values": {PLAIN_KEY: True}}}
    kubectl.apply(obj, namespace=namespace)
    wait_phase(kubectl, namespace, {"Paused"}, operator)
    before = flags_file(kubectl, namespace, "web-canary-flags")
    assert before[PLAIN_KEY]["value"] is True and before["soft_capability_enforcement"]["value"] is False

    kubectl("patch", "featureflag", "soft-enforcement", "--type=merge", "-p",
            json.dumps({"spec": {"environments": {"staging": True}}}), namespace=namespace)
    eventually(lambda: flags_file(kubectl, namespace, "rollguard-flags-staging")["soft_capability_enforcement"]
               ["value"] is True, timeout=30, what="the stable's flags file")
    try:
        eventually(lambda: flags_file(kubectl, namespace, "web-canary-flags")["soft_capability_enforcement"]
                   ["value"] is True, timeout=30, what="the canary's flags file to follow the edit")
    except AssertionError:
        print(operator.output()[-4000:])
        raise
    assert flags_file(kubectl, namespace, "web-canary-flags")[PLAIN_KEY]["value"] is True  # the rollout's value
    assert status(kubectl, namespace)["phase"] == "Paused"
    kubectl("annotate", "canaryrollout", "web-canary-rollout", "--overwrite", "rollguard.io/request=abort",
            "rollguard.io/request-id=abort-1", namespace=namespace)
    st = wait_phase(kubectl, namespace, {"RolledBack"}, operator)
    w.close()
    assert not kubectl.exists("configmap", "web-canary-flags", namespace=namespace)
    assert kubectl.get_json("featureflag", "cost-simulator", namespace=namespace)["spec"]["environments"] == \
        {"staging": False, "production": False}
    assert st["report"]["rollbackTriggered"] is True

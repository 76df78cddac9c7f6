"""The real operator against the real kube-apiserver: FeatureFlags become per-environment files in pods."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType

from rollguard.sdk.flags import FlagReader
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration

MOUNT = "/etc/rollguard/flags"


def deployment(name: str, labels: dict[str, str] | None = None,
               containers: tuple[str, ...] = ("app",)) -> dict[str, Any]:
    labels = {"app": name, **(labels or {})}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": c, "image": "backend:1"} for c in containers]}}},
    }


def flag(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"owner": "platform-team", "defaultValue": False}
    body.update(spec)
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "FeatureFlag", "metadata": {"name": name}, "spec": body}


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signoff(expires_in: dt.timedelta | None = None, mismatches: int = 0) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    s: dict[str, Any] = {"by": "sre@example.com", "at": iso(now - dt.timedelta(minutes=1)),
                         "evidence": {"kind": "ShadowRun", "mismatches": mismatches,
                                      "reportRef": "shadow_simulation/reports/cycle_48.json"}}
    if expires_in is not None:
        s["expiresAt"] = iso(now + expires_in)
    return s


def files(kubectl: Kubectl, ns: str, env: str) -> dict[str, Any]:
    cm = kubectl.get_json("configmap", f"rollguard-flags-{env}", namespace=ns)
    return {"flags": json.loads(cm["data"]["flags.json"]), "flagd": json.loads(cm["data"]["flagd.json"]), "cm": cm}


def value_in(kubectl: Kubectl, ns: str, env: str, key: str) -> Any:
    cm = kubectl.find("configmap", f"rollguard-flags-{env}", namespace=ns)
    if cm is None:
        return None
    entry = json.loads(cm["data"]["flags.json"])["flags"].get(key)
    return None if entry is None else entry["value"]


def status(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    got: dict[str, Any] = kubectl.get_json("featureflag", name, namespace=ns).get("status") or {}
    return got


def env_status(kubectl: Kubectl, ns: str, name: str, env: str) -> dict[str, Any]:
    for e in status(kubectl, ns, name).get("environments") or []:
        if e["name"] == env:
            return dict(e)
    raise AssertionError(f"no status for environment {env}: {status(kubectl, ns, name)}")


def condition(kubectl: Kubectl, ns: str, name: str, type_: str) -> dict[str, Any]:
    for c in status(kubectl, ns, name).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    raise AssertionError(f"no {type_} condition yet")


def events(kubectl: Kubectl, ns: str, name: str) -> list[dict[str, Any]]:
    items = kubectl.get_json("events", "--field-selector", f"involvedObject.name={name}", namespace=ns)["items"]
    return list(items)


def write_pod_files(kubectl: Kubectl, ns: str, env: str, directory: Path) -> None:
    """What kubelet would put at /etc/rollguard/flags in a pod of ``env``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files(kubectl, ns, env)["cm"]["data"].items():
        (directory / name).write_text(content)


def mounted_env(kubectl: Kubectl, ns: str, name: str) -> str | None:
    d = kubectl.get_json("deployment", name, namespace=ns)
    pod = d["spec"]["template"]["spec"]
    vols = [v for v in pod.get("volumes") or [] if v["name"] == "rollguard-flags"]
    if not vols:
        return None
    for c in pod["containers"]:
        mounts = [m for m in c.get("volumeMounts") or [] if m["name"] == "rollguard-flags"]
        assert mounts and mounts[0]["mountPath"] == MOUNT and "subPath" not in mounts[0], c
    return str(vols[0]["configMap"]["name"]).removeprefix("rollguard-flags-")


GATED = "failure-catalog"
KEY = "failure_catalog_runtime_integration"


def gated_flag(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = dict(
        key=KEY, description="Wire FailureCatalog to error classification", requiresSignoff=True,
        envVar="AOS_FEATURE_FAILURE_CATALOG", environments={"staging": True, "production": False},
        targets=[{"environment": "staging", "deployments": ["backend-staging"]},
                 {"environment": "production", "selector": {"matchLabels": {"tier": "production"}}}])
    spec.update(over)
    return flag(GATED, **spec)


def test_two_environments_get_their_values_in_mounted_files(kubectl: Kubectl, namespace: str,
                                                            operator: OperatorProcess, tmp_path: Path) -> None:
    ns = namespace
    kubectl.apply(deployment("backend-staging", containers=("app", "sidecar")), namespace=ns)
    kubectl.apply(deployment("backend", {"tier": "production"}), namespace=ns)
    kubectl.apply(deployment("unrelated"), namespace=ns)
    kubectl.apply(gated_flag(signoff=signoff()), namespace=ns)
    kubectl.apply(flag("cost-simulator", key="cost_simulator_runtime_integration", defaultValue=True,
                       environments={"production": False}), namespace=ns)

    eventually(lambda: value_in(kubectl, ns, "staging", KEY) is True, what="staging file to have the gated flag on")
    eventually(lambda: value_in(kubectl, ns, "production", "cost_simulator_runtime_integration") is False,
               what="production file")
    assert value_in(kubectl, ns, "production", KEY) is False
    # a reconcile writes the environments' files in order: staging's after production's
    eventually(lambda: value_in(kubectl, ns, "staging", "cost_simulator_runtime_integration") is True,
               what="staging file with both flags")

    # mounted into the targets (by name and by selector), every container, no subPath; others untouched
    eventually(lambda: mounted_env(kubectl, ns, "backend-staging") == "staging", what="staging mount")
    eventually(lambda: mounted_env(kubectl, ns, "backend") == "production", what="production mount")
    assert mounted_env(kubectl, ns, "unrelated") is None
    d = kubectl.get_json("deployment", "backend", "--show-managed-fields", namespace=ns)
    assert [c["image"] for c in d["spec"]["template"]["spec"]["containers"]] == ["backend:1"]
    managers = {m["manager"] for m in d["metadata"]["managedFields"]}
    assert "rollguard-flags" in managers

    # status per environment, observedGeneration, printer columns
    eventually(lambda: status(kubectl, ns, GATED).get("observedGeneration") == 1, what="observedGeneration")
    st = env_status(kubectl, ns, GATED, "staging")
    assert (st["value"], st["source"], st["deployments"]) == (True, "Override", ["backend-staging"])
    eventually(lambda: status(kubectl, ns, GATED).get("summary") == "production=false staging=true", what="summary")
    table = kubectl("get", "featureflags", namespace=ns).stdout
    assert "production=false staging=true" in table and KEY in table and "Valid" in table

    # the files the operator wrote: our SDK and the real OpenFeature flagd provider agree on them
    for env in ("staging", "production"):
        out = tmp_path / env
        write_pod_files(kubectl, ns, env, out)
        ours = FlagReader(out, environ={})
        provider = FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(out / "flagd.json"))
        domain = f"it-{uuid.uuid4().hex[:8]}"
        api.set_provider_and_wait(provider, domain=domain)
        try:
            client = api.get_client(domain=domain)
            for key in (KEY, "cost_simulator_runtime_integration"):
                expected = ours.is_enabled(key)
                assert client.get_boolean_value(key, not expected) is expected, (env, key)
        finally:
            provider.shutdown()
        assert ours.environment() == env


def test_gated_flag_refused_then_allowed_after_signoff(kubectl: Kubectl, namespace: str,
                                                       operator: OperatorProcess, tmp_path: Path) -> None:
    ns = namespace
    kubectl.apply(deployment("backend-staging"), namespace=ns)
    kubectl.apply(gated_flag(), namespace=ns)

    eventually(lambda: status(kubectl, ns, GATED).get("phase") == "Blocked", what="Blocked phase")
    assert value_in(kubectl, ns, "staging", KEY) is False
    entry = files(kubectl, ns, "staging")["flags"]["flags"][KEY]
    assert entry["blocked"] is True and entry["reason"] == "SignoffMissing"
    assert files(kubectl, ns, "staging")["flagd"]["flags"][KEY]["defaultVariant"] == "off"
    blocked = condition(kubectl, ns, GATED, "Blocked")
    assert blocked["status"] == "True" and blocked["reason"] == "SignoffMissing" and "staging" in blocked["message"]
    st = env_status(kubectl, ns, GATED, "staging")
    assert (st["value"], st["desired"], st["source"]) == (False, True, "Blocked")
    eventually(lambda: any(e["type"] == "Warning" and e["reason"] == "SignoffMissing"
                           for e in events(kubectl, ns, GATED)), what="Warning Event")
    # in the pod: the declared env-var override cannot turn the blocked flag on
    pod_dir = tmp_path / "pod"
    write_pod_files(kubectl, ns, "staging", pod_dir)
    assert FlagReader(pod_dir, environ={"AOS_FEATURE_FAILURE_CATALOG": "true"}).is_enabled(KEY) is False

    # a sign-off whose shadow run had mismatches does not count
    kubectl("patch", "featureflag", GATED, "--type=merge", "-p",
            json.dumps({"spec": {"signoff": signoff(mismatches=2)}}), namespace=ns)
    eventually(lambda: condition(kubectl, ns, GATED, "Blocked")["reason"] == "SignoffEvidenceFailed",
               what="evidence refused")
    assert value_in(kubectl, ns, "staging", KEY) is False

    kubectl("patch", "featureflag", GATED, "--type=merge", "-p",
            json.dumps({"spec": {"signoff": signoff(expires_in=dt.timedelta(days=7))}}), namespace=ns)
    eventually(lambda: value_in(kubectl, ns, "staging", KEY) is True, what="flag on after sign-off")
    write_pod_files(kubectl, ns, "staging", pod_dir)
    assert FlagReader(pod_dir, environ={}).is_enabled(KEY) is True
    # env override first: a pod can still switch it off locally
    assert FlagReader(pod_dir, environ={"AOS_FEATURE_FAILURE_CATALOG": "false"}).is_enabled(KEY) is False
    assert FlagReader(pod_dir, environ={f"AOS_FEATURE_{KEY.upper()}": "0"}).is_enabled(KEY) is False
    eventually(lambda: status(kubectl, ns, GATED).get("phase") == "Ready", what="Ready")
    assert condition(kubectl, ns, GATED, "Blocked")["status"] == "False"
    history = status(kubectl, ns, GATED)["history"]
    assert any("staging: false -> true" in h["change"] and h["actor"] == "kubectl-patch" for h in history), history
    # the Event is posted after the status is written
    eventually(lambda: any(e["reason"] == "FlagChanged" and "staging: false -> true" in e["message"]
                           for e in events(kubectl, ns, GATED)), what="FlagChanged Event")


def test_expired_signoff_turns_the_flag_off_by_itself(kubectl: Kubectl, namespace: str,
                                                      operator: OperatorProcess) -> None:
    ns = namespace
    # On first, with a sign-off far from expiry: however slow the machine, the flag is seen on.
    kubectl.apply(gated_flag(signoff=signoff(expires_in=dt.timedelta(hours=1))), namespace=ns)
    eventually(lambda: value_in(kubectl, ns, "staging", KEY) is True, what="on while the sign-off is valid")
    # Then a sign-off that ends in a few seconds; after that nobody touches the flag: the
    # operator notices the expiry on its own.
    kubectl.apply(gated_flag(signoff=signoff(expires_in=dt.timedelta(seconds=5))), namespace=ns)
    eventually(lambda: value_in(kubectl, ns, "staging", KEY) is False, timeout=90, what="off after expiry")
    eventually(lambda: condition(kubectl, ns, GATED, "Blocked")["reason"] == "SignoffExpired", what="reason")
    assert status(kubectl, ns, GATED)["signoff"]["state"] == "Expired"
    history = status(kubectl, ns, GATED)["history"]
    assert history[-1]["actor"] == "rollguard-operator" and "signoff: Valid -> Expired" in history[-1]["change"]
    eventually(lambda: any(e["type"] == "Warning" and e["reason"] == "SignoffExpired"
                           for e in events(kubectl, ns, GATED)), what="Warning Event for expiry")


def test_change_reaches_the_file_without_restarting_pods(kubectl: Kubectl, namespace: str,
                                                         operator: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("backend-staging"), namespace=ns)
    kubectl.apply(flag("new-checkout", environments={"staging": False},
                       targets=[{"environment": "staging", "deployments": ["backend-staging"]}]), namespace=ns)
    eventually(lambda: mounted_env(kubectl, ns, "backend-staging") == "staging", what="mount")
    eventually(lambda: value_in(kubectl, ns, "staging", "new-checkout") is False, what="initial value")
    before = kubectl.get_json("deployment", "backend-staging", namespace=ns)
    kubectl.apply(flag("new-checkout", environments={"staging": True},
                       targets=[{"environment": "staging", "deployments": ["backend-staging"]}]), namespace=ns)
    eventually(lambda: value_in(kubectl, ns, "staging", "new-checkout") is True, what="new value in ConfigMap")
    # the reconcile mounts after writing the ConfigMap, then writes the status: a remount is in by then
    eventually(lambda: status(kubectl, ns, "new-checkout").get("observedGeneration") == 2, what="observedGeneration 2")
    after = kubectl.get_json("deployment", "backend-staging", namespace=ns)
    # same pod template: the change arrives through the ConfigMap volume, not a rollout
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"]["template"] == before["spec"]["template"]


def test_delete_removes_flag_then_files_and_mounts(kubectl: Kubectl, namespace: str,
                                                   operator: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("backend-staging"), namespace=ns)
    target = [{"environment": "staging", "deployments": ["backend-staging"]}]
    kubectl.apply(flag("a", defaultValue=True, targets=target), namespace=ns)
    kubectl.apply(flag("b", defaultValue=True, targets=target), namespace=ns)
    eventually(lambda: value_in(kubectl, ns, "staging", "a") is True and value_in(kubectl, ns, "staging", "b"),
               what="both flags delivered")
    eventually(lambda: mounted_env(kubectl, ns, "backend-staging") == "staging", what="mount")

    kubectl("delete", "featureflag", "a", namespace=ns)
    eventually(lambda: "a" not in files(kubectl, ns, "staging")["flags"]["flags"], what="a gone from the file")
    assert value_in(kubectl, ns, "staging", "b") is True

    kubectl("delete", "featureflag", "b", namespace=ns)
    eventually(lambda: kubectl("get", "configmap", "rollguard-flags-staging", namespace=ns,
                               check=False).returncode != 0, what="ConfigMap deleted")
    eventually(lambda: mounted_env(kubectl, ns, "backend-staging") is None, what="volume removed")
    d = kubectl.get_json("deployment", "backend-staging", namespace=ns)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "backend:1"  # the rest is untouched


def test_operator_restart_resumes_without_duplicating_history(kubectl: Kubectl, namespace: str,
                                                              operator: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(gated_flag(), namespace=ns)
    eventually(lambda: status(kubectl, ns, GATED).get("phase") == "Blocked", what="Blocked")
    eventually(lambda: any(e["reason"] == "SignoffMissing" for e in events(kubectl, ns, GATED)), what="event")
    history_before = status(kubectl, ns, GATED)["history"]

    operator.kill()
    # while the operator is down: a sign-off arrives through Git (kubectl apply)
    kubectl.apply(gated_flag(signoff=signoff(expires_in=dt.timedelta(days=1))), namespace=ns)
    assert value_in(kubectl, ns, "staging", KEY) is False
    warnings_before = [e for e in events(kubectl, ns, GATED) if e["type"] == "Warning"]

    operator.start()
    eventually(lambda: value_in(kubectl, ns, "staging", KEY) is True, what="resumed after restart")
    eventually(lambda: status(kubectl, ns, GATED).get("observedGeneration") == 2, what="observedGeneration 2")
    history = status(kubectl, ns, GATED)["history"]
    assert history[: len(history_before)] == history_before
    assert len(history) == len(history_before) + 1 and "staging: false -> true" in history[-1]["change"]

    # a second restart with nothing changed records nothing and warns about nothing
    operator.kill()
    operator.start()
    eventually(lambda: "Handler 'reconcile' succeeded" in operator.output().split("Initial authentication")[-1],
               what="resume handler after the second restart")
    assert status(kubectl, ns, GATED)["history"] == history
    assert [e for e in events(kubectl, ns, GATED) if e["type"] == "Warning"] == warnings_before


def allow_garbage_collector_to_delete_configmaps(kubectl: Kubectl) -> None:
    """In a real cluster the garbage collector runs as the generic-garbage-collector service account
    (all verbs on all resources). The local kube-controller-manager runs with its own identity,
    whose default RBAC cannot delete ConfigMaps; grant what a cluster's GC has for them."""
    kubectl.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": "rollguard-test-gc-configmaps"},
                   "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                              "verbs": ["get", "list", "watch", "delete", "patch", "update"]}]})
    kubectl.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "rollguard-test-gc-configmaps"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "rollguard-test-gc-configmaps"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                 "name": "system:kube-controller-manager"}]})


def test_last_flag_deleted_while_operator_down_configmap_is_garbage_collected(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    ns = namespace
    allow_garbage_collector_to_delete_configmaps(kubectl)
    kubectl.apply(flag("only", defaultValue=True, environments={"staging": True}), namespace=ns)
    eventually(lambda: value_in(kubectl, ns, "staging", "only") is True, what="delivered")
    owners = files(kubectl, ns, "staging")["cm"]["metadata"]["ownerReferences"]
    assert [o["name"] for o in owners] == ["only"]
    operator.kill()
    kubectl("delete", "featureflag", "only", namespace=ns)  # no finalizer: deletion never waits for the operator
    eventually(lambda: kubectl("get", "configmap", "rollguard-flags-staging", namespace=ns,
                               check=False).returncode != 0, timeout=60, what="garbage collector to remove it")


def test_app_owner_server_side_apply_keeps_working(kubectl: Kubectl, namespace: str,
                                                   operator: OperatorProcess) -> None:
    """The app's own server-side apply (as Flux does) may rename a container of a target: it is not
    refused because of rollguard's mount, and the renamed container gets the mount again."""
    ns = namespace
    app = deployment("backend-staging")

    def app_apply(obj: dict[str, Any]) -> Any:
        return kubectl("apply", "--server-side", "--field-manager=gitops", "-f", "-",
                       input=yaml.safe_dump(obj), namespace=ns, check=False)

    assert app_apply(app).returncode == 0
    kubectl.apply(flag("new-checkout", defaultValue=True,
                       targets=[{"environment": "staging", "deployments": ["backend-staging"]}]), namespace=ns)
    eventually(lambda: mounted_env(kubectl, ns, "backend-staging") == "staging", what="mount")

    assert app_apply(app).returncode == 0  # a re-sync of the unchanged manifest leaves the mount alone
    assert mounted_env(kubectl, ns, "backend-staging") == "staging"

    renamed = deployment("backend-staging", containers=("api",))
    proc = app_apply(renamed)
    assert proc.returncode == 0, proc.stderr

    def containers() -> list[str]:
        d = kubectl.get_json("deployment", "backend-staging", namespace=ns)
        return [c["name"] for c in d["spec"]["template"]["spec"]["containers"]]
    assert containers() == ["api"]
    eventually(lambda: mounted_env(kubectl, ns, "backend-staging") == "staging", what="mount on the renamed container")

"""The FailureCatalog operator against the real kube-apiserver: create, update, invalid,
rollback, delete, GC, two catalogs, restart mid-update, hand edits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rollguard.catalog import content_hash
from rollguard.cli.main import cli
from rollguard.models.catalog import FailureCatalogSpec
from rollguard.sdk.matcher import Matcher
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration

MOUNT = "/etc/rollguard/catalog"
ANN_HASH = "catalog.rollguard.io/hash"


def deployment(name: str, labels: dict[str, str] | None = None,
               containers: tuple[str, ...] = ("app",)) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}, "annotations": {"team": "payments"}},
                              "spec": {"containers": [{"name": c, "image": "registry.local/backend:1.2.3"}
                                                      for c in containers]}}},
    }


def entry(code: str = "GREMLINS", pattern: str = "gremlins in the (wires|pipes)",
          suggestion: str = "x") -> dict[str, Any]:
    return {"code": code, "category": "TRANSIENT", "severity": "LOW", "retryable": True,
            "recovery": {"mode": "RETRY_IMMEDIATE", "suggestion": suggestion}, "match": {"patterns": [pattern]}}


def catalog(name: str = "cat", version: str = "1", targets: list[dict[str, Any]] | None = None,
            entries: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "rollguard.io/v1alpha1", "kind": "FailureCatalog", "metadata": {"name": name},
            "spec": {"version": version, "entries": entries or [entry()],
                     "targets": targets if targets is not None else [{"name": "api"}], **spec}}


def hash_of(obj: dict[str, Any]) -> str:
    return content_hash(FailureCatalogSpec.model_validate(obj["spec"]))


def get(kubectl: Kubectl, ns: str, kind: str, name: str) -> dict[str, Any]:
    return kubectl.get_json(kind, name, namespace=ns)


def template(kubectl: Kubectl, ns: str, dep: str) -> dict[str, Any]:
    t: dict[str, Any] = get(kubectl, ns, "deployment", dep)["spec"]["template"]
    return t


def mounted_hash(kubectl: Kubectl, ns: str, dep: str) -> str | None:
    return (template(kubectl, ns, dep)["metadata"].get("annotations") or {}).get(ANN_HASH)


def status(kubectl: Kubectl, ns: str, name: str = "cat") -> dict[str, Any]:
    s: dict[str, Any] = get(kubectl, ns, "failurecatalog", name).get("status") or {}
    return s


def cond(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions", []) if c["type"] == type_), {})


def catalog_cms(kubectl: Kubectl, ns: str, name: str = "cat") -> set[str]:
    items = kubectl.get_json("configmaps", "-l", f"catalog.rollguard.io/name={name}", namespace=ns)["items"]
    return {c["metadata"]["name"] for c in items}


def wait_mounted(kubectl: Kubectl, ns: str, dep: str, full_hash: str, timeout: float = 40) -> None:
    eventually(lambda: mounted_hash(kubectl, ns, dep) == full_hash[:10], timeout=timeout,
               what=f"{dep} to mount {full_hash[:10]}")


def events(kubectl: Kubectl, ns: str, reason: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.get_json("events", namespace=ns)["items"]
    return [e for e in items if e.get("reason") == reason]


@pytest.fixture
def op(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    yield operator


def test_create_renders_an_immutable_configmap_and_mounts_it(kubectl: Kubectl, namespace: str,
                                                             op: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("api", containers=("app", "sidecar")), namespace=ns)
    obj = catalog(targets=[{"name": "api", "containers": ["app"]}])
    kubectl.apply(obj, namespace=ns)
    full = hash_of(obj)
    wait_mounted(kubectl, ns, "api", full)

    st = eventually(lambda: status(kubectl, ns) if status(kubectl, ns).get("phase") == "Ready" else None,
                    what="phase Ready")
    assert st["contentHash"] == full and st["activeHash"] == full and st["entryCount"] == 1
    assert st["observedGeneration"] == get(kubectl, ns, "failurecatalog", "cat")["metadata"]["generation"]
    assert cond(st, "Valid")["status"] == "True" and cond(st, "Ready")["status"] == "True"
    assert st["targets"] == [{"name": "api", "state": "Mounted", "hash": full[:10], "message": "mounted into app"}]
    assert [h["hash"] for h in st["history"]] == [full]

    cm = get(kubectl, ns, "configmap", f"cat-{full[:10]}")
    assert cm["immutable"] is True
    owner = cm["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("FailureCatalog", "cat")
    doc = json.loads(cm["data"]["catalog.json"])
    assert doc["contentHash"] == full
    assert Matcher.from_catalog(doc, metrics=False).match("gremlins in the pipes").code == "GREMLINS"

    t = template(kubectl, ns, "api")
    volume = {"name": "rollguard-catalog", "configMap": {"name": f"cat-{full[:10]}", "defaultMode": 420}}
    assert volume in t["spec"]["volumes"]
    app, sidecar = t["spec"]["containers"]
    assert app["volumeMounts"] == [{"name": "rollguard-catalog", "mountPath": MOUNT, "readOnly": True}]
    assert "volumeMounts" not in sidecar  # only the containers asked for
    assert t["metadata"]["annotations"]["team"] == "payments"  # the owner's fields are untouched
    assert eventually(lambda: events(kubectl, ns, "VersionMounted"), what="VersionMounted event")

    # only our own fields, under our own field manager
    managed = kubectl.get_json("deployment", "api", "--show-managed-fields", namespace=ns)["metadata"]["managedFields"]
    ours = [m for m in managed if m["manager"] == "rollguard-catalog"]
    assert len(ours) == 1 and ours[0]["operation"] == "Apply"
    assert "f:image" not in json.dumps(ours[0]["fieldsV1"])


def test_update_rolls_the_pod_template(kubectl: Kubectl, namespace: str, op: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("api"), namespace=ns)
    v1 = catalog()
    kubectl.apply(v1, namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(v1))
    v2 = catalog(version="2", entries=[entry(suggestion="retry twice"), entry("FLUX", "flux capacitor")])
    kubectl.apply(v2, namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(v2))
    volume = next(v for v in template(kubectl, ns, "api")["spec"]["volumes"] if v["name"] == "rollguard-catalog")
    assert volume["configMap"]["name"] == f"cat-{hash_of(v2)[:10]}"
    st = eventually(lambda: status(kubectl, ns) if len(status(kubectl, ns).get("history", [])) == 2 else None,
                    what="two versions in history")
    assert [h["version"] for h in st["history"]] == ["2", "1"]
    assert st["entryCount"] == 2
    assert catalog_cms(kubectl, ns) == {f"cat-{hash_of(v1)[:10]}", f"cat-{hash_of(v2)[:10]}"}


def test_invalid_catalog_is_reported_and_not_mounted(kubectl: Kubectl, namespace: str, op: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("api"), namespace=ns)
    good = catalog()
    kubectl.apply(good, namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(good))
    # passes the CRD schema (a string), fails the operator (the regex does not compile)
    bad = catalog(version="2", entries=[entry(pattern="gremlins in the (wires")])
    assert kubectl.apply(bad, namespace=ns, check=False).returncode == 0

    st = eventually(lambda: status(kubectl, ns) if status(kubectl, ns).get("phase") == "Invalid" else None,
                    what="phase Invalid")
    valid = cond(st, "Valid")
    assert valid["status"] == "False" and valid["reason"] == "ValidationFailed"
    assert "entries[0] (GREMLINS).match.patterns[0]" in valid["message"] and "does not compile" in valid["message"]
    assert cond(st, "Ready")["status"] == "False"
    warnings = eventually(lambda: events(kubectl, ns, "ValidationFailed"), what="a Warning event")
    assert warnings[0]["type"] == "Warning" and "does not compile" in warnings[0]["message"]
    # nothing rendered, the good version stays mounted
    assert catalog_cms(kubectl, ns) == {f"cat-{hash_of(good)[:10]}"}
    assert mounted_hash(kubectl, ns, "api") == hash_of(good)[:10]
    assert st["activeHash"] == hash_of(good)


def test_invalid_catalog_from_the_start_mounts_nothing(kubectl: Kubectl, namespace: str, op: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("api"), namespace=ns)
    kubectl.apply(catalog(entries=[entry(pattern="(timeout)?")]), namespace=ns)
    st = eventually(lambda: status(kubectl, ns) if status(kubectl, ns).get("phase") == "Invalid" else None,
                    what="phase Invalid")
    assert "matches the empty string" in cond(st, "Valid")["message"]
    assert "activeHash" not in st and catalog_cms(kubectl, ns) == set()
    assert "volumes" not in template(kubectl, ns, "api")["spec"]


def rollback(kubeconfig: Path, ns: str, *args: str) -> str:
    r = CliRunner().invoke(cli, ["catalog", "rollback", "cat", "-n", ns, *args], env={"KUBECONFIG": str(kubeconfig)})
    assert r.exit_code == 0, r.output
    return r.output


def test_rollback_with_the_cli_and_unpin(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                         op: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("api"), namespace=ns)
    v1, v2 = catalog(), catalog(version="2", entries=[entry(suggestion="v2")])
    kubectl.apply(v1, namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(v1))
    kubectl.apply(v2, namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(v2))
    eventually(lambda: len(status(kubectl, ns).get("history", [])) == 2 and status(kubectl, ns)["activeHash"]
               == hash_of(v2), what="v2 active with two versions")

    out = rollback(kubeconfig, ns)  # default: the version before the active one
    assert hash_of(v1)[:10] in out
    assert get(kubectl, ns, "failurecatalog", "cat")["spec"]["pinnedHash"] == hash_of(v1)
    wait_mounted(kubectl, ns, "api", hash_of(v1))
    st = eventually(lambda: status(kubectl, ns) if status(kubectl, ns).get("activeHash") == hash_of(v1) else None,
                    what="activeHash v1")
    assert st["contentHash"] == hash_of(v2)  # the spec is unchanged: only the pin moved

    rollback(kubeconfig, ns, "--unpin")
    wait_mounted(kubectl, ns, "api", hash_of(v2))

    rollback(kubeconfig, ns, "--to", hash_of(v1)[:8])
    wait_mounted(kubectl, ns, "api", hash_of(v1))
    r = CliRunner().invoke(cli, ["catalog", "rollback", "cat", "-n", ns, "--to", "ffffff"],
                           env={"KUBECONFIG": str(kubeconfig)})
    assert r.exit_code == 2 and "matches no version" in r.output


def test_delete_removes_the_mount_and_leaves_the_deployment_alone(kubectl: Kubectl, namespace: str,
                                                                   op: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("api"), namespace=ns)
    before = template(kubectl, ns, "api")
    obj = catalog()
    kubectl.apply(obj, namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(obj))
    assert get(kubectl, ns, "failurecatalog", "cat")["metadata"]["finalizers"]
    kubectl("delete", "failurecatalog", "cat", "--wait=true", "--timeout=60s", namespace=ns)
    after = template(kubectl, ns, "api")
    assert after == before  # no volume, no mount, no annotation; image, labels, annotations intact
    eventually(lambda: catalog_cms(kubectl, ns) == set(), timeout=60, what="ConfigMaps garbage-collected")


def test_gc_keeps_history_limit_and_anything_still_mounted(kubectl: Kubectl, namespace: str,
                                                           op: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("api"), namespace=ns)
    versions = [catalog(version=str(i), entries=[entry(suggestion=f"v{i}")], historyLimit=2) for i in range(1, 5)]
    kubectl.apply(versions[0], namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(versions[0]))
    # someone mounts version 1 by hand into another Deployment: it must survive GC
    pinned_by_hand = deployment("legacy")
    pinned_by_hand["spec"]["template"]["spec"]["volumes"] = [
        {"name": "old-catalog", "configMap": {"name": f"cat-{hash_of(versions[0])[:10]}"}}]
    kubectl.apply(pinned_by_hand, namespace=ns)
    for v in versions[1:]:
        kubectl.apply(v, namespace=ns)
        wait_mounted(kubectl, ns, "api", hash_of(v))
    want = {f"cat-{hash_of(v)[:10]}" for v in (versions[3], versions[2], versions[0])}
    eventually(lambda: catalog_cms(kubectl, ns) == want, what=f"ConfigMaps == {want}")
    # the status is written after the ConfigMaps are collected (at the end of the same reconcile)
    eventually(lambda: [h["version"] for h in status(kubectl, ns)["history"]] == ["4", "3"],
               what="history == [4, 3]")
    assert catalog_cms(kubectl, ns) == want


def test_two_catalogs_two_deployments_and_a_conflict(kubectl: Kubectl, namespace: str, op: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("dep-a", labels={"tier": "agents", "app": "dep-a"}), namespace=ns)
    kubectl.apply(deployment("dep-b"), namespace=ns)
    a = catalog("cat-a", targets=[{"selector": {"matchLabels": {"tier": "agents"}}}])
    b = catalog("cat-b", version="9", entries=[entry("FLUX", "flux")], targets=[{"name": "dep-b"}, {"name": "dep-a"},
                                                                                 {"name": "dep-missing"}])
    kubectl.apply(a, namespace=ns)
    wait_mounted(kubectl, ns, "dep-a", hash_of(a))
    kubectl.apply(b, namespace=ns)
    wait_mounted(kubectl, ns, "dep-b", hash_of(b))
    st = eventually(lambda: status(kubectl, ns, "cat-b") if len(status(kubectl, ns, "cat-b").get("targets", [])) == 3
                    else None, what="cat-b's three targets")
    states = {t["name"]: t["state"] for t in st["targets"]}
    assert states == {"dep-a": "Conflict", "dep-b": "Mounted", "dep-missing": "NotFound"}
    assert st["phase"] == "Degraded" and cond(st, "Ready")["reason"] == "TargetsNotReady"
    assert mounted_hash(kubectl, ns, "dep-a") == hash_of(a)[:10]  # cat-b did not take it over
    assert template(kubectl, ns, "dep-a")["metadata"]["annotations"]["catalog.rollguard.io/name"] == "cat-a"


def test_operator_restart_in_the_middle_of_an_update(kubectl: Kubectl, namespace: str, op: OperatorProcess) -> None:
    ns = namespace
    kubectl.apply(deployment("api"), namespace=ns)
    kubectl.apply(deployment("worker", labels={"app": "worker"}), namespace=ns)
    v1 = catalog(targets=[{"name": "api"}, {"name": "worker"}])
    kubectl.apply(v1, namespace=ns)
    wait_mounted(kubectl, ns, "api", hash_of(v1))
    wait_mounted(kubectl, ns, "worker", hash_of(v1))
    v2 = catalog(version="2", entries=[entry(suggestion="v2")], targets=[{"name": "api"}, {"name": "worker"}])
    kubectl.apply(v2, namespace=ns)
    op.kill()  # SIGKILL while it handles the update (or before it saw it)
    op.start()
    wait_mounted(kubectl, ns, "api", hash_of(v2), timeout=60)
    wait_mounted(kubectl, ns, "worker", hash_of(v2), timeout=60)
    st = eventually(lambda: status(kubectl, ns) if status(kubectl, ns).get("activeHash") == hash_of(v2) else None,
                    what="status after restart")
    assert [h["version"] for h in st["history"]] == ["2", "1"] and st["phase"] == "Ready"


def test_hand_edit_is_repaired_and_a_late_deployment_is_picked_up(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                                                   tmp_path: Path) -> None:
    ns = namespace
    proc = OperatorProcess(kubeconfig, tmp_path / "op.log", namespaces=(ns,),
                           extra_env={"ROLLGUARD_CATALOG_RESYNC_SECONDS": "2"}).start()
    try:
        kubectl.apply(deployment("api"), namespace=ns)
        obj = catalog(targets=[{"selector": {"matchLabels": {"tier": "web"}}}, {"name": "api"}])
        kubectl.apply(obj, namespace=ns)
        wait_mounted(kubectl, ns, "api", hash_of(obj))
        # a hand edit of the operator's annotation is set back; the user's own edit stays
        kubectl("annotate", "--overwrite", "deployment", "api", "owner=me", namespace=ns)
        kubectl("patch", "deployment", "api", "--type=merge", "-p",
                json.dumps({"spec": {"template": {"metadata": {"annotations": {ANN_HASH: "handedited"}}}}}),
                namespace=ns)
        wait_mounted(kubectl, ns, "api", hash_of(obj), timeout=30)
        assert get(kubectl, ns, "deployment", "api")["metadata"]["annotations"]["owner"] == "me"
        # a Deployment created later that matches the selector gets the catalog
        kubectl.apply(deployment("web-1", labels={"tier": "web", "app": "web-1"}), namespace=ns)
        wait_mounted(kubectl, ns, "web-1", hash_of(obj), timeout=30)
    finally:
        proc.stop()
        if proc.proc and proc.proc.returncode not in (0, -15):
            print(proc.output())


def test_restart_resumes_from_a_half_done_update(kubectl: Kubectl, kubeconfig: Path, namespace: str,
                                                 op: OperatorProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave the cluster exactly as an operator killed mid-update leaves it — new ConfigMap
    created, one of two Deployments switched, status still on the old version — and check
    that the restarted operator finishes the job."""
    from rollguard.catalog import render_document
    from rollguard.operator.catalog import kube
    from rollguard.operator.catalog.core import Mount

    ns = namespace
    for d in ("api", "worker"):
        kubectl.apply(deployment(d), namespace=ns)
    targets = [{"name": "api"}, {"name": "worker"}]
    v1 = catalog(targets=targets)
    kubectl.apply(v1, namespace=ns)
    wait_mounted(kubectl, ns, "worker", hash_of(v1))
    eventually(lambda: status(kubectl, ns).get("phase") == "Ready", what="v1 Ready")
    op.kill()

    v2 = catalog(version="2", entries=[entry(suggestion="v2")], targets=targets)
    kubectl.apply(v2, namespace=ns)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    owner = get(kubectl, ns, "failurecatalog", "cat")
    full = hash_of(v2)
    kube.create_config_map(ns, "cat", owner, f"cat-{full[:10]}", full,
                           render_document("cat", FailureCatalogSpec.model_validate(v2["spec"])))
    kube.apply_mount(ns, "cat", Mount("api", ["app"], f"cat-{full[:10]}", full[:10]))
    assert mounted_hash(kubectl, ns, "api") == full[:10] and mounted_hash(kubectl, ns, "worker") == hash_of(v1)[:10]
    assert status(kubectl, ns)["activeHash"] == hash_of(v1)

    op.start()
    wait_mounted(kubectl, ns, "worker", full, timeout=60)
    st = eventually(lambda: status(kubectl, ns) if status(kubectl, ns).get("activeHash") == full else None,
                    what="status on v2")
    assert [h["version"] for h in st["history"]] == ["2", "1"]
    assert {t["name"]: t["state"] for t in st["targets"]} == {"api": "Mounted", "worker": "Mounted"}
    assert catalog_cms(kubectl, ns) == {f"cat-{hash_of(v1)[:10]}", f"cat-{full[:10]}"}

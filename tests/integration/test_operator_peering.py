"""Two operator replicas with kopf peering against the real apiserver: one acts, one stands by,
and the standby takes over when the leader is killed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_catalog_operator import catalog, deployment, entry, events, hash_of, wait_mounted
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration

HANDLED = "Handler 'reconcile' succeeded"
RESUMED = "Resuming operations"
SAME_PRIORITY = "Pausing all operators"  # what kopf says when replicas share a priority
LIFETIME = 10  # seconds a keep-alive counts: the longest a standby waits after a kill


def _peers(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    status: dict[str, Any] = kubectl.get_json("kopfpeering", "rollguard", namespace=ns).get("status") or {}
    return status


def _mounted_versions(kubectl: Kubectl, ns: str) -> int:
    return sum(e.get("count") or 1 for e in events(kubectl, ns, "VersionMounted"))


def test_two_replicas_reconcile_once_and_the_standby_takes_over(kubectl: Kubectl, kubeconfig: Path,
                                                                 namespace: str, tmp_path: Path) -> None:
    ns = namespace
    kubectl.apply({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "rollguard"}},
                  namespace=ns)
    # No --priority: each replica picks its own, as the chart's pods do. POD_ID names a replica
    # in the peering object (the chart sets it to the pod name).
    ops = [OperatorProcess(kubeconfig, tmp_path / f"operator-{i}.log", namespaces=(ns,), standalone=False,
                           extra_env={"ROLLGUARD_PEERING_LIFETIME": str(LIFETIME), "POD_ID": f"op-{i}"})
           for i in (0, 1)]
    leader, standby = ops
    try:
        # The older replica leads: one started later (a restarted pod) stands by instead of
        # taking over from a leader that works.
        leader.start()
        eventually(lambda: "op-0" in _peers(kubectl, ns), timeout=60, what="the first replica in the peering")
        standby.start()
        eventually(lambda: len(_peers(kubectl, ns)) == 2, timeout=60, what="both replicas in the peering")
        peers = _peers(kubectl, ns)
        assert peers["op-0"]["priority"] > peers["op-1"]["priority"], peers
        # kopf starts paused and resumes once the peering shows no one above it.
        eventually(lambda: RESUMED in leader.output(), timeout=30, what="the leader to resume")
        assert all(SAME_PRIORITY not in o.output() for o in ops)

        kubectl.apply(deployment("api"), namespace=ns)
        v1 = catalog(version="1")
        kubectl.apply(v1, namespace=ns)
        wait_mounted(kubectl, ns, "api", hash_of(v1))
        v2 = catalog(version="2", entries=[entry(), entry("OTHER_GREMLINS", "other gremlins")])
        kubectl.apply(v2, namespace=ns)
        wait_mounted(kubectl, ns, "api", hash_of(v2))
        eventually(lambda: _mounted_versions(kubectl, ns) == 2, what="two VersionMounted events")

        # Only the leader handled the catalog; one Event per version, not one per replica.
        assert leader.output().count(HANDLED) >= 2, leader.output()
        assert HANDLED not in standby.output(), standby.output()
        assert _mounted_versions(kubectl, ns) == 2

        leader.kill()  # no goodbye in the peering: the standby waits for the keep-alive to expire
        v3 = catalog(version="3", entries=[entry(), entry("THIRD_GREMLINS", "third gremlins")])
        kubectl.apply(v3, namespace=ns)
        wait_mounted(kubectl, ns, "api", hash_of(v3), timeout=LIFETIME + 40)
        assert RESUMED in standby.output(), standby.output()
        # the mount is visible before the handler returns and logs its success: wait for the line
        eventually(lambda: HANDLED in standby.output(), timeout=30, what="the standby's handler to finish")
        eventually(lambda: _mounted_versions(kubectl, ns) == 3, what="a third VersionMounted event")
        # kopf patches the status after the handler returned (its Events are posted meanwhile)
        st = eventually(lambda: (s := kubectl.get_json("failurecatalog", "cat", namespace=ns).get("status") or {})
                        .get("activeHash") == hash_of(v3) and s, what="the status of v3")
        assert st["phase"] == "Ready"
    finally:
        for op in ops:
            op.stop()

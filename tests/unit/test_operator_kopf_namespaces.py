"""kopf follows a watched namespace until it is gone, not only until its deletion begins
(rollguard.operator.kopf_namespaces)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from kopf._cogs.structs import references
from kopf._core.reactor import observation

import rollguard.operator.main  # noqa: F401  (installs the rule, as the operator does on start)
from rollguard.operator import kopf_namespaces

# The namespace as kube-controller-manager 1.36 writes it after its pods-first pass, while a pod
# still terminates and the namespace's CanaryRollouts and FailureCatalogs are not yet deleted
# (read in tests/integration/test_namespace_deletion.py): every condition False.
POD_PASS_CONDITIONS = [
    {"type": "NamespaceDeletionDiscoveryFailure", "status": "False", "reason": "ResourcesDiscovered"},
    {"type": "NamespaceDeletionGroupVersionParsingFailure", "status": "False", "reason": "ParsedGroupVersions"},
    {"type": "NamespaceDeletionContentFailure", "status": "False", "reason": "ContentDeleted"},
    {"type": "NamespaceContentRemaining", "status": "False", "reason": "ContentRemoved"},
    {"type": "NamespaceFinalizersRemaining", "status": "False", "reason": "ContentHasNoFinalizers"},
]
FINALIZERS_REMAIN = [{**c, "status": "True", "reason": "SomeFinalizersRemain"}
                     if c["type"] == "NamespaceFinalizersRemaining" else c for c in POD_PASS_CONDITIONS]


def ns(name: str, *, deleting: bool = False, conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T16:18:01Z"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta,
            "status": {"phase": "Terminating" if deleting else "Active",
                       **({"conditions": conditions} if conditions is not None else {})}}


def event(kind: str | None, body: dict[str, Any]) -> Any:
    return {"type": kind, "object": body}


def observe(insights: references.Insights, patterns: list[str], *events: Any) -> None:
    """Feed namespace watch events through kopf's own entry point, as its namespace observer does."""
    for ev in events:
        asyncio.run(observation.process_discovered_namespace_event(
            raw_event=ev, namespaces=list(patterns), insights=insights))


def test_the_operator_module_installs_the_rule() -> None:
    assert observation.revise_namespaces is kopf_namespaces.revise_namespaces


def test_a_namespace_stays_followed_through_its_deletion_and_goes_when_deleted() -> None:
    insights = references.Insights()
    observe(insights, ["team-a"],
            event("ADDED", ns("team-a")),
            event("MODIFIED", ns("team-a", deleting=True)),
            event("MODIFIED", ns("team-a", deleting=True, conditions=POD_PASS_CONDITIONS)))
    assert insights.namespaces == {"team-a"}  # kopf 1.45's own rule drops it here
    observe(insights, ["team-a"], event("MODIFIED", ns("team-a", deleting=True, conditions=FINALIZERS_REMAIN)))
    assert insights.namespaces == {"team-a"}
    observe(insights, ["team-a"], event("DELETED", ns("team-a", deleting=True, conditions=FINALIZERS_REMAIN)))
    assert insights.namespaces == set()  # gone: whatever its last conditions said


@pytest.mark.parametrize("conditions", [None, POD_PASS_CONDITIONS, FINALIZERS_REMAIN])
def test_an_operator_started_during_a_deletion_follows_the_namespace(conditions: list[dict[str, Any]] | None) -> None:
    """The initial listing (bodies, no event type): a namespace being deleted is followed, so that
    its objects' finalizers are handled by a restarted operator too."""
    insights = references.Insights()
    observation.revise_namespaces(insights=insights, namespaces=["team-a"],
                                  raw_bodies=[cast(Any, ns("team-a", deleting=True, conditions=conditions))])
    assert insights.namespaces == {"team-a"}


def test_only_matching_namespaces_are_followed_and_patterns_still_work() -> None:
    insights = references.Insights()
    observe(insights, ["team-*, !team-x"],
            event("ADDED", ns("team-a")), event("ADDED", ns("other")), event("ADDED", ns("team-x")),
            event("MODIFIED", ns("team-b", deleting=True, conditions=POD_PASS_CONDITIONS)))
    assert insights.namespaces == {"team-a", "team-b"}
    observe(insights, ["team-*, !team-x"], event("DELETED", ns("team-a")), event("DELETED", ns("other")))
    assert insights.namespaces == {"team-b"}

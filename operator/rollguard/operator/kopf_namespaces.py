"""When kopf stops following a watched namespace: only once the namespace is gone.

Run with ``-n NS`` (the chart's ``watchNamespaces``), kopf watches the Namespace objects and
stops the watch-streams of a namespace it takes for deleted. kopf 1.45 takes a namespace for
deleted when it has a ``deletionTimestamp`` and status conditions of which none is True (before,
a ``deletionTimestamp`` alone). The namespace controller writes exactly that while a deletion has
only begun: since Kubernetes 1.34 (OrderedNamespaceDeletion, GA) it deletes the pods first and,
while any pod is still terminating, touches nothing else and reports every condition False
("All content successfully deleted", "All content successfully removed": kubernetes/kubernetes
issue 138208). kopf then drops the namespace's streams. The namespace's CanaryRollouts and
FailureCatalogs are deleted only in a later pass; kopf no longer sees them marked, so their
delete handlers never run, kopf's finalizer stays on them, and the namespace stays Terminating
for ever. A restarted operator does not help: kopf never adds a namespace that has a
``deletionTimestamp``. (The orphaned timers go on ticking on the last body they got.)

:func:`install` replaces kopf's rule: a namespace is dropped on its DELETED event only, and a
namespace being deleted is followed, also when the operator starts during the deletion, so
that its objects' deletions are handled. The cost: a DELETED event that never arrives (the
namespace watch was down while the namespace went) leaves an idle stream on a namespace that
no longer exists, until the operator restarts. With ``--all-namespaces`` kopf follows no
namespace and none of this applies.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from kopf._cogs.structs import references
from kopf._core.reactor import observation


def revise_namespaces(*, insights: Any, namespaces: Collection[Any],
                      raw_events: Collection[Any] = (), raw_bodies: Collection[Any] = ()) -> None:
    """kopf's ``revise_namespaces`` (the same keywords): which namespaces kopf streams from.
    Namespace events of type DELETED take a namespace out; any other event or a listed
    namespace (type None) that matches one of ``namespaces`` (names or kopf's patterns) puts it
    in, being deleted or not."""
    events: Iterable[Any] = [*raw_events, *({"type": None, "object": body} for body in raw_bodies)]
    for event in events:
        name = event["object"]["metadata"]["name"]
        if event["type"] == "DELETED":
            insights.namespaces.discard(name)
        elif any(references.match_namespace(name, pattern) for pattern in namespaces):
            insights.namespaces.add(name)


def install() -> None:
    """Put :func:`revise_namespaces` in place of kopf's. kopf's namespace observer looks the
    function up in its module on every call, so this takes effect when done before the operator
    starts (on import of the operator's main module). Refuses a kopf without the function: its
    rule for deleted namespaces would then be unknown and might hold namespaces again."""
    if not callable(getattr(observation, "revise_namespaces", None)):
        raise RuntimeError("kopf._core.reactor.observation has no revise_namespaces: this kopf follows namespaces"
                           " differently; see the module rollguard.operator.kopf_namespaces")
    observation.revise_namespaces = revise_namespaces

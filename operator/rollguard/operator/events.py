"""The one Event poster of the kopf handlers (the canary, catalog and flags controllers).

In an object's handler (any object: the Event may be about another one, e.g. each flag of the
namespace a flag's handler reconciles) it posts through kopf: its poster batches and retries, and
it works from the sync code kopf runs in threads (the context it needs travels with them). kopf
offers it only there; elsewhere (the flags controller's clock, a reconciler called directly) the
adapter's :func:`rollguard.kube.events.create_event` posts the same Event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf

from rollguard.kube.events import create_event
from rollguard.models.common import Event

MESSAGE_MAX = 1000  # kopf cuts at 1024


def post(obj: Mapping[str, Any], events: Iterable[Event],
         warnings_to: logging.Logger | logging.LoggerAdapter[Any] | None = None) -> None:
    """Post each of ``events`` about ``obj`` (any object with apiVersion, kind and metadata).

    ``warnings_to``: also log each Warning there (kopf's per-object logger makes it an Event of
    its own, reason ``Logging``, and a line in the operator's log). Outside an object handler's
    context the Event is created directly; its API errors raise there (``ApiException``)."""
    for e in events:
        message = e.message[:MESSAGE_MAX]
        try:
            kopf.event(cast(Any, obj), type=e.type, reason=e.reason, message=message)
        except LookupError:  # no kopf poster in this context (kopf's context variables are unset)
            create_event(obj, e.type, e.reason, message)
        if warnings_to is not None and e.type == "Warning":
            warnings_to.warning("%s: %s", e.reason, e.message)

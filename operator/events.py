"""The Event poster of the kopf handlers (canary and catalog controllers).

Through kopf: its poster batches and retries, and it works from the sync code kopf runs in
threads (the context it needs travels with them). kopf offers it only in the context of an
object's handler, which is why the FeatureFlag controller's clock thread posts its own Events
(``rollguard.operator.flags.kube``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf

from rollguard.models.common import Event

MESSAGE_MAX = 1000  # kopf cuts at 1024


def post(obj: Mapping[str, Any], events: Iterable[Event],
         warnings_to: logging.Logger | logging.LoggerAdapter[Any] | None = None) -> None:
    """Post each of ``events`` about ``obj`` (any object with apiVersion, kind and metadata).

    ``warnings_to``: also log each Warning there (kopf's per-object logger makes it an Event of
    its own, reason ``Logging``, and a line in the operator's log)."""
    for e in events:
        kopf.event(cast(Any, obj), type=e.type, reason=e.reason, message=e.message[:MESSAGE_MAX])
        if warnings_to is not None and e.type == "Warning":
            warnings_to.warning("%s: %s", e.reason, e.message)

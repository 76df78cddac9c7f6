"""The kopf operator's entry module: `kopf run -m rollguard.operator.main`.

Importing the handler modules registers them; the settings below apply to all of them.
"""

from __future__ import annotations

import os
from typing import Any

import kopf

import rollguard.operator.handlers.canary  # noqa: F401  (registers handlers)
from rollguard import GROUP
from rollguard.operator import kopf_namespaces, observability  # noqa: F401  (observability: metrics server)
from rollguard.operator.handlers import catalog  # noqa: F401  (registers handlers)
from rollguard.operator.handlers import flags as _flags  # noqa: F401  (registers handlers)

# kopf would stop following a watched namespace as soon as its deletion begins (see the module)
kopf_namespaces.install()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Handler progress and the last-handled state go into annotations, not into status:
    # status belongs to the resource's API (its schema has no room for kopf's fields).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.posting.level = 20  # INFO and above become Events
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    # How long a replica's keep-alive counts: a standby replica takes over at most this long
    # after the leader died without removing itself from the peering (`--peering-lifetime`).
    settings.peering.lifetime = int(os.environ.get("ROLLGUARD_PEERING_LIFETIME", "60"))

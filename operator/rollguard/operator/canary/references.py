"""Reading what a rollout's change refers to: the FailureCatalog version and the FeatureFlags.

The I/O half of the change kinds' resolve step; the kinds' pure ``resolve_*`` functions decide
what the objects read here mean.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollguard import GROUP, VERSION
from rollguard.flags.render import FLAGS_FILE
from rollguard.kube import names
from rollguard.kube.client import get_or_none
from rollguard.models.canary import CanaryRollout
from rollguard.operator.canary import change as ch
from rollguard.operator.canary.objects import names_of
from rollguard.operator.catalog.change import PLURAL as CATALOGS
from rollguard.operator.flags.change import PLURAL as FLAGS

SERVED_TTL_SECONDS = 30.0  # how long "is the FailureCatalog / FeatureFlag kind served" is remembered


class References:
    """Reads the rollout's references. Thread-safe; remembers nothing but whether the kinds are served."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self._served: dict[str, tuple[float, bool]] = {}
        self._served_lock = threading.Lock()

    def _kind_served(self, plural: str) -> bool:
        """Whether the apiserver serves rollguard's ``plural`` (its CRD is installed); remembered briefly."""
        with self._served_lock:
            cached = self._served.get(plural)
            if cached is not None and time.monotonic() - cached[0] < SERVED_TTL_SECONDS:
                return cached[1]
        try:
            served = self.custom.get_api_resources(GROUP, VERSION)
        except ApiException:
            return False
        kinds = {r.name for r in (served.resources if served else [])}
        with self._served_lock:
            for p in (CATALOGS, FLAGS):
                self._served[p] = (time.monotonic(), p in kinds)
        return plural in kinds

    def _flags_file(self, ns: str, environment: str) -> dict[str, Any] | None:
        cm = get_or_none(self.core.read_namespaced_config_map, names.flags_config_map(environment), ns)
        if cm is None:
            return None
        try:
            doc = json.loads((cm.data or {}).get(FLAGS_FILE) or "{}")
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def resolve(self, cr: CanaryRollout, template: dict[str, Any], now: dt.datetime) -> ch.Resolved:
        """The FailureCatalog version and the FeatureFlags the change names, as they are now, and
        what is wrong with them (precondition problems, each naming the field)."""
        change, n = cr.spec.change, names_of(cr)
        problems: list[str] = []
        catalog: ch.CatalogVersion | None = None
        if change.catalog is not None:
            if not self._kind_served(CATALOGS):
                problems.append("change.catalog: the FailureCatalog kind is not served (CRD not installed)")
            else:
                obj = get_or_none(self.custom.get_namespaced_custom_object, GROUP, VERSION, n.namespace, CATALOGS,
                                  change.catalog.name)
                got = ch.resolve_catalog(change, cast(dict[str, Any] | None, obj), template, n.namespace, n.target)
                if isinstance(got, str):
                    problems.append(got)
                else:
                    catalog = got
        flags: tuple[ch.FlagRef, ...] | None = None
        objects: tuple[dict[str, Any], ...] = ()
        env = change.flags.environment if change.flags is not None else None
        if change.flags is not None and self._kind_served(FLAGS):
            listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, n.namespace, FLAGS)
            objects = tuple(o for o in cast(dict[str, Any], listed).get("items", [])
                            if not o["metadata"].get("deletionTimestamp"))
            flags, flag_problems = ch.resolve_flags(
                change, list(objects), template, self._flags_file(n.namespace, change.flags.environment),
                cr.spec.requires_signoff, n.target, now)
            problems.extend(flag_problems)
        return ch.Resolved(catalog=catalog, flags=flags, environment=env, flag_objects=objects,
                           problems=tuple(problems))

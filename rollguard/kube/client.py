"""The Kubernetes client: loading it, calling it, and the errors it raises.

Every rollguard process (operator, CLI, jobs) gets its API client from :func:`api_client`, so
there is one order of credentials. A call wrapped by :func:`call` raises :class:`NotFound`,
:class:`Conflict` or :class:`NamespaceTerminating` instead of a bare ``ApiException`` with a
status to compare; all are still ``ApiException`` subclasses, so code that handles any API error
keeps handling them.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

P = ParamSpec("P")
T = TypeVar("T")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """The API client for these credentials (created once per process; thread-safe, reused).

    The order, written once: an explicit ``kubeconfig`` or ``context`` (a CLI flag); else the
    ``KUBECONFIG`` variable as it is now (the client library reads it only once, at import, and a
    test may change it); else in-cluster credentials when running in a pod; else ``~/.kube/config``.
    Raises ``kubernetes.config.ConfigException`` when none of them works.
    """
    return _client_for(kubeconfig or os.environ.get("KUBECONFIG") or None, context)


@functools.cache
def _client_for(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            return client.ApiClient(cfg)
        except config.ConfigException:
            pass  # not a usable pod environment after all: try the kubeconfig
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, context=context)
    return api


# ------------------------------------------------------------------ typed errors

class ApiError(ApiException):
    """An error answer of the apiserver (``status``, ``reason``, ``body`` as ``ApiException``)."""

    def __init__(self, original: ApiException) -> None:
        super().__init__(status=original.status, reason=original.reason)
        self.body, self.headers = original.body, original.headers


class NotFound(ApiError):
    """404: the object (or its namespace, or its kind) does not exist."""


class Conflict(ApiError):
    """409: the object exists already (create), or it changed since it was read (update)."""


class NamespaceTerminating(ApiError):
    """403 from the NamespaceLifecycle admission plugin: the namespace is being deleted, and no
    object may be created in it any more (reads, updates and deletes still work). Not a
    permission problem: the namespace takes everything in it, so a controller has nothing left to
    create there and stops quietly. The cause's reason is ``NamespaceTerminating``
    (k8s.io/api/core/v1 ``NamespaceTerminatingCause``)."""


def _causes(e: ApiException) -> list[str]:
    try:
        status = json.loads(e.body) if e.body else {}
    except (TypeError, ValueError):
        return []
    details = status.get("details") if isinstance(status, dict) else None
    causes = details.get("causes") if isinstance(details, dict) else None
    return [str(c.get("reason")) for c in causes or [] if isinstance(c, dict)]


def typed(e: ApiException) -> ApiException:
    """``e`` as :class:`NotFound`, :class:`Conflict` or :class:`NamespaceTerminating` when it is
    one, else ``e`` itself."""
    if isinstance(e, ApiError):
        return e
    if e.status == 404:
        return NotFound(e)
    if e.status == 409:
        return Conflict(e)
    if e.status == 403 and "NamespaceTerminating" in _causes(e):
        return NamespaceTerminating(e)
    return e


def namespace_terminating(e: BaseException) -> bool:
    """True when ``e`` is the apiserver's answer that the namespace is being deleted
    (:class:`NamespaceTerminating`, typed or not)."""
    return isinstance(e, ApiException) and isinstance(typed(e), NamespaceTerminating)


def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``, an API client method; raises :class:`NotFound` / :class:`Conflict`."""
    try:
        return fn(*args, **kwargs)
    except ApiException as e:
        raise typed(e) from e


def get_or_none(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
    """A read that answers None when the object does not exist; other API errors raise."""
    try:
        return call(fn, *args, **kwargs)
    except NotFound:
        return None


def delete_if_present(fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> bool:
    """A delete that is idempotent: False when the object was gone already."""
    try:
        call(fn, *args, **kwargs)
    except NotFound:
        return False
    return True


def create_if_absent(fn: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> bool:
    """A create that is idempotent: False when an object of that name exists already."""
    try:
        call(fn, *args, **kwargs)
    except Conflict:
        return False
    return True


def as_dict(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    """A typed client object as the apiserver's JSON (camelCase keys, no None values)."""
    out: dict[str, Any] = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return out


def raw_json(resp: Any) -> Any:
    """The JSON body of a call made with ``_preload_content=False`` (None when empty)."""
    return json.loads(resp.data) if resp.data else None

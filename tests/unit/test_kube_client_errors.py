"""The typed errors of ``rollguard.kube.client``: which apiserver answers are which error."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from rollguard.kube.client import Conflict, NamespaceTerminating, NotFound, call, namespace_terminating, typed


def answer(status: int, body: object) -> ApiException:
    e = ApiException(status=status, reason={403: "Forbidden", 404: "Not Found", 409: "Conflict"}[status])
    e.body = body if isinstance(body, str | None) else json.dumps(body)
    return e


# the apiserver's answer to a create in a namespace being deleted (NamespaceLifecycle admission)
TERMINATING = {
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": 'configmaps "rollguard-flags-production" is forbidden: unable to create new content in namespace '
               "t-9483c25a08 because it is being terminated",
    "reason": "Forbidden",
    "details": {"name": "rollguard-flags-production", "kind": "configmaps",
                "causes": [{"reason": "NamespaceTerminating", "message": "namespace t-9483c25a08 is being terminated",
                            "field": "metadata.namespace"}]},
    "code": 403,
}
# RBAC's answer: the same status code, a different fault
RBAC = {
    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
    "message": 'configmaps is forbidden: User "system:serviceaccount:rollguard:op" cannot create resource '
               '"configmaps" in API group "" in the namespace "shop"',
    "reason": "Forbidden", "details": {"kind": "configmaps"}, "code": 403,
}


def test_a_create_in_a_terminating_namespace_is_namespace_terminating() -> None:
    e = typed(answer(403, TERMINATING))
    assert isinstance(e, NamespaceTerminating) and isinstance(e, ApiException)
    assert e.status == 403 and "being terminated" in str(e.body)
    assert namespace_terminating(answer(403, TERMINATING)) and namespace_terminating(e)


@pytest.mark.parametrize("body", [RBAC, None, "", "not json", json.dumps([1]),
                                  {"details": {"causes": "NamespaceTerminating"}}, {"details": None}])
def test_other_403s_stay_plain_api_errors(body: object) -> None:
    e = answer(403, body)
    assert typed(e) is e and not namespace_terminating(e)


def test_not_found_and_conflict_and_non_api_errors() -> None:
    assert isinstance(typed(answer(404, None)), NotFound)
    assert isinstance(typed(answer(409, None)), Conflict)
    assert not namespace_terminating(ValueError("403 NamespaceTerminating"))


def test_call_raises_the_typed_error() -> None:
    def create() -> None:
        raise answer(403, TERMINATING)
    with pytest.raises(NamespaceTerminating):
        call(create)

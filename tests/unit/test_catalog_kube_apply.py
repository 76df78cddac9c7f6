"""operator/rollguard/operator/catalog/kube.py `_apply`: a Deployment deleted between our read and our apply is
"nothing to do", not an error retried forever; any other refusal still raises."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from rollguard.operator.catalog import kube


class FakeApps:
    def __init__(self, patch_status: int | None, exists: bool) -> None:
        self.patch_status, self.exists, self.patched = patch_status, exists, 0

    def patch_namespaced_deployment(self, *args: Any, **kwargs: Any) -> None:
        self.patched += 1
        if self.patch_status is not None:
            raise ApiException(status=self.patch_status, reason="refused")

    def read_namespaced_deployment(self, *args: Any, **kwargs: Any) -> None:
        if not self.exists:
            raise ApiException(status=404, reason="Not Found")


@pytest.mark.parametrize("status", [403, 404, 422])
def test_a_deployment_gone_since_the_read_is_nothing_to_do(monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    fake = FakeApps(patch_status=status, exists=False)
    monkeypatch.setattr(kube, "apps_v1", lambda: fake)
    assert kube._apply("ns", "web", {}) is False


@pytest.mark.parametrize("status", [403, 409, 422, 500])
def test_a_refusal_on_an_existing_deployment_raises(monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    fake = FakeApps(patch_status=status, exists=True)
    monkeypatch.setattr(kube, "apps_v1", lambda: fake)
    with pytest.raises(ApiException) as err:
        kube._apply("ns", "web", {})
    assert err.value.status == status


def test_a_successful_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeApps(patch_status=None, exists=True)
    monkeypatch.setattr(kube, "apps_v1", lambda: fake)
    assert kube._apply("ns", "web", {}) is True and fake.patched == 1

"""`rollguard operator run` (peering, the default) never waits silently for a peering object."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from rollguard.cli.operator_cmd import ensure_peering


class FakeApi:
    """Custom objects in memory; ``may_create`` False answers create with 403 like a restricted identity."""

    def __init__(self, existing: set[tuple[str | None, str]] | None = None, may_create: bool = True) -> None:
        self.objects = set(existing or ())
        self.may_create = may_create

    def _get(self, ns: str | None, name: str) -> dict[str, Any]:
        if (ns, name) not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        return {"metadata": {"name": name}}

    def _create(self, ns: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if not self.may_create:
            raise ApiException(status=403, reason="Forbidden")
        self.objects.add((ns, body["metadata"]["name"]))
        return body

    def get_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, name: str) -> Any:
        assert (group, plural) == ("kopf.dev", "kopfpeerings")
        return self._get(ns, name)

    def get_cluster_custom_object(self, group: str, version: str, plural: str, name: str) -> Any:
        assert (group, plural) == ("kopf.dev", "clusterkopfpeerings")
        return self._get(None, name)

    def create_namespaced_custom_object(self, group: str, version: str, ns: str, plural: str, body: Any) -> Any:
        assert body["kind"] == "KopfPeering"
        return self._create(ns, body)

    def create_cluster_custom_object(self, group: str, version: str, plural: str, body: Any) -> Any:
        assert body["kind"] == "ClusterKopfPeering"
        return self._create(None, body)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_a_missing_peering_object_is_created_per_watched_namespace(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeApi(existing={("team-b", "rollguard")})
    with caplog.at_level(logging.INFO):
        assert ensure_peering(api, ("team-a", "team-b"), "rollguard")
    assert api.objects == {("team-a", "rollguard"), ("team-b", "rollguard")}
    assert "created KopfPeering 'rollguard' (namespace team-a)" in caplog.text
    assert "team-b)" not in caplog.text


def test_all_namespaces_use_the_cluster_wide_peering() -> None:
    api = FakeApi()
    assert ensure_peering(api, (), "rollguard")
    assert api.objects == {(None, "rollguard")}


def test_without_the_right_to_create_it_warns_what_it_waits_for_and_how_to_fix_it(
        caplog: pytest.LogCaptureFixture) -> None:
    api, clock = FakeApi(may_create=False), Clock()
    with caplog.at_level(logging.INFO):
        waited = ensure_peering(api, ("team-a",), "rollguard", sleep=clock.sleep, clock=clock, give_up_after=65)
    assert not waited
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3  # at once, then every 30 s while it waits: never silent
    text = warnings[0].getMessage()
    assert "waits for KopfPeering 'rollguard' (namespace team-a)" in text and "403 Forbidden" in text
    assert "kind: KopfPeering, metadata: {name: rollguard, namespace: team-a}" in text and "--standalone" in text


def test_it_goes_on_as_soon_as_someone_creates_it() -> None:
    api, clock = FakeApi(may_create=False), Clock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        api.objects.add(("team-a", "rollguard"))  # an admin applied it meanwhile

    assert ensure_peering(api, ("team-a",), "rollguard", sleep=sleep, clock=clock, give_up_after=600)
    assert clock.t < 10

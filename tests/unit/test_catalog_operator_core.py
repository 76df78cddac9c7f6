"""The FailureCatalog reconciler's pure core: plans from spec, status and observations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rollguard.catalog import content_hash
from rollguard.models.catalog import FailureCatalogSpec
from rollguard.operator.catalog.core import (
    DeploymentView,
    Observed,
    mark_failed,
    mount_manifest,
    plan,
    unmount_manifest,
)

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


def spec(version: str = "1", suggestion: str = "s", **over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"version": version, "targets": [{"name": "api"}], "historyLimit": 5, "entries": [
        {"code": "GREMLINS", "category": "TRANSIENT", "severity": "LOW", "retryable": True,
         "recovery": {"mode": "RETRY_IMMEDIATE", "suggestion": suggestion}, "match": {"patterns": ["gremlins"]}}]}
    s.update(over)
    return s


def h(s: dict[str, Any]) -> str:
    return content_hash(FailureCatalogSpec.model_validate(s))


def dep(name: str = "api", catalog: str | None = None, hash_: str | None = None, labels: dict[str, str] | None = None,
        containers: tuple[str, ...] = ("app",)) -> DeploymentView:
    return DeploymentView(name, labels or {}, list(containers), catalog, hash_)


def obs(*deps: DeploymentView, cms: dict[str, str] | None = None, mounted: set[str] | None = None) -> Observed:
    return Observed({d.name: d for d in deps}, cms or {}, frozenset(mounted or ()))


def cond(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_first_reconcile_renders_and_mounts() -> None:
    s = spec()
    p = plan("cat", 1, s, None, obs(dep()), NOW)
    full = h(s)
    assert p.create_config_map is not None and p.create_config_map[:2] == (f"cat-{full[:10]}", full)
    assert [(m.deployment, m.containers, m.config_map, m.hash) for m in p.mounts] == [
        ("api", ["app"], f"cat-{full[:10]}", full[:10])]
    st = p.status
    assert st["phase"] == "Ready" and st["activeHash"] == full and st["observedGeneration"] == 1
    assert cond(st, "Valid")["status"] == "True" and cond(st, "Ready")["status"] == "True"
    assert [x["hash"] for x in st["history"]] == [full]
    assert p.events == [("Normal", "VersionMounted", f"version 1 ({full[:10]}) mounted into api")]


def test_steady_state_is_idempotent() -> None:
    s = spec()
    full = h(s)
    first = plan("cat", 1, s, None, obs(dep()), NOW)
    settled = obs(dep(catalog="cat", hash_=full[:10]), cms={f"cat-{full[:10]}": full}, mounted={f"cat-{full[:10]}"})
    again = plan("cat", 1, s, first.status, settled, NOW + dt.timedelta(minutes=5))
    assert again.create_config_map is None and again.events == [] and again.delete_config_maps == []
    assert again.status == first.status  # same conditions, same lastTransitionTime
    assert len(again.mounts) == 1  # the apply is re-sent: server-side apply makes it a no-op


def test_invalid_spec_mounts_nothing_and_warns_once() -> None:
    good = spec()
    first = plan("cat", 1, good, None, obs(dep()), NOW)
    bad = spec(version="2", entries=[{**good["entries"][0], "match": {"patterns": ["gremlins ("]}}])
    p = plan("cat", 2, bad, first.status, obs(dep(catalog="cat", hash_=h(good)[:10])), NOW)
    assert p.create_config_map is None and p.mounts == [] and p.delete_config_maps == []
    assert p.status["phase"] == "Invalid" and p.status["activeHash"] == h(good)
    valid = cond(p.status, "Valid")
    assert valid["status"] == "False" and "entries[0] (GREMLINS).match.patterns[0]" in valid["message"]
    assert [e[:2] for e in p.events] == [("Warning", "ValidationFailed")]
    assert plan("cat", 2, bad, p.status, obs(dep()), NOW).events == []  # no event storm on resync


def test_history_gc_and_what_is_still_mounted() -> None:
    versions = [spec(version=str(i), suggestion=f"v{i}", historyLimit=2) for i in range(1, 5)]
    status: dict[str, Any] | None = None
    for v in versions:
        status = plan("cat", 1, v, status, obs(dep()), NOW).status
    assert status is not None
    assert [x["version"] for x in status["history"]] == ["4", "3"]
    cms = {f"cat-{h(v)[:10]}": h(v) for v in versions}
    p = plan("cat", 1, versions[3], status, obs(dep(), cms=cms, mounted={f"cat-{h(versions[0])[:10]}"}), NOW)
    assert p.delete_config_maps == [f"cat-{h(versions[1])[:10]}"]  # v1 is mounted somewhere, v3/v4 in history


def test_pin_an_earlier_version_then_an_unknown_one() -> None:
    v1, v2 = spec(), spec(version="2", suggestion="two")
    st = plan("cat", 1, v1, None, obs(dep()), NOW).status
    st = plan("cat", 2, v2, st, obs(dep()), NOW).status
    cms = {f"cat-{h(v1)[:10]}": h(v1), f"cat-{h(v2)[:10]}": h(v2)}
    pinned = plan("cat", 3, {**v2, "pinnedHash": h(v1)[:12]}, st, obs(dep(), cms=cms), NOW)
    assert pinned.status["activeHash"] == h(v1) and pinned.status["contentHash"] == h(v2)
    assert pinned.mounts[0].config_map == f"cat-{h(v1)[:10]}"
    assert "(pinned)" in pinned.events[0][2]
    unknown = plan("cat", 4, {**v2, "pinnedHash": "abcdef0123"}, pinned.status, obs(dep(), cms=cms), NOW)
    assert unknown.mounts == [] and cond(unknown.status, "Ready")["reason"] == "PinnedHashNotFound"
    assert unknown.status["activeHash"] == h(v1)  # what is mounted stays mounted


def test_target_states() -> None:
    s = spec(targets=[{"name": "api"}, {"name": "gone"}, {"name": "other"}, {"name": "web", "containers": ["nginx"]},
                      {"selector": {"matchLabels": {"tier": "agents"}}, "containers": ["app", "nope"]}])
    o = obs(dep(), dep("other", catalog="someone-else"), dep("web"), dep("agent-1", labels={"tier": "agents"}),
            dep("unrelated", labels={"tier": "web"}))
    p = plan("cat", 1, s, None, o, NOW)
    states = {t["name"]: (t["state"], t.get("message", "")) for t in p.status["targets"]}
    assert states["api"][0] == "Mounted"
    assert states["gone"] == ("NotFound", "no such Deployment")
    assert states["other"][0] == "Conflict" and "someone-else" in states["other"][1]
    assert states["web"] == ("Error", "no such container(s): nginx")
    assert states["agent-1"] == ("Mounted", "mounted into app; no such container(s): nope")
    assert "unrelated" not in states
    assert sorted(m.deployment for m in p.mounts) == ["agent-1", "api"]
    assert p.status["phase"] == "Degraded" and cond(p.status, "Ready")["reason"] == "TargetsNotReady"


def test_a_deployment_dropped_from_targets_is_unmounted() -> None:
    s = spec(targets=[{"name": "api"}])
    p = plan("cat", 2, s, None, obs(dep(), dep("old", catalog="cat", hash_="x"), dep("foreign", catalog="b")), NOW)
    assert p.unmounts == ["old"]


def test_mark_failed() -> None:
    p = plan("cat", 1, spec(), None, obs(dep()), NOW)
    st = mark_failed(p.status, {"api": "422 Unprocessable Entity"}, 1, NOW)
    assert st["targets"][0]["state"] == "Error" and st["phase"] == "Degraded"
    assert cond(st, "Ready")["reason"] == "MountFailed"
    assert mark_failed(p.status, {}, 1, NOW) is p.status


def test_apply_configurations_hold_only_our_fields() -> None:
    p = plan("cat", 1, spec(), None, obs(dep(containers=("app", "sidecar"))), NOW)
    m = mount_manifest("prod", "cat", p.mounts[0])
    tmpl = m["spec"]["template"]
    assert set(m["spec"]) == {"template"} and set(tmpl["spec"]) == {"volumes", "containers"}
    assert [c["name"] for c in tmpl["spec"]["containers"]] == ["app", "sidecar"]
    assert all(set(c) == {"name", "volumeMounts"} for c in tmpl["spec"]["containers"])
    assert tmpl["metadata"]["annotations"]["catalog.rollguard.io/hash"] == p.mounts[0].hash
    assert set(unmount_manifest("prod", "api")) == {"apiVersion", "kind", "metadata"}


# ---------------------------------------------------------------- properties
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

steps = st.lists(st.tuples(st.integers(0, 5),            # which content version
                           st.integers(1, 4),            # historyLimit
                           st.one_of(st.none(), st.integers(0, 5)),  # pin to a content version
                           st.sets(st.integers(0, 5), max_size=2)),  # versions mounted elsewhere
                 min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_gc_never_deletes_what_is_active_kept_or_mounted(seq: list[tuple[int, int, int | None, set[int]]]) -> None:
    specs = [spec(version=str(i), suggestion=f"v{i}") for i in range(6)]
    cms: dict[str, str] = {}
    status: dict[str, Any] | None = None
    for gen, (v, limit, pin, elsewhere) in enumerate(seq, start=1):
        s = {**specs[v], "historyLimit": limit}
        if pin is not None:
            s["pinnedHash"] = h(specs[pin])
        mounted = {f"cat-{h(specs[i])[:10]}" for i in elsewhere}
        p = plan("cat", gen, s, status, obs(dep(), cms=dict(cms), mounted=mounted), NOW)
        status = p.status
        if p.create_config_map:
            cms[p.create_config_map[0]] = p.create_config_map[1]
        history = status["history"]
        assert len({x["hash"] for x in history}) == len(history)  # no duplicates
        assert len(history) <= limit + 1  # the limit, plus the active version if it is older
        assert history[0]["hash"] == h(s)  # the spec's content is the newest
        deleted = set(p.delete_config_maps)
        assert not deleted & mounted
        assert not deleted & {x["configMapName"] for x in history}
        if status.get("activeHash"):
            assert status["configMapName"] not in deleted
            assert any(x["hash"] == status["activeHash"] for x in history)
        if pin is not None and status.get("activeHash") == h(specs[pin]):
            assert all(m.config_map == f"cat-{h(specs[pin])[:10]}" for m in p.mounts)
        for name in deleted:
            cms.pop(name)

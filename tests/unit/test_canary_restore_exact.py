"""A rollback puts back exactly what the rollout changed in objects it did not create.

The stable's env entries come back whole (``valueFrom`` included) and in their places, with every
other entry, container, volume and annotation as it was; the snapshot survives the status (JSON,
no nulls); the FeatureFlag sign-off comes back as it was stored. Every change kind, alone and
together, and both ways of ending: rollback after promotion, and deletion while promoting (the
same restore)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rollguard.kube.template import Container, restore_env, set_env
from rollguard.models.canary import Change
from rollguard.operator.canary import change as ch
from tests.unit.test_canary_change import FLAGS, NOW, flag, mounted_template, resolve_fl

CONFIG_MAP_REF = {"configMapKeyRef": {"name": "features", "key": "new-checkout", "optional": True}}


def stable_template() -> dict[str, Any]:
    """A stable whose flag variable comes from a ConfigMap, between other entries, beside a sidecar."""
    t = mounted_template()
    t["metadata"]["annotations"]["team"] = "checkout"
    web = t["spec"]["containers"][0]
    web["env"] = [{"name": "A", "value": "1"},
                  {"name": "AOS_FEATURE_NEW_CHECKOUT", "valueFrom": CONFIG_MAP_REF},
                  {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                  {"name": "Z", "value": ""}]
    t["spec"]["containers"].append({"name": "proxy", "image": "proxy:1", "env": [
        {"name": "AOS_FEATURE_NEW_CHECKOUT", "value": "true"}, {"name": "B", "value": "2"}]})
    t["spec"]["volumes"].append({"name": "data", "emptyDir": {}})
    return t


NEW_CHECKOUT = flag("new-checkout", "new_checkout", staging=False)


def change(**extra: Any) -> Change:
    return Change.model_validate({"flags": {"environment": "staging", "values": {"new_checkout": True}}, **extra})


def through_status(snap: dict[str, Any]) -> dict[str, Any]:
    """The snapshot as the status stores it and a restarted operator reads it back."""
    out: dict[str, Any] = json.loads(json.dumps(snap))
    assert "null" not in json.dumps(out)
    return out


@pytest.mark.parametrize("feature_flag_kind", [True, False], ids=["featureflag", "env-overrides-only"])
def test_a_flag_from_a_config_map_comes_back_whole_after_promotion_and_rollback(feature_flag_kind: bool) -> None:
    original = stable_template()
    c = change()
    res = resolve_fl(c, [*FLAGS, NEW_CHECKOUT], template=original)[0] if feature_flag_kind else ch.Resolved()
    snap = through_status(ch.snapshot(original, c, res))
    promoted = ch.stable_template(original, c, res)
    assert promoted != original
    restored = ch.restore(promoted, snap)
    assert restored == original
    assert json.dumps(restored) == json.dumps(original)  # order of entries and keys too
    web = restored["spec"]["containers"][0]["env"][1]
    assert web == {"name": "AOS_FEATURE_NEW_CHECKOUT", "valueFrom": CONFIG_MAP_REF}


def test_the_whole_change_at_once_comes_back_whole() -> None:
    original = stable_template()
    c = change(image={"container": "web", "image": "web:2"})
    res = resolve_fl(c, [*FLAGS, NEW_CHECKOUT], template=original)[0]
    snap = through_status(ch.snapshot(original, c, res))
    promoted = ch.stable_template(original, c, res)
    assert promoted["spec"]["containers"][0]["image"] == "web:2"
    assert ch.restore(promoted, snap) == original


def test_a_restore_keeps_edits_made_to_other_entries_meanwhile() -> None:
    original = stable_template()
    c = change()
    snap = through_status(ch.snapshot(original, c, ch.Resolved()))
    promoted = ch.stable_template(original, c, ch.Resolved())
    promoted["spec"]["containers"][0]["env"].append({"name": "LATER", "value": "x"})
    restored = ch.restore(promoted, snap)
    names = [e["name"] for e in restored["spec"]["containers"][0]["env"]]
    assert names == ["A", "AOS_FEATURE_NEW_CHECKOUT", "POD", "Z", "LATER"]
    assert restored["spec"]["containers"][0]["env"][1]["valueFrom"] == CONFIG_MAP_REF


def test_restoring_twice_changes_nothing_more() -> None:
    original = stable_template()
    c = change()
    snap = through_status(ch.snapshot(original, c, ch.Resolved()))
    once = ch.restore(ch.stable_template(original, c, ch.Resolved()), snap)
    assert ch.restore(once, snap) == once == original


def test_a_snapshot_written_by_an_earlier_version_still_restores_values() -> None:
    original = mounted_template()
    promoted = ch.stable_template(original, change(), ch.Resolved())
    earlier = {"env": {"web": {"AOS_FEATURE_FAILURE_CATALOG": "false"}},
               "envAbsent": {"web": ["AOS_FEATURE_NEW_CHECKOUT"]}}
    assert ch.restore(promoted, earlier) == original


def test_setting_an_env_var_keeps_its_place_and_the_others() -> None:
    c: Container = {"name": "web", "env": [{"name": "A", "value": "1"}, {"name": "F", "value": "false"},
                                           {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}
    before = copy.deepcopy(c)
    set_env(c, "F", "true")
    assert [e["name"] for e in c["env"]] == ["A", "F", "B"] and c["env"][1] == {"name": "F", "value": "true"}
    assert c["env"][2] == before["env"][2]
    set_env(c, "NEW", "1")
    assert [e["name"] for e in c["env"]] == ["A", "F", "B", "NEW"]
    restore_env(c, ["NEW"], [{"index": 1, "entry": before["env"][1]}])
    assert c == before


def test_the_featureflag_signoff_comes_back_as_it_was_stored() -> None:
    stored = {"by": "bob", "at": "2026-11-20T08:00:00+00:00",
              "evidence": {"kind": "Manual", "summary": "ok"}}  # "+00:00", not the "Z" a model writes
    gated = flag("failure-catalog", "failure_catalog", gated=True, env_var="AOS_FEATURE_FAILURE_CATALOG",
                 staging=False, signoff=stored)
    c = Change.model_validate({"flags": {"environment": "staging", "values": {"failure_catalog": True}}})
    before, _ = resolve_fl(c, [gated, FLAGS[1]])
    snap = through_status(ch.snapshot(mounted_template(), c, before))
    assert snap["featureFlags"]["failure-catalog"]["signoff"] == stored
    promoted_flag = flag("failure-catalog", "failure_catalog", gated=True, env_var="AOS_FEATURE_FAILURE_CATALOG",
                         staging=True, signoff=ch.rollout_signoff("alice", NOW, "prod/r"))
    after, _ = resolve_fl(c, [promoted_flag, FLAGS[1]])
    patches = ch.flag_restore_patches(snap, after)
    assert patches["failure-catalog"]["spec"]["signoff"] == stored
    assert patches["failure-catalog"]["spec"]["environments"] == {"staging": False}

"""The pure side of catalog and flag changes: resolving them, the canary's template and flags file,
what promotion writes (FailureCatalog pin, FeatureFlag values) and what a rollback puts back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from rollguard.models.canary import Change
from rollguard.operator.canary import change as ch
from rollguard.sdk.flags import FlagReader

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
OLD = "a" * 12 + "1" * 52
NEW = "b" * 12 + "2" * 52
NEWER = "b" * 12 + "3" * 52  # shares a 12-character prefix with NEW


def catalog(pinned: str | None = None, history: tuple[str, ...] = (NEW, OLD), spec_hash: str = NEW) -> dict[str, Any]:
    return {"metadata": {"name": "aos"},
            "spec": {"version": "2", **({"pinnedHash": pinned} if pinned else {})},
            "status": {"contentHash": spec_hash,
                       "history": [{"hash": h, "configMapName": f"aos-{h[:10]}", "version": "x", "entryCount": 1,
                                    "createdAt": "2026-11-23T00:00:00Z"} for h in history]}}


def mounted_template(short: str = OLD[:10], flags_env: str | None = "staging") -> dict[str, Any]:
    """A target the catalog and flags controllers have mounted."""
    volumes: list[dict[str, Any]] = [{"name": "rollguard-catalog", "configMap": {"name": f"aos-{short}"}}]
    if flags_env:
        volumes.append({"name": "rollguard-flags", "configMap": {"name": f"rollguard-flags-{flags_env}",
                                                                 "optional": True}})
    return {"metadata": {"labels": {"app": "web"},
                         "annotations": {"catalog.rollguard.io/name": "aos", "catalog.rollguard.io/hash": short}},
            "spec": {"volumes": volumes,
                     "containers": [{"name": "web", "image": "web:1",
                                     "env": [{"name": "X", "value": "1"},
                                             {"name": "AOS_FEATURE_FAILURE_CATALOG", "value": "false"}],
                                     "volumeMounts": [{"name": "rollguard-catalog",
                                                       "mountPath": "/etc/rollguard/catalog"}]}]}}


def cat_change(h: str) -> Change:
    return Change.model_validate({"catalog": {"name": "aos", "hash": h}})


def resolve_cat(h: str, cat: dict[str, Any] | None = None, template: dict[str, Any] | None = None) -> Any:
    return ch.resolve_catalog(cat_change(h), catalog() if cat is None else cat,
                              template or mounted_template(), "prod", "web")


# --------------------------------------------------------------------------- catalog

@pytest.mark.parametrize("given", [NEW, NEW[:10], NEW[:20]])
def test_catalog_hash_resolves_by_full_hash_or_unique_prefix(given: str) -> None:
    cv = resolve_cat(given, catalog(history=(NEW, OLD)))
    assert isinstance(cv, ch.CatalogVersion)
    assert cv.hash == NEW and cv.config_map == f"aos-{NEW[:10]}" and cv.short == NEW[:10]


@pytest.mark.parametrize(("given", "history", "expected"), [
    ("c" * 64, (NEW, OLD), "is not a version in FailureCatalog aos status.history"),
    (NEW[:12], (NEW, NEWER), "matches several versions"),
    (NEW[:8], (NEW, OLD), "too short"),
])
def test_a_catalog_hash_not_in_history_is_a_precondition_problem(given: str, history: tuple[str, ...],
                                                                 expected: str) -> None:
    problem = resolve_cat(given, catalog(history=history))
    assert isinstance(problem, str)
    assert problem.startswith("change.catalog.hash: ") and expected in problem
    assert history[0][:10] in problem  # the versions that do exist are listed


def test_missing_catalog_and_a_target_it_does_not_mount_are_problems() -> None:
    missing = ch.resolve_catalog(cat_change(NEW), None, mounted_template(), "prod", "web")
    assert missing == "change.catalog.name: FailureCatalog aos not found in prod"
    bare = {"metadata": {}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}
    problem = resolve_cat(NEW, template=bare)
    assert isinstance(problem, str) and "Deployment web does not mount FailureCatalog aos" in problem


def test_canary_template_mounts_the_requested_version() -> None:
    cv = resolve_cat(NEW)
    t = ch.canary_template(mounted_template(), cat_change(NEW), ch.Resolved(catalog=cv))
    vol = next(v for v in t["spec"]["volumes"] if v["name"] == "rollguard-catalog")
    assert vol["configMap"]["name"] == f"aos-{NEW[:10]}"
    assert t["metadata"]["annotations"]["catalog.rollguard.io/hash"] == NEW[:10]
    # the stable is the catalog controller's: the rollout's own stable edit does not touch the mount
    stable = ch.stable_template(mounted_template(), cat_change(NEW), ch.Resolved(catalog=cv))
    assert stable == mounted_template()
    assert not ch.stable_has_change(mounted_template(), cat_change(NEW), ch.Resolved(catalog=cv))
    assert ch.stable_has_change(mounted_template(NEW[:10]), cat_change(NEW), ch.Resolved(catalog=cv))


def test_promotion_pins_the_new_version_or_clears_the_pin() -> None:
    # the documented workflow: current version pinned, spec edited to the new one, canary the new one
    pinned_old = resolve_cat(NEW, catalog(pinned=OLD[:10], spec_hash=NEW))
    assert ch.catalog_pin_patch(pinned_old) == {"spec": {"pinnedHash": None}}  # new == spec's content
    # canary of an older version than the spec's: pin it
    older = resolve_cat(OLD, catalog(spec_hash=NEW))
    assert ch.catalog_pin_patch(older) == {"spec": {"pinnedHash": OLD}}
    # already where it should be (also by a prefix): nothing to write, a repeat changes nothing
    assert ch.catalog_pin_patch(resolve_cat(OLD, catalog(pinned=OLD[:10], spec_hash=NEW))) is None
    assert ch.catalog_pin_patch(resolve_cat(NEW, catalog(spec_hash=NEW))) is None


def test_rollback_puts_the_pin_back_as_it_was() -> None:
    before = resolve_cat(NEW, catalog(pinned=OLD[:10]))
    snap = json.loads(json.dumps(ch.snapshot(mounted_template(), cat_change(NEW), ch.Resolved(catalog=before))))
    assert snap["catalogPin"] == {"name": "aos", "pinnedHash": OLD[:10]}
    after_promotion = resolve_cat(NEW, catalog())  # pin cleared
    assert ch.catalog_restore_patch(snap, after_promotion) == ("aos", {"spec": {"pinnedHash": OLD[:10]}})
    assert ch.catalog_restore_patch(snap, before) is None  # restored already
    unpinned = ch.snapshot(mounted_template(), cat_change(OLD), ch.Resolved(catalog=resolve_cat(OLD)))
    assert ch.catalog_restore_patch(unpinned, resolve_cat(OLD, catalog(pinned=OLD))) == (
        "aos", {"spec": {"pinnedHash": None}})


# --------------------------------------------------------------------------- flags

def flag(name: str, key: str, *, gated: bool = False, staging: bool | None = None,
         env_var: str | None = None, signoff: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"key": key, "owner": "platform", "defaultValue": False, "requiresSignoff": gated,
                            "environments": {"production": False, **({"staging": staging} if staging is not None
                                                                     else {})},
                            "targets": [{"environment": "staging", "deployments": ["web"]}]}
    if env_var:
        spec["envVar"] = env_var
    if signoff:
        spec["signoff"] = signoff
    return {"metadata": {"name": name, "creationTimestamp": "2026-11-01T00:00:00Z"}, "spec": spec}


FLAGS = [flag("failure-catalog", "failure_catalog", gated=True, env_var="AOS_FEATURE_FAILURE_CATALOG"),
         flag("cost-sim", "cost_sim", staging=False)]


def flag_change(**values: bool) -> Change:
    return Change.model_validate({"flags": {"environment": "staging", "values": values}})


def resolve_fl(change: Change, objects: list[dict[str, Any]] | None = None, requires_signoff: bool = True,
               template: dict[str, Any] | None = None) -> tuple[ch.Resolved, list[str]]:
    refs, problems = ch.resolve_flags(change, FLAGS if objects is None else objects,
                                      template or mounted_template(), None, requires_signoff, "web", NOW)
    return ch.Resolved(flags=refs, environment="staging", flag_objects=tuple(objects or FLAGS)), problems


def test_flag_problems_name_the_field() -> None:
    _, problems = resolve_fl(flag_change(nope=True))
    assert problems == ["change.flags.values.nope: no FeatureFlag with key nope in this namespace"]
    _, problems = resolve_fl(flag_change(cost_sim=True), template=mounted_template(flags_env="production"))
    assert problems and problems[0].startswith("change.flags.environment: Deployment web receives the flags "
                                               "of environment production")
    _, problems = resolve_fl(flag_change(cost_sim=True), template=mounted_template(flags_env=None))
    assert problems and "does not receive the flags of any environment" in problems[0]


def test_a_gated_flag_needs_the_rollouts_own_signoff() -> None:
    _, problems = resolve_fl(flag_change(failure_catalog=True), requires_signoff=False)
    assert len(problems) == 1 and problems[0].startswith("change.flags.values.failure_catalog: FeatureFlag "
                                                         "failure-catalog requires a sign-off")
    assert resolve_fl(flag_change(failure_catalog=True), requires_signoff=True)[1] == []
    assert resolve_fl(flag_change(failure_catalog=False), requires_signoff=False)[1] == []  # off is always fine


def write_files(tmp: Path, files: dict[str, str]) -> FlagReader:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "flags.json").write_text(files["flags.json"])
    return FlagReader(tmp, environ={"AOS_FEATURE_FAILURE_CATALOG": "true"})


def test_the_canary_flags_file_opens_the_gate_only_with_the_rollouts_signoff(tmp_path: Path) -> None:
    change = flag_change(failure_catalog=True, cost_sim=True)
    signoff = ch.rollout_signoff("alice: shadow run clean", NOW, "prod/m4")
    signed = ch.canary_flag_files(change, tuple(FLAGS), signoff, "prod", NOW)
    doc = json.loads(signed["flags.json"])["flags"]
    assert doc["failure_catalog"]["value"] is True and doc["failure_catalog"]["signoff"] == "Valid"
    assert doc["cost_sim"]["value"] is True
    assert json.loads(signed["flagd.json"])["flags"]["failure_catalog"]["defaultVariant"] == "on"
    # what the SDK in the canary pod answers, with the canary's env override set
    assert write_files(tmp_path / "signed", signed).is_enabled("failure_catalog")
    unsigned = ch.canary_flag_files(change, tuple(FLAGS), None, "prod", NOW)
    assert json.loads(unsigned["flags.json"])["flags"]["failure_catalog"]["blocked"] is True
    assert not write_files(tmp_path / "unsigned", unsigned).is_enabled("failure_catalog")  # env cannot force it


def test_promotion_writes_flag_values_and_takes_the_env_overrides_off() -> None:
    change = flag_change(failure_catalog=True, cost_sim=True)
    res, _ = resolve_fl(change)
    signoff = ch.rollout_signoff("alice", NOW, "prod/m4")
    patches = ch.flag_patches(res, signoff)
    assert patches == {"failure-catalog": {"spec": {"environments": {"staging": True}, "signoff": signoff}},
                       "cost-sim": {"spec": {"environments": {"staging": True}}}}
    t = mounted_template()
    stable = ch.stable_template(t, change, res)
    assert [e["name"] for e in stable["spec"]["containers"][0]["env"]] == ["X"]
    assert not ch.stable_has_change(stable, change, res)  # the FeatureFlags do not say it yet
    done, _ = resolve_fl(change, [flag("failure-catalog", "failure_catalog", gated=True, staging=True,
                                       env_var="AOS_FEATURE_FAILURE_CATALOG", signoff=signoff),
                                  flag("cost-sim", "cost_sim", staging=True)])
    assert ch.stable_has_change(stable, change, done) and ch.flag_patches(done, signoff) == {}
    assert not ch.stable_has_change(t, change, done)  # an env override left on the stable would still win


def test_rollback_after_promotion_restores_values_signoff_and_env() -> None:
    change = flag_change(failure_catalog=True, cost_sim=True)
    before, _ = resolve_fl(change)
    t = mounted_template()
    snap = json.loads(json.dumps(ch.snapshot(t, change, before)))
    assert "null" not in json.dumps(snap)
    signoff = ch.rollout_signoff("alice", NOW, "prod/m4")
    after, _ = resolve_fl(change, [flag("failure-catalog", "failure_catalog", gated=True, staging=True,
                                        env_var="AOS_FEATURE_FAILURE_CATALOG", signoff=signoff),
                                   flag("cost-sim", "cost_sim", staging=True)])
    assert ch.flag_restore_patches(snap, after) == {
        "failure-catalog": {"spec": {"environments": {"staging": None}, "signoff": None}},
        "cost-sim": {"spec": {"environments": {"staging": False}}}}
    assert ch.flag_restore_patches(snap, before) == {}
    assert ch.restore(ch.stable_template(t, change, after), snap) == t

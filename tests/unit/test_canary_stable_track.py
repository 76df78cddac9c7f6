"""The baseline's track label: the engine asks for ``rollguard.io/track=stable`` on the stable's
pods on every live tick, after any traffic change, and never once the rollout is over; the
reconciler finds those pods by the target's selector (pure parts only: the rest runs on the
local cluster in tests/integration/test_canary_shipped_configs.py)."""

from __future__ import annotations

import pytest

from rollguard.kube.names import TRACK_CANARY, TRACK_LABEL, TRACK_STABLE
from rollguard.kube.template import selector_string
from rollguard.operator.canary.actions import LabelStablePods, SetWeight
from rollguard.operator.canary.engine import plan
from tests.unit.test_canary_engine import ERRORS, T0, Run, m, make_spec


def test_every_live_tick_asks_for_the_stable_label_after_the_traffic_change() -> None:
    r = Run(make_spec())
    r.tick()
    assert r.phase == "Initializing" and not any(isinstance(a, LabelStablePods) for a in r.last)
    r.tick()
    assert r.phase == "Progressing"
    # the tick that sets the first weight labels the stable too, after the weight
    kinds = [type(a) for a in r.last if a.mutating]
    assert kinds[-1] is LabelStablePods and SetWeight in kinds
    assert kinds.index(SetWeight) < kinds.index(LabelStablePods)
    for _ in range(3):  # every later tick too: a pod created mid-rollout gets the label
        r.check()
        assert isinstance([a for a in r.last if a.mutating][-1], LabelStablePods)


def test_the_label_is_never_asked_for_once_the_rollout_leaves_the_live_phases() -> None:
    spec = make_spec(analysis={"metrics": [dict(ERRORS)]})
    r = Run(spec)
    r.to_progressing()
    r.check(metrics={"error-rate": m(0.5, 0.0)})  # a breach: rollback (failureLimit 0)
    assert r.phase in ("RollingBack", "RolledBack")
    assert not any(isinstance(a, LabelStablePods) for a in r.last)
    # the rollback's first action is traffic, never the label
    assert isinstance(next(a for a in r.last if a.mutating), SetWeight)
    r.tick(1)
    assert r.phase == "RolledBack"
    assert not any(isinstance(a, LabelStablePods) for a in r.last)


def test_a_dry_run_lists_the_label_once() -> None:
    actions = [a for _, a in plan(make_spec(), T0)]
    assert actions.count(LabelStablePods()) == 1
    assert "pod metadata only, no restart" in LabelStablePods().describe()


def test_names() -> None:
    assert (TRACK_LABEL, TRACK_STABLE, TRACK_CANARY) == ("rollguard.io/track", "stable", "canary")


@pytest.mark.parametrize(("selector", "expected"), [
    ({"matchLabels": {"app": "web", "tier": "api"}}, "app=web,tier=api"),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "env", "operator": "In", "values": ["a", "b"]},
        {"key": "skip", "operator": "NotIn", "values": ["x"]},
        {"key": "team", "operator": "Exists"},
        {"key": "legacy", "operator": "DoesNotExist"}]},
     "app=web,env in (a,b),skip notin (x),team,!legacy"),
    ({}, ""),
])
def test_a_deployment_selector_as_a_list_selector(selector: dict[str, object], expected: str) -> None:
    assert selector_string(selector) == expected


def test_an_unknown_selector_operator_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown operator 'Near'"):
        selector_string({"matchExpressions": [{"key": "a", "operator": "Near"}]})

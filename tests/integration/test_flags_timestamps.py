"""On a real apiserver: a FeatureFlag sign-off time without an offset is refused at apply, naming
the field, and one flag's fault never stops the other flags of its namespace."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rollguard.flags.evaluate import SignoffVerdict, signoff_verdict
from rollguard.models.flag import FeatureFlagSpec
from rollguard.operator.flags.kube import FlagsKube
from rollguard.operator.flags.reconcile import reconcile_namespace
from tests.integration.test_flags_operator import (
    condition,
    deployment,
    events,
    flag,
    iso,
    status,
    value_in,
)
from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration


def naive(t: dt.datetime) -> str:
    """``t`` in UTC written without an offset, as a user may type it."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def gated(name: str, key: str, signoff: dict[str, str | dict[str, str]]) -> dict[str, object]:
    return flag(name, key=key, requiresSignoff=True, environments={"staging": True}, signoff=signoff,
                targets=[{"environment": "staging", "deployments": ["backend"]}])


def test_a_signoff_without_offset_is_refused_at_apply_naming_the_field_and_the_namespace_goes_on(
        kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    """The CRD (generated from the model: ``format: date-time``) refuses a time without an offset
    at apply, naming the field; the model reads one as UTC should it come from elsewhere (see the
    unit tests). The namespace's flags go on: another flag's expiring sign-off is turned off."""
    ns, now = namespace, dt.datetime.now(dt.UTC)
    kubectl.apply(deployment("backend"), namespace=ns)
    kubectl.apply(gated("expiring", "expiring", {
        "by": "sre", "at": iso(now - dt.timedelta(hours=1)), "expiresAt": iso(now + dt.timedelta(seconds=10)),
        "evidence": {"kind": "Manual"}}), namespace=ns)
    refused = kubectl.apply(gated("new-checkout", "new_checkout", {
        "by": "sre", "at": naive(now - dt.timedelta(hours=1)), "evidence": {"kind": "Manual"}}),
        namespace=ns, check=False)
    assert refused.returncode != 0 and "spec.signoff.at" in refused.stderr
    kubectl.apply(gated("new-checkout", "new_checkout", {
        "by": "sre", "at": naive(now - dt.timedelta(hours=1)) + "Z", "evidence": {"kind": "Manual"}}), namespace=ns)
    eventually(lambda: value_in(kubectl, ns, "staging", "new_checkout") is True, timeout=60,
               what="new_checkout on once its sign-off time says its zone")
    eventually(lambda: value_in(kubectl, ns, "staging", "expiring") is False, timeout=90,
               what="expiring turned off after its sign-off expired")
    eventually(lambda: condition(kubectl, ns, "expiring", "Blocked")["reason"] == "SignoffExpired", what="reason")
    assert value_in(kubectl, ns, "staging", "new_checkout") is True
    # one reconcile of both flags writes new-checkout's status after expiring's
    eventually(lambda: status(kubectl, ns, "new-checkout").get("observedGeneration") == 1,
               what="new-checkout's status")
    assert status(kubectl, ns, "new-checkout")["signoff"]["state"] == "Valid"
    assert not [e for e in events(kubectl, ns, "new-checkout") if e["type"] == "Warning"]
    assert "TypeError" not in operator.output()


def test_a_flag_that_cannot_be_evaluated_is_reported_and_the_others_are_delivered(
        kubectl: Kubectl, kubeconfig: Path, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault in one flag's evaluation (injected: no input the models accept causes one now)
    makes that flag Invalid with a condition and an Event; the namespace's other flags are
    delivered and get their status."""
    ns, now = namespace, dt.datetime.now(dt.UTC).replace(microsecond=0)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    kubectl.apply(deployment("backend"), namespace=ns)
    for name in ("broken", "fine"):
        kubectl.apply(flag(name, key=name, environments={"staging": True},
                           targets=[{"environment": "staging", "deployments": ["backend"]}]), namespace=ns)
    real = signoff_verdict

    def faulty(spec: FeatureFlagSpec, at: dt.datetime) -> SignoffVerdict:
        if spec.key == "broken":
            raise TypeError("can't compare offset-naive and offset-aware datetimes")
        return real(spec, at)

    monkeypatch.setattr("rollguard.flags.plan.signoff_verdict", faulty)
    reconcile_namespace(FlagsKube(), ns, now)
    reconcile_namespace(FlagsKube(), ns, now + dt.timedelta(seconds=1))  # again: no second Event
    assert value_in(kubectl, ns, "staging", "fine") is True
    assert value_in(kubectl, ns, "staging", "broken") is None  # not delivered
    assert status(kubectl, ns, "fine")["phase"] == "Ready"
    assert status(kubectl, ns, "broken")["phase"] == "Invalid"
    ready = condition(kubectl, ns, "broken", "Ready")
    assert ready["status"] == "False" and ready["reason"] == "EvaluationFailed"
    assert "TypeError" in ready["message"] and "FeatureFlag broken" in ready["message"]
    warnings = [e for e in events(kubectl, ns, "broken") if e["reason"] == "EvaluationFailed"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning" and warnings[0].get("count", 1) == 1
    monkeypatch.setattr("rollguard.flags.plan.signoff_verdict", real)  # the fault is gone: the flag recovers
    reconcile_namespace(FlagsKube(), ns, now + dt.timedelta(seconds=2))
    assert value_in(kubectl, ns, "staging", "broken") is True
    assert status(kubectl, ns, "broken")["phase"] == "Ready"

"""A status patch must be valid JSON: the apiserver refuses Infinity, which a zero baseline and a
non-zero canary produce as the delta of a maxDeltaPercent rule (found by the demo)."""

from __future__ import annotations

import json
import math

from rollguard.models.canary import MetricStatus
from rollguard.operator.canary.reconciler import finite


def test_an_infinite_delta_is_written_as_absent() -> None:
    status = {"metrics": [MetricStatus(name="error-rate", canary_value=0.4, baseline_value=0.0,
                                       delta=math.inf, verdict="breach").to_k8s()],
              "report": {"metricsDelta": {"error-rate": {"canary": 0.4, "baseline": 0.0, "delta": -math.inf}}}}
    out = finite(status)
    text = json.dumps(out, allow_nan=False)  # raises on Infinity/NaN
    assert "delta" not in out["metrics"][0] and out["metrics"][0]["canaryValue"] == 0.4
    assert out["report"]["metricsDelta"]["error-rate"] == {"canary": 0.4, "baseline": 0.0}
    assert "Infinity" not in text and out["metrics"][0]["verdict"] == "breach"


def test_finite_values_are_untouched() -> None:
    status = {"canaryWeight": 25, "phase": "Progressing",
              "metrics": [{"name": "x", "delta": 12.5, "samples": [1.0, 2.0]}]}
    assert finite(status) == status

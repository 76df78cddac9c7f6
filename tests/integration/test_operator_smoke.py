"""The operator process starts against the real apiserver and reconciles what it watches."""

from __future__ import annotations

import pytest

from tests.support.kube import Kubectl, OperatorProcess, eventually

pytestmark = pytest.mark.integration

CATALOG = """
apiVersion: rollguard.io/v1alpha1
kind: FailureCatalog
metadata:
  name: smoke
spec:
  version: "2026.11.1"
  entries:
    - code: SMOKE_TIMEOUT
      category: TIMEOUT
      severity: MEDIUM
      retryable: true
      recovery: {mode: RETRY_EXPONENTIAL, maxAttempts: 3}
      match: {patterns: ["timed out"]}
"""


def test_operator_sets_observed_generation(kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
    kubectl.apply(CATALOG, namespace=namespace)

    def observed() -> bool:
        obj = kubectl.get_json("failurecatalog", "smoke", namespace=namespace)
        return bool(obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"])

    try:
        eventually(observed, timeout=60, what="status.observedGeneration")
        kubectl("patch", "failurecatalog", "smoke", "--type", "json", "-p",
                '[{"op": "replace", "path": "/spec/entries/0/severity", "value": "HIGH"}]', namespace=namespace)
        eventually(observed, timeout=60, what="status.observedGeneration after an update")
    except AssertionError:
        print(operator.output())
        raise

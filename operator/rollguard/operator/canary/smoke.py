"""The smoke test against the canary: an HTTP check, or a Job made from the rollout's template."""

from __future__ import annotations

from typing import Any, cast

import httpx
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollguard.kube import names
from rollguard.kube.client import as_dict, create_if_absent, get_or_none
from rollguard.models.canary import CanaryRollout, CanaryRolloutSpec, CanaryRolloutStatus
from rollguard.operator.canary.objects import Names, owner_of
from rollguard.operator.canary.observations import SmokeResult


class SmokeTest:
    """Starts a rollout's smoke Job and reads how it (or the HTTP check) went. Thread-safe."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)

    def observe(self, spec: CanaryRolloutSpec, status: CanaryRolloutStatus, n: Names) -> SmokeResult | None:
        """The result while the smoke test runs (None otherwise). The HTTP check runs here, one
        request per call (at most 5 s); a Job is read."""
        if spec.smoke is None or status.smoke is None or status.smoke.state != "Running":
            return None
        if spec.smoke.http is not None:
            h = spec.smoke.http
            try:
                r = httpx.get(h.url, timeout=min(5.0, float(spec.smoke.timeout_seconds)))
            except httpx.HTTPError as e:
                return SmokeResult("Running", None, f"{type(e).__name__}: {e}")  # not up yet: retry until timeout
            if r.status_code == h.expect_status:
                return SmokeResult("Passed", 0, f"HTTP {r.status_code} from {h.url}")
            return SmokeResult("Failed", 1, f"HTTP {r.status_code} from {h.url}, expected {h.expect_status}")
        got = get_or_none(self.batch.read_namespaced_job, n.smoke_job(status.attempt), n.namespace)
        if got is None:
            return SmokeResult("Running", None, "smoke Job not created yet")
        job = as_dict(self.api, got)
        js = job.get("status") or {}
        if js.get("succeeded"):
            return SmokeResult("Passed", 0, "smoke Job succeeded")
        if js.get("failed"):
            return SmokeResult("Failed", self._job_exit_code(n, job), "smoke Job failed")
        return SmokeResult("Running")

    def _job_exit_code(self, n: Names, job: dict[str, Any]) -> int:
        uid = job["metadata"].get("uid")
        try:
            pods = self.core.list_namespaced_pod(n.namespace, label_selector=f"controller-uid={uid}").items
        except ApiException as e:
            if e.status == 403:
                return 1  # no `list` on Pods (RBAC other than the chart's): the Job failed, its exit code is unknown
            raise
        for p in pods:
            for cs in (p.status.container_statuses or []) if p.status else []:
                term = cs.state.terminated if cs.state else None
                if term is not None and term.exit_code:
                    return int(term.exit_code)
        return 1

    def start(self, cr: CanaryRollout, status: CanaryRolloutStatus, n: Names) -> None:
        """Create this attempt's smoke Job (nothing for an HTTP check); idempotent."""
        if cr.spec.smoke is None or cr.spec.smoke.job is None:
            return
        template = dict(cr.spec.smoke.job.template)
        job: dict[str, Any] = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": n.smoke_job(status.attempt), "namespace": n.namespace,
                         "labels": {names.SMOKE_OF_LABEL: n.rollout}},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": cr.spec.smoke.timeout_seconds,
                     "template": template},
        }
        owner = owner_of(cr)
        if owner:
            job["metadata"]["ownerReferences"] = [owner]
        create_if_absent(self.batch.create_namespaced_job, n.namespace, cast(Any, job))  # there already: done

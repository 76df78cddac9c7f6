"""The canary reconciler: observe the cluster, call :func:`decide`, carry out the actions.

It does nothing else: reading the change's references is :mod:`.references`, the smoke test
:mod:`.smoke`, what a change does :mod:`.change` and its kinds, traffic the routers, metrics the
providers. Synchronous (the kubernetes client); the kopf handler runs it in a thread. Nothing is
kept in memory between calls: what the reconciler needs next time is in the status it returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any, cast

import httpx
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rollguard import GROUP, VERSION
from rollguard.kube import names
from rollguard.kube.client import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    as_dict,
    delete_if_present,
    get_or_none,
    namespace_terminating,
    raw_json,
)
from rollguard.kube.template import selector_string
from rollguard.models.canary import (
    KIND,
    LIVE_PHASES,
    PLURAL,
    REQUEST_ACTIONS,
    TERMINAL_PHASES,
    CanaryRollout,
    CanaryRolloutStatus,
)
from rollguard.operator.canary import change as ch
from rollguard.operator.canary.actions import (
    Action,
    ApplyChangeToStable,
    CreateCanary,
    DeleteCanary,
    EmitEvent,
    LabelStablePods,
    RestoreStable,
    RunSmoke,
    SetWeight,
    WriteReport,
)
from rollguard.operator.canary.engine import (
    ManualRequest,
    Observations,
    TargetState,
    analysis_due,
    decide,
    quiet,
    running_spec,
    spec_edited,
)
from rollguard.operator.canary.objects import Names, names_of, owner_of
from rollguard.operator.canary.references import References
from rollguard.operator.canary.smoke import SmokeTest
from rollguard.operator.changekind import ObjectPatch, rollout_signoff
from rollguard.operator.metrics import provider_for
from rollguard.operator.metrics.collect import collect
from rollguard.operator.routers import RouteTarget, TrafficRouter, router_for

log = logging.getLogger("rollguard.canary")

# Phases in which a rollout holds its target: it has created (or is creating) the canary, moved
# traffic or the stable, or is undoing that. A second rollout of the same target waits for it.
HOLDING_PHASES = frozenset({"Initializing", "Progressing", "Paused", "Promoting", "RollingBack", "Failed"})


def _available(dep: dict[str, Any]) -> tuple[bool, str]:
    """Whether the Deployment has rolled out, as ``kubectl rollout status`` decides it.

    The Deployment controller must have seen the newest spec (``observedGeneration``), every
    replica must run the newest template (``updatedReplicas``) and be available, and no old
    replica may be left. Counting ``availableReplicas`` alone says "available" in the middle of
    a rolling update, while the old pods still serve.
    """
    want = dep.get("spec", {}).get("replicas", 1)
    st = dep.get("status") or {}
    have = st.get("availableReplicas") or 0
    if want == 0:
        return False, "scaled to 0 replicas"
    generation = (dep.get("metadata") or {}).get("generation") or 0
    if (st.get("observedGeneration") or 0) < generation:
        return False, "the Deployment controller has not seen the newest spec yet"
    updated, total = st.get("updatedReplicas") or 0, st.get("replicas") or 0
    if updated < want:
        return False, f"rolling update: {updated}/{want} replicas updated"
    if total > updated:
        return False, f"rolling update: {total - updated} old replicas pending termination"
    return have >= want, f"{have}/{want} replicas available"



def finite(value: Any) -> Any:
    """JSON has no Infinity/NaN, and the apiserver refuses a patch that contains them (a zero
    baseline and a non-zero canary make a delta of +inf): write such numbers as absent."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: v for k, v in ((k, finite(v)) for k, v in value.items()) if v is not None}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value

class Reconciler:
    """One CanaryRollout tick at a time (:meth:`reconcile`), and the cleanup of a deleted one."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.references = References(api)
        self.smoke = SmokeTest(api)
        self._told_deleted: set[str] = set()  # rollouts whose namespace deletion was logged

    # ------------------------------------------------------------------ reads

    def _deployment(self, ns: str, name: str) -> dict[str, Any] | None:
        """The Deployment's JSON as the apiserver sent it (not through the client's models, which
        drop fields they do not know): snapshots and template edits keep every byte."""
        dep = get_or_none(self.apps.read_namespaced_deployment, name, ns, _preload_content=False)
        return None if dep is None else cast(dict[str, Any], raw_json(dep))

    def _service(self, ns: str, name: str) -> dict[str, Any] | None:
        svc = get_or_none(self.core.read_namespaced_service, name, ns)
        return None if svc is None else as_dict(self.api, svc)

    def _other_rollout(self, cr: CanaryRollout, canary: dict[str, Any] | None) -> str | None:
        """Another CanaryRollout that holds this rollout's target: one in a holding phase with the
        same targetRef, or the owner of the target's canary Deployment. None when there is none."""
        n, uid = names_of(cr), cr.metadata.get("uid")
        for ref in ((canary or {}).get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") == KIND and ref.get("uid") != uid:
                return str(ref.get("name"))
        listed = cast(dict[str, Any], client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            GROUP, VERSION, n.namespace, PLURAL))
        for other in listed.get("items") or []:
            meta = other.get("metadata") or {}
            if meta.get("uid") == uid or meta.get("name") == n.rollout:
                continue
            phase = (other.get("status") or {}).get("phase")
            target = ((other.get("spec") or {}).get("targetRef") or {}).get("name")
            if phase in HOLDING_PHASES and target == n.target:
                return str(meta.get("name"))
        return None

    def router(self, cr: CanaryRollout) -> TrafficRouter:
        n = names_of(cr)
        return router_for(self.api, cr.spec.traffic, RouteTarget(n.namespace, n.stable_service, n.canary_service,
                                                                   owner_of(cr)))

    def _observe(self, cr: CanaryRollout, status: CanaryRolloutStatus,
                 now: dt.datetime) -> tuple[Observations, ch.Resolved]:
        spec, n = cr.spec, names_of(cr)
        ann = cr.metadata.get("annotations") or {}
        target = self._deployment(n.namespace, n.target)
        resolved = ch.Resolved()
        if target is None:
            tstate = TargetState(exists=False, available=False, message="not found")
        else:
            ok, msg = _available(target)
            template = target["spec"].get("template", {})
            resolved = self.references.resolve(cr, template, now)
            try:
                has = ch.stable_has_change(template, spec.change, resolved)
                snap = ch.snapshot(template, spec.change, resolved)
            except ValueError as e:
                has, snap, ok, msg = False, {}, False, str(e)
            tstate = TargetState(exists=True, available=ok, has_change=has, snapshot=snap, message=msg)
        canary = self._deployment(n.namespace, n.canary)
        starting = status.phase in ("Pending", "Blocked")
        other = self._other_rollout(cr, canary) if starting or status.phase == "Initializing" else None
        if other is not None:
            canary = None  # another rollout's canary: not this rollout's to count or to remove
        canary_ready = canary is not None and _available(canary)[0]
        router, router_error = self.router(cr), None
        weight: int | None = None
        try:
            router.verify()  # the stable route, every tick that observes: one deleted mid-rollout is noticed
        except LookupError as e:
            router_error = str(e)
        try:
            weight = router.get_weight()
        except LookupError as e:
            router_error = router_error or str(e)
        due = analysis_due(spec, status, now)
        online, scrape, metrics = True, None, None
        if starting or due:
            provider = provider_for(spec)
            try:
                online = provider.is_online() if starting else True
                # the window is fixed when the rollout starts: ask Prometheus only then, and only
                # when the spec does not say (analysis.scrapeInterval wins)
                if starting and online and spec.analysis.scrape_interval is None:
                    scrape = provider.scrape_interval(n.namespace)
                metrics = collect(provider, spec, n.namespace, status, now) if due else None
            finally:
                provider.close()
        refs_ok = not (starting and resolved.problems)
        request = None
        action = ann.get(names.REQUEST_ANNOTATION)
        if action in REQUEST_ACTIONS:
            request = ManualRequest(action, ann.get(names.REQUEST_ID_ANNOTATION) or action,
                                    ann.get(names.REQUEST_BY_ANNOTATION))
        obs = Observations(
            generation=cr.metadata.get("generation"), target=tstate, references_ok=refs_ok,
            references_message="; ".join(resolved.problems) if starting else "",
            signoff=ann.get(names.SIGNOFF_ANNOTATION) or None,
            prometheus_online=online, scrape_interval=scrape, canary_exists=canary is not None,
            canary_ready=canary_ready, other_rollout=other,
            stable_service_exists=self._service(n.namespace, n.stable_service) is not None,
            traffic_weight=weight, router_error=router_error, smoke=self.smoke.observe(spec, status, n),
            metrics=metrics, request=request, action_error=status.last_action_error)
        return obs, resolved

    def _rollout_signoff(self, cr: CanaryRollout, status: CanaryRolloutStatus) -> dict[str, Any] | None:
        """The rollout's own sign-off (``requiresSignoff`` and the annotation), as a FeatureFlag sign-off.
        Dated at the rollout's start, so that writing it twice writes the same thing."""
        by = (cr.metadata.get("annotations") or {}).get(names.SIGNOFF_ANNOTATION)
        if not cr.spec.requires_signoff or not by:
            return None
        at = status.started_at or dt.datetime.now(dt.UTC)
        return rollout_signoff(by, at, f"{cr.metadata.get('namespace', 'default')}/{cr.metadata['name']}")

    # ------------------------------------------------------------------ writes

    def execute(self, cr: CanaryRollout, status: CanaryRolloutStatus, action: Action,
                resolved: ch.Resolved | None = None) -> list[str]:
        """Carry out one action; returns what it changed outside the canary objects (for the status)."""
        n = names_of(cr)
        if isinstance(action, SetWeight):
            self.router(cr).set_weight(action.weight)
        elif isinstance(action, CreateCanary):
            self._create_canary(cr, status, n, resolved)
        elif isinstance(action, LabelStablePods):
            self._label_stable_pods(n)
        elif isinstance(action, RunSmoke):
            self.smoke.start(cr, status, n)
        elif isinstance(action, ApplyChangeToStable):
            return self._promote(cr, status, n, resolved)
        elif isinstance(action, RestoreStable):
            return self._restore(cr, n, action.snapshot, resolved)
        elif isinstance(action, DeleteCanary):
            self.router(cr).remove()
            for delete, name in ((self.apps.delete_namespaced_deployment, n.canary),
                                 (self.core.delete_namespaced_service, n.canary_service),
                                 (self.core.delete_namespaced_config_map, n.canary_flags),
                                 (self.batch.delete_namespaced_job, n.smoke_job(status.attempt))):
                delete_if_present(delete, name, n.namespace, propagation_policy="Background")
        elif isinstance(action, WriteReport):
            log.info("%s/%s report: %s", n.namespace, n.rollout, action.report.model_dump_json(by_alias=True))
        elif isinstance(action, EmitEvent):
            pass  # posted by the handler, which has kopf's event machinery
        return []

    def _label_stable_pods(self, n: Names) -> None:
        """``rollguard.io/track=stable`` on the stable target's running pods: a merge patch of each
        pod's labels, which restarts nothing (the Deployment's template is not touched, and a label
        that is not in the ReplicaSet's selector changes no ownership). The pods are the target's
        selector's, minus the canary's (they carry ``track=canary`` and the canary-of annotation).
        Only pods without the label are written: in a steady state this is one list call."""
        target = self._deployment(n.namespace, n.target)
        if target is None:
            raise LookupError(f"targetRef.name: Deployment {n.target} not found")
        selector = selector_string(target["spec"].get("selector") or {})
        if not selector:
            raise ValueError(f"Deployment {n.target} has an empty selector: its pods cannot be told apart")
        selector += f",{names.TRACK_LABEL}!={names.TRACK_CANARY}"
        for pod in self.core.list_namespaced_pod(n.namespace, label_selector=selector).items:
            meta = pod.metadata
            if meta is None or not meta.name or meta.deletion_timestamp is not None:
                continue
            if names.CANARY_OF_LABEL in (meta.annotations or {}):
                continue
            if (meta.labels or {}).get(names.TRACK_LABEL) == names.TRACK_STABLE:
                continue
            body = {"metadata": {"labels": {names.TRACK_LABEL: names.TRACK_STABLE}}}
            try:
                self.core.patch_namespaced_pod(meta.name, n.namespace, cast(Any, body),
                                               field_manager=names.CANARY_FIELD_MANAGER, _content_type=MERGE_PATCH)
            except ApiException as e:
                if e.status != 404:  # gone since the list: nothing to label
                    raise

    def _resolved(self, cr: CanaryRollout, n: Names, resolved: ch.Resolved | None) -> ch.Resolved:
        if resolved is not None:
            return resolved
        target = self._deployment(n.namespace, n.target)
        if target is None:
            raise LookupError(f"targetRef.name: Deployment {n.target} not found")
        return self.references.resolve(cr, target["spec"].get("template", {}), dt.datetime.now(dt.UTC))

    def _create_canary(self, cr: CanaryRollout, status: CanaryRolloutStatus, n: Names,
                       resolved: ch.Resolved | None) -> None:
        target = self._deployment(n.namespace, n.target)
        if target is None:
            raise LookupError(f"targetRef.name: Deployment {n.target} not found")
        res = self._resolved(cr, n, resolved)
        if res.problems:
            raise LookupError("; ".join(res.problems))
        flags_cm = None
        if cr.spec.change.flags is not None and res.flags is not None:
            flags_cm = n.canary_flags
            files = ch.canary_flag_files(cr.spec.change, res.flag_objects, self._rollout_signoff(cr, status),
                                         n.namespace, dt.datetime.now(dt.UTC))
            self._apply_flags_config_map(cr, n, files)
        selector = dict(target["spec"].get("selector", {}).get("matchLabels") or {})
        dep = ch.canary_deployment(target, cr.spec.change, n.canary, owner_of(cr), res, flags_cm)
        existing = self._deployment(n.namespace, n.canary)
        if existing is None:
            self.apps.create_namespaced_deployment(n.namespace, cast(Any, dep))
        stable = self._service(n.namespace, n.stable_service)
        if stable is not None and self._service(n.namespace, n.canary_service) is None:
            svc = ch.canary_service(stable, n.canary_service, selector, owner_of(cr))
            self.core.create_namespaced_service(n.namespace, cast(Any, svc))

    def _refresh_canary_flags(self, cr: CanaryRollout, status: CanaryRolloutStatus, resolved: ch.Resolved,
                              now: dt.datetime) -> None:
        """Keep the canary's flags file what the flags controller would write now, with the rollout's
        values: another FeatureFlag edited during the rollout, or a FeatureFlag sign-off that expires,
        reaches the canary as it reaches the stable. Written only when it differs."""
        if cr.spec.change.flags is None or resolved.flags is None:
            return
        n = names_of(cr)
        cm = get_or_none(self.core.read_namespaced_config_map, n.canary_flags, n.namespace)
        if cm is None:
            return  # no canary (yet, or any more): CreateCanary writes the file
        current = cm.data or {}
        files = ch.canary_flag_files(cr.spec.change, resolved.flag_objects, self._rollout_signoff(cr, status),
                                     n.namespace, now)
        if files and files != current:
            self._apply_flags_config_map(cr, n, files)

    def _apply_flags_config_map(self, cr: CanaryRollout, n: Names, files: dict[str, str]) -> None:
        """The canary's flags file: server-side apply, so a second apply of the same content is a no-op."""
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": n.canary_flags, "namespace": n.namespace,
                         "labels": {names.TRACK_LABEL: names.TRACK_CANARY, names.CANARY_OF_LABEL: n.target}},
            "data": files,
        }
        owner = owner_of(cr)
        if owner:
            body["metadata"]["ownerReferences"] = [owner]
        self.core.patch_namespaced_config_map(n.canary_flags, n.namespace, body, force=True,
                                              field_manager=names.CANARY_FIELD_MANAGER, _content_type=APPLY_PATCH)

    def _patch(self, n: Names, p: ObjectPatch) -> str:
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            GROUP, VERSION, n.namespace, p.plural, p.name, p.patch, field_manager=names.CANARY_FIELD_MANAGER,
            _content_type=MERGE_PATCH)
        return p.message

    def _promote(self, cr: CanaryRollout, status: CanaryRolloutStatus, n: Names,
                 resolved: ch.Resolved | None) -> list[str]:
        """Apply the change to the stable: the kinds' resources that are the source of truth first
        (FeatureFlag values), then the stable's own template (image; flag env overrides off), then
        the rest (the catalog pin). Each step writes only what differs from what it reads, so a
        repeat (a restarted operator) changes nothing."""
        res, change = self._resolved(cr, n, resolved), cr.spec.change
        before, after, notes = ch.promotion(change, res, self._rollout_signoff(cr, status))
        done = [self._patch(n, p) for p in before]
        if self._edit_target(n, lambda t: ch.stable_template(t, change, res)):
            done.append(f"Deployment {n.target}: {', '.join(notes) or 'pod template updated'}")
        done.extend(self._patch(n, p) for p in after)
        return done

    def _restore(self, cr: CanaryRollout, n: Names, snap: dict[str, Any], resolved: ch.Resolved | None) -> list[str]:
        res = self._resolved(cr, n, resolved)
        done = [self._patch(n, p) for p in ch.restoration(snap, res)]
        if self._edit_target(n, lambda t: ch.restore(t, snap)):
            done.append(f"restored Deployment {n.target}'s pod template")
        return done

    def _edit_target(self, n: Names, edit: Any) -> bool:
        body = raw_json(self.apps.read_namespaced_deployment(n.target, n.namespace, _preload_content=False))
        new_template = edit(body["spec"]["template"])
        if new_template == body["spec"]["template"]:
            return False
        # A JSON patch that first tests the resourceVersion: optimistic like a replace (a concurrent
        # edit fails it, the next tick retries), but the verb is `patch`, which the chart's RBAC grants.
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": body["metadata"]["resourceVersion"]},
               {"op": "replace", "path": "/spec/template", "value": new_template}]
        self.apps.patch_namespaced_deployment(n.target, n.namespace, cast(Any, ops), _content_type=JSON_PATCH)
        return True

    # ------------------------------------------------------------------ one tick

    def reconcile(self, body: dict[str, Any], now: dt.datetime) -> tuple[dict[str, Any], list[EmitEvent]] | None:
        """One tick: the status patch to write and the events to post, or None when there is nothing to do."""
        cr = CanaryRollout.model_validate({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec", "status")
                                           if k in body and body[k] is not None})
        status = cr.status or CanaryRolloutStatus()
        ann = cr.metadata.get("annotations") or {}
        fresh_request = ann.get(names.REQUEST_ANNOTATION) in REQUEST_ACTIONS and (
            ann.get(names.REQUEST_ID_ANNOTATION) or ann.get(names.REQUEST_ANNOTATION)) != status.last_request_id
        if status.phase in TERMINAL_PHASES and not fresh_request and cr.status is not None:
            return None
        edited = spec_edited(cr.spec, status)
        if not fresh_request and not edited and quiet(running_spec(cr.spec, status), status, now):
            return None  # nothing can move before the next analysis: no reads at all
        # The attempt observes and acts with the spec it started with (an edit starts it over:
        # the engine decides that); a finished rollout, which only a retry moves, with the spec now.
        seen = cr if status.phase in TERMINAL_PHASES else self._with_spec(cr, status)
        observed, resolved_now = self._observe(seen, status, now)
        resolved: ch.Resolved | None = resolved_now
        new, actions = decide(cr.spec, status, observed, now)
        acting = self._with_spec(cr, new)
        if acting.spec != seen.spec:
            resolved = None  # a new attempt: its references are read again for it
        error: str | None = None
        events = [a for a in actions if isinstance(a, EmitEvent)]
        for a in actions:
            try:
                for done in self.execute(acting, new, a, resolved):
                    if done not in new.applied_changes:
                        new.applied_changes.append(done)
                        events.append(EmitEvent("Normal", "ChangeApplied", done))
            except (ApiException, LookupError, ValueError, httpx.HTTPError) as e:
                if namespace_terminating(e):
                    self._namespace_deleted(cr)
                    return None
                reason = getattr(e, "reason", None) or str(e)
                error = f"{a.describe()}: {reason}"
                events.append(EmitEvent("Warning", "ActionFailed", error))
                break  # order matters (traffic first): do not run later actions past a failure
        if error is None and new.phase in LIVE_PHASES and resolved is not None:
            try:
                self._refresh_canary_flags(acting, new, resolved, now)
            except (ApiException, LookupError, ValueError) as e:
                if namespace_terminating(e):
                    self._namespace_deleted(cr)
                    return None
                error = f"refresh the canary's flags file: {getattr(e, 'reason', None) or e}"
                events.append(EmitEvent("Warning", "ActionFailed", error))
        new.last_action_error = error
        old = (body.get("status") or {})
        patch = finite(new.to_k8s())
        for key in old:
            if key not in patch:
                patch[key] = None  # merge patch: drop what the new status no longer has
        return patch, events

    def _namespace_deleted(self, cr: CanaryRollout) -> None:
        """The namespace is being deleted and refuses new objects: its deletion takes the rollout,
        the canary and the target, so a tick stops without a status (an ActionFailed would only
        describe the deletion) and a cleanup is not retried."""
        ns, uid = cr.metadata.get("namespace"), str(cr.metadata.get("uid"))
        if uid in self._told_deleted:  # every tick until the deletion reaches the rollout
            return
        self._told_deleted.add(uid)
        log.info("%s/%s: namespace %s is being deleted: the rollout is left to its deletion",
                 ns, cr.metadata.get("name"), ns)

    @staticmethod
    def _with_spec(cr: CanaryRollout, status: CanaryRolloutStatus) -> CanaryRollout:
        """``cr`` with the spec its current attempt runs with (:func:`running_spec`)."""
        spec = running_spec(cr.spec, status)
        return cr if spec == cr.spec else cr.model_copy(update={"spec": spec})

    def cleanup(self, body: dict[str, Any]) -> None:
        """The CanaryRollout is being deleted mid-flight: traffic back to stable, canary objects gone,
        and the stable restored if the change had reached it without the rollout finishing. A
        rollout that never left Pending/Blocked created nothing and moved nothing: the canary there
        may be another rollout's. The objects are those of the spec the attempt ran with."""
        cr = CanaryRollout.model_validate({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec", "status")
                                           if k in body and body[k] is not None})
        status = cr.status or CanaryRolloutStatus()
        self._told_deleted.discard(str(cr.metadata.get("uid")))
        if status.phase in TERMINAL_PHASES or status.phase in ("Pending", "Blocked"):
            return
        cr = self._with_spec(cr, status)
        try:
            self.execute(cr, status, SetWeight(0))
            self.execute(cr, status, DeleteCanary())
            if status.change_applied_to_stable:
                self.execute(cr, status, RestoreStable(dict(status.stable_snapshot or {})))
        except ApiException as e:
            # A retry could never succeed there, and would hold the rollout's deletion and with it
            # the namespace's: the deletion removes the canary and the stable anyway.
            if not namespace_terminating(e):
                raise
            self._namespace_deleted(cr)


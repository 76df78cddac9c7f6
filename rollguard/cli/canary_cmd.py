"""`rollguard canary ...`: run a CanaryRollout and follow it, inspect rollouts, steer them.

A scripted canary run in one command: `rollguard canary run -f agent_flags_canary.yaml --watch 300
--report report.json` applies the rollout, shows each step, weight and metric verdict, ends with
a CANARY PROMOTED / CANARY FAILED banner and exits 0 (promoted) or 1 (rolled back / failed).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn, cast

import click
import yaml
from pydantic import ValidationError

from rollguard import GROUP, VERSION
from rollguard.kube import names
from rollguard.models.canary import PLURAL, REQUEST_ACTIONS, CanaryRollout, CanaryRolloutStatus

EXIT_ROLLED_BACK = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def _load(path: Path, dry_run: bool, watch: int | None) -> CanaryRollout:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        _fail(f"{path}: {e}")
    if not isinstance(raw, dict):
        _fail(f"{path}: expected one CanaryRollout manifest (a mapping)")
    spec = raw.setdefault("spec", {})
    if dry_run:
        spec["dryRun"] = True
    if watch is not None:
        spec["watch"] = f"{watch}s"
    try:
        return CanaryRollout.model_validate(raw)
    except ValidationError as e:
        lines = [f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        _fail(f"{path} is not a valid CanaryRollout:\n" + "\n".join(lines))


def _api(kubeconfig: str | None) -> Any:
    from kubernetes import client

    from rollguard.kube.client import api_client
    try:
        return client.CustomObjectsApi(api_client(kubeconfig))
    except Exception as e:  # any failure here means "no usable credentials"
        _fail(f"no Kubernetes credentials (KUBECONFIG / --kubeconfig): {e}")


SERVICEACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_namespace(kubeconfig: str | None) -> str:
    """The namespace kubectl would use: the current context's, in a pod its own, else "default"."""
    from kubernetes import config
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        return str((active or {}).get("context", {}).get("namespace") or "default")
    except Exception:  # no usable kubeconfig: in a pod, its service account's namespace
        try:
            return SERVICEACCOUNT_NAMESPACE.read_text().strip() or "default"
        except OSError:
            return "default"


def rollout_namespace(path: Path, manifest_ns: str | None, option_ns: str | None, kubeconfig: str | None) -> str:
    """Where `run -f` applies the rollout: the manifest's metadata.namespace wins; -n may only agree
    with it (a silent override would run the rollout against another namespace's Deployment);
    without either, the kubeconfig context's namespace, as kubectl does."""
    if manifest_ns and option_ns and manifest_ns != option_ns:
        _fail(f"{path}: metadata.namespace is {manifest_ns!r} but -n/--namespace says {option_ns!r}; "
              "drop -n, or change metadata.namespace")
    return manifest_ns or option_ns or default_namespace(kubeconfig)


def _get(api: Any, ns: str, name: str) -> dict[str, Any]:
    from rollguard.kube.client import get_or_none
    obj = get_or_none(api.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name)
    if obj is None:
        _fail(f"canaryrollout {ns}/{name} not found", 1)
    return cast(dict[str, Any], obj)


def _status(obj: dict[str, Any]) -> CanaryRolloutStatus:
    return CanaryRolloutStatus.model_validate(obj.get("status") or {})


# The outcome banners; the demo prints the same words (it imports these).
BANNER_PROMOTED = "CANARY PROMOTED"
BANNER_PROMOTED_BY_HAND = "CANARY PROMOTED BY HAND"
BANNER_FAILED = "CANARY FAILED"


def _banner(st: CanaryRolloutStatus) -> None:
    bar = "=" * 60
    report = st.report
    if st.phase == "Succeeded" and report is not None and report.promotion == "manual":
        color = "green" if report.success else "yellow"
        click.secho(f"{bar}\n{BANNER_PROMOTED_BY_HAND:^60}", fg=color)
        evidence = (f"{report.checks_passed} analysis check(s) passed before the promotion" if report.checks_passed
                    else "no analysis check passed: promoted without evidence (report success=false)")
        click.secho(f"Promoted by: {report.promoted_by}; {evidence}", fg=color)
        click.secho(bar, fg=color)
    elif st.phase == "Succeeded":
        click.secho(f"{bar}\n{BANNER_PROMOTED + (' (dry run)' if st.reason == 'DryRun' else ''):^60}\n{bar}",
                    fg="green")
    else:
        click.secho(f"{bar}\n{BANNER_FAILED:^60}", fg="red")
        click.secho(f"Rollback reason: {st.rollback_reason or st.message}", fg="yellow")
        click.secho(bar, fg="red")
    for change in st.applied_changes:  # what the rollout changed outside its canary objects
        click.echo(f"  {change}")


def _write_report(path: Path | None, obj: dict[str, Any], st: CanaryRolloutStatus) -> None:
    if path is None or st.report is None:
        return
    from rollguard.operator.canary.report import report_document
    meta = obj.get("metadata", {})
    data = report_document(st.report, name=meta.get("name", ""), namespace=meta.get("namespace", ""),
                           phase=st.phase)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    click.echo(f"report written to {path}")


@click.group("canary")
def canary() -> None:
    """Run, follow and steer CanaryRollouts."""


ns_option = click.option("--namespace", "-n", default=None,
                         help="Namespace [default: the kubeconfig context's namespace, else 'default'].")
kube_option = click.option("--kubeconfig", envvar="KUBECONFIG", default=None, help="kubeconfig file.")


@canary.command("run")
@click.option("-f", "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CanaryRollout manifest (see canary-configs/).")
@click.option("--dry-run", is_flag=True, help="Show every action the rollout would take; change nothing.")
@click.option("--watch", type=click.IntRange(min=0), default=None,
              help="Watch window after the last step, in seconds (overrides spec.watch).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON report (success, rollback_triggered, rollback_reason, ...) here.")
@click.option("--timeout", type=click.IntRange(min=1), default=3600, show_default=True,
              help="Give up following after this many seconds (exit 3; the rollout goes on).")
@click.option("--namespace", "-n", default=None,
              help="Namespace, when the manifest has no metadata.namespace (one that differs from it is "
                   "an error) [default: the kubeconfig context's namespace, else 'default'].")
@kube_option
def run(path: Path, dry_run: bool, watch: int | None, report_path: Path | None, timeout: int,
        namespace: str | None, kubeconfig: str | None) -> None:
    """Apply a CanaryRollout and follow it to CANARY PROMOTED (exit 0) or CANARY FAILED (exit 1).

    The rollout goes into the manifest's metadata.namespace, else -n, else the kubeconfig
    context's namespace.
    """
    cr = _load(path, dry_run, watch)
    if dry_run:
        from rollguard.operator.canary.engine import plan
        now = dt.datetime.now(dt.UTC)
        click.echo(f"dry run of {cr.metadata.get('name')}: the actions it would take if every check passes "
                   "(nothing is applied):")
        for i, (where, action) in enumerate(plan(cr.spec, now), 1):
            click.echo(f"  {i:2}. [{where}] {action.describe()}")
        click.echo("rollback at any point: set weight 0, delete the canary objects, restore what the change "
                   "touched on the stable target")
        return
    manifest_ns = cr.metadata.get("namespace")
    namespace = rollout_namespace(path, str(manifest_ns) if manifest_ns else None, namespace, kubeconfig)
    from rollguard.kube.client import APPLY_PATCH

    api = _api(kubeconfig)
    body = cr.model_dump(by_alias=True, exclude_none=True, mode="json", exclude={"status"})
    body["metadata"]["namespace"] = namespace
    name = body["metadata"]["name"]
    running = _clear_finished(api, namespace, name)
    if running is not None:
        click.echo(f"canaryrollout {namespace}/{name} is running ({running}): if this file changes what it rolls out "
                   "or how it is judged, the operator takes its canary out and starts it over with this spec")
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body,
                                       field_manager=names.CLI_CANARY_FIELD_MANAGER, force=True,
                                       _content_type=APPLY_PATCH)
    click.echo(f"canaryrollout {namespace}/{name} applied; following it (Ctrl-C stops following, not the rollout)")
    from rollguard.operator.canary.engine import spec_hash
    obj = _follow(api, namespace, name, timeout, spec_hash(cr.spec))
    st = _status(obj)
    _banner(st)
    _write_report(report_path, obj, st)
    if st.phase != "Succeeded":
        sys.exit(EXIT_ROLLED_BACK)


def _clear_finished(api: Any, ns: str, name: str) -> str | None:
    """Running a file again is a new rollout: a finished one of the same name is deleted first
    (its report stays in the file written by --report); a Failed one is refused. Returns the
    phase of a rollout that is still running (applying the file edits it), else None."""
    from rollguard.kube.client import get_or_none
    old = get_or_none(api.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name)
    if old is None:
        return None
    phase = _status(old).phase
    if phase == "Failed":
        _fail(f"canaryrollout {ns}/{name} is Failed (its rollback has not completed): "
              f"see `rollguard canary status {name}` before running it again", 1)
    if phase not in ("Succeeded", "RolledBack"):
        return phase  # still running: the engine starts it over with an edited spec
    click.echo(f"canaryrollout {ns}/{name} already finished ({phase}); deleting it to start a new rollout")
    api.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if get_or_none(api.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name) is None:
            return None
        time.sleep(0.5)
    _fail(f"canaryrollout {ns}/{name} was not deleted within 60s (is the operator running?)", EXIT_TIMEOUT)


def _follow(api: Any, ns: str, name: str, timeout: int, wanted: str | None = None) -> dict[str, Any]:
    """Print the rollout's progress until it finishes. ``wanted``: the hash of the spec applied;
    a rollout that finished with another spec (it ended before the operator saw the edit) is an
    error saying so, never a result for the file."""
    deadline = time.monotonic() + timeout
    last_line, last_metrics = "", ""
    while time.monotonic() < deadline:
        obj = _get(api, ns, name)
        st = _status(obj)
        from rollguard.operator.canary.report import metric_line, progress_line
        line = progress_line(st)
        if line != last_line:
            click.echo(line)
            last_line = line
        metrics = "\n".join("    " + metric_line(m) for m in st.metrics)
        if metrics and metrics != last_metrics:
            click.echo(metrics)
            last_metrics = metrics
        if st.phase in ("Succeeded", "RolledBack") or (st.phase == "Failed" and st.report is not None):
            if wanted is not None and st.spec_hash is not None and st.spec_hash != wanted:
                _fail(f"canaryrollout {ns}/{name} finished ({st.phase}) with the spec it had before this file was "
                      "applied: the edit has not been rolled out; run the file again", EXIT_ROLLED_BACK)
            return obj
        time.sleep(1)
    _fail(f"still {last_line!r} after {timeout}s; the rollout goes on (rollguard canary status {name})", EXIT_TIMEOUT)


@canary.command("status")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@ns_option
@kube_option
def status(name: str, output: str, namespace: str | None, kubeconfig: str | None) -> None:
    """Show one rollout: phase, step, weight, each metric's last verdict, the report."""
    namespace = namespace or default_namespace(kubeconfig)
    obj = _get(_api(kubeconfig), namespace, name)
    st = _status(obj)
    if output == "json":
        click.echo(json.dumps(obj.get("status") or {}, indent=2))
        return
    from rollguard.operator.canary.report import metric_line, progress_line
    click.echo(f"{namespace}/{name}: {progress_line(st)}")
    for m in st.metrics:
        click.echo(f"  {metric_line(m)} (failures {m.failures}, consecutive {m.consecutive_failures})")
    for a in st.manual_actions[-5:]:
        verdict = "accepted" if a.accepted else "refused"
        click.echo(f"  manual {a.action} at {a.at.isoformat()}: {verdict} - {a.message}")
    if st.report is not None:
        r = st.report
        how = f" promotion={r.promotion}" + (f" promoted_by={r.promoted_by}" if r.promoted_by else "") \
            if r.promotion else ""
        click.echo(f"  report: success={r.success} rollback_reason={r.rollback_reason}{how} "
                   f"checks_passed={r.checks_passed}")


@canary.command("list")
@ns_option
@kube_option
def list_(namespace: str | None, kubeconfig: str | None) -> None:
    """List rollouts with phase, step, weight and reason."""
    namespace = namespace or default_namespace(kubeconfig)
    items = _api(kubeconfig).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL).get("items", [])
    click.echo(f"{'NAME':32} {'PHASE':12} {'STEP':>4} {'WEIGHT':>6}  REASON")
    for obj in items:
        st = _status(obj)
        click.echo(f"{obj['metadata']['name']:32} {st.phase:12} {st.current_step:>4} {st.canary_weight:>5}%  "
                   f"{st.reason or ''}")


def _request(action: str) -> click.Command:
    @click.argument("name")
    @click.option("--by", "who", default=None,
                  help="Who asks (recorded in status.manualActions and, for promote, in the report). "
                       "Default: the local user name.")
    @ns_option
    @kube_option
    def cmd(name: str, who: str | None, namespace: str | None, kubeconfig: str | None) -> None:
        namespace = namespace or default_namespace(kubeconfig)
        api = _api(kubeconfig)
        _get(api, namespace, name)
        request_id = f"{action}-{uuid.uuid4().hex[:12]}"
        api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": {
            names.REQUEST_ANNOTATION: action, names.REQUEST_ID_ANNOTATION: request_id,
            names.REQUEST_BY_ANNOTATION: who or getpass.getuser()}}})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st = _status(_get(api, namespace, name))
            done = next((a for a in st.manual_actions if a.request_id == request_id), None)
            if done is not None:
                click.echo(f"{action}: {'accepted' if done.accepted else 'refused'} - {done.message}")
                sys.exit(0 if done.accepted else 1)
            time.sleep(0.5)
        _fail(f"{action} requested ({request_id}) but the operator has not handled it within 30s", EXIT_TIMEOUT)
    cmd.__doc__ = {
        "abort": "Roll back now, in any phase (traffic to stable first).",
        "promote": "Skip the remaining steps and promote (Progressing or Paused only). A promotion by hand is "
                   "recorded as such in the report, with who asked and how many checks had passed; "
                   "with none, the report says success=false.",
        "pause": "Hold at the current step; analysis goes on and a breach still rolls back.",
        "resume": "Continue a paused rollout (also ends a `pause: {untilResumed: true}` step).",
        "retry": "Start a rolled-back rollout again from the first step, without editing it.",
    }[action]
    return click.command(action)(cmd)


for _action in REQUEST_ACTIONS:
    canary.add_command(_request(_action))


@canary.command("signoff")
@click.argument("name")
@click.option("--by", "who", required=True, help="Who signs off, and on what evidence.")
@ns_option
@kube_option
def signoff(name: str, who: str, namespace: str | None, kubeconfig: str | None) -> None:
    """Record the sign-off a `requiresSignoff: true` rollout waits for."""
    namespace = namespace or default_namespace(kubeconfig)
    api = _api(kubeconfig)
    _get(api, namespace, name)
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                       {"metadata": {"annotations": {names.SIGNOFF_ANNOTATION: who}}})
    click.echo(f"signed off {namespace}/{name}: {who}")

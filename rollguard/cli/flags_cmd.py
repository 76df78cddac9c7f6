"""`rollguard flags list|get|enable|disable|signoff`: FeatureFlags for people who do not use GitOps.

enable/disable/signoff edit the FeatureFlag resource in the cluster of KUBECONFIG (or
--kubeconfig/--context); the operator does the rest. With GitOps, change the manifest in
Git instead: the GitOps tool would put back what these commands change.

Exit codes: 0 done, 1 cluster/API error or flag not found, 2 bad usage or bad input,
3 refused by policy (a gated flag without a valid sign-off; evidence with mismatches).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
import yaml

from rollguard import GROUP, VERSION
from rollguard.flags.evaluate import signoff_verdict
from rollguard.kube import names
from rollguard.models.flag import ENVIRONMENT_MAX, ENVIRONMENT_PATTERN, FeatureFlagSpec, Signoff

PLURAL = "featureflags"
FIELD_MANAGER = names.CLI_FIELD_MANAGER
CHANGED_BY = names.CHANGED_BY_ANNOTATION
EXIT_API, EXIT_USAGE, EXIT_REFUSED = 1, 2, 3
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Ctx:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None,
                 namespace: str | None = None) -> None:
        self.kubeconfig, self.context, self._namespace = kubeconfig, context, namespace
        self._api: Any = None

    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client

            from rollguard.kube.client import api_client
            try:
                self._api = client.CustomObjectsApi(api_client(self.kubeconfig, self.context))
            except Exception as e:
                fail(EXIT_API, f"cannot load kubeconfig ({self.kubeconfig or 'KUBECONFIG / ~/.kube/config'}): {e}")
        return self._api

    @property
    def namespace(self) -> str:
        if self._namespace:
            return self._namespace
        from kubernetes import config
        try:
            _, active = config.list_kube_config_contexts(config_file=self.kubeconfig)  # type: ignore[no-untyped-call]
            ns = (active or {}).get("context", {}).get("namespace")
        except Exception:
            ns = None
        return str(ns or "default")

    def get(self, name: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException
        try:
            obj: dict[str, Any] = self.api().get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
            return obj
        except ApiException as e:
            if e.status == 404:
                fail(EXIT_API, f"FeatureFlag {name!r} not found in namespace {self.namespace!r}")
            fail(EXIT_API, f"cannot read FeatureFlag {name!r}: {e.status} {e.reason}")

    def patch(self, name: str, body: dict[str, Any], by: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException
        body = {**body, "metadata": {"annotations": {CHANGED_BY: by}}}
        try:
            obj: dict[str, Any] = self.api().patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, body, field_manager=FIELD_MANAGER,
                _content_type="application/merge-patch+json")
            return obj
        except ApiException as e:
            fail(EXIT_API, f"the apiserver refused the change to {name!r}: {_api_message(e)}")


def _api_message(e: Any) -> str:
    try:
        return str(json.loads(e.body)["message"])
    except Exception:
        return f"{e.status} {e.reason}"


def fail(code: int, message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _spec(obj: dict[str, Any]) -> FeatureFlagSpec:
    return FeatureFlagSpec.model_validate(obj.get("spec") or {})


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _environment(value: str | None) -> str | None:
    if value is not None and (not re.match(ENVIRONMENT_PATTERN, value) or len(value) > ENVIRONMENT_MAX):
        raise click.BadParameter("must be a DNS label (lowercase letters, digits, '-'), at most 40 characters",
                                 param_hint="--env")
    return value


F = Any  # a click command function


def _set_on_ctx(attr: str) -> Any:
    def callback(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            setattr(ctx.ensure_object(Ctx), attr, value)
    return callback


def cluster_options(f: F) -> F:
    """--kubeconfig/--context/-n also after the sub-command (`rollguard flags list -n shop`)."""
    for opt in (
        click.option("--kubeconfig", expose_value=False, callback=_set_on_ctx("kubeconfig"),
                     help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)."),
        click.option("--context", expose_value=False, callback=_set_on_ctx("context"),
                     help="kubeconfig context to use."),
        click.option("--namespace", "-n", expose_value=False, callback=_set_on_ctx("_namespace"),
                     help="Namespace of the flags (default: the context's namespace, else 'default')."),
    ):
        f = opt(f)
    return f


@click.group("flags")
@click.option("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).")
@click.option("--context", help="kubeconfig context to use.")
@click.option("--namespace", "-n", help="Namespace of the flags (default: the context's namespace, else 'default').")
@click.pass_context
def flags(ctx: click.Context, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
    """Feature flags: list, inspect, enable/disable per environment, record a sign-off.

    \b
    Examples:
      rollguard flags list -n shop
      rollguard flags get failure-catalog
      rollguard flags enable failure-catalog --env staging --by alice
      rollguard flags signoff failure-catalog --by sre@example.com \\
          --evidence shadow_report.json --expires 7d
    """
    ctx.obj = Ctx(kubeconfig, context, namespace)


@flags.command("list")
@cluster_options
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def list_cmd(c: Ctx, output: str) -> None:
    """List the flags of the namespace with their effective value per environment."""
    from kubernetes.client.exceptions import ApiException
    try:
        items = c.api().list_namespaced_custom_object(GROUP, VERSION, c.namespace, PLURAL)["items"]
    except ApiException as e:
        fail(EXIT_API, f"cannot list FeatureFlags in {c.namespace!r}: {e.status} {e.reason}")
    rows = [{
        "name": o["metadata"]["name"],
        "key": (o.get("spec") or {}).get("key") or o["metadata"]["name"],
        "gated": bool((o.get("spec") or {}).get("requiresSignoff")),
        "signoff": ((o.get("status") or {}).get("signoff") or {}).get("state", "-"),
        "phase": (o.get("status") or {}).get("phase", "Pending"),
        "values": (o.get("status") or {}).get("summary", "-"),
    } for o in items]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"No FeatureFlags in namespace {c.namespace}.")
        return
    headers = ["NAME", "KEY", "GATED", "SIGNOFF", "PHASE", "VALUES"]
    table = [[r["name"], r["key"], "yes" if r["gated"] else "no", r["signoff"], r["phase"], r["values"]] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *table, strict=False)]
    for line in [headers, *table]:
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)).rstrip())


@flags.command("get")
@cluster_options
@click.argument("name")
@click.option("--output", "-o", type=click.Choice(["text", "yaml", "json"]), default="text", show_default=True)
@click.pass_obj
def get_cmd(c: Ctx, name: str, output: str) -> None:
    """Show one flag: spec, value per environment, why it is blocked, sign-off, history."""
    obj = c.get(name)
    obj.get("metadata", {}).pop("managedFields", None)
    if output == "json":
        click.echo(json.dumps(obj, indent=2))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(obj, sort_keys=False))
        return
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    click.echo(f"Name:         {name} (namespace {c.namespace})")
    click.echo(f"Key:          {spec.get('key') or name}")
    click.echo(f"Owner:        {spec.get('owner')}")
    if spec.get("description"):
        click.echo(f"Description:  {spec['description']}")
    click.echo(f"Default:      {json.dumps(spec.get('defaultValue'))}")
    click.echo(f"Overrides:    {json.dumps(spec.get('environments') or {})}")
    click.echo(f"Gated:        {'yes' if spec.get('requiresSignoff') else 'no'}")
    so = st.get("signoff") or {}
    click.echo(f"Sign-off:     {so.get('state', '-')}: {so.get('message', '')}")
    click.echo(f"Phase:        {st.get('phase', 'Pending')} (observedGeneration {st.get('observedGeneration')}, "
               f"generation {obj['metadata'].get('generation')})")
    click.echo("Environments:")
    for e in st.get("environments") or []:
        extra = f"  [{e.get('reason')}: {e.get('message')}]" if e.get("source") == "Blocked" else ""
        deps = f" -> {', '.join(e['deployments'])}" if e.get("deployments") else ""
        click.echo(f"  {e['name']}: {json.dumps(e['value'])} ({e['source']}){deps}{extra}")
    if st.get("history"):
        click.echo("History:")
        for h in st["history"]:
            click.echo(f"  {h['time']}  {h['actor']}: {h['change']}")


def _set_value(c: Ctx, name: str, env: str | None, all_default: bool, value: bool, by: str) -> None:
    if (env is None) == (not all_default):
        fail(EXIT_USAGE, "give exactly one of --env ENV (one environment) or --default (the default value)")
    obj = c.get(name)
    spec = _spec(obj)
    if value and spec.requires_signoff:
        verdict = signoff_verdict(spec, dt.datetime.now(dt.UTC))
        if not verdict.allows_enable:
            fail(EXIT_REFUSED, f"refused: FeatureFlag {name!r} requires a sign-off ({verdict.state}): "
                               f"{verdict.message}")
    patch: dict[str, Any] = ({"spec": {"environments": {env: value}}} if env is not None
                             else {"spec": {"defaultValue": value}})
    c.patch(name, patch, by)
    where = f"in {env}" if env else "by default"
    click.echo(f"FeatureFlag {name}: {'enabled' if value else 'disabled'} {where} (recorded as changed by {by}); "
               "the operator delivers it to the pods.")


_env_option = click.option("--env", "env", callback=lambda _c, _p, v: _environment(v),
                           help="Environment to change (writes spec.environments[ENV]).")
_default_option = click.option("--default", "all_default", is_flag=True,
                               help="Change spec.defaultValue instead (every environment without an override).")
_by_option = click.option("--by", default=_default_user, show_default="current user",
                          help="Who makes the change (recorded in the annotation rollguard.io/changed-by).")


@flags.command("enable")
@cluster_options
@click.argument("name")
@_env_option
@_default_option
@_by_option
@click.pass_obj
def enable_cmd(c: Ctx, name: str, env: str | None, all_default: bool, by: str) -> None:
    """Turn flag NAME on in one environment (--env) or by default (--default).

    Refused (exit 3) for a gated flag without a valid, unexpired sign-off."""
    _set_value(c, name, env, all_default, True, by)


@flags.command("disable")
@cluster_options
@click.argument("name")
@_env_option
@_default_option
@_by_option
@click.pass_obj
def disable_cmd(c: Ctx, name: str, env: str | None, all_default: bool, by: str) -> None:
    """Turn flag NAME off in one environment (--env) or by default (--default). Always allowed."""
    _set_value(c, name, env, all_default, False, by)


def parse_expires(raw: str | None, now: dt.datetime) -> dt.datetime | None:
    """``7d``, ``12h``, ``30m``, ``2w`` from now, or an ISO 8601 timestamp."""
    if raw is None:
        return None
    m = _DURATION.match(raw.strip())
    if m:
        return now + dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        t = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("expected a duration like 7d, 12h, 30m, 2w or an ISO 8601 time",
                                 param_hint="--expires") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def read_evidence(path: Path, kind: str | None) -> dict[str, Any]:
    """The evidence block from a report file: a shadow-run report (``shadow.mismatches``),
    a top-level ``mismatches``, or any other file (Manual evidence: its path is the reference)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise click.BadParameter(f"cannot read {path}: {e.strerror}", param_hint="--evidence") from None
    data: Any = None
    if path.suffix in (".json", ".yaml", ".yml"):
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as e:
            raise click.BadParameter(f"{path} is not valid {path.suffix[1:].upper()}: {e}",
                                     param_hint="--evidence") from None
    mismatches: Any = None
    if isinstance(data, dict):
        shadow = data.get("shadow")
        mismatches = shadow.get("mismatches") if isinstance(shadow, dict) else data.get("mismatches")
    if mismatches is not None and (not isinstance(mismatches, int) or isinstance(mismatches, bool) or mismatches < 0):
        raise click.BadParameter(f"{path}: mismatches must be a non-negative integer, got {mismatches!r}",
                                 param_hint="--evidence")
    kind = kind or ("ShadowRun" if mismatches is not None else "Manual")
    if kind in ("ShadowRun", "GoldenReplay") and mismatches is None:
        raise click.BadParameter(f"{path} has no mismatch count (shadow.mismatches or mismatches), "
                                 f"which a {kind} sign-off needs", param_hint="--evidence")
    evidence: dict[str, Any] = {"kind": kind, "reportRef": str(path)}
    if mismatches is not None:
        evidence["mismatches"] = mismatches
    summary_bits = [f"{k}={data[k]}" for k in ("cycles", "duration", "duration_hours", "cycle") if
                    isinstance(data, dict) and k in data]
    if summary_bits:
        evidence["summary"] = ", ".join(summary_bits)
    return evidence


@flags.command("signoff")
@cluster_options
@click.argument("name")
@click.option("--by", required=True, help="Who signs off (person or team), e.g. sre@example.com.")
@click.option("--evidence", "evidence_file", required=True, type=click.Path(path_type=Path),
              help="Report the sign-off rests on, e.g. the 24h shadow run's JSON (shadow.mismatches must be 0).")
@click.option("--kind", type=click.Choice(["ShadowRun", "GoldenReplay", "Manual"]),
              help="Evidence kind (default: ShadowRun if the file has a mismatch count, else Manual).")
@click.option("--report-ref", help="Where the report is kept (URL, object path); default: the file path.")
@click.option("--expires", help="Validity: a duration (7d, 12h, 2w) or an ISO 8601 time. Default: no expiry.")
@click.pass_obj
def signoff_cmd(c: Ctx, name: str, by: str, evidence_file: Path, kind: str | None, report_ref: str | None,
                expires: str | None) -> None:
    """Record a sign-off on gated flag NAME (spec.signoff): who, now, evidence, expiry.

    Refused (exit 3) when the evidence reports mismatches: a sign-off needs 0."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    evidence = read_evidence(evidence_file, kind)
    if report_ref:
        evidence["reportRef"] = report_ref
    if evidence.get("mismatches"):
        fail(EXIT_REFUSED, f"refused: {evidence_file} reports {evidence['mismatches']} mismatches; "
                           "a sign-off needs a run with 0")
    expires_at = parse_expires(expires, now)
    if expires_at is not None and expires_at <= now:
        raise click.BadParameter("must be in the future", param_hint="--expires")
    raw: dict[str, Any] = {"by": by, "at": now.isoformat().replace("+00:00", "Z"), "evidence": evidence}
    if expires_at is not None:
        raw["expiresAt"] = expires_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    Signoff.model_validate(raw)  # the CRD's rules, checked before sending
    obj = c.get(name)
    if not (obj.get("spec") or {}).get("requiresSignoff"):
        click.echo(f"note: FeatureFlag {name} does not require a sign-off; recording it anyway.", err=True)
    c.patch(name, {"spec": {"signoff": raw}}, by)
    until = f" until {raw['expiresAt']}" if "expiresAt" in raw else " (no expiry)"
    click.echo(f"FeatureFlag {name}: signed off by {by} ({evidence['kind']}"
               + (f", {evidence['mismatches']} mismatches" if "mismatches" in evidence else "") + f"){until}.")

"""`rollguard catalog`: validate a catalog offline, print the default one, match a message,
roll a FailureCatalog back to an earlier version."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from rollguard import GROUP, VERSION
from rollguard.cli import extras

PLURAL = "failurecatalogs"


class _QuotingDumper(yaml.SafeDumper):
    """Quote strings other YAML parsers would read as numbers (go-yaml reads 08006 as 8006)."""


def _str(dumper: yaml.SafeDumper, s: str) -> yaml.Node:
    if re.fullmatch(r"[0-9+\-.][0-9_.:eExXoObB+\-]*", s):
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="'")
    return dumper.represent_str(s)


_QuotingDumper.add_representer(str, _str)


def dump_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_QuotingDumper, sort_keys=False, allow_unicode=True, width=120)


@click.group("catalog")
def catalog() -> None:
    """Failure catalogs: validate, print the default, match messages, roll back."""


@catalog.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print only problems and warnings.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
def validate_cmd(files: tuple[Path, ...], quiet: bool, strict: bool) -> None:
    """Validate FailureCatalog manifests (or bare specs, or a mounted catalog.json) offline.

    Checks what the CRD schema checks and what only the operator can: codes unique, patterns
    compile (Python re and RE2) with one meaning in both, no pattern matches the empty string,
    aliases unique, retryable consistent with the recovery mode. Then warns about risky
    pattern shapes (a bare word that URLs carry, an exception name that matches inside a
    longer one, a number that matches inside a longer one), naming the entry, its code and the
    pattern. Exit 0 when every file is valid (with --strict: and has no warning), 1 with one
    line per problem (naming the entry and the field) otherwise, 2 when a file cannot be read.
    """
    from rollguard.catalog import validate
    from rollguard.catalog.lint import lint
    from rollguard.catalog.render import content_hash
    from rollguard.catalog.validation import spec_of
    from rollguard.models.catalog import FailureCatalogSpec

    failed = False
    for path in files:
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        except (OSError, yaml.YAMLError) as e:
            click.echo(f"{path}: cannot read: {e}", err=True)
            sys.exit(2)
        catalogs = [d for d in docs if isinstance(d, dict) and (d.get("kind") == "FailureCatalog" or "entries" in d)]
        if not catalogs:
            click.echo(f"{path}: no FailureCatalog in this file", err=True)
            failed = True
            continue
        for i, doc in enumerate(catalogs):
            name = (doc.get("metadata") or {}).get("name") or doc.get("name") or f"document {i}"
            problems = validate(doc)
            if problems:
                failed = True
                for p in problems:
                    click.echo(f"{path} ({name}): spec.{p}")
                continue
            spec = FailureCatalogSpec.model_validate(spec_of(doc))
            warnings = lint(spec)
            for w in warnings:
                click.echo(f"{path} ({name}): warning: spec.{w}")
            failed = failed or (strict and bool(warnings))
            if not quiet:
                click.echo(f"{path} ({name}): valid, {len(spec.entries)} entries, "
                           f"version {spec.version}, hash {content_hash(spec)[:10]}, {len(warnings)} warnings")
    sys.exit(1 if failed else 0)


@catalog.command("default")
@click.option("--name", default="default", show_default=True, help="metadata.name of the manifest.")
@click.option("--namespace", "-n", default=None, help="metadata.namespace (omitted by default).")
@click.option("--target", "targets", multiple=True, help="A Deployment to mount the catalog into (repeatable).")
@click.option("--output", "-o", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def default_cmd(name: str, namespace: str | None, targets: tuple[str, ...], output: str) -> None:
    """Print the default catalog shipped with rollguard (63 codes) as a FailureCatalog manifest.

    Example: rollguard catalog default --target api -n prod | kubectl apply -f -
    """
    from rollguard.catalog import default_manifest

    manifest = default_manifest(name, namespace)
    if targets:
        manifest["spec"]["targets"] = [{"name": t} for t in targets]
    click.echo(json.dumps(manifest, indent=2) if output == "json" else dump_yaml(manifest), nl=output == "json")


@catalog.command("match")
@click.argument("message")
@click.option("--catalog", "catalog_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Catalog file (manifest, spec or catalog.json). Default: the shipped default catalog.")
@click.option("--strict", is_flag=True, help="Exit 3 when the catalog does not recognise the message.")
def match_cmd(message: str, catalog_file: Path | None, strict: bool) -> None:
    """Match an error code or message and print the MatchResult as JSON.

    Example: rollguard catalog match "Read timed out. (read timeout=10)"
    """
    from pydantic import ValidationError

    from rollguard.sdk.matcher import Matcher

    try:
        m = Matcher.from_file(catalog_file, metrics=False) if catalog_file else Matcher.default(metrics=False)
    except (ValidationError, ValueError, yaml.YAMLError) as e:
        raise click.ClickException(
            f"{catalog_file}: not a valid catalog (run `rollguard catalog validate`): {e}") from e
    result = m.match(message)
    click.echo(json.dumps(result.to_dict(), indent=2))
    sys.exit(3 if strict and not result.matched else 0)


@catalog.command("rollback")
@click.argument("name")
@click.option("--namespace", "-n", default=None, help="Namespace of the FailureCatalog (default: kubeconfig's).")
@click.option("--to", "to_hash", default=None,
              help="Hash (or a prefix of >= 6 characters) from status.history. "
                   "Default: the newest version that is not the active one.")
@click.option("--unpin", is_flag=True, help="Clear spec.pinnedHash: mount the spec's own content again.")
def rollback_cmd(name: str, namespace: str | None, to_hash: str | None, unpin: bool) -> None:
    """Mount an earlier version of a FailureCatalog (sets spec.pinnedHash; --unpin clears it).

    The operator keeps the last spec.historyLimit versions as immutable ConfigMaps; see
    them with `kubectl get rgcatalog NAME -o jsonpath='{.status.history}'`.
    """
    if unpin and to_hash:
        raise click.UsageError("--to and --unpin exclude each other")
    extras.require("cli", click.get_current_context().command_path)
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    from rollguard.kube.client import api_client

    api = client.CustomObjectsApi(api_client())
    try:
        kubeconfig = os.environ.get("KUBECONFIG")  # as it is now: the library reads it at import
        current = config.list_kube_config_contexts(config_file=kubeconfig)[1]  # type: ignore[no-untyped-call]
        ns = namespace or current["context"].get("namespace", "default")
    except config.ConfigException:
        ns = namespace or Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()
    try:
        obj: Any = api.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    except ApiException as e:
        raise click.ClickException(f"failurecatalog {ns}/{name}: {e.reason} ({e.status})") from e
    if unpin:
        patch: dict[str, Any] = {"spec": {"pinnedHash": None}}
        chosen = "the spec's own content"
    else:
        history = (obj.get("status") or {}).get("history") or []
        target = pick_rollback(history, (obj.get("status") or {}).get("activeHash"), to_hash)
        patch = {"spec": {"pinnedHash": target["hash"]}}
        chosen = f"{target['hash'][:10]} (version {target['version']})"
    api.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, patch)
    click.echo(f"failurecatalog {ns}/{name}: rolling back to {chosen}")


def pick_rollback(history: list[dict[str, Any]], active: str | None, to_hash: str | None) -> dict[str, Any]:
    """The history item to pin: the one named by ``to_hash`` (a unique prefix), or the newest
    one that is not the active version."""
    if not history:
        raise click.ClickException("status.history is empty: the operator has not rendered any version yet")
    if to_hash:
        if len(to_hash) < 6 or not re.fullmatch(r"[0-9a-f]+", to_hash):
            raise click.BadParameter("a hex hash prefix of at least 6 characters", param_hint="--to")
        found = [h for h in history if h["hash"].startswith(to_hash)]
        if len(found) != 1:
            known = ", ".join(f"{h['hash'][:10]} ({h['version']})" for h in history)
            what = "matches no version" if not found else "is ambiguous"
            raise click.BadParameter(f"{to_hash} {what} in status.history: {known}", param_hint="--to")
        return found[0]
    for h in history:  # newest first
        if h["hash"] != active:
            return h
    raise click.ClickException("status.history has no version other than the active one")

"""`rollguard failures`: aggregation of unmatched errors, retention, synthetic data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from rollguard.cli.api_cmd import DB_OPTION, _migrate, _settings


@click.group("failures")
def failures() -> None:
    """Jobs on the failures database: aggregate, prune, synth."""


@failures.command("aggregate")
@DB_OPTION
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 3650), help="Look-back window.")
@click.option("--min-occurrences", default=5, show_default=True, type=click.IntRange(1),
              help="Keep patterns seen at least this often.")
@click.option("--tenant", default=None, help="Only this tenant's failures (default: all).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("candidate_failure_patterns.json"), show_default=True, help="Where to write the report.")
@click.option("--catalog-patch", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a draft of catalog entries for these patterns (for review).")
@click.option("--s3-uri", default=None, metavar="s3://BUCKET/KEY", help="Also upload the report there (boto3).")
@click.option("--s3-endpoint-url", default=None, envvar="AWS_ENDPOINT_URL",
              help="S3-compatible endpoint (MinIO, R2, ...).")
@click.option("--retries", default=3, show_default=True, type=click.IntRange(1, 20), help="Upload attempts.")
def aggregate(database_url: str | None, days: int, min_occurrences: int, tenant: str | None, output: Path,
              catalog_patch: Path | None, s3_uri: str | None, s3_endpoint_url: str | None, retries: int) -> None:
    """Mine unmatched failure messages into candidate catalog patterns (Drain3)."""
    from rollguard.failures import aggregate as agg

    if s3_uri is not None and not s3_uri.startswith("s3://"):
        raise click.BadParameter("must look like s3://bucket/key", param_hint="--s3-uri")
    engine = _migrate(_settings(database_url))
    report = agg.mine(engine, days=days, min_occurrences=min_occurrences, tenant_id=tenant)
    result = agg.export(engine, report, output, s3_uri=s3_uri, s3_endpoint_url=s3_endpoint_url, retries=retries)
    if catalog_patch is not None:
        catalog_patch.write_text(json.dumps(agg.catalog_patch(report), indent=2))
    click.echo(f"{report['unmatched_rows']} unmatched failures in {days}d -> {report['pattern_count']} patterns "
               f"(>= {min_occurrences} occurrences) written to {result.path}")
    for p in report["patterns"][:10]:
        click.echo(f"  {p['total_occurrences']:>7}  {p['primary_error_code']:<24} {p['template'][:80]}")
    if s3_uri is not None:
        if result.s3_status == "success":
            click.echo(f"uploaded to {s3_uri} (attempt {result.attempts})")
        else:
            click.echo(f"error: upload to {s3_uri} failed {result.attempts} times; kept locally, "
                       "retried on the next run", err=True)
            engine.dispose()
            sys.exit(3)
    engine.dispose()


@failures.command("prune")
@DB_OPTION
@click.option("--older-than", required=True, help="Age like 90d, 12h or 2w.")
@click.option("--batch-size", default=5000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Rows per delete transaction (small: short locks).")
@click.option("--tenant", default=None, help="Only this tenant's failures.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def prune(database_url: str | None, older_than: str, batch_size: int, tenant: str | None, dry_run: bool) -> None:
    """Delete failures older than the retention period, in batches."""
    from rollguard.failures.prune import parse_age
    from rollguard.failures.prune import prune as do_prune

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from exc
    engine = _migrate(_settings(database_url))
    r = do_prune(engine, age, batch_size=batch_size, dry_run=dry_run, tenant_id=tenant)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {r.deleted} failures created before {r.cutoff.isoformat(timespec='seconds')} "
               f"({r.batches} batches, {r.exports_deleted} export records, {r.seconds:.2f}s)")
    engine.dispose()


@failures.command("synth")
@DB_OPTION
@click.option("--count", required=True, type=click.IntRange(1, 10_000_000), help="How many events.")
@click.option("--tenant", default="synthetic", show_default=True, help="Tenant (database mode).")
@click.option("--unmatched-ratio", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="Share of events that no catalog entry matches.")
@click.option("--spread-hours", default=12.0, show_default=True, type=click.FloatRange(0, 24 * 365),
              help="Spread occurrence times over this many past hours.")
@click.option("--seed", "random_seed", default=42, show_default=True, help="Random seed (same seed, same events).")
@click.option("--api-url", default=None, help="Send through the API (POST /batch) instead of to the database.")
@click.option("--token", envvar="ROLLGUARD_FAILURES_TOKEN", default=None, help="API token (with --api-url).")
@click.option("--validate", is_flag=True,
              help="Check every event got the code the default catalog gives it and was stored once.")
def synth(database_url: str | None, count: int, tenant: str, unmatched_ratio: float, spread_hours: float,
          random_seed: int, api_url: str | None, token: str | None, validate: bool) -> None:
    """Generate synthetic failure events (demos, load, validation)."""
    from rollguard.failures.synth import SynthSpec, events

    spec = SynthSpec(count=count, unmatched_ratio=unmatched_ratio, spread_hours=spread_hours, seed=random_seed)
    all_events = list(events(spec))
    if api_url:
        if not token:
            raise click.BadParameter("required with --api-url", param_hint="--token")
        outcomes = _send_api(api_url, token, all_events)
    else:
        outcomes = _send_db(database_url, tenant, all_events)
    hits = sum(1 for o in outcomes if o["hit"])
    click.echo(f"sent {len(outcomes)} events: {hits} matched, {len(outcomes) - hits} unmatched, "
               f"{sum(o['duplicate'] for o in outcomes)} duplicates")
    if validate:
        wrong = [e for e, o in zip(all_events, outcomes, strict=True)
                 if e["expect_hit"] != o["hit"] or e["expect_code"] != o["code"]]
        dups = sum(o["duplicate"] for o in outcomes)
        ok = not wrong and dups == 0 and len(outcomes) == count
        click.echo(f"validation: {len(wrong)} wrong matches, {dups} duplicates, "
                   f"{len(outcomes)}/{count} stored -> {'PASSED' if ok else 'FAILED'}")
        for e in wrong[:5]:
            click.echo(f"  expected {e['expect_code'] or 'no match'}: {e['error_code']!r} {e['error_message']!r}",
                       err=True)
        if not ok:
            sys.exit(1)


def _payload(e: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in e.items() if not k.startswith("expect_") and v is not None}


def _send_api(api_url: str, token: str, evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import httpx

    out: list[dict[str, Any]] = []
    with httpx.Client(base_url=api_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as c:
        for i in range(0, len(evs), 1000):
            r = c.post("/api/v1/failures/batch", json={"events": [_payload(e) for e in evs[i:i + 1000]]})
            if r.status_code != 201:
                raise click.ClickException(f"API answered {r.status_code}: {r.text[:300]}")
            out += [{"hit": it["catalog_entry_id"] is not None, "code": it["catalog_entry_id"],
                     "duplicate": it["duplicate"]}
                    for it in r.json()["items"]]
    return out


def _send_db(database_url: str | None, tenant: str, evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from sqlalchemy.orm import Session

    from rollguard.api import service
    from rollguard.api.matching import load_matcher
    from rollguard.api.schemas import FailureIn

    settings = _settings(database_url)
    engine = _migrate(settings)
    matcher = load_matcher(settings.catalog_path)
    out: list[dict[str, Any]] = []
    with Session(engine) as s:
        for i in range(0, len(evs), 1000):
            items = service.ingest(s, tenant, [FailureIn.model_validate(_payload(e)) for e in evs[i:i + 1000]],
                                   matcher)
            s.commit()
            out += [{"hit": it.match.hit, "code": it.match.entry_code, "duplicate": it.duplicate} for it in items]
    engine.dispose()
    return out

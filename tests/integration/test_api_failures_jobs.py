"""`rollguard failures synth|aggregate|prune` against real PostgreSQL."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from rollguard.api import migrate
from rollguard.api.auth import create_token
from rollguard.failures.synth import UNMATCHED_TEMPLATES
from rollguard.localenv._proc import free_port
from tests.integration.api_pg import ApiServer, cli

pytestmark = pytest.mark.integration


def _scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def test_synth_validate_then_aggregate_with_exports(database_url: str, tmp_path: Path) -> None:
    r = cli("failures", "synth", "--database-url", database_url, "--count", "2000", "--tenant", "acme",
            "--validate", "--unmatched-ratio", "0.25")
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr
    assert _scalar(database_url, "SELECT count(*) FROM failure_matches WHERE tenant_id = 'acme'") == 2000
    unmatched = _scalar(database_url, "SELECT count(*) FROM failure_matches WHERE catalog_entry_id IS NULL")

    out = tmp_path / "out" / "candidate_failure_patterns.json"
    r = cli("failures", "aggregate", "--database-url", database_url, "--output", str(out),
            "--catalog-patch", str(tmp_path / "patch.json"))
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["unmatched_rows"] == unmatched
    codes = {p["primary_error_code"] for p in report["patterns"]}
    assert codes == {code for code, _ in UNMATCHED_TEMPLATES}  # one pattern per template, nothing else
    assert sum(p["total_occurrences"] for p in report["patterns"]) == unmatched
    crash = next(p for p in report["patterns"] if p["primary_error_code"] == "WORKER_CRASH")
    assert "<NUM>" in crash["template"] and "<HEX>" in crash["template"]
    assert crash["suggested_category"] == "INTERNAL" and len(crash["examples"]) == 5
    import re
    assert all(re.fullmatch(crash["suggested_pattern"], e["error_message"]) for e in crash["examples"])
    patch = json.loads((tmp_path / "patch.json").read_text())
    assert len(patch["entries"]) == report["pattern_count"]

    # S3 unreachable: every attempt recorded, the report kept locally and retried on the next run.
    dead = f"http://127.0.0.1:{free_port()}"
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1"}
    args = ["failures", "aggregate", "--database-url", database_url, "--output", str(out),
            "--s3-uri", "s3://bucket/patterns.json", "--s3-endpoint-url", dead, "--retries", "2"]
    r = cli(*args, env=env)
    assert r.returncode == 3 and "kept locally" in r.stderr
    assert len(list((out.parent / ".pending-uploads").glob("*.json"))) == 1
    rows = _scalar(database_url, "SELECT count(*) FROM failure_pattern_exports WHERE destination = 's3'")
    assert rows == 3  # two failed attempts + the fallback
    r = cli(*args, env=env)
    assert r.returncode == 3
    assert _scalar(database_url, "SELECT count(*) FROM failure_pattern_exports "
                                 "WHERE error LIKE 'pending retry:%'") == 1

    server = ApiServer(database_url, tmp_path / "api.log").start()
    try:
        metrics = httpx.get(server.url + "/metrics").text
    finally:
        server.stop()
    assert 'failure_agg_upload_attempt_total{status="success"} 3.0' in metrics  # three file exports
    assert 'failure_agg_upload_attempt_total{status="fallback"} 2.0' in metrics


def test_synth_through_the_api(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(database_url)
    migrate.upgrade(engine)
    with Session(engine) as s:
        _, tok = create_token(s, "acme", ["failures:write"])
        s.commit()
    engine.dispose()
    server = ApiServer(database_url, tmp_path / "api.log").start()
    try:
        r = cli("failures", "synth", "--api-url", server.url, "--token", tok, "--count", "1500", "--validate")
        assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr
        r = cli("failures", "synth", "--api-url", server.url, "--token", tok, "--count", "10", "--validate")
        assert r.returncode == 1 and "10 duplicates" in r.stdout  # same seed: same ids, stored once
    finally:
        server.stop()
    assert _scalar(database_url, "SELECT count(*) FROM failure_matches") == 1500


def test_prune_in_batches(database_url: str) -> None:
    engine = create_engine(database_url)
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for i in range(23):
            age = timedelta(days=100 + i) if i < 17 else timedelta(days=10)
            conn.execute(text("INSERT INTO failure_matches (id, tenant_id, run_id, error_code, created_at) "
                              "VALUES (:id, 'acme', 'r', 'X', :t)"), {"id": uuid.uuid4(), "t": now - age})
    engine.dispose()
    r = cli("failures", "prune", "--database-url", database_url, "--older-than", "90d", "--dry-run")
    assert r.returncode == 0 and "would delete 17 " in r.stdout
    assert _scalar(database_url, "SELECT count(*) FROM failure_matches") == 23
    r = cli("failures", "prune", "--database-url", database_url, "--older-than", "90d", "--batch-size", "5")
    assert r.returncode == 0 and "deleted 17 failures" in r.stdout and f"({math.ceil(17 / 5)} batches" in r.stdout
    assert _scalar(database_url, "SELECT count(*) FROM failure_matches") == 6
    r = cli("failures", "prune", "--database-url", database_url, "--older-than", "ninety days")
    assert r.returncode == 2 and "--older-than" in r.stderr

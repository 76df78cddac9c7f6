"""Mine unmatched failure messages into candidate catalog patterns with Drain3 (a fixed-depth
parse tree log-template miner), and export candidate_failure_patterns.json.

Export goes to the filesystem (default) and optionally to S3-compatible object storage
(boto3). A failed upload is kept in a local pending directory and retried on the next run;
every attempt is a row in failure_pattern_exports (status success | failure | fallback),
which the service exposes as failure_agg_upload_attempt_total{status}.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rollguard.api.orm import FailureMatch, FailurePatternExport

log = logging.getLogger(__name__)

# Variable parts masked before mining, most specific first.
MASKS = [
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
    (r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b", "IP"),
    (r"\b0x[0-9a-fA-F]+\b", "HEX"),
    (r"(?:/[\w.\-]+){2,}", "PATH"),
    (r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:ms|s|m|h|%)?(?![\w.])", "NUM"),
]

# keyword -> (category, recovery mode); the first that appears in the template wins.
# Categories and modes are the FailureCatalog's own enums, so that the draft validates.
SUGGESTIONS = [
    (("timeout", "timed out", "deadline"), "TIMEOUT", "RETRY_EXPONENTIAL"),
    (("rate limit", "throttl", "429", "storm"), "RATE_LIMIT", "RETRY_EXPONENTIAL"),
    (("connection", "unreachable", "dns", "socket", "eof"), "TRANSIENT", "RETRY_EXPONENTIAL"),
    (("permission", "forbidden", "unauthorized", "denied"), "PERMISSION", "ESCALATE"),
    (("quota", "budget", "exhausted", "out of memory", "oom", "disk full"), "RESOURCE", "ESCALATE"),
    (("invalid", "parse", "schema", "expected", "type", "validation"), "VALIDATION", "REPLAN"),
    (("crash", "segfault", "panic", "fatal"), "INTERNAL", "ESCALATE"),
]


def _config() -> TemplateMinerConfig:
    cfg = TemplateMinerConfig()
    cfg.profiling_enabled = False
    cfg.drain_sim_th = 0.4
    cfg.drain_depth = 4
    cfg.masking_instructions = [MaskingInstruction(p, name) for p, name in MASKS]
    return cfg


def suggest(template: str) -> tuple[str, str]:
    low = template.lower()
    for words, category, mode in SUGGESTIONS:
        if any(w in low for w in words):
            return category, mode
    return "INTERNAL", "MANUAL"


def template_regex(template: str) -> str:
    """A catalog match pattern for a mined template: literal text, wildcards for the masks."""
    parts = re.split(r"(<[A-Z]+>|<\*>)", template)
    return "".join(r".+?" if re.fullmatch(r"<[A-Z]+>|<\*>", p) else re.escape(p) for p in parts if p)


@dataclass
class _Cluster:
    codes: Counter[str] = field(default_factory=Counter)
    tenants: set[str] = field(default_factory=set)
    examples: list[dict[str, Any]] = field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    count: int = 0


def mine(engine: Engine, *, days: int = 14, min_occurrences: int = 5, tenant_id: str | None = None,
         max_examples: int = 5) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(days=days)
    miner = TemplateMiner(config=_config())
    clusters: dict[int, _Cluster] = {}
    rows = 0
    q = (select(FailureMatch.tenant_id, FailureMatch.error_code, FailureMatch.error_message,
                FailureMatch.created_at, FailureMatch.run_id)
         .where(FailureMatch.catalog_entry_id.is_(None), FailureMatch.created_at >= since)
         .order_by(FailureMatch.created_at))
    if tenant_id is not None:
        q = q.where(FailureMatch.tenant_id == tenant_id)
    with Session(engine) as s:
        for tenant, code, message, created, run_id in s.execute(q.execution_options(yield_per=5000)):
            rows += 1
            text = (message or code).strip()[:2000] or code
            cid = miner.add_log_message(text)["cluster_id"]
            c = clusters.setdefault(cid, _Cluster())
            c.count += 1
            c.codes[code] += 1
            c.tenants.add(tenant)
            c.first_seen = c.first_seen or created
            c.last_seen = created
            if len(c.examples) < max_examples:
                c.examples.append({"error_code": code, "error_message": message, "run_id": run_id,
                                   "tenant_id": tenant, "created_at": created.isoformat()})
    templates = {cl.cluster_id: cl.get_template() for cl in miner.drain.clusters}
    patterns = []
    for cid, c in clusters.items():
        if c.count < min_occurrences:
            continue
        template = templates[cid]
        category, mode = suggest(template)
        patterns.append({
            "signature": hashlib.sha256(template.encode()).hexdigest()[:16],
            "template": template,
            "suggested_pattern": template_regex(template),
            "primary_error_code": c.codes.most_common(1)[0][0],
            "error_codes": dict(c.codes.most_common(10)),
            "total_occurrences": c.count,
            "tenants": len(c.tenants),
            "first_seen": c.first_seen.isoformat() if c.first_seen else None,
            "last_seen": c.last_seen.isoformat() if c.last_seen else None,
            "suggested_category": category,
            "suggested_recovery": mode,
            "examples": c.examples,
        })
    patterns.sort(key=lambda p: (-p["total_occurrences"], p["signature"]))
    return {"generated_at": datetime.now(UTC).isoformat(), "window_days": days, "min_occurrences": min_occurrences,
            "unmatched_rows": rows, "pattern_count": len(patterns), "patterns": patterns}


def _code(raw: str, taken: set[str]) -> str:
    """A catalog code (UPPER_SNAKE, at most 64 characters) from a caller's error code."""
    code = re.sub(r"[^A-Z0-9]+", "_", raw.upper()).strip("_")[:60] or "MINED"
    if not code[0].isalpha():
        code = f"E_{code}"[:60]
    unique, n = code, 2
    while unique in taken:
        unique, n = f"{code}_{n}", n + 1
    taken.add(unique)
    return unique


def catalog_patch(report: dict[str, Any]) -> dict[str, Any]:
    """A draft FailureCatalog spec of the mined patterns, for review (never applied
    automatically); `rollguard catalog validate` accepts it."""
    taken: set[str] = set()
    entries = []
    for p in report["patterns"]:
        mode = p["suggested_recovery"]
        entries.append({
            "code": _code(p["primary_error_code"], taken), "category": p["suggested_category"],
            "severity": "MEDIUM", "retryable": mode.startswith("RETRY"),
            "recovery": {"mode": mode,
                         "suggestion": f"Mined from {p['total_occurrences']} unmatched failures; review."},
            "match": {"patterns": [p["suggested_pattern"]]},
            "description": f"Candidate: {p['template'][:900]}",
        })
    return {"version": f"candidate-{report['generated_at'][:10]}", "entries": entries}


def _record(engine: Engine, **fields: Any) -> None:
    with Session(engine) as s:
        s.add(FailurePatternExport(**fields))
        s.commit()


def _s3_upload(uri: str, body: bytes, endpoint_url: str | None, timeout: float) -> None:
    import boto3
    from botocore.config import Config

    m = re.match(r"^s3://([^/]+)/(.+)$", uri)
    if not m:
        raise ValueError(f"not an s3://bucket/key URI: {uri}")
    client = boto3.client("s3", endpoint_url=endpoint_url,
                          config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}))
    client.put_object(Bucket=m.group(1), Key=m.group(2), Body=body, ContentType="application/json")


@dataclass
class ExportResult:
    path: Path
    s3_status: str | None = None  # success | fallback | None (no S3 asked)
    attempts: int = 0
    retried_pending: int = 0


def export(engine: Engine, report: dict[str, Any], output: Path, *, s3_uri: str | None = None,
           s3_endpoint_url: str | None = None, pending_dir: Path | None = None, retries: int = 3,
           backoff: float = 1.0, timeout: float = 10.0) -> ExportResult:
    body = json.dumps(report, indent=2, sort_keys=False).encode()
    digest = hashlib.sha256(body).hexdigest()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    tmp.write_bytes(body)
    tmp.replace(output)  # readers never see a half-written file
    _record(engine, destination="file", uri=str(output.resolve()), status="success", attempt=1,
            pattern_count=report["pattern_count"], sha256=digest, size_bytes=len(body))
    result = ExportResult(output)
    if s3_uri is None:
        return result
    pending_dir = pending_dir or output.parent / ".pending-uploads"
    result.retried_pending = _retry_pending(engine, pending_dir, s3_endpoint_url, timeout)
    for attempt in range(1, retries + 1):
        result.attempts = attempt
        try:
            _s3_upload(s3_uri, body, s3_endpoint_url, timeout)
        except Exception as exc:
            log.warning("upload to %s failed (attempt %d/%d): %s", s3_uri, attempt, retries, exc)
            _record(engine, destination="s3", uri=s3_uri, status="failure", attempt=attempt,
                    pattern_count=report["pattern_count"], sha256=digest, size_bytes=len(body), error=str(exc)[:2000])
            if attempt < retries:
                time.sleep(backoff * 2 ** (attempt - 1))
            continue
        _record(engine, destination="s3", uri=s3_uri, status="success", attempt=attempt,
                pattern_count=report["pattern_count"], sha256=digest, size_bytes=len(body))
        result.s3_status = "success"
        return result
    # Keep it for the next run: the report and where it should go.
    pending_dir.mkdir(parents=True, exist_ok=True)
    (pending_dir / f"{digest}.json").write_bytes(body)
    (pending_dir / f"{digest}.target").write_text(s3_uri)
    _record(engine, destination="s3", uri=s3_uri, status="fallback", attempt=retries,
            pattern_count=report["pattern_count"], sha256=digest, size_bytes=len(body),
            error=f"kept in {pending_dir / (digest + '.json')} for the next run")
    result.s3_status = "fallback"
    return result


def _retry_pending(engine: Engine, pending_dir: Path, endpoint_url: str | None, timeout: float) -> int:
    done = 0
    for target in sorted(pending_dir.glob("*.target")) if pending_dir.is_dir() else []:
        body_path = target.with_suffix(".json")
        uri = target.read_text().strip()
        body = body_path.read_bytes()
        try:
            _s3_upload(uri, body, endpoint_url, timeout)
        except Exception as exc:
            _record(engine, destination="s3", uri=uri, status="failure", attempt=1, pattern_count=0,
                    sha256=body_path.stem, size_bytes=len(body), error=f"pending retry: {exc}"[:2000])
            continue
        _record(engine, destination="s3", uri=uri, status="success", attempt=1, pattern_count=0,
                sha256=body_path.stem, size_bytes=len(body))
        body_path.unlink()
        target.unlink()
        done += 1
    return done

"""Synthetic failure events: catalog hits through
codes, aliases and message patterns, plus unmatched messages built from a few templates so
that the aggregation job has patterns to find."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rollguard.catalog import load_default_catalog
from rollguard.models.catalog import CatalogEntry
from rollguard.sdk.matcher import UNKNOWN_CODE

UNMATCHED_TEMPLATES = [
    # Numbers stay >= 1000: a "429" in a message would (rightly) match RATE_LIMITED.
    ("WORKER_CRASH", "worker {n} crashed: segfault at 0x{hex}"),
    ("CACHE_STORM", "cache miss storm on shard {n} ({m} misses/s)"),
    ("EOF_READ", "unexpected EOF while reading /var/data/{word}/{n}.parquet"),
    ("SCHEMA_DRIFT", "column {word} has type {word2}, expected {word3}"),
]
WORDS = ["alpha", "beta", "gamma", "delta", "orders", "users", "int8", "text", "jsonb", "float"]


@dataclass(frozen=True)
class SynthSpec:
    count: int
    unmatched_ratio: float = 0.2
    spread_hours: float = 12.0
    runs: int = 50
    seed: int = 42  # of the random generator: the same seed gives the same events


# Message-only hits: what the libraries really print, one per code that has one here
# (tests/unit/test_api_units.py checks each gets its code from the default catalog).
MESSAGES: dict[str, str] = {
    "READ_TIMEOUT": "HTTPSConnectionPool(host='api.example.com', port=443): Read timed out. (read timeout=30)",
    "RATE_LIMITED": "429 Client Error: Too Many Requests for url: https://api.example.com/v1/items",
    "CONNECTION_REFUSED": "dial tcp 10.0.0.7:5432: connect: connection refused",
    "PERMISSION_DENIED": "permission denied for table orders",
    "BUDGET_EXCEEDED": "token budget exceeded for run",
    "INVALID_INPUT": "400 Client Error: Bad Request for url: https://api.example.com/v1/items",
    "OUT_OF_MEMORY": "MemoryError: unable to allocate 2.00 GiB for an array",
    "DB_DEADLOCK": "psycopg.errors.DeadlockDetected: deadlock detected",
    "CONTEXT_LENGTH_EXCEEDED": "This model's maximum context length is 128000 tokens. However, your messages "
                               "resulted in 130012 tokens.",
    "DISK_FULL": "OSError: [Errno 28] No space left on device",
    "SERVICE_UNAVAILABLE": "503 Server Error: Service Unavailable for url: https://api.example.com/v1/items",
    "LLM_OUTPUT_PARSE_ERROR": "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
}


def catalog_entries() -> list[CatalogEntry]:
    """The default catalog's entries a failure can be reported as (not its catch-all)."""
    return [e for e in load_default_catalog().entries if e.code != UNKNOWN_CODE]


def _hit(rng: random.Random, entries: list[CatalogEntry]) -> dict[str, Any]:
    kind = rng.random()
    if kind < 0.2:  # message only, found by the entry's pattern
        code = rng.choice(sorted(MESSAGES))
        return {"error_code": None, "error_message": MESSAGES[code], "expect_code": code}
    entry = rng.choice(entries)
    if kind < 0.6 or not entry.match.aliases:
        return {"error_code": entry.code, "error_message": f"{entry.code.lower()} in step", "expect_code": entry.code}
    return {"error_code": rng.choice(entry.match.aliases), "error_message": None, "expect_code": entry.code}


def _miss(rng: random.Random) -> dict[str, Any]:
    code, tpl = rng.choice(UNMATCHED_TEMPLATES)
    msg = tpl.format(n=rng.randint(1000, 9999), m=rng.randint(10000, 99999), hex=f"{rng.getrandbits(32):08x}",
                     word=rng.choice(WORDS), word2=rng.choice(WORDS), word3=rng.choice(WORDS))
    return {"error_code": code, "error_message": msg, "expect_code": None}


def events(spec: SynthSpec, now: datetime | None = None) -> Iterator[dict[str, Any]]:
    """FailureIn-shaped dicts; ``expect_hit`` and ``expect_code`` say what the default catalog
    should make of each."""
    rng = random.Random(spec.seed)
    entries = catalog_entries()
    now = now or datetime.now(UTC)
    for i in range(spec.count):
        miss = rng.random() < spec.unmatched_ratio
        body = _miss(rng) if miss else _hit(rng, entries)
        yield {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "run_id": f"synth-run-{rng.randrange(spec.runs):04d}",
            **body,
            "skill_id": rng.choice(["http_call", "llm_invoke", "db_query", "file_read"]),
            "step_index": i % 20,
            "context": {"synthetic": True, "n": i},
            "occurred_at": (now - timedelta(seconds=rng.random() * spec.spread_hours * 3600)).isoformat(),
            "expect_hit": not miss,
        }

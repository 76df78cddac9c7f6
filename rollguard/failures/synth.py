"""Synthetic failure events (the seeds' generate_synthetic_failures.py): catalog hits through
codes, aliases and message patterns, plus unmatched messages built from a few templates so
that the aggregation job has patterns to find."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rollguard.api.matching import BUILTIN_CATALOG

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
    seed: int = 42


def _hit(rng: random.Random) -> dict[str, Any]:
    entry = rng.choice(BUILTIN_CATALOG["entries"])
    kind = rng.random()
    if kind < 0.5 or not entry.get("aliases"):
        return {"error_code": entry["code"], "error_message": f"{entry['code'].lower()} in step"}
    if kind < 0.8:
        return {"error_code": rng.choice(entry["aliases"]), "error_message": None}
    # message only, found by the entry's pattern
    msg = {"TIMEOUT": "request timed out after 30s", "RATE_LIMITED": "upstream rate limit hit (429)",
           "CONNECTION_REFUSED": "dial tcp: connection refused", "PERMISSION_DENIED": "permission denied on bucket",
           "BUDGET_EXCEEDED": "token budget exceeded for run", "INVALID_INPUT": "invalid argument: temperature"}
    return {"error_code": None, "error_message": msg[entry["code"]]}


def _miss(rng: random.Random) -> dict[str, Any]:
    code, tpl = rng.choice(UNMATCHED_TEMPLATES)
    msg = tpl.format(n=rng.randint(1000, 9999), m=rng.randint(10000, 99999), hex=f"{rng.getrandbits(32):08x}",
                     word=rng.choice(WORDS), word2=rng.choice(WORDS), word3=rng.choice(WORDS))
    return {"error_code": code, "error_message": msg}


def events(spec: SynthSpec, now: datetime | None = None) -> Iterator[dict[str, Any]]:
    """FailureIn-shaped dicts; ``expect_hit`` says what the catalog should make of each."""
    rng = random.Random(spec.seed)
    now = now or datetime.now(UTC)
    for i in range(spec.count):
        miss = rng.random() < spec.unmatched_ratio
        body = _miss(rng) if miss else _hit(rng)
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

"""The default catalog on a polyglot corpus (gRPC, Go, Node, Java, Kubernetes, LLM providers,
tool calls, datastores and queues, disk and system limits): hit rate, category and
retryable agreement, printed per family and asserted overall."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollguard.catalog import load_default_catalog
from rollguard.catalog.patterns import compiled_form, re2_module, re2_options
from rollguard.sdk.matcher import Matcher

CORPUS = Path(__file__).parent / "corpus" / "polyglot.yaml"
MATCHER = Matcher.default(metrics=False)
# An alert fires below a 70 % hit rate; the catalog aims far above it.
MIN_HIT, MIN_CATEGORY, MIN_RETRYABLE = 0.95, 0.90, 0.90


@dataclass(frozen=True)
class Case:
    family: str
    message: str
    code: str
    category: str
    retryable: bool


def load_corpus() -> list[Case]:
    doc: dict[str, list[list[Any]]] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    return [Case(family, str(m), str(c), str(cat), bool(r)) for family, items in doc.items()
            for m, c, cat, r in items]


CASES = load_corpus()


@dataclass
class Score:
    n: int = 0
    hit: int = 0
    code: int = 0
    category: int = 0
    retryable: int = 0

    def add(self, case: Case) -> None:
        r = MATCHER.match(case.message)
        self.n += 1
        self.hit += r.matched
        self.code += r.code == case.code
        # an unrecognised message has neither the expected category nor a retry decision
        self.category += r.entry is not None and r.entry.category == case.category
        self.retryable += r.entry is not None and r.entry.retryable == case.retryable

    def line(self, name: str) -> str:
        return (f"{name:<18} {self.n:>4}  hit {self.hit / self.n:6.1%}  code {self.code / self.n:6.1%}  "
                f"category {self.category / self.n:6.1%}  retryable {self.retryable / self.n:6.1%}")


def test_corpus_is_well_formed() -> None:
    codes = {e.code: e for e in load_default_catalog().entries}
    families: dict[str, int] = {}
    for c in CASES:
        families[c.family] = families.get(c.family, 0) + 1
        assert c.code in codes, c
        # the expected code, category and retryable flag tell one story
        assert (codes[c.code].category, codes[c.code].retryable) == (c.category, c.retryable), c
    assert len({c.message for c in CASES}) == len(CASES), "duplicate messages"
    assert min(families.values()) >= 20, families


def test_hit_rate_and_agreement_on_the_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    total = Score()
    per_family: dict[str, Score] = {}
    misses: list[str] = []
    for case in CASES:
        per_family.setdefault(case.family, Score()).add(case)
        total.add(case)
        got = MATCHER.match(case.message).code
        if got != case.code:
            misses.append(f"  {case.family}: expected {case.code}, got {got}: {case.message[:110]}")
    with capsys.disabled():
        print("\ndefault catalog on the polyglot corpus")
        for name, score in per_family.items():
            print(score.line(name))
        print(total.line("all"))
        for m in misses:
            print(m)
    assert total.hit / total.n >= MIN_HIT
    assert total.category / total.n >= MIN_CATEGORY
    assert total.retryable / total.n >= MIN_RETRYABLE


# Messages as real clients and tools print them, one per kind of fault, each with the category
# and retryability it must get.
REAL_MESSAGES = [
    ("Error: connect ETIMEDOUT 203.0.113.10:443", "TIMEOUT", True),
    ('grpc._channel._InactiveRpcError: status = StatusCode.UNAVAILABLE, details = "failed to connect to all '
     'addresses"', "TRANSIENT", True),
    ("google.genai.errors.ServerError: 503 UNAVAILABLE. {'error': {'code': 503, 'message': 'The model is "
     "overloaded. Please try again later.', 'status': 'UNAVAILABLE'}}", "TRANSIENT", True),
    ("0/5 nodes are available: 2 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 3 Insufficient "
     "memory.", "RESOURCE", True),
    ("Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown "
     "authority (GET https://api.example.internal:6443/api?timeout=32s)", "DEPENDENCY", False),
    ('pymongo.errors.DuplicateKeyError: E11000 duplicate key error collection: app.users index: email_1 dup key: '
     '{ email: "<email>" }', "DEPENDENCY", False),
    ("McpError: MCP error -32602: Structured content does not match the tool's output schema", "TOOL", False),
    ("redis.exceptions.BusyLoadingError: Redis is loading the dataset in memory", "TRANSIENT", True),
    ("dial tcp: lookup api.example.internal on 10.96.0.10:53: no such host", "TRANSIENT", True),
]


@pytest.mark.parametrize(("message", "category", "retryable"), REAL_MESSAGES)
def test_real_messages_get_their_category(message: str, category: str, retryable: bool) -> None:
    for engine in ("re2", "re"):  # both engines, one answer
        r = Matcher.default(engine=engine, metrics=False).match(message)
        assert r.entry is not None, message
        assert (r.entry.category, r.entry.retryable) == (category, retryable), r.code


MUST_NOT: dict[str, str] = yaml.safe_load((Path(__file__).parent / "corpus" / "must_not.yaml").read_text("utf-8"))


def test_every_pattern_has_a_message_it_must_not_match() -> None:
    patterns = {p for e in load_default_catalog().entries for p in e.match.patterns}
    assert set(MUST_NOT) == patterns, (sorted(patterns - set(MUST_NOT))[:5], sorted(set(MUST_NOT) - patterns)[:5])
    re2 = re2_module()
    opts = re2_options() if re2 is not None else None
    for pattern, message in MUST_NOT.items():
        assert re.search(compiled_form(pattern, "re"), message) is None, (pattern, message)
        if re2 is not None:
            assert re2.compile(compiled_form(pattern, "re2"), opts).search(message) is None, (pattern, message)

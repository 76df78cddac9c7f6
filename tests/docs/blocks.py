"""The fenced blocks of README.md and docs/*.md, and what the docs test does with each.

Every block is either run (a command block, a Python snippet, a file the docs tell the reader to
save), checked (a manifest validated by rollguard's own models, JSON parsed, a command synopsis
held against the real CLI, a directory listing against the tree, a shown output compared with
what the command before it printed), or marked in the source as not runnable here, with the
reason, by an HTML comment on the line before the fence (GitHub does not render it):

    <!-- docs-test: skip reason="needs Docker" -->

Other directives, same place: ``run`` (options ``exit=N`` for a command documented to fail,
``timeout=S``); ``output`` (this block is what the previous run block printed; ``...`` stands
for anything; ``match=lines``: its lines in any order); ``file name=PATH`` (the reader saves
this block as PATH); ``synopsis``; ``paths``.

A document declares once, anywhere, what its walk-through needs from the machine:

    <!-- docs-test: session services="kubernetes postgresql helm" -->

and its "Before you start" list says the same to the reader. Parsing is markdown-it-py's
(CommonMark), so a fence inside a list or a longer fence is found as a renderer finds it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$", re.S)
KINDS = {"skip", "run", "output", "file", "synopsis", "paths", "manifest", "json"}
SHELL = {"bash", "sh", "shell", "console"}
SERVICES = {"kubernetes", "postgresql", "helm"}
# What a block in a language is, when no directive says otherwise; a block in any other
# language (text, none) must be marked: it is neither run nor checked by default.
DEFAULT_KIND = {**dict.fromkeys(SHELL, "run"), "python": "run", "yaml": "manifest", "json": "json"}


class DirectiveError(ValueError):
    """A docs-test comment the runner cannot understand (a typo must not skip a block silently)."""


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int              # 1-based line of the opening fence
    lang: str
    code: str
    kind: str | None       # None: neither run nor checked nor marked
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        name = self.doc.relative_to(REPO) if self.doc.is_relative_to(REPO) else self.doc.name
        return f"{name}:{self.line}"

    @property
    def reason(self) -> str:
        return self.options.get("reason", "")

    @property
    def needs_cluster(self) -> bool:
        return self.kind == "skip" and self.reason.startswith("needs-cluster")


@dataclass(frozen=True)
class Document:
    path: Path
    blocks: list[Block]
    services: frozenset[str]

    @property
    def name(self) -> str:
        return str(self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path.name)


def parse_directive(text: str, where: str) -> tuple[str, dict[str, str]] | None:
    """``(kind, options)`` of a docs-test comment, None for any other HTML."""
    m = DIRECTIVE.match(text)
    if m is None:
        return None
    try:
        words = shlex.split(m.group("body"))
    except ValueError as e:
        raise DirectiveError(f"{where}: unreadable docs-test comment: {e}") from e
    if not words:
        raise DirectiveError(f"{where}: empty docs-test comment")
    kind, options = words[0], {}
    for w in words[1:]:
        key, eq, value = w.partition("=")
        if not eq:
            raise DirectiveError(f"{where}: docs-test option {w!r} is not key=value")
        options[key] = value
    if kind == "session":
        unknown = set(options.get("services", "").split()) - SERVICES
        if unknown:
            raise DirectiveError(f"{where}: unknown services {sorted(unknown)} (known: {sorted(SERVICES)})")
        return kind, options
    if kind not in KINDS:
        raise DirectiveError(f"{where}: unknown docs-test kind {kind!r} (known: {sorted(KINDS)})")
    if kind == "skip" and not options.get("reason"):
        raise DirectiveError(f"{where}: a skip needs reason=\"...\"")
    if kind == "file" and not options.get("name"):
        raise DirectiveError(f"{where}: a file needs name=PATH")
    return kind, options


def parse(path: Path, text: str | None = None) -> Document:
    """Every fenced block of one Markdown file, with what the docs test does with it."""
    text = path.read_text() if text is None else text
    tokens = MarkdownIt("commonmark").parse(text)
    blocks: list[Block] = []
    services: set[str] = set()
    pending: tuple[str, dict[str, str], int] | None = None  # a directive waiting for its fence
    for tok in tokens:
        line = (tok.map[0] + 1) if tok.map else 0
        if tok.type == "html_block":
            where = f"{path.name}:{line}"
            parsed = parse_directive(tok.content, where)
            if parsed is None:
                continue
            directive, directive_options = parsed
            if directive == "session":
                services |= set(directive_options.get("services", "").split())
                continue
            if pending is not None:
                raise DirectiveError(f"{path.name}:{pending[2]}: docs-test comment not followed by a fence")
            pending = (directive, directive_options, tok.map[1] if tok.map else 0)
            continue
        if tok.type != "fence" or tok.map is None:
            if pending is not None and tok.type not in ("list_item_open", "bullet_list_open", "ordered_list_open"):
                raise DirectiveError(f"{path.name}:{pending[2]}: docs-test comment not followed by a fence")
            continue
        lang = (tok.info.split() or [""])[0].lower()
        kind: str | None
        options: dict[str, str]
        if pending is not None:
            if pending[2] != tok.map[0]:
                raise DirectiveError(f"{path.name}:{line}: put the docs-test comment right before the fence")
            kind, options = pending[0], pending[1]
            pending = None
        else:
            kind, options = DEFAULT_KIND.get(lang), {}
        blocks.append(Block(path, line, lang, tok.content, kind, options))
    if pending is not None:
        raise DirectiveError(f"{path.name}:{pending[2]}: docs-test comment not followed by a fence")
    return Document(path, blocks, frozenset(services))


def all_documents() -> list[Document]:
    return [parse(p) for p in DOCS]

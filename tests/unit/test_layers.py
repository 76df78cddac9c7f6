"""Imports run one way (docs/architecture.md, "Layers"):

    domain (rollguard.models, .catalog, .flags, .metrics_catalog, .kube.names)
      <- rollguard.sdk                    what backends import
      <- rollguard.kube                   the Kubernetes adapter
      <- rollguard.api, rollguard.failures (the service and its jobs: SDK + domain)
      <- rollguard.operator               (domain + adapter)
      <- rollguard.cli                    (everything)

and inside the operator, the packages do not import each other in a circle. The check reads
the source folders themselves (the three import roots: ``rollguard/``, ``operator/rollguard/``
and ``api/rollguard/``), and counts every import, also one placed inside a function: a late
import that hides a cycle is still a cycle.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# source folder -> the import package it is
ROOTS = {"rollguard": "rollguard", "operator/rollguard": "rollguard", "api/rollguard": "rollguard"}

# layer -> module prefixes (the longest matching prefix decides)
LAYERS: dict[str, tuple[str, ...]] = {
    "domain": ("rollguard", "rollguard.models", "rollguard.catalog", "rollguard.flags", "rollguard.metrics_catalog",
               "rollguard.kube.names"),
    "sdk": ("rollguard.sdk",),
    "adapter": ("rollguard.kube",),
    "service": ("rollguard.api", "rollguard.failures"),
    "operator": ("rollguard.operator",),
    "cli": ("rollguard.cli",),
    "tooling": ("rollguard.localenv", "rollguard.demo"),  # the local cluster and the demo: not shipped logic
}
ALLOWED: dict[str, set[str]] = {
    "domain": {"domain"},
    "sdk": {"domain", "sdk"},
    "adapter": {"domain", "adapter"},
    "service": {"domain", "sdk", "service"},
    "operator": {"domain", "adapter", "operator"},
    "cli": {"domain", "sdk", "adapter", "service", "operator", "cli"},
    "tooling": set(LAYERS),
}


def _modules() -> Iterator[tuple[str, Path]]:
    for folder, package in ROOTS.items():
        base = REPO / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base)
            if any(part.startswith(".") for part in rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join([package, *parts]), path


def _imports(module: str, path: Path) -> set[str]:
    out: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in out if m == "rollguard" or m.startswith("rollguard.")}


def _layer(module: str) -> str:
    best, layer = "", "domain"
    for name, prefixes in LAYERS.items():
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, layer = p, name
    return layer


GRAPH = {module: _imports(module, path) for module, path in _modules()}


def test_the_source_folders_are_read() -> None:
    assert "rollguard.operator.canary.engine" in GRAPH and "rollguard.api.app" in GRAPH
    assert "rollguard.sdk.reporter" in GRAPH and "rollguard.kube.client" in GRAPH


def test_imports_run_one_way() -> None:
    wrong = sorted(f"{m} ({_layer(m)}) imports {i} ({_layer(i)})"
                   for m, imported in GRAPH.items() for i in imported
                   if _layer(i) not in ALLOWED[_layer(m)])
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def _package(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth])


def test_no_cycle_between_the_operator_packages() -> None:
    """rollguard.operator.<package> -> rollguard.operator.<other>: no two packages import each other,
    directly or around a circle."""
    edges: set[tuple[str, str]] = set()
    for m, imported in GRAPH.items():
        if not m.startswith("rollguard.operator."):
            continue
        for i in imported:
            if i.startswith("rollguard.operator.") and i in GRAPH:
                a, b = _package(m, 3), _package(i, 3)
                if a != b:
                    edges.add((a, b))
    nodes = sorted({n for e in edges for n in e})
    reach = {n: {b for a, b in edges if a == n} for n in nodes}
    for _ in nodes:  # transitive closure
        for n, k in itertools.product(nodes, nodes):
            if k in reach[n]:
                reach[n] |= reach[k]
    cycles = sorted(n for n in nodes if n in reach[n])
    assert not cycles, f"operator packages in an import cycle: {cycles}; edges: {sorted(edges)}"


def test_no_cycle_between_the_canary_modules() -> None:
    """Inside the canary package, too (the engine's dry run once imported the simulator late to
    dodge a cycle)."""
    mods = {m for m in GRAPH if m.startswith("rollguard.operator.canary.")}
    reach = {m: {i for i in GRAPH[m] if i in mods} for m in mods}
    for _ in mods:
        for m in mods:
            for k in list(reach[m]):
                reach[m] |= reach[k]
    assert not sorted(m for m in mods if m in reach[m])

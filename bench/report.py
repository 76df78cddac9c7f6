"""Run every benchmark in bench/ and write one report, Markdown and JSON, with the figures, the
ratios against their baselines, the machine and the date.

    bash bench/run [--quick] [--only NAME ...] [--out-dir reports]

Every ``bench/*.py`` script except this one is a benchmark (``matcher_bench.py``,
``ingest_bench.py``, ``canary_reaction.py``, ``canary_scale.py``, ...). Each prints its
figures and its ratio to a baseline measured in the same run; this runner keeps the output
verbatim and also extracts ``label: number`` lines as figures and ``ratio`` lines as ratios
for the JSON. ``--quick`` passes smaller sizes (see QUICK_ARGS) so the whole run takes a few
minutes; without it every script runs with its own defaults (the figures in the docs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SELF = {"__init__.py", "report.py"}
QUICK_ARGS: dict[str, list[str]] = {
    "matcher_bench": ["--seconds", "1"],
    "ingest_bench": ["--events", "20000", "--rows", "100000", "--requests", "50"],
    "canary_reaction": ["--runs", "2"],
    "canary_scale": ["--rollouts", "10"],
    "reporter_bench": ["--seconds", "3", "--prefill", "40000", "--outage", "8", "--no-fixed-pause-drain"],
}
TIMEOUT_SECONDS = 3600

_NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?"
_FIGURE = re.compile(rf"^\s*(?P<label>[^:]{{3,80}}?)\s*:\s*(?P<value>{_NUMBER})\s*(?P<unit>[A-Za-z%/]+)?")
_LATENCY = re.compile(rf"^\s*(?P<label>\S.*?)\s+p50\s+(?P<p50>{_NUMBER})\s*ms\s+p99\s+(?P<p99>{_NUMBER})\s*ms")
_RATIO = re.compile(r"\bratio\b[^:]*:(?P<rest>.*)", re.IGNORECASE)


def benches() -> list[Path]:
    return sorted(p for p in BENCH_DIR.glob("*.py") if p.name not in SELF)


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def parse(output: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Figures (``label: value unit``) and ratios (lines naming a ratio) found in a bench's output."""
    figures: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    for line in output.splitlines():
        r = _RATIO.search(line)
        if r:
            # the figures after the colon, up to a "(target ...)" remark
            values = [_num(v) for v in re.findall(_NUMBER, r.group("rest").split("(target")[0])]
            if values:
                ratios.append({"line": line.strip(), "value": values[0], "values": values})
                continue
        lat = _LATENCY.match(line)
        if lat:
            for q in ("p50", "p99"):
                figures.append({"name": f"{lat.group('label')} {q}", "value": _num(lat.group(q)), "unit": "ms",
                                "line": line.strip()})
            continue
        f = _FIGURE.match(line)
        if f and not line.lstrip().startswith("#"):
            figures.append({"name": f.group("label").strip(), "value": _num(f.group("value")),
                            "unit": f.group("unit") or "", "line": line.strip()})
    return figures, ratios


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": mem_gib, "kernel": platform.release(),
            "system": f"{platform.system()} {platform.machine()}", "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "hostname": platform.node()}


def commit() -> str:
    p = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else "unknown"


def run_one(path: Path, quick: bool) -> dict[str, Any]:
    name = path.stem
    cmd = [sys.executable, str(path.relative_to(REPO)), *(QUICK_ARGS.get(name, []) if quick else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    print(f"[bench] {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        code, out = p.returncode, p.stdout + (f"\n{p.stderr}" if p.returncode else "")
    except subprocess.TimeoutExpired as e:
        partial = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        code, out = -1, f"{partial}\nTIMEOUT after {TIMEOUT_SECONDS}s"
    seconds = round(time.monotonic() - t0, 1)
    figures, ratios = parse(out)
    print(f"[bench] {name}: exit {code} in {seconds}s, {len(figures)} figures, {len(ratios)} ratios",
          file=sys.stderr, flush=True)
    return {"name": name, "command": " ".join(["python", *cmd[1:]]), "exit_code": code, "seconds": seconds,
            "figures": figures, "ratios": ratios, "output": out.rstrip()}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = ["# rollguard benchmarks", "",
             f"- date: {report['date']}",
             f"- machine: {m['cores']} cores ({m['cpu'] or 'cpu unknown'}), {m['memory_gib']} GiB, {m['system']}, "
             f"kernel {m['kernel']}, load average at start {', '.join(map(str, m['load_average']))}",
             f"- python: {m['python']}; commit: {report['commit']}; mode: {report['mode']}", "",
             "| benchmark | exit | seconds | ratios |", "|---|---|---|---|"]
    for b in report["benches"]:
        ratios = "<br>".join(r["line"] for r in b["ratios"]) or "-"
        lines.append(f"| {b['name']} | {b['exit_code']} | {b['seconds']} | {ratios} |")
    for b in report["benches"]:
        lines += ["", f"## {b['name']}", "", f"`{b['command']}` (exit {b['exit_code']}, {b['seconds']} s)", "",
                  "```", b["output"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes: the whole run in a few minutes")
    ap.add_argument("--only", nargs="*", default=[], metavar="NAME", help="run only these benchmarks")
    ap.add_argument("--out-dir", type=Path, default=REPO / "reports")
    args = ap.parse_args(argv)
    todo = [p for p in benches() if not args.only or p.stem in args.only]
    unknown = set(args.only) - {p.stem for p in benches()}
    if unknown:
        ap.error(f"--only: no such benchmark {', '.join(sorted(unknown))} (have: "
                 f"{', '.join(p.stem for p in benches())})")
    now = dt.datetime.now(dt.UTC)
    report: dict[str, Any] = {"date": now.isoformat(timespec="seconds"), "machine": machine(), "commit": commit(),
                              "mode": "quick" if args.quick else "full", "benches": []}
    for path in todo:
        report["benches"].append(run_one(path, args.quick))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"bench-{now.strftime('%Y%m%dT%H%M%SZ')}"
    md = markdown(report)
    stem.with_suffix(".md").write_text(md)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(md)
    print(f"report written to {stem}.md and {stem}.json", file=sys.stderr)
    return 0 if all(b["exit_code"] == 0 for b in report["benches"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())

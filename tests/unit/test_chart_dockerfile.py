"""The Dockerfile, checked statically: no Docker engine runs on the CI machines, so the image is
never built here. The rules that matter for the chart's PodSecurity settings are checked in the
file itself: pinned base, non-root numeric USER matching the chart, no build tools in the final
stage, `rollguard` as the entrypoint."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field

import yaml

from tests.support.helm import CHART, REPO

DOCKERFILE = REPO / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|clang|cargo|rustc|git|curl|wget|apt-get|apk|"
                         r"pip install|python3?-dev|libpq-dev)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse() -> tuple[dict[str, str], list[Stage]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())  # join continuation lines
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip()
        elif op == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert m
            stages.append(Stage(m.group(1), m.group(2)))
        else:
            assert stages, f"{op} before FROM"
            stages[-1].instructions.append((op, rest))
    return args, stages


def test_multi_stage_on_one_pinned_base() -> None:
    args, stages = parse()
    assert len(stages) >= 2
    base = args["PYTHON_IMAGE"]
    # An exact patch release of 3.11 on Debian 12 slim (optionally @sha256 digest), never a floating tag.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    assert all(s.base == "${PYTHON_IMAGE}" for s in stages)


def test_final_stage_has_no_build_tools_and_only_copies_the_venv() -> None:
    _, stages = parse()
    final = stages[-1]
    for op, rest in final.instructions:
        if op == "RUN":
            assert not BUILD_TOOLS.search(rest), f"build tooling in the final stage: RUN {rest}"
        if op in ("COPY", "ADD"):
            assert op == "COPY" and rest.startswith(f"--from={stages[0].name} "), f"{op} {rest}"
    # ...while the build stage does the install.
    assert any(op == "RUN" and "pip install" in rest for op, rest in stages[0].instructions)


def test_runs_as_the_non_root_uid_the_chart_expects() -> None:
    _, stages = parse()
    users = [rest for op, rest in stages[-1].instructions if op == "USER"]
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric non-root USER (runAsNonRoot can only verify numbers)"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert int(uid) == values["podSecurityContext"]["runAsUser"] == 10001
    assert gid and int(gid) == values["podSecurityContext"]["runAsGroup"]
    # USER is the last word on identity: nothing switches back to root after it.
    ops = [op for op, _ in stages[-1].instructions]
    assert "RUN" not in ops[ops.index("USER"):], "RUN after USER"


def test_entrypoint_is_the_rollguard_console_script_and_no_healthcheck() -> None:
    _, stages = parse()
    final = dict(stages[-1].instructions)
    assert final["ENTRYPOINT"] == '["rollguard"]'
    assert "HEALTHCHECK" not in final  # Kubernetes probes (the chart) check health
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["rollguard"] == "rollguard.cli.main:main"
    env = " ".join(rest for op, rest in stages[-1].instructions if op == "ENV")
    assert "PATH=/opt/rollguard/bin:" in env and "PYTHONDONTWRITEBYTECODE=1" in env  # read-only root fs


def test_build_context_excludes_what_the_image_does_not_need() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "tests", "charts"} <= ignored
    # ...but keeps what `pip install .` reads.
    for needed in ("pyproject.toml", "rollguard", "operator", "api"):
        assert needed not in ignored, needed
    _, stages = parse()
    copies = [shlex.split(rest) for op, rest in stages[0].instructions if op == "COPY"]
    assert [".", "."] in copies

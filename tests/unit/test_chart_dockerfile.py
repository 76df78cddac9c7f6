"""The Dockerfile, checked statically (tests/integration/test_image.py builds it without Docker and
runs it). The rules that matter for the chart's PodSecurity settings and for a fast rebuild are
checked in the file itself: pinned Debian base, non-root numeric USER matching the chart, no build
tools in the final stage, the dependencies' layer before the code's, `rollguard` as the entrypoint."""

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


def test_multi_stage_on_one_pinned_debian_base() -> None:
    args, stages = parse()
    assert len(stages) >= 2
    base = args["BASE_IMAGE"]
    # A date-stamped Debian 12 slim image (optionally @sha256 digest), never a floating tag; the
    # Docker-free build (hack/build-image.sh) makes the same base from BASE_PACKAGES.
    assert re.fullmatch(r"debian:bookworm-\d{8}-slim(@sha256:[0-9a-f]{64})?", base), base
    assert args["BASE_PACKAGES"].strip('"').split() == ["python3"]
    assert stages[0].base == "${BASE_IMAGE}"
    names = [s.name for s in stages]
    # every later stage starts from an earlier one: one base for all
    assert all(s.base in names[:i] for i, s in enumerate(stages) if i)


def test_final_stage_has_no_build_tools_and_copies_dependencies_before_code() -> None:
    _, stages = parse()
    final = stages[-1]
    copies = []
    for op, rest in final.instructions:
        if op == "RUN":
            assert not BUILD_TOOLS.search(rest), f"build tooling in the final stage: RUN {rest}"
        if op in ("COPY", "ADD"):
            assert op == "COPY" and rest.startswith("--from="), f"{op} {rest}"
            copies.append(rest.split()[0].removeprefix("--from="))
    # the slow layer (dependencies, from pyproject.toml alone) first, the code's small layer last
    assert copies == ["deps", "code"]
    by_name = {s.name: s for s in stages}
    deps = [rest for op, rest in by_name["deps"].instructions if op in ("COPY", "RUN")]
    assert deps[0] == "requirements-image.txt ./" and "pip install" in deps[1] and "--no-deps" in deps[1]
    assert by_name["code"].base == "deps"


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
    copies = [shlex.split(rest) for s in stages if s.name == "code" for op, rest in s.instructions if op == "COPY"]
    assert copies == [[".", "."]]


def test_the_pinned_dependencies_satisfy_pyproject() -> None:
    """requirements-image.txt (hack/lock-image.sh) pins what rollguard[all] needs: every
    requirement of pyproject.toml's dependencies and of each extra `all` names is pinned, at a
    version its range allows (the Dockerfile installs the file with --no-deps)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in (REPO / "requirements-image.txt").read_text().splitlines():
        line = line.partition("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = spec.version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    (everything,) = extras["all"]
    wanted = [*project["dependencies"],
              *(r for e in Requirement(everything).extras for r in extras[e])]
    for raw in wanted:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name in pins, f"{raw} is not pinned: run hack/lock-image.sh"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{raw} but requirements-image.txt pins {pins[name]}: run hack/lock-image.sh"

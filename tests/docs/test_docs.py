"""Documentation as tests: every fenced block of README.md and docs/*.md is run, checked, or marked
in the source as not runnable here with the reason (see tests/docs/blocks.py for the markers).

- ``test_every_block_is_run_checked_or_marked`` fails for a block nobody runs, checks or marks.
- ``test_block`` checks manifests, JSON, synopses and listings, without a cluster.
- ``test_walkthrough`` types each document's commands into one terminal, in order, against the
  services its "Before you start" list names (the session's control plane, a PostgreSQL server of
  its own, the real Helm), and compares every output the document shows.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docs import checks
from tests.docs.blocks import DOCS, REPO, Block, DirectiveError, Document, all_documents, parse
from tests.docs.session import SessionError, ShellSession, copy_checkout, reader_path
from tests.docs.summary import summary_lines
from tests.support.xdist import DEFAULT_PORTS

DOCUMENTS = all_documents()
STATIC = {"manifest": checks.check_manifest, "json": checks.check_json, "synopsis": checks.check_synopsis,
          "paths": checks.check_paths}


def test_every_block_is_run_checked_or_marked() -> None:
    unmarked = [b.where for d in DOCUMENTS for b in d.blocks if b.kind is None]
    assert not unmarked, (
        "blocks neither run, checked nor marked (add `<!-- docs-test: skip reason=\"...\" -->` or another "
        f"docs-test comment on the line before the fence): {unmarked}")
    assert {d.path for d in DOCUMENTS} == set(DOCS) and len(DOCS) >= 8


@pytest.mark.parametrize("block", [b for d in DOCUMENTS for b in d.blocks if b.kind in STATIC],
                         ids=lambda b: f"{b.where}-{b.kind}")
def test_block(block: Block) -> None:
    problems = STATIC[block.kind or ""](block)
    assert not problems, f"{block.where} ({block.kind}):\n" + "\n".join(problems)


def test_shown_banners_are_the_ones_the_cli_prints() -> None:
    from rollguard.cli.canary_cmd import BANNER_FAILED, BANNER_PROMOTED, BANNER_PROMOTED_BY_HAND

    shown = {m.group(0) for p in DOCS for m in re.finditer(r"CANARY [A-Z][A-Z ]*[A-Z]", p.read_text())}
    assert shown, "no banner shown in the docs"
    assert shown <= {BANNER_PROMOTED, BANNER_FAILED, BANNER_PROMOTED_BY_HAND}, shown


# --------------------------------------------------------------------------- the runner's own rules

def _doc(text: str, tmp_path: Path) -> Document:
    path = tmp_path / "x.md"
    path.write_text(text)
    return parse(path)


def test_a_block_with_no_runner_and_no_marker_is_reported(tmp_path: Path) -> None:
    doc = _doc("Intro\n\n```\nrollguard frobnicate\n```\n\n```bash\necho hi\n```\n", tmp_path)
    assert [b.kind for b in doc.blocks] == [None, "run"]
    lines = summary_lines([doc])
    assert "1 neither run nor marked" in lines[0] and any("NEITHER RUN NOR MARKED" in line for line in lines)


def test_markers_need_a_reason_and_sit_right_before_their_fence(tmp_path: Path) -> None:
    with pytest.raises(DirectiveError, match="reason"):
        _doc("<!-- docs-test: skip -->\n```bash\nx\n```\n", tmp_path)
    with pytest.raises(DirectiveError, match="not followed by a fence"):
        _doc("<!-- docs-test: skip reason=\"x\" -->\n\nSome text.\n\n```bash\nx\n```\n", tmp_path)
    with pytest.raises(DirectiveError, match="unknown docs-test kind"):
        _doc("<!-- docs-test: skipp reason=\"x\" -->\n```bash\nx\n```\n", tmp_path)
    doc = _doc('<!-- docs-test: skip reason="needs-cluster: pods" -->\n```bash\nx\n```\n', tmp_path)
    assert doc.blocks[0].needs_cluster and "needs-cluster: x.md:2" not in summary_lines([doc])


def test_output_comparison_uses_ellipsis_and_ignores_column_widths() -> None:
    assert checks.output_matches("NAME   PHASE\nfoo    Blocked ...", "noise\nNAME PHASE\nfoo Blocked 3s\n")
    assert checks.output_matches("a ... c", "a c") and checks.output_matches("a ... c", "a b c")
    assert checks.lines_match("b\na", "a\nb\n") and not checks.output_matches("b\na", "a\nb\n")
    assert not checks.output_matches("NAME PHASE\nfoo Ready", "NAME PHASE\nfoo Blocked\n")
    assert checks.json_matches({"a": "...", "b": [1]}, {"a": {"x": 1}, "b": [1]})
    assert not checks.json_matches({"a": 1}, {"a": 1, "b": 2})


def test_a_synopsis_naming_a_missing_option_fails(tmp_path: Path) -> None:
    good = Block(tmp_path, 1, "", "rollguard canary run -f FILE [--dry-run] | status\n", "synopsis")
    bad = Block(tmp_path, 1, "", "rollguard canary run -f FILE [--dry] | stat\n", "synopsis")
    assert checks.check_synopsis(good) == []
    assert checks.check_synopsis(bad) == ["rollguard canary: no option --dry",
                                          "rollguard canary: no sub-command or value 'stat'"]


# --------------------------------------------------------------------------- walk-throughs

def _walkable(doc: Document) -> bool:
    return any(b.kind in ("run", "output", "file") for b in doc.blocks)


# The failures API's documented address: a walk-through that serves it binds a fixed port.
_FIXED_PORT_MARKS = ("rollguard api serve", "localhost:8000", "127.0.0.1:8000")


def _walkthroughs() -> list[Any]:
    """Each walkable document; one that binds a fixed port of the host (the failures API's) runs
    on the one worker that runs such tests (DEFAULT_PORTS), the others anywhere: the only other
    host ports a walk-through binds are the operator's, which its session moves to free ones."""
    return [pytest.param(d, id=d.name, marks=[DEFAULT_PORTS] if any(
                m in b.code for b in d.blocks if b.kind == "run" for m in _FIXED_PORT_MARKS) else [])
            for d in DOCUMENTS if _walkable(d)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def reader_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    """What the reader's machine has, per the document's services; yields (env, namespaces before)."""
    doc: Document = request.param
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": reader_path(), "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
           "USER": os.environ.get("USER", "reader"), "NO_COLOR": "1",
           # `rollguard operator run`'s metrics and liveness ports (8081, 8080 by default): free
           # ones, so that two walk-throughs (or another test's operator) never race for them
           "ROLLGUARD_METRICS_PORT": str(_free_port()),
           "ROLLGUARD_LIVENESS": f"http://127.0.0.1:{_free_port()}/healthz"}
    cleanups: list[object] = [lambda: _stop_readers_cluster(home)]
    before: list[str] = []
    if "kubernetes" in doc.services:
        cp = request.getfixturevalue("control_plane")
        kubectl = request.getfixturevalue("kubectl")  # the session's cluster, rollguard's CRDs applied
        # as `hack/control-plane.sh up` gives it: the pods that ask to run do, and reach Services
        request.getfixturevalue("pod_runner")
        kubeconfig = home / ".kube" / "config"
        kubeconfig.parent.mkdir()
        shutil.copy(cp.kubeconfig, kubeconfig)  # kubectl's default place: the reader sets nothing
        bin_dir = Path(cp.kubectl).parent
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        if bin_dir.name.startswith("kube-"):  # the build cache's layout: hack/ scripts find it under $HOME
            (home / ".cache" / "rollguard").mkdir(parents=True)
            (home / ".cache" / "rollguard" / "bin").symlink_to(bin_dir.parent)
        else:  # binaries from elsewhere: the override hack/control-plane.sh honours
            env["ROLLGUARD_BIN_DIR"] = str(bin_dir)
        before = kubectl("get", "namespaces", "-o", "name").stdout.split()
        cleanups.append(lambda: _delete_new_namespaces(kubectl, before))
    if "postgresql" in doc.services:
        from rollguard.localenv.postgres import Postgres

        password = secrets.token_hex(8)
        pg = Postgres(tmp_path / "pg", database="postgres", user="postgres", password=password)
        pg.start()
        cleanups.append(pg.stop)
        # libpq's own variables: `psql`, `createdb` and the URL in the docs reach this server
        env.update({"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": "postgres", "PGPASSWORD": password})
    if "helm" in doc.services:
        from tests.support.helm import helm_binary

        env["PATH"] = f"{helm_binary().parent}{os.pathsep}{env['PATH']}"
    try:
        yield env, before
    finally:
        for cleanup in reversed(cleanups):
            cleanup()  # type: ignore[operator]


def _stop_readers_cluster(home: Path) -> None:
    """A local cluster the reader started (`hack/control-plane.sh up`) and a failed block left
    running: its processes run in sessions of their own, so closing the terminal leaves them."""
    from rollguard.localenv.controlplane import ControlPlane

    state = home / ".cache" / "rollguard" / "controlplane"
    if (state / "state.json").exists():
        ControlPlane(state).stop()


def _delete_new_namespaces(kubectl: object, before: list[str]) -> None:
    """The namespaces a walk-through created go, with what is in them (finalizers of objects whose
    operator is gone are dropped), so the next document starts from the same cluster."""
    from tests.support.kube import Kubectl, eventually

    assert isinstance(kubectl, Kubectl)
    new = [n.removeprefix("namespace/") for n in kubectl("get", "namespaces", "-o", "name").stdout.split()
           if n not in before]
    for ns in new:
        kubectl.delete_namespace(ns)
    for ns in new:
        eventually(lambda ns=ns: not kubectl.exists("namespace", ns),  # type: ignore[misc]
                   timeout=120, what=f"namespace {ns} deleted")


@pytest.mark.integration
@pytest.mark.parametrize("reader_env", _walkthroughs(), indirect=True)
def test_walkthrough(reader_env: tuple[dict[str, str], list[str]], request: pytest.FixtureRequest,
                     tmp_path: Path) -> None:
    doc: Document = request.node.callspec.params["reader_env"]
    env, _ = reader_env
    workdir = copy_checkout(tmp_path / "checkout")
    session = ShellSession(workdir, env, tmp_path / "terminal").start()
    last: tuple[Block, str] | None = None
    try:
        for block in doc.blocks:
            if block.kind == "file":
                session.write_file(block)
            elif block.kind == "run":
                result = session.run(block)
                want = int(block.options.get("exit", "0"))
                if result.returncode != want:
                    raise SessionError(
                        f"{block.where}: exit {result.returncode} (the docs expect {want}):\n{block.code}\n"
                        f"--- output:\n{result.output[-4000:]}")
                last = (block, result.output)
            elif block.kind == "output":
                assert last is not None, f"{block.where}: an output block with no command before it"
                _compare(block, *last)
    except SessionError as e:
        raise SessionError(f"{e}\n--- the terminal so far:\n" + "\n".join(session.transcript)[-6000:]) from None
    finally:
        session.close()


def _compare(block: Block, command: Block, output: str) -> None:
    if block.lang == "json":
        import json

        # the JSON a block prints last (commands before it may print other lines)
        lines = output.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith(("{", "["))]
        try:
            actual = json.loads("\n".join(lines[starts[-1]:]) if starts else output)
        except ValueError as e:
            raise SessionError(f"{block.where}: {command.where} printed no JSON ({e}):\n{output[-2000:]}") from None
        if not checks.json_matches(json.loads(block.code), actual):
            raise SessionError(f"{block.where}: shown JSON differs from what {command.where} printed:\n{output}")
        return
    matches = checks.lines_match if block.options.get("match") == "lines" else checks.output_matches
    if not matches(block.code, output):
        raise SessionError(f"{block.where}: shown output differs from what {command.where} printed:\n"
                           f"--- shown:\n{block.code}--- printed:\n{output[-4000:]}")


def test_the_walkthroughs_run_in_a_copy_of_the_checkout(tmp_path: Path) -> None:
    dest = copy_checkout(tmp_path / "c")
    assert (dest / "README.md").read_text() == (REPO / "README.md").read_text()
    assert (dest / ".venv" / "bin" / "rollguard").exists()
    out = subprocess.run(["bash", "-c", "command -v rollguard || echo none"], capture_output=True, text=True,
                         env={"PATH": reader_path()}).stdout
    assert out.strip() == "none" or not out.startswith(str(REPO))

"""One reader's terminal: a bash process that runs a document's blocks in order, as typed.

Variables, the working directory and background processes (`rollguard operator run ... &`)
carry over from one block to the next, as they do for a reader. The terminal starts in a copy of
the repository (commands write reports and files there), with a fresh $HOME and a PATH without
the project's virtualenv: a document has to say how `rollguard` gets on PATH. `set -e`: the
first command that fails ends the session, and the test names the block.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.docs.blocks import REPO, Block


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str
    seconds: float


class SessionError(AssertionError):
    """A block failed: which one, what it printed, and what the session printed before."""


def copy_checkout(dest: Path) -> Path:
    """The repository's files (tracked and new, not ignored), with .venv pointing at this venv."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    (dest / ".venv").symlink_to(Path(sys.prefix))
    return dest


def reader_path() -> str:
    """The machine's PATH without this virtualenv's bin (where `rollguard` lives)."""
    venv_bin = str(Path(sys.prefix) / "bin")
    return os.pathsep.join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != venv_bin)


class ShellSession:
    def __init__(self, workdir: Path, env: dict[str, str], logdir: Path) -> None:
        self.workdir, self.env, self.logdir = workdir, env, logdir
        self.proc: subprocess.Popen[str] | None = None
        self.n = 0
        self.transcript: list[str] = []

    def start(self) -> ShellSession:
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, text=True,
                                     stdout=(self.logdir / "shell.log").open("w"), stderr=subprocess.STDOUT,
                                     cwd=self.workdir, env=self.env, start_new_session=True)
        self._send("set -eo pipefail")
        return self

    def _send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def write_file(self, block: Block) -> None:
        path = self.workdir / block.options["name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.code)

    def run(self, block: Block) -> Result:
        """Run one block (shell: sourced; python: `python FILE` in this terminal); wait for it."""
        assert self.proc is not None
        self.n += 1
        script = self.logdir / f"block-{self.n}.sh"
        if block.lang == "python":
            code = self.logdir / f"block-{self.n}.py"
            code.write_text(block.code)
            script.write_text(f"python {code}\n")
        else:
            script.write_text(block.code)
        out, rc = self.logdir / f"block-{self.n}.out", self.logdir / f"block-{self.n}.rc"
        expect = block.options.get("exit")
        if expect is None:
            self._send(f"{{ source {script}; }} > {out} 2>&1 < /dev/null; echo $? > {rc}")
        else:  # a command documented to fail: its status is the result, not the end of the session
            self._send(f"set +e; {{ source {script}; }} > {out} 2>&1 < /dev/null; echo $? > {rc}; set -e")
        timeout = float(block.options.get("timeout", "120"))
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if rc.exists() and rc.read_text().strip():
                result = Result(int(rc.read_text()), out.read_text(errors="replace"), time.monotonic() - start)
                self.transcript.append(f"$ [{block.where}]\n{result.output}")
                return result
            if self.proc.poll() is not None:  # set -e ended the terminal: that block failed
                text = out.read_text(errors="replace") if out.exists() else ""
                self.transcript.append(f"$ [{block.where}]\n{text}")
                return Result(self.proc.returncode, text, time.monotonic() - start)
            time.sleep(0.1)
        text = out.read_text(errors="replace") if out.exists() else ""
        raise SessionError(f"{block.where}: still running after {timeout:.0f}s:\n{block.code}\n--- output:\n{text}")

    def close(self) -> None:
        """End the terminal and everything started from it (one process group, as a terminal's)."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self.proc.poll()  # reap the shell itself, or its zombie keeps the group alive
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.proc = None

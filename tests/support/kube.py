"""Helpers for tests against the real local control plane."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"


@dataclass
class Kubectl:
    binary: Path
    kubeconfig: Path

    def __call__(self, *args: str, input: str | None = None, check: bool = True,
                 namespace: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.binary), "--kubeconfig", str(self.kubeconfig)]
        if namespace:
            cmd += ["-n", namespace]
        proc = subprocess.run([*cmd, *args], input=input, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    def apply(self, obj: dict[str, Any] | str, namespace: str | None = None,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
        return self("apply", "-f", "-", input=text, namespace=namespace, check=check)

    def get_json(self, *args: str, namespace: str | None = None) -> dict[str, Any]:
        import json
        out = self("get", *args, "-o", "json", namespace=namespace).stdout
        result: dict[str, Any] = json.loads(out)
        return result


def eventually(check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.25,
               what: str = "condition") -> Any:
    """Poll ``check`` until it returns a truthy value (returned) or raises no AssertionError."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except AssertionError as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f": {last}" if last else ""))


class OperatorProcess:
    """The real operator (`rollguard operator run`) as a subprocess, as the chart runs it."""

    def __init__(self, kubeconfig: Path, log: Path, namespaces: tuple[str, ...] = (),
                 extra_env: dict[str, str] | None = None, standalone: bool = True) -> None:
        self.kubeconfig, self.log, self.namespaces = kubeconfig, log, namespaces
        self.extra_env = extra_env or {}
        self.standalone = standalone
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        args = [sys.executable, "-m", "rollguard.cli.main", "operator", "run", "--liveness", ""]
        args += ["--standalone"] if self.standalone else ["--peering", "--peering-name", "rollguard"]
        for ns in self.namespaces:
            args += ["-n", ns]
        # Metrics off unless a test asks (extra_env ROLLGUARD_METRICS_PORT): several operators
        # run side by side in some tests and would fight over the default port.
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "ROLLGUARD_METRICS_PORT": "0", **self.extra_env}
        out = self.log.open("ab")
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        out.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

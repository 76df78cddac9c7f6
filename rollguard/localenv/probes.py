"""Readiness probes for the pod runner, as the kubelet runs them.

A container is ready when its process runs and, if it has a ``readinessProbe``, the probe has
passed ``successThreshold`` times in a row since it last failed ``failureThreshold`` times in a
row (a new process starts not ready). The first probe runs ``initialDelaySeconds`` after the
process starts, then one every ``periodSeconds``; each may take ``timeoutSeconds``. Defaults
and the pass rule are the kubelet's (Kubernetes documentation, "Configure Liveness, Readiness
and Startup Probes"): period 10 s, timeout 1 s, success 1, failure 3; an HTTP answer from 200
to 399 passes, HTTPS is not verified, a TCP probe passes when the connection opens, an exec
probe when the command exits 0. Liveness and startup probes are not run, nor are gRPC probes
(a container with one is ready once its process runs, and the runner's log says so).
"""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 3}


class ProbeError(ValueError):
    """A probe the runner cannot run as written (a port name no container port has)."""


@dataclass(frozen=True)
class Probe:
    """One container's readiness probe, its port resolved to a number. ``kind``: ``http``,
    ``tcp`` or ``exec``; seconds as in the pod spec."""

    kind: str
    port: int = 0
    path: str = "/"
    scheme: str = "HTTP"
    host: str = ""                   # empty: the pod's IP, as the kubelet probes it
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, container: dict[str, Any]) -> Probe | None:
        """The container's ``readinessProbe``; ``None`` without one or with a kind not run here
        (gRPC). Raises :class:`ProbeError` for a named port the container does not declare."""
        spec = container.get("readinessProbe")
        if not spec:
            return None
        t = {k: spec.get(k, v) for k, v in DEFAULTS.items()}
        base = cls("", initial_delay=float(t["initialDelaySeconds"]), period=float(t["periodSeconds"]),
                   timeout=float(t["timeoutSeconds"]), success_threshold=int(t["successThreshold"]),
                   failure_threshold=int(t["failureThreshold"]))
        if "httpGet" in spec:
            h = spec["httpGet"]
            return replace(base, kind="http", port=_port(container, h.get("port")), path=h.get("path") or "/",
                           scheme=(h.get("scheme") or "HTTP").upper(), host=h.get("host") or "",
                           headers=tuple((x["name"], x["value"]) for x in h.get("httpHeaders") or []))
        if "tcpSocket" in spec:
            s = spec["tcpSocket"]
            return replace(base, kind="tcp", port=_port(container, s.get("port")), host=s.get("host") or "")
        if "exec" in spec:
            return replace(base, kind="exec", command=tuple(spec["exec"].get("command") or []))
        return None

    def run(self, pod_ip: str, pid: int | None = None, env: dict[str, str] | None = None) -> bool:
        """One probe against the container at ``pod_ip`` (``pid``: its process, whose mount
        namespace an exec probe enters). True when it passes; a timeout fails it."""
        host = self.host or pod_ip
        try:
            if self.kind == "tcp":
                with socket.create_connection((host, self.port), timeout=self.timeout):
                    return True
            if self.kind == "http":
                conn: http.client.HTTPConnection
                if self.scheme == "HTTPS":
                    ctx = ssl.create_default_context()
                    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                    conn = http.client.HTTPSConnection(host, self.port, timeout=self.timeout, context=ctx)
                else:
                    conn = http.client.HTTPConnection(host, self.port, timeout=self.timeout)
                try:
                    conn.request("GET", self.path, headers={"User-Agent": "kube-probe/1.36", **dict(self.headers)})
                    return 200 <= conn.getresponse().status < 400
                finally:
                    conn.close()
            if self.kind == "exec" and self.command:
                # in the container's mount namespace, where its volumes are
                enter = ["nsenter", "--target", str(pid), "--mount", "--"] if pid and shutil.which("nsenter") else []
                done = subprocess.run([*enter, *self.command], env=env, timeout=self.timeout, check=False,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                return done.returncode == 0
            return False  # a probe that cannot pass (see ProbeError)
        except (OSError, http.client.HTTPException, subprocess.TimeoutExpired):
            return False


def _port(container: dict[str, Any], port: int | str | None) -> int:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ProbeError(f"readinessProbe: container {container.get('name')!r} has no port named {port!r}")


@dataclass
class Readiness:
    """Whether one container's process is ready, from its probe's results (no probe: ready
    while it runs). Times are monotonic seconds."""

    probe: Probe | None
    ready: bool = False
    due: float = 0.0
    successes: int = 0
    failures: int = 0
    history: list[bool] = field(default_factory=list)  # the last results, newest last (for the log)

    def started(self, now: float) -> None:
        """A new process: not ready; its first probe after the initial delay."""
        self.ready = self.probe is None
        self.due = now + (self.probe.initial_delay if self.probe else 0.0)
        self.successes = self.failures = 0

    def is_due(self, now: float) -> bool:
        return self.probe is not None and now >= self.due

    def observe(self, passed: bool, now: float) -> bool:
        """Record one probe's result; returns whether readiness changed."""
        assert self.probe is not None
        self.due = now + self.probe.period
        self.history = [*self.history[-4:], passed]
        before = self.ready
        if passed:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.probe.success_threshold:
                self.ready = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= self.probe.failure_threshold:
                self.ready = False
        return self.ready != before

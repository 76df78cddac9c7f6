"""A real Prometheus server on loopback that scrapes targets the caller adds at run time.

Targets go through ``file_sd_configs``: :meth:`Prometheus.set_targets` rewrites a JSON file
that Prometheus re-reads within a second or two, so tests add and remove scrape targets
without restarting it. Scrape and evaluation intervals are 1s, so a breach is visible fast.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from rollguard.localenv import _proc


class Prometheus:
    def __init__(self, workdir: Path, *, scrape_interval: str = "1s", rule_files: list[Path] | None = None) -> None:
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        self.rule_files = rule_files or []
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        binary = shutil.which("prometheus")
        if not binary:
            raise RuntimeError("prometheus not found; install Debian's prometheus package (make test does)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "targets").mkdir(exist_ok=True)
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [{
                "job_name": "rollguard-test",
                "file_sd_configs": [{"files": [str(self.workdir / "targets" / "*.json")], "refresh_interval": "1s"}],
            }],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = _proc.free_port()
        log = self.workdir / "prometheus.log"
        self._proc = _proc.start([
            binary, f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=1d", "--log.level=warn",
        ], log)
        _proc.wait_for(lambda: _get(f"{self.url}/-/ready") is not None, timeout=timeout,
                       what="prometheus", proc=self._proc, log=log)

    def set_targets(self, name: str, targets: list[str], labels: dict[str, str] | None = None) -> None:
        """Scrape ``targets`` (host:port) under group ``name`` with extra ``labels``."""
        path = self.workdir / "targets" / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": targets, "labels": labels or {}}]))
        tmp.rename(path)  # atomic: Prometheus never reads half a file

    def remove_targets(self, name: str) -> None:
        (self.workdir / "targets" / f"{name}.json").unlink(missing_ok=True)

    def query(self, promql: str) -> list[dict[str, Any]]:
        body = _get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert body is not None
        data = json.loads(body)
        if data.get("status") != "success":
            raise RuntimeError(f"query failed: {data}")
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def stop(self) -> None:
        if self._proc is not None:
            _proc.stop_pid(self._proc.pid)
            self._proc = None


def _get(url: str) -> bytes | None:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback URL we built)
        return bytes(r.read()) if r.status == 200 else None

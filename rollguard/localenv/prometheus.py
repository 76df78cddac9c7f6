"""A real Prometheus server on loopback, configured the way kube-prometheus users have it.

Two ways to find targets:

- **Pod discovery** (what users run): ``kubernetes_sd_configs`` (role ``pod``) against the
  local apiserver with Prometheus' own read-only identity, and for each PodMonitor given, the
  relabelling the Prometheus Operator generates for it (:func:`podmonitor_scrape_configs`):
  keep the selected pods and port, drop finished pods, copy ``namespace``, ``pod``,
  ``container`` and the PodMonitor's ``podTargetLabels`` into metric labels.
- **Static files** (``file_sd_configs``) for processes that are not pods:
  :meth:`Prometheus.set_targets` rewrites a JSON file that Prometheus re-reads within a
  second or two.

The scrape interval is the caller's (a PodMonitor endpoint's ``interval`` wins for its job).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rollguard.localenv import _proc


@dataclass(frozen=True)
class KubernetesAPI:
    """How Prometheus reaches the apiserver: its URL and a client identity (PEM files)."""

    server: str
    ca_file: Path
    cert_file: Path
    key_file: Path


def _label_name(name: str) -> str:
    """A Kubernetes label key as Prometheus' service discovery spells it (``a.b/c-d`` -> ``a_b_c_d``)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def podmonitor(name: str, namespace: str, *, port: str, selector: dict[str, Any],
               pod_target_labels: list[str] | None = None, interval: str | None = None,
               any_namespace: bool = False, path: str = "/metrics") -> dict[str, Any]:
    """A ``monitoring.coreos.com/v1`` PodMonitor, as a user (or the chart) writes one."""
    endpoint: dict[str, Any] = {"port": port, "path": path}
    if interval:
        endpoint["interval"] = interval
    spec: dict[str, Any] = {"selector": selector, "podMetricsEndpoints": [endpoint]}
    spec["namespaceSelector"] = {"any": True} if any_namespace else {"matchNames": [namespace]}
    if pod_target_labels:
        spec["podTargetLabels"] = list(pod_target_labels)
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def backend_podmonitor(name: str = "rollguard-backends", namespace: str = "monitoring",
                       interval: str | None = None) -> dict[str, Any]:
    """The PodMonitor the chart renders for backends with its default values
    (``metrics.backendPodMonitor``): every namespace, pods with an ``app`` label, port ``http``,
    the ``app`` and ``rollguard.io/track`` pod labels copied into the series."""
    return podmonitor(name, namespace, port="http", interval=interval,
                      selector={"matchExpressions": [{"key": "app", "operator": "Exists"}]},
                      pod_target_labels=["app", "rollguard.io/track"], any_namespace=True)


def podmonitor_scrape_configs(podmonitor: dict[str, Any], api: KubernetesAPI,
                              default_interval: str | None = None) -> list[dict[str, Any]]:
    """The scrape configs the Prometheus Operator generates for one PodMonitor.

    ``podmonitor`` is a ``monitoring.coreos.com/v1`` PodMonitor (dict). Supported fields:
    ``spec.selector.matchLabels``, ``spec.selector.matchExpressions`` (In, NotIn, Exists,
    DoesNotExist), ``spec.namespaceSelector`` (``matchNames`` or ``any``), ``spec.podTargetLabels``,
    ``spec.jobLabel``, and per ``spec.podMetricsEndpoints[]``: ``port``, ``path``, ``interval``,
    ``scheme``. The rule order and label names follow the operator's generator
    (prometheus-operator ``pkg/prometheus/promcfg.go``, ``generatePodMonitorConfig``), so a query
    written against a cluster with the operator selects the same series here.
    Raises ``ValueError`` naming the field for anything else it does not support.
    """
    meta, spec = podmonitor.get("metadata", {}), podmonitor.get("spec", {})
    ns, name = meta.get("namespace", "default"), meta["name"]
    unsupported = set(spec) - {"selector", "namespaceSelector", "podTargetLabels", "podMetricsEndpoints", "jobLabel"}
    if unsupported:
        raise ValueError(f"PodMonitor {ns}/{name}: spec.{sorted(unsupported)[0]} is not supported here")
    sd: dict[str, Any] = {"role": "pod", "api_server": api.server,
                          "tls_config": {"ca_file": str(api.ca_file), "cert_file": str(api.cert_file),
                                         "key_file": str(api.key_file)}}
    nsel = spec.get("namespaceSelector", {})
    if not nsel.get("any"):
        sd["namespaces"] = {"names": nsel.get("matchNames") or [ns]}

    selector = spec.get("selector", {})
    keep: list[dict[str, Any]] = []
    for key, value in sorted(selector.get("matchLabels", {}).items()):
        keep.append({"action": "keep", "source_labels": [f"__meta_kubernetes_pod_label_{_label_name(key)}",
                                                          f"__meta_kubernetes_pod_labelpresent_{_label_name(key)}"],
                     "regex": f"({re.escape(value)});true"})
    for i, expr in enumerate(selector.get("matchExpressions", [])):
        label, present = (f"__meta_kubernetes_pod_label_{_label_name(expr['key'])}",
                          f"__meta_kubernetes_pod_labelpresent_{_label_name(expr['key'])}")
        op = expr.get("operator")
        values = "|".join(re.escape(v) for v in expr.get("values", []))
        if op == "In":
            keep.append({"action": "keep", "source_labels": [label, present], "regex": f"({values});true"})
        elif op == "NotIn":
            keep.append({"action": "drop", "source_labels": [label, present], "regex": f"({values});true"})
        elif op == "Exists":
            keep.append({"action": "keep", "source_labels": [present], "regex": "true"})
        elif op == "DoesNotExist":
            keep.append({"action": "drop", "source_labels": [present], "regex": "true"})
        else:
            raise ValueError(f"PodMonitor {ns}/{name}: spec.selector.matchExpressions[{i}].operator {op!r}")

    job = f"{ns}/{name}"
    configs = []
    for i, ep in enumerate(spec.get("podMetricsEndpoints", [])):
        extra = set(ep) - {"port", "path", "interval", "scheme"}
        if extra:
            raise ValueError(f"PodMonitor {ns}/{name}: spec.podMetricsEndpoints[{i}].{sorted(extra)[0]} "
                             "is not supported here")
        relabel: list[dict[str, Any]] = [
            {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
            {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
            *keep,
            {"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": ep["port"]},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ]
        for label in spec.get("podTargetLabels", []):
            relabel.append({"source_labels": [f"__meta_kubernetes_pod_label_{_label_name(label)}"],
                            "target_label": _label_name(label), "regex": "(.+)", "replacement": "${1}"})
        relabel.append({"target_label": "job", "replacement": job})
        if spec.get("jobLabel"):
            relabel.append({"source_labels": [f"__meta_kubernetes_pod_label_{_label_name(spec['jobLabel'])}"],
                            "target_label": "job", "regex": "(.+)", "replacement": "${1}"})
        relabel.append({"target_label": "endpoint", "replacement": ep["port"]})
        cfg: dict[str, Any] = {"job_name": f"podMonitor/{ns}/{name}/{i}", "honor_labels": False,
                               "kubernetes_sd_configs": [sd], "metrics_path": ep.get("path", "/metrics"),
                               "scheme": ep.get("scheme", "http"), "relabel_configs": relabel}
        interval = ep.get("interval") or default_interval
        if interval:
            cfg["scrape_interval"] = interval
        configs.append(cfg)
    return configs


def prometheus_binary() -> str:
    """The Prometheus built with the cluster's binaries (it has Kubernetes service discovery,
    which Debian's package leaves out); ``ROLLGUARD_PROMETHEUS`` names another one."""
    override = os.environ.get("ROLLGUARD_PROMETHEUS")
    if override:
        return override
    from rollguard.localenv.controlplane import binaries_dir

    return str(binaries_dir() / "prometheus")


class Prometheus:
    """One Prometheus process: ``start()``, query, ``stop()``.

    ``scrape_interval`` is the global interval (Prometheus duration, e.g. ``"5s"``);
    ``pod_monitors`` (with ``kubernetes``) turn on pod discovery as described in the module.
    """

    def __init__(self, workdir: Path, *, scrape_interval: str = "1s", rule_files: list[Path] | None = None,
                 kubernetes: KubernetesAPI | None = None, pod_monitors: list[dict[str, Any]] | None = None) -> None:
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        self.rule_files = rule_files or []
        self.kubernetes = kubernetes
        self.pod_monitors = pod_monitors or []
        if self.pod_monitors and kubernetes is None:
            raise ValueError("pod_monitors need kubernetes= (how Prometheus reaches the apiserver)")
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process id (0 when not started)."""
        return self._proc.pid if self._proc is not None else 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        binary = prometheus_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "targets").mkdir(exist_ok=True)
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [{
                "job_name": "rollguard-test",
                "file_sd_configs": [{"files": [str(self.workdir / "targets" / "*.json")], "refresh_interval": "1s"}],
            }, *self._pod_scrape_configs()],
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

    def _pod_scrape_configs(self) -> list[dict[str, Any]]:
        if self.kubernetes is None:
            return []
        return [cfg for pm in self.pod_monitors for cfg in podmonitor_scrape_configs(pm, self.kubernetes)]

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

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets (``/api/v1/targets``): labels, health, last error."""
        body = _get(f"{self.url}/api/v1/targets?state=active")
        assert body is not None
        active: list[dict[str, Any]] = json.loads(body)["data"]["activeTargets"]
        return active

    def stop(self) -> None:
        if self._proc is not None:
            _proc.stop_pid(self._proc.pid)
            self._proc = None


def _get(url: str) -> bytes | None:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback URL we built)
        return bytes(r.read()) if r.status == 200 else None

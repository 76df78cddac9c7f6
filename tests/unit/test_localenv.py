"""The local cluster's pieces that need no cluster: the PodMonitor relabelling, the pod runner's
env and volume layout, kwok's stages."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollguard.localenv import kwok, podnet, podrunner
from rollguard.localenv.podrunner import (
    ConfigError,
    PodRunner,
    Running,
    container_argv,
    container_env,
    expand,
    field_value,
    write_atomic_volume,
)
from rollguard.localenv.prometheus import KubernetesAPI, backend_podmonitor, podmonitor, podmonitor_scrape_configs
from tests.support.helm import helm, one

API = KubernetesAPI("https://127.0.0.1:6443", Path("/ca.crt"), Path("/p.crt"), Path("/p.key"))


def test_podmonitor_relabelling_is_what_the_prometheus_operator_generates() -> None:
    """The rule list for a PodMonitor with a label selector, a port and two podTargetLabels, in
    the operator's order and spelling (its generator's golden output for such a PodMonitor)."""
    pm = podmonitor("web", "shop", port="http", interval="15s",
                    selector={"matchLabels": {"app.kubernetes.io/name": "web"}},
                    pod_target_labels=["rollguard.io/track", "team"])
    [cfg] = podmonitor_scrape_configs(pm, API)
    assert cfg["job_name"] == "podMonitor/shop/web/0"
    assert cfg["scrape_interval"] == "15s" and cfg["metrics_path"] == "/metrics"
    assert cfg["kubernetes_sd_configs"] == [{
        "role": "pod", "api_server": API.server, "namespaces": {"names": ["shop"]},
        "tls_config": {"ca_file": "/ca.crt", "cert_file": "/p.crt", "key_file": "/p.key"}}]
    assert cfg["relabel_configs"] == [
        {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
        {"action": "keep", "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name",
                                             "__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"],
         "regex": "(web);true"},
        {"action": "keep", "source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "http"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_label_rollguard_io_track"], "target_label": "rollguard_io_track",
         "regex": "(.+)", "replacement": "${1}"},
        {"source_labels": ["__meta_kubernetes_pod_label_team"], "target_label": "team", "regex": "(.+)",
         "replacement": "${1}"},
        {"target_label": "job", "replacement": "shop/web"},
        {"target_label": "endpoint", "replacement": "http"},
    ]


@pytest.mark.parametrize(("expr", "rule"), [
    ({"key": "app", "operator": "Exists"},
     {"action": "keep", "source_labels": ["__meta_kubernetes_pod_labelpresent_app"], "regex": "true"}),
    ({"key": "app", "operator": "DoesNotExist"},
     {"action": "drop", "source_labels": ["__meta_kubernetes_pod_labelpresent_app"], "regex": "true"}),
    ({"key": "app", "operator": "In", "values": ["a", "b.c"]},
     {"action": "keep", "source_labels": ["__meta_kubernetes_pod_label_app", "__meta_kubernetes_pod_labelpresent_app"],
      "regex": "(a|b\\.c);true"}),
])
def test_match_expressions_become_keep_and_drop_rules(expr: dict[str, Any], rule: dict[str, Any]) -> None:
    [cfg] = podmonitor_scrape_configs(podmonitor("m", "ns", port="http", selector={"matchExpressions": [expr]},
                                                 any_namespace=True), API)
    assert rule in cfg["relabel_configs"]
    assert "namespaces" not in cfg["kubernetes_sd_configs"][0]  # any namespace


def test_unsupported_podmonitor_fields_are_refused_by_name() -> None:
    pm = podmonitor("m", "ns", port="http", selector={})
    pm["spec"]["podMetricsEndpoints"][0]["relabelings"] = []
    with pytest.raises(ValueError, match=r"podMetricsEndpoints\[0\]\.relabelings"):
        podmonitor_scrape_configs(pm, API)


def test_the_charts_backend_podmonitor_is_the_one_the_local_prometheus_runs() -> None:
    objs = helm().template("--set", "metrics.backendPodMonitor.enabled=true")
    chart = one(objs, "PodMonitor", "rg-rollguard-backends")
    local = backend_podmonitor("rg-rollguard-backends", "rollguard")
    assert chart["spec"] == local["spec"]
    assert podmonitor_scrape_configs(chart, API) == podmonitor_scrape_configs(local, API)
    assert not [o for o in helm().template() if o["kind"] == "PodMonitor"]  # off by default


POD: dict[str, Any] = {
    "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"rollguard.io/track": "canary"},
                 "annotations": {"team": "payments"}},
    "spec": {"nodeName": "kwok-node-0", "serviceAccountName": "default"},
    "status": {"podIP": "127.10.0.7", "hostIP": "127.0.0.1"},
}


class FakeObjects:
    def __init__(self, data: dict[tuple[str, str], dict[str, bytes]]) -> None:
        self.d = data

    def data(self, kind: str, name: str) -> dict[str, bytes] | None:
        return self.d.get((kind, name))


def test_container_env_resolves_values_references_and_the_downward_api() -> None:
    objects = FakeObjects({("configmap", "cfg"): {"level": b"debug", "A": b"1"},
                           ("secret", "db"): {"url": b"postgresql://x"}})
    c = {"envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
         "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "ADDR", "value": "$(POD_IP):8000 $$(POD_IP) $(UNKNOWN)"},
                 {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}},
                 {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
                 {"name": "TRACK", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['rollguard.io/track']"}}},
                 {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}}]}
    env = container_env(POD, c, objects)  # type: ignore[arg-type]
    assert env == {"CFG_level": "debug", "CFG_A": "1", "POD_IP": "127.10.0.7",
                   "ADDR": "127.10.0.7:8000 $(POD_IP) $(UNKNOWN)", "LEVEL": "debug", "DB": "postgresql://x",
                   "TRACK": "canary"}


def test_a_missing_reference_is_a_config_error_naming_it() -> None:
    c = {"env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]}
    with pytest.raises(ConfigError, match="env DB: secret 'db' key 'url' not found"):
        container_env(POD, c, FakeObjects({}))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fieldPath"):
        field_value(POD, "status.phase")
    assert field_value(POD, "metadata.annotations['team']") == "payments"
    assert expand("$(A)-$(B)", {"A": "x"}) == "x-$(B)"


def test_volumes_are_laid_out_as_the_kubelet_does_and_swapped_atomically(tmp_path: Path) -> None:
    vol = tmp_path / "flags"
    write_atomic_volume(vol, {"flags.json": b'{"v": 1}', "flagd.json": b"{}"})
    assert os.readlink(vol / "flags.json") == "..data/flags.json"
    first = os.readlink(vol / "..data")
    assert (vol / "flags.json").read_bytes() == b'{"v": 1}'
    write_atomic_volume(vol, {"flags.json": b'{"v": 2}'})
    assert os.readlink(vol / "..data") != first and not (vol / first).exists()  # old set removed
    assert (vol / "flags.json").read_bytes() == b'{"v": 2}'
    assert not (vol / "flagd.json").exists()  # a key gone from the ConfigMap is gone from the volume
    write_atomic_volume(vol, {"a": b"1", "b": b"2"}, items=[{"key": "b", "path": "sub/b.txt"}])
    assert (vol / "sub" / "b.txt").read_bytes() == b"2" and not (vol / "a").exists()


def test_kwok_gives_every_node_a_loopback_pod_range_and_ends_run_to_completion_pods() -> None:
    for node in kwok.nodes():
        net = ipaddress.IPv4Network(node["spec"]["podCIDR"])
        assert net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8"))
    stages = {s["metadata"]["name"]: s for s in yaml.safe_load_all(yaml.safe_dump_all(kwok.pod_stages()))}
    assert set(stages) == {"pod-ready", "pod-start", "pod-complete", "pod-succeed", "pod-fail", "pod-delete"}
    # a pod the runner runs starts not Ready (the runner says when it is); any other is Ready at once
    run = {"key": f'.metadata.labels["{podrunner.RUN_LABEL}"]', "operator": "Exists"}
    assert run in stages["pod-start"]["spec"]["selector"]["matchExpressions"]
    for name, ready in (("pod-start", "False"), ("pod-ready", "True")):
        status = stages[name]["spec"]["next"]["statusTemplate"]
        assert f'status: "{ready}"\n  type: Ready' in status and f"ready: {ready.lower()}" in status
    fail = stages["pod-fail"]["spec"]
    assert {"key": ".spec.restartPolicy", "operator": "In", "values": ["Never", "OnFailure"]} \
        in fail["selector"]["matchExpressions"]
    assert podrunner.EXIT_CODE_ANNOTATION in fail["next"]["statusTemplate"]
    # a pod the runner runs ends with its process, never at once
    complete = stages["pod-complete"]["spec"]["selector"]["matchExpressions"]
    assert {"key": f'.metadata.labels["{podrunner.RUN_LABEL}"]', "operator": "DoesNotExist"} in complete


@pytest.mark.parametrize(("returncode", "code"), [(0, 0), (3, 3), (-9, 137), (-15, 143)])
def test_a_killed_process_ends_its_container_with_128_plus_the_signal(returncode: int, code: int) -> None:
    assert podrunner.exit_code(returncode) == code


def test_two_local_clusters_never_share_a_pod_network_and_a_dead_clusters_network_is_reused(tmp_path: Path) -> None:
    quiet = tmp_path / "tcp"  # no listening sockets (this machine's may hold some: see the test below)
    quiet.write_text("  sl  local_address rem_address   st\n")
    first = podnet.claim(claim_dir=tmp_path, tcp_table=quiet)
    second = podnet.claim(claim_dir=tmp_path, tcp_table=quiet)
    assert first == podnet.FIRST_NET and second == first + 1
    nodes_a, nodes_b = kwok.nodes(net=first), kwok.nodes(net=second)
    ranges = [ipaddress.IPv4Network(n["spec"]["podCIDR"]) for n in nodes_a + nodes_b]
    assert all(not a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1:])
    # A cluster whose processes are all gone (a killed test run) blocks nothing.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"{first}.claim").write_text(f"{dead.pid}\n")
    assert podnet.claim(claim_dir=tmp_path, tcp_table=quiet) == first
    # A cluster is held by its processes, not only by the command that started it.
    podnet.hold(first, [os.getpid()], claim_dir=tmp_path)
    assert podnet.claim(claim_dir=tmp_path, tcp_table=quiet) == second + 1
    podnet.release(second, claim_dir=tmp_path)
    assert podnet.claim(claim_dir=tmp_path, tcp_table=quiet) == second


def test_a_network_a_stray_process_listens_on_is_never_claimed(tmp_path: Path) -> None:
    """A pod's process that outlived its cluster (its runner was killed) still listens on its pod
    address: a new cluster on that network would give a pod the same address, which could not
    bind it, and its Service and Prometheus would reach the stray process instead."""
    table = tmp_path / "tcp"
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    listen_10 = "   0: 0B000A7F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n"
    connected_11 = "   1: 01000B7F:9C40 0100007F:1F40 01 00000000:00000000 00:00000000 00000000     0        0 2 1\n"
    table.write_text(header + listen_10 + connected_11)
    assert podnet.listening_nets(table) == {podnet.FIRST_NET}  # 127.10.0.11:8000 listens; 127.11 only connects
    claims = tmp_path / "claims"
    assert podnet.claim(claim_dir=claims, tcp_table=table) == podnet.FIRST_NET + 1
    # the live table, read the same way: a socket listening on 127.<LAST_NET>.255.254
    with socket.socket() as s:
        s.bind((f"127.{podnet.LAST_NET}.255.254", 0))
        s.listen()
        assert podnet.LAST_NET in podnet.listening_nets()
    assert podnet.listening_nets(tmp_path / "absent") == set()


def test_a_gone_pods_process_is_told_to_stop_once_and_drains(tmp_path: Path) -> None:
    """The runner signals every gone pod's process first, then waits for each: the wait must not
    send SIGTERM again, which would cut the process' drain short (the demo backend flushes its
    failures and prints its FINAL line on the first one)."""
    script = ("import signal, sys, time\n"
              "def on_term(*_):\n"
              "    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # a second one: no drain\n"
              "    print('DRAINING', flush=True)\n"
              "    time.sleep(1.0)\n"
              "    print('FINAL', flush=True)\n"
              "    sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, on_term)\n"
              "print('SERVING', flush=True)\n"
              "while True:\n"
              "    time.sleep(0.1)\n")
    out = tmp_path / "out.log"
    with out.open("wb") as f:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=f, start_new_session=True)
    r = Running(key="ns/pod", uid="u", labels={}, container="c", directory=tmp_path, argv=[], env={}, mounts=[],
                proc=proc)
    def printed(word: str) -> None:
        for _ in range(600):
            if word in out.read_text() or proc.poll() is not None:
                return
            time.sleep(0.05)

    printed("SERVING")  # its handler is installed
    PodRunner._terminate(r)
    printed("DRAINING")  # meanwhile the runner told the other gone pods' processes
    PodRunner._kill(r)
    assert proc.returncode == 0 and "FINAL" in out.read_text()


def test_the_image_reference_is_reduced_to_its_repository() -> None:
    for ref in ("ghcr.io/rollguard/rollguard", "ghcr.io/rollguard/rollguard:0.1.0",
                "ghcr.io/rollguard/rollguard@sha256:" + "a" * 64,
                "ghcr.io/rollguard/rollguard:0.1.0@sha256:" + "b" * 64):
        assert podrunner.image_repository(ref) == "ghcr.io/rollguard/rollguard", ref
    assert podrunner.image_repository("localhost:5000/web:1") == "localhost:5000/web"


def test_rollguards_image_runs_its_dockerfile_entrypoint_from_this_checkout() -> None:
    """The chart's containers give only ``args``: the image's ENTRYPOINT (the CLI) runs them;
    without ``args`` the image's CMD is used, as a container runtime composes them."""
    rollguard = str(Path(sys.executable).parent / "rollguard")
    image = "ghcr.io/rollguard/rollguard:0.1.0"
    assert container_argv({"name": "api", "image": image, "args": ["api", "serve", "--port=$(PORT)"]},
                          {"PORT": "8000"}) == [rollguard, "api", "serve", "--port=8000"]
    assert container_argv({"name": "cli", "image": image}, {}) == [rollguard, "--help"]
    # a command replaces the entrypoint (and its CMD), as in Kubernetes
    assert container_argv({"name": "t", "image": image, "command": ["python", "-c"], "args": ["pass"]},
                          {}) == [sys.executable, "-c", "pass"]
    with pytest.raises(ConfigError, match="'busybox:1' is not rollguard's"):
        container_argv({"name": "sh", "image": "busybox:1", "args": ["true"]}, {})

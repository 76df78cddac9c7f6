"""The pod runner: a local process for each Running pod that asks for one, as a container would run.

kwok plays the kubelet's API side (pod status, addresses) but runs nothing. For the pods that
carry :data:`RUN_LABEL` (``localenv.rollguard.io/run``, set to ``"true"`` by convention; the
key is what counts), this runner does what the kubelet and the container runtime would do,
with local processes:

- the container's ``command`` + ``args`` is the process (``python``/``python3`` as the first
  word is this interpreter, standing in for the image's), with ``$(VAR)`` references expanded
  as the kubelet expands them. One image is known without a ``command``: rollguard's own (the
  chart's ``image.repository``, any tag or digest), built from this checkout, whose
  ``ENTRYPOINT`` and ``CMD`` come from the Dockerfile (``rollguard`` is this checkout's CLI);
- its service account's token, the cluster's CA and its namespace are mounted at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` (a token bound to the pod, renewed at 80 % of
  its life), and ``KUBERNETES_SERVICE_HOST``/``_PORT`` name the apiserver, when the pod asks for
  it (``automountServiceAccountToken``) and its ServiceAccount exists, so in-cluster clients log in
  as the pod's identity and its RBAC applies;
- its network is the pod's: a Python server that binds every address (``0.0.0.0``) binds the
  pod's address instead, as in its own network namespace (``podsite/sitecustomize.py``), and
  its HTTP clients reach Services through the service proxy, short names included (``http_proxy``
  names the pod's namespace, see :mod:`rollguard.localenv.svcproxy`), when the runner is given
  one;
- its environment is the container's ``env`` and ``envFrom``: plain values, ``configMapKeyRef``,
  ``secretKeyRef`` and the downward API (``fieldRef``: ``metadata.name``, ``metadata.namespace``,
  ``metadata.uid``, ``metadata.labels['k']``, ``metadata.annotations['k']``, ``spec.nodeName``,
  ``spec.serviceAccountName``, ``status.podIP``, ``status.hostIP``);
- its ConfigMap, Secret and emptyDir volumes are laid out the way the kubelet lays out an
  atomic-writer volume (``..<timestamp>/`` holding the files, ``..data`` a symlink to it, one
  symlink per key), re-written with a ``..data`` swap when the object changes, and mounted at
  the container's ``mountPath`` in a private mount namespace of the process (an overlay on
  the nearest existing parent keeps the host's directories untouched);
- the process is restarted when it exits, as ``restartPolicy`` says (Always: always;
  OnFailure: on a non-zero exit; Never: not), with a back-off up to 10 s, and stopped when the
  pod goes away;
- when every container of a pod that runs to completion has ended, the pod's exit code (the
  first non-zero container's, else 0; 128 + N for a process killed by signal N, as container
  runtimes report it) goes into the pod's annotation :data:`EXIT_CODE_ANNOTATION`, from which
  kwok's stages set the phase (Succeeded or Failed) and the containers' terminated state;
- a pod is Ready when each of its containers' processes runs and passes its ``readinessProbe``
  (HTTP, TCP or exec, with the probe's delay, period, timeout and thresholds, see
  :mod:`rollguard.localenv.probes`); the runner writes the pod's Ready and ContainersReady
  conditions and its containers' ``ready``, as the kubelet's status manager does, so that a
  Deployment is available, and a Service sends traffic to a pod, only once it answers.

A pod's process listens on its pod address (``status.podIP``, 127.10.x.y), which it reads
from the downward API like any backend.

    python -m rollguard.localenv.podrunner --kubeconfig FILE --dir DIR
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rollguard.localenv.podsite.sitecustomize import POD_IP_ENV
from rollguard.localenv.probes import Probe, ProbeError, Readiness

log = logging.getLogger("rollguard.localenv.podrunner")

RUN_LABEL = "localenv.rollguard.io/run"
# Written by the runner on a pod that ran to completion: its exit code, which kwok's stages turn
# into the pod's phase and container status (see rollguard.localenv.kwok).
EXIT_CODE_ANNOTATION = "localenv.rollguard.io/exit-code"
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
_FIELD_INDEX = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
_MAX_BACKOFF = 10.0
_CHECKOUT = Path(__file__).resolve().parents[2]  # the repository root this runner's rollguard lives in
_PODSITE = Path(__file__).resolve().parent / "podsite"
# A pod's code is this checkout's: its three import roots (see pyproject.toml), after the pod's site.
_POD_PYTHONPATH = os.pathsep.join(str(p) for p in (_PODSITE, _CHECKOUT, _CHECKOUT / "operator", _CHECKOUT / "api"))
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_SECONDS = 3607  # the kubelet's projected token lifetime (the apiserver's default for it)
_INSTRUCTION = re.compile(r"^(ENTRYPOINT|CMD)\s+(\[.*\])\s*$", re.MULTILINE)


class ConfigError(Exception):
    """The pod cannot be started as specified (a missing ConfigMap key, an unsupported field)."""


def expand(text: str, env: dict[str, str]) -> str:
    """Expand ``$(VAR)`` from ``env`` as the kubelet does: unknown references stay as written, ``$$`` is ``$``."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR_REF.sub(sub, text)


def image_repository(image: str) -> str:
    """``registry/name`` of an image reference, without its tag or digest."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def known_image(image: str, checkout: Path = _CHECKOUT) -> tuple[list[str], list[str]] | None:
    """``(ENTRYPOINT, CMD)`` of rollguard's image, built from ``checkout``'s Dockerfile, when
    ``image`` is that image (the chart's ``image.repository``); ``None`` for any other image."""
    import yaml  # not at import: every pod's exec wrapper imports this module

    values = yaml.safe_load((checkout / "charts" / "rollguard" / "values.yaml").read_text())
    if image_repository(image) != values["image"]["repository"]:
        return None
    found = {m.group(1): json.loads(m.group(2)) for m in _INSTRUCTION.finditer((checkout / "Dockerfile").read_text())}
    return list(found.get("ENTRYPOINT", [])), list(found.get("CMD", []))


def container_argv(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The process of ``container`` as a container runtime composes it: ``command`` (else the
    image's ENTRYPOINT) then ``args`` (else, without a ``command``, the image's CMD), ``$(VAR)``
    expanded. ``python``/``python3``/``rollguard`` as the first word are this interpreter and its
    CLI. Raises :class:`ConfigError` when there is no process to run."""
    command, args = container.get("command") or [], container.get("args") or []
    if not command:
        image = known_image(container.get("image", ""))
        if image is None:
            raise ConfigError(f"container {container['name']!r} has no command, and image "
                              f"{container.get('image')!r} is not rollguard's: there is no entrypoint to take")
        command, args = image[0], args or image[1]
    argv = [expand(a, env) for a in [*command, *args]]
    if not argv:
        raise ConfigError(f"container {container['name']!r} has nothing to run")
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    elif argv[0] == "rollguard":
        argv[0] = str(Path(sys.executable).parent / "rollguard")
    return argv


def exit_code(returncode: int) -> int:
    """A container's exit code from a process' return code: 128 + N for a process killed by
    signal N (``Popen`` gives -N), as container runtimes report it."""
    return returncode if returncode >= 0 else 128 - returncode


def field_value(pod: dict[str, Any], path: str) -> str:
    """The downward API's value of ``fieldRef.fieldPath`` for ``pod`` (a Pod as a dict)."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"), "status.hostIP": status.get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    m = _FIELD_INDEX.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise ConfigError(f"fieldRef.fieldPath {path!r} is not supported by the pod runner")


class Objects:
    """Reads ConfigMaps and Secrets of one namespace for one reconcile pass (each read once)."""

    def __init__(self, core: Any, namespace: str) -> None:
        self.core, self.namespace = core, namespace
        self._cache: dict[tuple[str, str], dict[str, Any] | None] = {}

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object as a dict, ``None`` when it does not exist. ``kind``: configmap | secret | serviceaccount."""
        from kubernetes.client.exceptions import ApiException

        from rollguard.kube.client import raw_json  # not at import: every pod's exec wrapper imports this module

        key = (kind, name)
        if key not in self._cache:
            read = {"configmap": self.core.read_namespaced_config_map, "secret": self.core.read_namespaced_secret,
                    "serviceaccount": self.core.read_namespaced_service_account}[kind]
            try:
                self._cache[key] = raw_json(read(name, self.namespace, _preload_content=False))
            except ApiException as e:
                if e.status != 404:
                    raise
                self._cache[key] = None
        return self._cache[key]

    def data(self, kind: str, name: str) -> dict[str, bytes] | None:
        obj = self.get(kind, name)
        if obj is None:
            return None
        if kind == "secret":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return out

    def version(self, kind: str, name: str) -> str:
        obj = self.get(kind, name)
        return "" if obj is None else str(obj["metadata"].get("resourceVersion", ""))


def container_env(pod: dict[str, Any], container: dict[str, Any], objects: Objects) -> dict[str, str]:
    """The container's environment as the kubelet builds it (envFrom first, then env, in order).

    Raises :class:`ConfigError` for a missing, non-optional ConfigMap/Secret or key, as the
    kubelet refuses to start such a container (``CreateContainerConfigError``).
    """
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, ref in (("configmap", src.get("configMapRef")), ("secret", src.get("secretRef"))):
            if not ref:
                continue
            data = objects.data(kind, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"envFrom: {kind} {ref['name']!r} not found")
            env.update({prefix + k: v.decode(errors="replace") for k, v in data.items()})
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            env[name] = expand(item.get("value", ""), env)
            continue
        vf = item["valueFrom"]
        if "fieldRef" in vf:
            env[name] = field_value(pod, vf["fieldRef"]["fieldPath"])
            continue
        for kind, key in (("configmap", "configMapKeyRef"), ("secret", "secretKeyRef")):
            ref = vf.get(key)
            if not ref:
                continue
            data = objects.data(kind, ref["name"])
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    break
                raise ConfigError(f"env {name}: {kind} {ref['name']!r} key {ref['key']!r} not found")
            env[name] = data[ref["key"]].decode(errors="replace")
            break
        else:
            raise ConfigError(f"env {name}: valueFrom {sorted(vf)} is not supported by the pod runner")
    return env


def write_atomic_volume(directory: Path, files: dict[str, bytes], items: list[dict[str, Any]] | None = None) -> None:
    """Lay ``files`` out in ``directory`` as the kubelet's atomic writer does.

    The files go into a fresh ``..<timestamp>`` directory, ``..data`` is swapped to it with one
    rename (readers see the old set or the new set, never a mix), and each visible name is a
    symlink through ``..data``. ``items`` (``key``/``path``) select and rename keys.
    """
    directory.mkdir(parents=True, exist_ok=True)
    selected = {it["path"]: files[it["key"]] for it in items if it["key"] in files} if items else dict(files)
    stamp = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for rel, content in selected.items():
        target = stamp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    tmp_link = directory / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(stamp.name)
    old = (directory / "..data").resolve() if (directory / "..data").is_symlink() else None
    os.replace(tmp_link, directory / "..data")
    for rel in {r.split("/", 1)[0] for r in selected}:
        link = directory / rel
        if not link.is_symlink():
            link.symlink_to(f"..data/{rel}")
    for entry in directory.iterdir():  # names no longer in the volume
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in {
                r.split("/", 1)[0] for r in selected}:
            entry.unlink()
    if old is not None and old != stamp.resolve():
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class Mount:
    source: str
    target: str
    read_only: bool


@dataclass
class Running:
    """One container's process of one pod."""

    key: str
    uid: str
    labels: dict[str, str]
    container: str
    directory: Path
    argv: list[str]
    env: dict[str, str]
    mounts: list[Mount]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    volume_versions: dict[str, str] = field(default_factory=dict)
    terminated: bool = False  # SIGTERM sent: once, as the kubelet does (a second one cuts a drain short)
    restart_policy: str = "Always"
    pod_ip: str = ""
    token_refresh_at: float = 0.0  # monotonic time the service account token is renewed at
    exit_code: int | None = None  # the container has ended for good (restartPolicy Never/OnFailure)
    readiness: Readiness = field(default_factory=lambda: Readiness(None))

    def ready(self) -> bool:
        """Running and, with a readiness probe, passing it."""
        return self.proc is not None and self.proc.poll() is None and self.readiness.ready


class PodRunner:
    """Watches pods with :data:`RUN_LABEL` and keeps one local process per container running.

    ``kubeconfig``: the cluster; ``workdir``: where pod directories and logs go;
    ``interval``: seconds between passes (the runner lists pods; it keeps no watch open so a
    restarted apiserver costs it nothing); ``service_proxy``: the URL of the cluster's service
    proxy (:mod:`rollguard.localenv.svcproxy`), set as the pods' ``http_proxy``.
    """

    def __init__(self, kubeconfig: Path, workdir: Path, *, interval: float = 0.5,
                 service_proxy: str | None = None) -> None:
        self.kubeconfig, self.workdir, self.interval = kubeconfig, workdir, interval
        self.service_proxy = service_proxy
        self.running: dict[tuple[str, str], Running] = {}
        self.finished: list[Running] = []  # gone pods; their logs stay, as `kubectl logs --previous` reads them
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._core: Any = None
        self._reported: set[str] = set()  # uids of pods whose exit code is written
        self._apiserver = ("127.0.0.1", "443")
        self._cluster_ca = b""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> PodRunner:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        self._core = client.CoreV1Api(api)
        server = urlsplit(api.configuration.host)
        self._apiserver = (server.hostname or "127.0.0.1", str(server.port or 443))
        self._cluster_ca = Path(api.configuration.ssl_ca_cert).read_bytes() if api.configuration.ssl_ca_cert else b""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="podrunner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        # the pods' processes first, with SIGTERM and their grace period: they die with the
        # runner's thread (SIGKILL, see _spawn), and a pass in flight that starts one again
        # leaves nothing behind either
        with self._lock:
            for r in self.running.values():
                self._terminate(r)
            for r in self.running.values():
                self._kill(r)
            self.running.clear()
        if self._thread is not None:
            self._thread.join(10)

    def processes(self) -> dict[str, int]:
        """``namespace/pod/container`` -> pid of each process running now.

        A process being stopped (its pod gone) is waited for: once it is not listed here it has
        exited, and its pod is in :attr:`finished`."""
        with self._lock:
            return {f"{r.key}/{r.container}": r.proc.pid for r in self.running.values()
                    if r.proc is not None and r.proc.poll() is None}

    def log_of(self, namespace: str, pod: str, container: str | None = None) -> str:
        """The output of a pod's process (first container unless ``container`` names one), gone pods too."""
        with self._lock:
            candidates = [*self.running.values(), *self.finished]
        for r in candidates:
            if r.key == f"{namespace}/{pod}" and (container is None or r.container == container):
                path = r.directory / f"{r.container}.log"
                return path.read_text(errors="replace") if path.exists() else ""
        return ""

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception:  # the apiserver may be restarting: try again next pass
                log.exception("pod runner pass failed")
            self._stop.wait(self.interval)

    # ------------------------------------------------------------------ one pass
    def reconcile(self) -> None:
        """Start what should run, refresh volumes, restart what exited, stop what is gone."""
        from rollguard.kube.client import raw_json

        # Read as JSON, not as the client's models: building and flattening them cost about 2 ms
        # a pod, every pass (0.5 s), in the test process that also plays the users.
        pods = raw_json(self._core.list_pod_for_all_namespaces(
            label_selector=RUN_LABEL, _preload_content=False)).get("items") or []
        wanted: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        for pod in pods:
            meta, status = pod["metadata"], pod.get("status") or {}
            if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not status.get("podIP"):
                continue
            for c in pod["spec"]["containers"]:
                wanted[(meta["uid"], c["name"])] = (pod, c)
        with self._lock:
            gone = [self.running.pop(k) for k in [k for k in self.running if k not in wanted]]
            # All told at once, then awaited: kwok hands a deleted pod's address to the next pod
            # right away, and a process still serving there (stopped one after the other, each
            # draining its requests) would answer that pod's traffic.
            for r in gone:
                log.info("pod %s is gone: stopping %s", r.key, r.container)
                self._terminate(r)
            for r in gone:
                self._kill(r)
                shutil.rmtree(r.directory / "volumes", ignore_errors=True)
                self.finished.append(r)
            by_namespace: dict[str, Objects] = {}
            for key, (pod, c) in wanted.items():
                ns = pod["metadata"]["namespace"]
                objects = by_namespace.setdefault(ns, Objects(self._core, ns))
                try:
                    self._ensure(key, pod, c, objects)
                except ConfigError as e:
                    log.warning("pod %s/%s container %s not started: %s", ns, pod["metadata"]["name"], c["name"], e)
            ended = {key[0]: pod for key, (pod, _) in wanted.items()
                     if pod["spec"].get("restartPolicy", "Always") != "Always"}
            for uid, pod in ended.items():
                codes = [r.exit_code for (u, _), r in self.running.items() if u == uid]
                if uid in self._reported or len(codes) != len(pod["spec"]["containers"]) or None in codes:
                    continue
                self._report_exit(pod, next((c for c in codes if c), 0))
            self._reported &= {key[0] for key in wanted}
            due = [r for r in self.running.values() if r.proc is not None and r.proc.poll() is None]
        self._probe([r for r in due if r.readiness.is_due(time.monotonic())])
        with self._lock:
            pods_now = {uid: pod for (uid, _), (pod, _) in wanted.items()}
            for uid, pod in pods_now.items():
                containers = [self.running.get((uid, c["name"])) for c in pod["spec"]["containers"]]
                if any(r is None or r.exit_code is not None for r in containers):
                    continue  # not started, or ended: kwok's stages say what it is
                self._report_ready(pod, {r.container: r.ready() for r in containers if r is not None})

    def _probe(self, due: list[Running]) -> None:
        """Run the readiness probes that are due, at once (one slow probe must not hold the others)."""
        if not due:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(due)), thread_name_prefix="probe") as pool:
            results = list(pool.map(lambda r: r.readiness.probe.run(
                r.pod_ip, r.proc.pid if r.proc else None, r.env), due))
        now = time.monotonic()
        for r, passed in zip(due, results, strict=True):
            if r.readiness.observe(passed, now):
                log.info("%s/%s is %s (readiness probe: %s)", r.key, r.container,
                         "ready" if r.readiness.ready else "not ready", r.readiness.history)

    def _report_ready(self, pod: dict[str, Any], ready: dict[str, bool]) -> None:
        """Write the pod's Ready and ContainersReady conditions and its containers' ``ready``
        when they differ from what the runner sees, as the kubelet's status manager does."""
        from kubernetes.client.exceptions import ApiException

        meta, status = pod["metadata"], pod.get("status") or {}
        want = "True" if ready and all(ready.values()) else "False"
        conditions = status.get("conditions") or []
        statuses = status.get("containerStatuses") or []
        current = {c.get("type"): c.get("status") for c in conditions}
        if (current.get("Ready") == want and current.get("ContainersReady") == want
                and all(cs.get("ready") == ready.get(cs.get("name")) for cs in statuses)):
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conditions = [c for c in conditions if c.get("type") not in ("Ready", "ContainersReady")]
        for kind in ("Ready", "ContainersReady"):
            before = current.get(kind)
            old: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})
            conditions.append({"type": kind, "status": want,
                               "lastTransitionTime": old.get("lastTransitionTime") if before == want else now})
        statuses = [{**cs, "ready": ready.get(cs.get("name"), False)} for cs in statuses]
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]},
                "status": {"conditions": conditions, "containerStatuses": statuses}}
        try:
            self._core.patch_namespaced_pod_status(meta["name"], meta["namespace"], body,
                                                   _content_type="application/merge-patch+json")
        except ApiException as e:
            if e.status not in (404, 409):  # gone, or changed since this pass read it: the next pass
                raise
            return
        log.info("pod %s/%s Ready=%s", meta["namespace"], meta["name"], want)

    def _report_exit(self, pod: dict[str, Any], code: int) -> None:
        meta = pod["metadata"]
        if (meta.get("annotations") or {}).get(EXIT_CODE_ANNOTATION) is None:
            self._core.patch_namespaced_pod(meta["name"], meta["namespace"],
                                            {"metadata": {"annotations": {EXIT_CODE_ANNOTATION: str(code)}}})
            log.info("pod %s/%s ran to completion: exit code %d", meta["namespace"], meta["name"], code)
        self._reported.add(meta["uid"])

    def _ensure(self, key: tuple[str, str], pod: dict[str, Any], container: dict[str, Any], objects: Objects) -> None:
        meta = pod["metadata"]
        pod_dir = self.workdir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
        r = self.running.get(key)
        if r is None:
            env = container_env(pod, container, objects)
            argv = container_argv(container, env)
            r = Running(key=f"{meta['namespace']}/{meta['name']}", uid=meta["uid"],
                        labels=dict(meta.get("labels") or {}), container=container["name"],
                        directory=pod_dir, argv=argv, env=env, mounts=[],
                        restart_policy=pod["spec"].get("restartPolicy", "Always"),
                        pod_ip=pod["status"]["podIP"])
            try:
                r.readiness = Readiness(Probe.of(container))
            except ProbeError as e:  # the kubelet starts it, and its probe never passes
                log.warning("pod %s container %s: %s; it will never be ready", r.key, r.container, e)
                r.readiness = Readiness(Probe("never", failure_threshold=1))
            self._volumes(r, pod, container, objects)
            self.running[key] = r
        elif r.exit_code is not None:
            return
        else:
            self._volumes(r, pod, container, objects)
        if r.proc is not None and r.proc.poll() is not None:
            code = exit_code(r.proc.returncode)
            if r.restart_policy == "Never" or (r.restart_policy == "OnFailure" and code == 0):
                log.info("%s/%s exited with %d", r.key, r.container, code)
                r.exit_code, r.proc = code, None
                return
            log.warning("%s/%s exited with %s; restarting", r.key, r.container, code)
            r.restarts += 1
            r.next_start = time.monotonic() + min(_MAX_BACKOFF, 0.5 * 2 ** min(r.restarts, 5))
            r.proc = None
        if r.proc is None and time.monotonic() >= r.next_start:
            self._spawn(r)

    def _volumes(self, r: Running, pod: dict[str, Any], container: dict[str, Any], objects: Objects) -> None:
        """Lay out (or refresh) the volumes this container mounts."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        mounts: list[Mount] = []
        for vm in container.get("volumeMounts") or []:
            vol = volumes.get(vm["name"])
            if vol is None:
                raise ConfigError(f"volumeMount {vm['name']!r} names no volume")
            vdir = r.directory / "volumes" / vm["name"]
            if "configMap" in vol or "secret" in vol:
                kind = "configmap" if "configMap" in vol else "secret"
                ref = vol.get("configMap") or vol.get("secret") or {}
                name = ref.get("name") or ref.get("secretName", "")
                version = objects.version(kind, name)
                if r.volume_versions.get(vm["name"]) != version or not vdir.exists():
                    data = objects.data(kind, name)
                    if data is None and not ref.get("optional"):
                        raise ConfigError(f"volume {vm['name']!r}: {kind} {name!r} not found")
                    write_atomic_volume(vdir, data or {}, ref.get("items"))
                    r.volume_versions[vm["name"]] = version
            elif "emptyDir" in vol:
                vdir.mkdir(parents=True, exist_ok=True)
            else:
                raise ConfigError(f"volume {vm['name']!r}: only configMap, secret and emptyDir are supported")
            source = vdir / vm["subPath"] if vm.get("subPath") else vdir
            mounts.append(Mount(str(source), vm["mountPath"], bool(vm.get("readOnly")) or "emptyDir" not in vol))
        if self._wants_token(pod, container, objects):
            vdir = r.directory / "volumes" / "kube-api-access"
            if time.monotonic() >= r.token_refresh_at or not vdir.exists():
                self._write_token(vdir, pod)
                r.token_refresh_at = time.monotonic() + TOKEN_SECONDS * 0.8  # the kubelet renews at 80 %
            mounts.append(Mount(str(vdir), SERVICE_ACCOUNT_DIR, True))
        r.mounts = mounts

    @staticmethod
    def _wants_token(pod: dict[str, Any], container: dict[str, Any], objects: Objects) -> bool:
        """Whether the pod gets its service account's token, as the ServiceAccount admission plugin
        decides: the pod's ``automountServiceAccountToken``, else its ServiceAccount's, else yes.
        No token when the pod names no ServiceAccount (this cluster's apiserver runs without the
        admission plugin that would set ``default``), when it does not exist, or when the
        container mounts something else there."""
        spec = pod["spec"]
        account = objects.get("serviceaccount", spec["serviceAccountName"]) if spec.get("serviceAccountName") else None
        if account is None:
            return False
        automount = spec.get("automountServiceAccountToken", account.get("automountServiceAccountToken", True))
        return bool(automount) and not any(m.get("mountPath") == SERVICE_ACCOUNT_DIR
                                           for m in container.get("volumeMounts") or [])

    def _write_token(self, vdir: Path, pod: dict[str, Any]) -> None:
        """The projected volume the kubelet writes: a token bound to the pod (TokenRequest), the
        cluster's CA and the namespace."""
        from kubernetes.client.exceptions import ApiException

        from rollguard.kube.client import raw_json

        meta = pod["metadata"]
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": TOKEN_SECONDS,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                               "uid": meta["uid"]}}}
        try:
            answer = raw_json(self._core.create_namespaced_service_account_token(
                pod["spec"]["serviceAccountName"], meta["namespace"], request, _preload_content=False))
        except ApiException as e:  # the kubelet cannot start such a pod either
            raise ConfigError(f"no token for ServiceAccount {pod['spec']['serviceAccountName']!r}: "
                              f"{e.status} {e.reason}") from e
        write_atomic_volume(vdir, {"token": answer["status"]["token"].encode(), "ca.crt": self._cluster_ca,
                                   "namespace": meta["namespace"].encode()})

    def _spawn(self, r: Running) -> None:
        r.directory.mkdir(parents=True, exist_ok=True)
        r.terminated = False
        # The "image" is this checkout: ``python -m rollguard...`` in a pod imports the code the
        # runner itself runs (not whichever copy the interpreter has installed).
        namespace, name = r.key.split("/", 1)
        base = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]),
                "HOME": str(r.directory), "LANG": "C.UTF-8", "HOSTNAME": name, "PYTHONPATH": _POD_PYTHONPATH,
                "PYTHONUNBUFFERED": "1", POD_IP_ENV: r.pod_ip,
                # the `kubernetes` Service as the kubelet gives it to every container: its address
                # here is the apiserver's own (cluster IPs do not answer on this cluster)
                "KUBERNETES_SERVICE_HOST": self._apiserver[0], "KUBERNETES_SERVICE_PORT": self._apiserver[1],
                "KUBERNETES_SERVICE_PORT_HTTPS": self._apiserver[1]}
        if self.service_proxy:
            proxy = urlsplit(self.service_proxy)
            url = f"http://{namespace}:{name}@{proxy.hostname}:{proxy.port}"
            base.update({"http_proxy": url, "HTTP_PROXY": url, "no_proxy": "localhost,127.0.0.1",
                         "NO_PROXY": "localhost,127.0.0.1"})
        spec = {"argv": r.argv, "env": {**base, **r.env},
                "mounts": [m.__dict__ for m in r.mounts], "scratch": str(r.directory / "overlay"),
                "cwd": str(r.directory)}
        (r.directory / f"{r.container}.json").write_text(json.dumps(spec))
        unshare = ["unshare", "--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            unshare[1:1] = ["--user", "--map-root-user"]
        # The process dies with this runner's thread, as a container dies with its kubelet's
        # sandbox: a runner killed with its test run must not leave a process listening on a pod
        # address that the next cluster hands out again (set after unshare: a user namespace's
        # new credentials would clear it).
        pdeath = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
        out = (r.directory / f"{r.container}.log").open("ab")
        try:
            r.proc = subprocess.Popen([*unshare, "--", *pdeath, sys.executable, "-m", "rollguard.localenv.podrunner",
                                       "exec", str(r.directory / f"{r.container}.json")],
                                      stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        finally:
            out.close()
        r.readiness.started(time.monotonic())
        log.info("started %s/%s (pid %d)", r.key, r.container, r.proc.pid)

    @staticmethod
    def _terminate(r: Running) -> None:
        """SIGTERM to the process group, once."""
        if r.proc is not None and not r.terminated and r.proc.poll() is None:
            r.terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.proc.pid, signal.SIGTERM)

    @staticmethod
    def _kill(r: Running) -> None:
        """SIGTERM unless sent already, then SIGKILL after a shortened grace period."""
        if r.proc is None:
            return
        PodRunner._terminate(r)
        try:
            r.proc.wait(10)  # the pod's terminationGracePeriod, shortened
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.proc.pid, signal.SIGKILL)
            r.proc.wait(5)
        r.proc = None


def _exec_in_namespace(spec_file: Path) -> int:
    """Inside the process' own mount namespace: mount its volumes, then become the container's process.

    Every source (and the overlays' work directories) is opened before the first mount and
    mounted through its descriptor: a volume mounted over a directory that holds the pod's own
    files (an emptyDir at ``/tmp`` while the pod directory is under ``/tmp``) would hide them
    from the mounts after it."""
    spec = json.loads(spec_file.read_text())
    os.chdir(spec["cwd"])  # held before a mount can hide it
    scratch = Path(spec["scratch"])

    def held(path: Path) -> str:
        return f"/proc/{os.getpid()}/fd/{os.open(path, os.O_PATH)}"

    plan: list[tuple[dict[str, Any], str, str, str]] = []  # (mount, source, overlay upper, overlay work)
    for i, m in enumerate(spec["mounts"]):
        up, work = scratch / f"up{i}", scratch / f"work{i}"
        up.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        plan.append((m, held(Path(m["source"])), held(up), held(work)))
    overlaid: list[Path] = []
    for m, source, up_dir, work_dir in plan:
        target = Path(m["target"])
        if not target.exists():
            parent = target.parent
            while not parent.exists():
                parent = parent.parent
            if parent == Path("/"):
                raise SystemExit(f"pod runner: mountPath {target} has no existing parent below /")
            if not any(parent == o or o in parent.parents for o in overlaid):
                # An overlay lets the mount point exist here without creating it on the host.
                subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                                f"lowerdir={parent},upperdir={up_dir},workdir={work_dir}", str(parent)], check=True)
                overlaid.append(parent)
            if Path(source).is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
        subprocess.run(["mount", "--bind", source, str(target)], check=True)
        if m["read_only"]:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
    os.execvpe(spec["argv"][0], spec["argv"], spec["env"])  # noqa: S606 (the container's own command)


def main(argv: list[str] | None = None) -> int:
    """``podrunner --kubeconfig F --dir D`` runs until SIGTERM; ``podrunner exec SPEC`` is internal."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["exec"]:
        return _exec_in_namespace(Path(args[1]))
    ap = argparse.ArgumentParser(prog="python -m rollguard.localenv.podrunner", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubeconfig", type=Path, required=True)
    ap.add_argument("--dir", type=Path, required=True, help="pod directories and process logs")
    ap.add_argument("--service-proxy", metavar="URL", help="the service proxy the pods' HTTP clients use")
    ns = ap.parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s podrunner %(message)s")
    runner = PodRunner(ns.kubeconfig, ns.dir, service_proxy=ns.service_proxy).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

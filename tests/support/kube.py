"""Helpers for tests against the real local control plane."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from rollguard import GROUP, VERSION
from rollguard.kube.client import raw_json

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
# the operator's kinds that carry its finalizer (kopf's, for a delete handler or a timer)
FINALIZED_PLURALS = ("canaryrollouts", "failurecatalogs")


@dataclass(frozen=True)
class _Resource:
    path: str  # "/api/v1" or "/apis/<group>/<version>"
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return self.path.removeprefix("/api/").removeprefix("/apis/")


class ApiReader:
    """Reads objects the way ``kubectl get -o json`` prints them, through one in-process API
    client instead of a kubectl process per read.

    Tests poll the cluster several times a second; a kubectl process per poll (start, TLS
    handshake, discovery cache) cost about a third of the CPU of a canary test, on a machine
    where the suite is CPU-bound. Resource names resolve as kubectl resolves them (plural,
    singular, kind or short name, the core group first, then the groups in the apiserver's
    order of preference); discovery is read again when a name is not known (a CRD a test just
    applied). :meth:`get` returns None for a form it does not read (the caller runs kubectl).
    """

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self._lock = threading.Lock()
        self._api: client.ApiClient | None = None
        self._names: dict[str, _Resource] = {}

    def api_client(self) -> client.ApiClient:
        with self._lock:
            if self._api is None:
                self._api = config.new_client_from_config(config_file=str(self.kubeconfig))
            return self._api

    def _call(self, path: str, query: list[tuple[str, str]] | None = None) -> Any:
        api = self.api_client()
        method, url, headers, body, post = api.param_serialize(
            "GET", path, query_params=query or [], header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        resp = api.call_api(method, url, headers, body, post, _request_timeout=30)
        resp.read()
        if not 200 <= resp.status <= 299:
            raise ApiException(http_resp=resp)
        return raw_json(resp)

    def _discover(self) -> dict[str, _Resource]:
        names: dict[str, _Resource] = {}
        paths = ["/api/v1"] + [f"/apis/{g['preferredVersion']['groupVersion']}"
                               for g in self._call("/apis")["groups"]]
        for path in paths:
            for r in self._call(path)["resources"]:
                if "/" in r["name"] or "get" not in r.get("verbs", []):
                    continue  # a subresource, or nothing to read
                res = _Resource(path, r["name"], r["kind"], r["namespaced"])
                for n in (r["name"], r.get("singularName") or "", r["kind"].lower(), *r.get("shortNames", [])):
                    if n:
                        names.setdefault(n.lower(), res)  # the first group that has a name keeps it
        return names

    def resource(self, name: str) -> _Resource | None:
        key = name.lower()
        if key not in self._names:
            self._names = self._discover()
        return self._names.get(key)

    def get(self, args: tuple[str, ...], namespace: str | None) -> dict[str, Any] | None:
        positional: list[str] = []
        query: list[tuple[str, str]] = []
        managed_fields = False
        it = iter(args)
        for a in it:
            if a in ("-l", "--selector"):
                query.append(("labelSelector", next(it)))
            elif a == "--field-selector":
                query.append(("fieldSelector", next(it)))
            elif a == "--show-managed-fields":
                managed_fields = True
            elif a.startswith("-"):
                return None
            else:
                positional.append(a)
        if len(positional) == 1 and positional[0].count("/") == 1:
            positional = positional[0].split("/")
        if not 1 <= len(positional) <= 2 or any("," in p or "." in p for p in positional[:1]):
            return None
        res = self.resource(positional[0])
        if res is None:
            return None
        base = res.path + (f"/namespaces/{namespace or 'default'}" if res.namespaced else "") + f"/{res.plural}"
        try:
            if len(positional) == 2:
                if query:
                    return None
                return _as_printed(self._call(f"{base}/{positional[1]}"), res, managed_fields)
            items = self._call(base, query)["items"]
        except ApiException as e:
            raise AssertionError(f"kubectl get {' '.join(args)} failed (1):\nError from server: {e.status} "
                                 f"{e.reason}: {e.body}") from None
        return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                "items": [_as_printed(o, res, managed_fields) for o in items]}


def _as_printed(obj: dict[str, Any], res: _Resource, managed_fields: bool) -> dict[str, Any]:
    """The object as kubectl prints it: kind and apiVersion set (list items lack them), and
    ``metadata.managedFields`` left out unless asked for."""
    obj.setdefault("apiVersion", res.api_version)
    obj.setdefault("kind", res.kind)
    if not managed_fields:
        obj.get("metadata", {}).pop("managedFields", None)
    return obj


@dataclass
class Kubectl:
    binary: Path
    kubeconfig: Path
    reader: ApiReader = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.reader = ApiReader(self.kubeconfig)

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
        """What ``kubectl get ARGS -o json`` prints (read in process, see :class:`ApiReader`).
        Raises AssertionError when the object does not exist, as kubectl exits 1."""
        read = self.reader.get(args, namespace)
        if read is not None:
            return read
        out = self("get", *args, "-o", "json", namespace=namespace).stdout
        result: dict[str, Any] = json.loads(out)
        return result

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object ``kubectl get KIND NAME -o json`` prints, or None where kubectl fails."""
        try:
            return self.get_json(kind, name, namespace=namespace)
        except AssertionError:
            return None

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """Whether ``kubectl get KIND NAME`` finds the object."""
        return self.find(kind, name, namespace) is not None

    def delete_namespace(self, name: str) -> None:
        """Delete a test's namespace without waiting for it, and let it go.

        The operator that would run the delete handlers of the namespace's rollouts and catalogs
        has stopped with its test; their finalizers would hold the namespace Terminating for the
        rest of the session, and the namespace controller would list and delete-collect every
        resource type in it every 5 s, for every such namespace (most of the control plane's CPU
        in a full run, measured with the apiserver's audit log). So the finalizers go; the
        namespace's deletion takes everything else."""
        self("delete", "namespace", name, "--wait=false", check=False)
        custom = client.CustomObjectsApi(self.reader.api_client())
        for plural in FINALIZED_PLURALS:
            try:
                listed: Any = custom.list_namespaced_custom_object(GROUP, VERSION, name, plural)
                items = listed["items"]
            except ApiException:
                continue
            for obj in items:
                if obj["metadata"].get("finalizers"):
                    with contextlib.suppress(ApiException):
                        custom.patch_namespaced_custom_object(GROUP, VERSION, name, plural, obj["metadata"]["name"],
                                                              {"metadata": {"finalizers": None}})


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

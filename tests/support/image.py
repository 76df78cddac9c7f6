"""The rollguard image without a Docker engine: built by hack/build-image.sh (buildah, from
Debian's packages; cached by the hash of its inputs), unpacked by umoci into an OCI runtime
bundle and run by runc with the image's own entrypoint, user and environment, on a read-only
root filesystem with a writable /tmp, as the chart runs it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def build_image() -> Path:
    """The OCI image layout of the current inputs (built now, or taken from the cache)."""
    proc = subprocess.run(["bash", str(REPO / "hack" / "build-image.sh")], capture_output=True, text=True,
                          timeout=3600)
    assert proc.returncode == 0, f"hack/build-image.sh failed:\n{proc.stderr[-6000:]}"
    print(proc.stderr.strip().splitlines()[-1])  # the build (or cache) line, with its time
    layout = Path(proc.stdout.strip().splitlines()[-1])
    assert (layout / "index.json").is_file(), layout
    return layout


def _blob(layout: Path, digest: str) -> dict[str, Any]:
    algo, _, hexdigest = digest.partition(":")
    doc: dict[str, Any] = json.loads((layout / "blobs" / algo / hexdigest).read_text())
    return doc


def manifest(layout: Path) -> dict[str, Any]:
    index = json.loads((layout / "index.json").read_text())
    (desc,) = index["manifests"]
    return _blob(layout, desc["digest"])


def image_config(layout: Path) -> dict[str, Any]:
    """The image's config (``config`` holds User, Entrypoint, Cmd, Env, WorkingDir, Labels)."""
    return _blob(layout, manifest(layout)["config"]["digest"])


def unpack(layout: Path, bundle: Path) -> Path:
    """``umoci unpack``: the root filesystem and the runtime config.json the image describes."""
    proc = subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return bundle


@dataclass
class Container:
    """One `runc run` of the bundle: ``proc`` is runc in the foreground (it relays signals)."""

    proc: subprocess.Popen[bytes]
    log: Path
    state: Path
    name: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        for sig in ("TERM", "KILL"):
            if self.proc.poll() is not None:
                break
            subprocess.run(["runc", "--root", str(self.state), "kill", self.name, sig], capture_output=True,
                           timeout=30)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        subprocess.run(["runc", "--root", str(self.state), "delete", "--force", self.name], capture_output=True,
                       timeout=30)


@contextlib.contextmanager
def run(bundle: Path, args: list[str], *, env: dict[str, str] | None = None,
        mounts: dict[str, Path] | None = None, workdir: Path) -> Iterator[Container]:
    """Run the image's entrypoint with ``args`` (in place of its default command) under runc.

    What differs from the image's runtime config, and why: the host's network namespace (the
    local apiserver listens on loopback; a pod's network is not what is tested here), a
    read-only root with a tmpfs on /tmp (the chart's readOnlyRootFilesystem and /tmp emptyDir),
    and read-only bind mounts for the test's files (a kubeconfig)."""
    spec = json.loads((bundle / "config.json").read_text())
    layout_args: list[str] = spec["process"]["args"]
    # The image's args are Entrypoint + Cmd; the caller's args replace Cmd, as `docker run IMAGE ARGS`.
    spec["process"]["args"] = [layout_args[0], *args]
    spec["process"]["env"] = [*spec["process"]["env"], *(f"{k}={v}" for k, v in (env or {}).items())]
    spec["process"]["terminal"] = False
    spec["root"]["readonly"] = True
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777", "size=64m"]})
    for dest, src in (mounts or {}).items():
        spec["mounts"].append({"destination": dest, "type": "bind", "source": str(src), "options": ["rbind", "ro"]})
    name = f"rollguard-test-{uuid.uuid4().hex[:8]}"
    run_bundle = workdir / name
    run_bundle.mkdir(parents=True)
    # every run gets a bundle of its own around the one unpacked root filesystem
    spec["root"]["path"] = str((bundle / "rootfs").resolve())
    (run_bundle / "config.json").write_text(json.dumps(spec))
    state, log = workdir / "runc-state", workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["runc", "--root", str(state), "run", "--bundle", str(run_bundle), name],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    container = Container(proc, log, state, name)
    try:
        yield container
    finally:
        container.stop()

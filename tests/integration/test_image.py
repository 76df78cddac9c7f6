"""The image, built here without a Docker engine and run here with a real OCI runtime.

hack/build-image.sh builds the Dockerfile's stages with buildah on a base made from Debian's
packages (mmdebstrap) and caches the result by the hash of its inputs; the build line, with
the time it took, is printed (`pytest -s`, and `make test` prints it before pytest). umoci
unpacks the image; runc runs its entrypoint as the image says (uid 10001, its environment and
working directory) on a read-only root with a writable /tmp, as the chart does:
`rollguard operator run` reconciles a FailureCatalog in the local apiserver, and
`rollguard api serve` answers /healthz. The image holds no compiler, no pip and no test code.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_catalog_operator import catalog, deployment, hash_of, status, wait_mounted
from tests.support.image import build_image, image_config, manifest, run, unpack
from tests.support.kube import Kubectl, eventually

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("image")]  # its module fixtures run once

SITE = "opt/rollguard/lib/python3.11/site-packages"


@pytest.fixture(scope="module")
def layout() -> Path:
    return build_image()


@pytest.fixture(scope="module")
def rootfs_bundle(layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield unpack(layout, tmp_path_factory.mktemp("image") / "bundle")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status)
    except OSError:
        return 0


def test_image_config_is_non_root_with_the_rollguard_entrypoint(layout: Path) -> None:
    cfg = image_config(layout)["config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["Entrypoint"] == ["rollguard"] and cfg["Cmd"] == ["--help"]
    assert cfg["WorkingDir"] == "/home/rollguard"
    assert "PATH=/opt/rollguard/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in cfg["Env"]
    assert cfg["Labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert "Healthcheck" not in cfg
    size = sum(layer["size"] for layer in manifest(layout)["layers"])
    print(f"image: {size / 1e6:.1f} MB compressed, {len(manifest(layout)['layers'])} layers")


def test_image_holds_no_compiler_no_pip_and_no_test_code(rootfs_bundle: Path) -> None:
    # the runtime config umoci made from the image: its process runs as the chart's uid/gid
    user = json.loads((rootfs_bundle / "config.json").read_text())["process"]["user"]
    assert (user["uid"], user["gid"]) == (10001, 10001)
    root = rootfs_bundle / "rootfs"
    bins = {p.name for d in ("usr/bin", "usr/local/bin", "bin", "opt/rollguard/bin") if (root / d).is_dir()
            for p in (root / d).iterdir()}
    for tool in ("gcc", "cc", "c++", "g++", "clang", "tcc", "make", "ld", "as", "pip", "pip3"):
        assert tool not in bins, tool
    assert not [b for b in bins if b.startswith(("gcc-", "x86_64-linux-gnu-gcc", "pip3."))]
    packages = {line.split(": ", 1)[1] for line in (root / "var/lib/dpkg/status").read_text().splitlines()
                if line.startswith("Package: ")}
    assert not packages & {"gcc", "cpp", "binutils", "libc6-dev", "python3-venv", "python3-pip", "python3-dev"}
    site = root / SITE
    assert (site / "rollguard" / "operator" / "main.py").is_file() and (site / "rollguard" / "api" / "app.py").is_file()
    for absent in ("rollguard/localenv", "rollguard/demo", "tests", "pytest", "hypothesis", "pip", "_pytest"):
        assert not (site / absent).exists(), absent
    assert not (site / "rollguard" / "tests").exists()
    assert not (root / "src").exists() and not (root / "out").exists() and not (root / "pip.whl").exists()
    # nothing of the image's own files may be written by the user it runs as
    assert os.stat(site / "rollguard" / "__init__.py").st_uid == 0


def test_entrypoint_default_command_prints_help(rootfs_bundle: Path, tmp_path: Path) -> None:
    with run(rootfs_bundle, ["--help"], workdir=tmp_path) as c:
        assert c.proc.wait(120) == 0, c.output()
    assert "Usage: rollguard [OPTIONS] COMMAND" in c.output()
    with run(rootfs_bundle, ["catalog", "match", "429 Too Many Requests"], workdir=tmp_path) as c:
        assert c.proc.wait(120) == 0, c.output()
    assert json.loads(c.output())["code"] == "RATE_LIMITED"


def test_operator_in_the_image_reconciles_a_failure_catalog(rootfs_bundle: Path, kubectl: Kubectl, namespace: str,
                                                           tmp_path: Path) -> None:
    ns = namespace
    secrets = tmp_path / "kube"
    secrets.mkdir()
    # the local cluster's kubeconfig with its certificates inline: one file to mount
    flat = kubectl("config", "view", "--raw", "--flatten", "--minify").stdout
    (secrets / "config").write_text(flat)
    (secrets / "config").chmod(0o644)
    secrets.chmod(0o755)
    port = _free_port()
    kubectl.apply(deployment("api"), namespace=ns)
    cat = catalog()
    args = ["operator", "run", "--standalone", "-n", ns, f"--liveness=http://127.0.0.1:{port}/healthz"]
    env = {"KUBECONFIG": "/var/run/rollguard-test/config", "ROLLGUARD_METRICS_PORT": "0"}
    with run(rootfs_bundle, args, env=env, mounts={"/var/run/rollguard-test": secrets}, workdir=tmp_path) as c:
        eventually(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, timeout=90,
                   what=f"the operator's liveness endpoint; output:\n{c.output()[-4000:]}")
        kubectl.apply(cat, namespace=ns)
        wait_mounted(kubectl, ns, "api", hash_of(cat), timeout=60)
        eventually(lambda: status(kubectl, ns).get("phase") == "Ready", timeout=30,
                   what=f"FailureCatalog Ready; output:\n{c.output()[-4000:]}")
        assert c.proc.poll() is None, c.output()
    assert "Traceback" not in c.output(), c.output()[-4000:]


def test_api_in_the_image_answers_healthz(rootfs_bundle: Path, tmp_path: Path) -> None:
    port = _free_port()
    args = ["api", "serve", "--host", "127.0.0.1", "--port", str(port), "--database-url", "sqlite:////tmp/failures.db"]
    with run(rootfs_bundle, args, workdir=tmp_path) as c:
        eventually(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, timeout=90,
                   what=f"/healthz; output:\n{c.output()[-4000:]}")
        assert _get(f"http://127.0.0.1:{port}/readyz") == 200, c.output()[-4000:]

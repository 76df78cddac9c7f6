#!/usr/bin/env bash
# Install what the tests and the demo need on a fresh machine, reusing what is already there:
# Debian packages (PostgreSQL, Prometheus with promtool; buildah, mmdebstrap, umoci and runc to
# build and run the image without Docker), the Python virtualenv with the project and its dev
# extras, and the control-plane binaries (built once, then cached).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[ensure-deps] %s\n' "$*" >&2; }

need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool >/dev/null || need_apt+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v go >/dev/null || need_apt+=(golang-go)
# the image (hack/build-image.sh, tests/integration/test_image.py)
for tool in buildah mmdebstrap umoci runc; do
  command -v "$tool" >/dev/null || need_apt+=("$tool")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON_BOOTSTRAP:-python3}
CACHE="${ROLLGUARD_CACHE:-$HOME/.cache/rollguard}"
# uv, not pip, fills .venv (pinned, so every machine installs the same way): ensure_uv and
# uv_settings_from_pip
source hack/uv.sh

install_with_uv() {
  ensure_uv || return 1
  uv_settings_from_pip
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv (uv)"
    # the interpreter python3 -m venv would use, never one uv downloads
    "$UV" venv -q --clear --no-python-downloads --python "$("$PY" -c 'import sys; print(sys.executable)')" .venv || return 1
  fi
  log "installing rollguard and its dev dependencies into .venv (uv)"
  # pip as well: tests/integration/test_wheel.py builds the wheel with `python -m pip wheel`.
  # Bytecode now, as pip does: with PYTHONDONTWRITEBYTECODE set, every test process would
  # otherwise compile each module it imports, every time.
  "$UV" pip install -q --python .venv/bin/python --compile-bytecode pip -e '.[dev]'
}

install_with_pip() {
  log "creating .venv"
  "$PY" -m venv .venv
  log "installing rollguard and its dev dependencies into .venv (pip)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
}

stamp=.venv/.rollguard-deps
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  if ! install_with_uv; then
    log "no uv, or uv failed: installing with pip instead"
    rm -rf .venv
    install_with_pip
  fi
  touch "$stamp"
fi

bash hack/build-control-plane.sh >/dev/null
bash hack/build-helm.sh >/dev/null

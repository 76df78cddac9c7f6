#!/usr/bin/env bash
# Install what the tests and the demo need on a fresh machine, reusing what is already there:
# Debian packages (PostgreSQL, Prometheus with promtool), the Python virtualenv with the
# project and its dev extras, and the control-plane binaries (built once, then cached).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[ensure-deps] %s\n' "$*" >&2; }

need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool >/dev/null || need_apt+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v go >/dev/null || need_apt+=(golang-go)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON_BOOTSTRAP:-python3}
CACHE="${ROLLGUARD_CACHE:-$HOME/.cache/rollguard}"
# uv, not pip, fills .venv: from its cache a fresh clone's install takes seconds where pip
# downloads everything again (over a minute). Pinned, so every machine installs the same way.
UV_VERSION=0.13.9

# The uv binary, kept per machine beside the control-plane binaries. It is a wheel like any
# other, so the machine's pip fetches it with whatever index, links and certificates pip has.
ensure_uv() {
  local dir="$CACHE/uv-$UV_VERSION" tmp
  if [ ! -x "$dir/bin/uv" ]; then
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "$dir.XXXXXX") || return 1
    if ! PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q --disable-pip-version-check --no-compile \
        --target "$tmp" "uv==$UV_VERSION" >&2; then
      rm -rf "$tmp"
      return 1
    fi
    # a rename, so a concurrent run never sees half a tool; the loser drops its copy
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  fi
  "$dir/bin/uv" --version >/dev/null 2>&1 && UV="$dir/bin/uv"
}

# uv reads none of pip's settings: hand it the ones this machine gives pip (a wheel folder,
# the CA bundle, an index), unless the uv equivalent is already set.
uv_settings_from_pip() {
  if [ -n "${PIP_FIND_LINKS:-}" ] && [ -z "${UV_FIND_LINKS:-}" ]; then
    # pip skips a missing folder with a warning, uv stops: pass only the ones that exist
    local link links=()
    for link in $PIP_FIND_LINKS; do
      case $link in *://*) links+=("$link") ;; *) [ ! -e "$link" ] || links+=("$link") ;; esac
    done
    UV_FIND_LINKS=$(IFS=,; echo "${links[*]}"); export UV_FIND_LINKS
  fi
  [ -n "${SSL_CERT_FILE:-}" ] || [ -z "${PIP_CERT:-}" ] || export SSL_CERT_FILE="$PIP_CERT"
  [ -n "${UV_DEFAULT_INDEX:-}" ] || [ -z "${PIP_INDEX_URL:-}" ] || export UV_DEFAULT_INDEX="$PIP_INDEX_URL"
  [ -n "${UV_INDEX:-}" ] || [ -z "${PIP_EXTRA_INDEX_URL:-}" ] || export UV_INDEX="$PIP_EXTRA_INDEX_URL"
  [ -n "${UV_HTTP_TIMEOUT:-}" ] || [ -z "${PIP_DEFAULT_TIMEOUT:-}" ] || export UV_HTTP_TIMEOUT="$PIP_DEFAULT_TIMEOUT"
}

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

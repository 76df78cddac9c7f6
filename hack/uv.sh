#!/usr/bin/env bash
# uv, pinned and kept per machine beside the control-plane binaries, with the settings this
# machine gives pip. hack/ensure-deps.sh sources it to fill .venv; run as a command, it is that
# uv with those settings (tests/support/dist.py makes fresh virtualenvs with it):
#   bash hack/uv.sh pip install --python VENV/bin/python PACKAGE...
# uv, not pip: from its cache an install takes seconds where pip downloads everything again.

UV_VERSION=0.13.9
: "${PY:=${PYTHON_BOOTSTRAP:-python3}}"
: "${CACHE:=${ROLLGUARD_CACHE:-$HOME/.cache/rollguard}}"

# The uv binary. It is a wheel like any other, so the machine's pip fetches it with whatever
# index, links and certificates pip has. Sets UV.
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

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  ensure_uv || { echo "hack/uv.sh: no uv $UV_VERSION (pip could not fetch it)" >&2; exit 127; }
  uv_settings_from_pip
  exec "$UV" "$@"
fi

#!/usr/bin/env bash
# Pin the image's dependencies: rollguard[all] resolved (uv) for the image's Python (Debian 12's
# 3.11) into requirements-image.txt, which the Dockerfile's deps stage installs as it is, with no
# resolving (pip's resolver, inside the build, spent minutes backtracking over the open ranges).
# Run it after a change to pyproject.toml's dependencies; tests/unit/test_chart_dockerfile.py
# fails while the two disagree.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/uv.sh
ensure_uv
uv_settings_from_pip
out=requirements-image.txt
{
  sed -n '2,6p' "$0"
  echo "#   bash hack/lock-image.sh"
  "$UV" pip compile pyproject.toml --extra all --universal --python-version 3.11 --no-header --quiet
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "$out: $(grep -c '==' "$out") packages pinned" >&2

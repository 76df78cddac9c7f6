#!/usr/bin/env bash
# crds/ is the one source of truth for the CustomResourceDefinitions; the chart ships a copy
# in charts/rollguard/crds/ because Helm only installs CRDs from the chart's own crds/ folder
# (and a symlink would not survive `helm package`). Run this after changing anything in crds/;
# tests/unit/test_chart_crds.py fails while the two differ.
#
#   hack/sync-chart-crds.sh           copy crds/*.yaml into the chart (and drop stale copies)
#   hack/sync-chart-crds.sh --check   exit 1 and list the differences instead of copying
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=crds
DST=charts/rollguard/crds

if [ "${1:-}" = "--check" ]; then
  if diff -r --exclude='.*' "$SRC" "$DST"; then
    echo "[sync-chart-crds] $DST matches $SRC"
  else
    echo "[sync-chart-crds] $DST differs from $SRC: run hack/sync-chart-crds.sh" >&2
    exit 1
  fi
  exit 0
fi

mkdir -p "$DST"
find "$DST" -maxdepth 1 -type f -name '*.yaml' -delete
cp "$SRC"/*.yaml "$DST"/
echo "[sync-chart-crds] copied $(ls "$SRC"/*.yaml | wc -l) CRD files into $DST"

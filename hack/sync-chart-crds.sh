#!/usr/bin/env bash
# crds/ is the one source of truth for the CustomResourceDefinitions; the chart ships copies
# (a symlink would not survive `helm package`):
#   crds/*.rollguard.io.yaml -> charts/rollguard/files/crds/  rendered by templates/crds.yaml, so
#                                                            `helm upgrade` upgrades them
#   crds/kopf-peering.yaml   -> charts/rollguard/crds/        kopf's peering CRDs: Helm installs
#                                                            crds/ (once) before it creates the
#                                                            chart's ClusterKopfPeering
# Run this after changing anything in crds/; tests/unit/test_chart_crds.py fails while they differ.
#
#   hack/sync-chart-crds.sh           copy crds/*.yaml into the chart (and drop stale copies)
#   hack/sync-chart-crds.sh --check   exit 1 and list the differences instead of copying
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=crds
OWN=charts/rollguard/files/crds
KOPF=charts/rollguard/crds

# The chart folder a file of crds/ is copied into.
dest() {
  case "$(basename "$1")" in
    *.rollguard.io.yaml) echo "$OWN" ;;
    *) echo "$KOPF" ;;
  esac
}

if [ "${1:-}" = "--check" ]; then
  status=0
  for f in "$SRC"/*.yaml; do
    d="$(dest "$f")/$(basename "$f")"
    if [ ! -e "$d" ]; then
      echo "[sync-chart-crds] $d is missing (a copy of $f)" >&2
      status=1
    elif ! cmp -s "$f" "$d"; then
      echo "[sync-chart-crds] $d differs from $f" >&2
      status=1
    fi
  done
  for d in "$OWN"/*.yaml "$KOPF"/*.yaml; do
    [ -e "$d" ] || continue
    f="$SRC/$(basename "$d")"
    if [ ! -e "$f" ] || [ "$(dest "$f")" != "$(dirname "$d")" ]; then
      echo "[sync-chart-crds] $d is not a copy of a file in $SRC (stale)" >&2
      status=1
    fi
  done
  if [ "$status" -ne 0 ]; then
    echo "[sync-chart-crds] the chart's CRDs differ from $SRC: run hack/sync-chart-crds.sh" >&2
    exit 1
  fi
  echo "[sync-chart-crds] the chart's CRDs match $SRC"
  exit 0
fi

mkdir -p "$OWN" "$KOPF"
find "$OWN" "$KOPF" -maxdepth 1 -type f -name '*.yaml' -delete
n=0
for f in "$SRC"/*.yaml; do
  cp "$f" "$(dest "$f")/"
  n=$((n + 1))
done
echo "[sync-chart-crds] copied $n CRD files into $OWN and $KOPF"

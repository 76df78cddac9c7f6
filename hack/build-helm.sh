#!/usr/bin/env bash
# Build the real helm v3 binary from the Go module proxy (no other download), the way
# hack/build-control-plane.sh builds kubernetes. helm.sh/helm/v3's go.mod has no local
# `replace` directives, so a plain `go install module@version` works. The ldflags mirror
# helm's own Makefile: the exact version string, and the Kubernetes minor that helm's
# client-go dependency targets (default `.Capabilities.KubeVersion` for `helm template`).
# The binary is cached outside the repository: only the first run pays the build.
#
#   hack/build-helm.sh                 build if missing, print the binary's path
#   hack/build-helm.sh --print-path    print the path without building
set -euo pipefail

HELM_VERSION="${ROLLGUARD_HELM_VERSION:-v3.22.0}"
CACHE="${ROLLGUARD_CACHE:-$HOME/.cache/rollguard}"
BIN="$CACHE/bin/helm-$HELM_VERSION"
HELM="$BIN/helm"

log() { printf '[build-helm] %s\n' "$*" >&2; }

if [ "${1:-}" = "--print-path" ]; then echo "$HELM"; exit 0; fi
if [ -x "$HELM" ]; then
  log "cached: $HELM ($("$HELM" version --short 2>/dev/null || echo "$HELM_VERSION"))"
  echo "$HELM"; exit 0
fi

command -v go >/dev/null || { log "go is required to build helm"; exit 1; }
mkdir -p "$BIN"
T0=$SECONDS
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false"

# The Kubernetes version helm was compiled against: client-go v0.N.M -> 1.N.
gomod=$(cd "$BIN" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
if grep -qE '^\s*[^ ]+ => \.' "$gomod"; then
  log "helm $HELM_VERSION has local replace directives; go install cannot build it"; exit 1
fi
kminor=$(awk '$1=="k8s.io/client-go"{print $2}' "$gomod" | cut -d. -f2)
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kminor"
done

log "building helm $HELM_VERSION (kubernetes 1.$kminor capabilities; first run only, a few minutes on 2 cores)"
tmp=$(mktemp -d "$BIN/.gobin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv "$tmp/helm" "$HELM"
log "built $HELM in $((SECONDS - T0))s: $("$HELM" version --short)"
echo "$HELM"

#!/usr/bin/env bash
# Build the binaries of the local cluster from pinned Go module versions, the way envtest
# users get them, but without any download outside the Go module proxy: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok (nodes and the pod
# lifecycle) and Prometheus with its Kubernetes service discovery (Debian's prometheus
# package is built without it). Binaries are cached outside the repository, so only
# the first run pays the build.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every k8s.io/<staging>
# module with a local path. We build it from a small wrapper module whose go.mod requires
# the release and replaces each staging module with its published v0.N.M twin (the list is
# read from the release's own go.mod). etcd's server module gets the same treatment.
set -euo pipefail

KUBE_VERSION="${ROLLGUARD_KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${ROLLGUARD_ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${ROLLGUARD_KWOK_VERSION:-v0.7.0}"
# Prometheus' Go module is versioned v0.<major><minor>.<patch>: v0.315.1 is Prometheus 3.15.1.
PROMETHEUS_VERSION="${ROLLGUARD_PROMETHEUS_VERSION:-v0.315.1}"
CACHE="${ROLLGUARD_CACHE:-$HOME/.cache/rollguard}"
BIN="$CACHE/bin/kube-$KUBE_VERSION-etcd-$ETCD_VERSION"
WORK="$CACHE/build"

log() { printf '[build-control-plane] %s\n' "$*" >&2; }

if [ "${1:-}" = "--print-bindir" ]; then echo "$BIN"; exit 0; fi

need=()
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  [ -x "$BIN/$b" ] || need+=("$b")
done
# kwok's version is not in the directory's name: a stamp says which one is there.
[ -x "$BIN/kwok" ] && [ "$(cat "$BIN/kwok.version" 2>/dev/null)" = "$KWOK_VERSION" ] || need+=(kwok)
[ -x "$BIN/prometheus" ] && [ "$(cat "$BIN/prometheus.version" 2>/dev/null)" = "$PROMETHEUS_VERSION" ] \
  || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then
  log "cached: $BIN (kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION, prometheus $PROMETHEUS_VERSION)"
  echo "$BIN"; exit 0
fi

command -v go >/dev/null || { log "go is required to build the control plane"; exit 1; }
mkdir -p "$BIN" "$WORK"
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

# wrapper <dir> <module> <version> <staging-prefix-regex> <staging-version-fn>
wrapper_gomod() {
  local dir=$1 mod=$2 ver=$3 replaces=$4
  mkdir -p "$dir"
  {
    echo "module rollguard.local/wrapper"
    echo
    echo "go $(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')"
    echo
    echo "require $mod $ver"
    echo
    echo "replace ("
    cat "$replaces"
    echo ")"
  } > "$dir/go.mod"
}

build_kube() {
  local b missing=0
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do [ -x "$BIN/$b" ] || missing=1; done
  [ "$missing" = 1 ] || return 0
  local dir="$WORK/kubernetes-$KUBE_VERSION"
  local minor patch staging_ver gomod
  log "fetching k8s.io/kubernetes@$KUBE_VERSION go.mod"
  gomod=$(cd "$WORK" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # v1.36.3 -> v0.36.3 for every staging module
  staging_ver="v0.${KUBE_VERSION#v1.}"
  grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$gomod" \
    | awk -v v="$staging_ver" '{print "\t" $1 " => " $1 " " v}' > "$WORK/kube-replaces.txt"
  log "$(wc -l < "$WORK/kube-replaces.txt") staging modules pinned to $staging_ver"
  wrapper_gomod "$dir" k8s.io/kubernetes "$KUBE_VERSION" "$WORK/kube-replaces.txt"
  local major=1 minor_n
  minor_n=$(echo "$KUBE_VERSION" | cut -d. -f2)
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor_n"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$BIN/$b" ] && continue
    local t0=$SECONDS
    log "building $b $KUBE_VERSION (first run only; several minutes on 2 cores)"
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b")
    mv "$BIN/$b.tmp" "$BIN/$b"
    log "built $b in $((SECONDS - t0))s"
  done
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return 0
  local dir="$WORK/etcd-$ETCD_VERSION" gomod t0=$SECONDS
  log "fetching go.etcd.io/etcd/server/v3@$ETCD_VERSION go.mod"
  gomod=$(cd "$WORK" && go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # go.etcd.io/etcd/api/v3 => ../api  ->  go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.6.x
  grep -E '^\s*go\.etcd\.io/etcd/[^ ]+ => \.\./' "$gomod" \
    | awk -v v="$ETCD_VERSION" '{print "\t" $1 " => " $1 " " v}' > "$WORK/etcd-replaces.txt"
  wrapper_gomod "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$WORK/etcd-replaces.txt"
  log "building etcd $ETCD_VERSION"
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  log "built etcd in $((SECONDS - t0))s"
}

# kwok's own go.mod has no local replaces: a wrapper that requires it is enough.
build_kwok() {
  [ -x "$BIN/kwok" ] && [ "$(cat "$BIN/kwok.version" 2>/dev/null)" = "$KWOK_VERSION" ] && return 0
  local dir="$WORK/kwok-$KWOK_VERSION" t0=$SECONDS
  mkdir -p "$dir"
  printf 'module rollguard.local/wrapper\n\ngo %s\n\nrequire sigs.k8s.io/kwok %s\n' \
    "$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')" "$KWOK_VERSION" > "$dir/go.mod"
  log "building kwok $KWOK_VERSION"
  (cd "$dir" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
    -o "$BIN/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok)
  mv "$BIN/kwok.tmp" "$BIN/kwok"
  echo "$KWOK_VERSION" > "$BIN/kwok.version"
  log "built kwok in $((SECONDS - t0))s"
}

# Prometheus: its go.mod's replace lines are copied into the wrapper (a dependency's replaces
# are ignored); build tags keep only the file, HTTP and Kubernetes service discoveries.
build_prometheus() {
  [ -x "$BIN/prometheus" ] && [ "$(cat "$BIN/prometheus.version" 2>/dev/null)" = "$PROMETHEUS_VERSION" ] && return 0
  local dir="$WORK/prometheus-$PROMETHEUS_VERSION" gomod t0=$SECONDS
  gomod=$(cd "$WORK" && go mod download -json "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  grep -E '^replace ' "$gomod" | sed -E 's/^replace //' | awk '{print "\t" $0}' > "$WORK/prometheus-replaces.txt"
  wrapper_gomod "$dir" github.com/prometheus/prometheus "$PROMETHEUS_VERSION" "$WORK/prometheus-replaces.txt"
  local minor=${PROMETHEUS_VERSION#v0.} ver
  ver="${minor:0:1}.${minor:1:2}.${PROMETHEUS_VERSION##*.}"
  log "building prometheus $ver ($PROMETHEUS_VERSION)"
  (cd "$dir" && go build -trimpath -tags remove_all_sd,enable_kubernetes_sd \
    -ldflags "-s -w -X github.com/prometheus/common/version.Version=$ver" \
    -o "$BIN/prometheus.tmp" github.com/prometheus/prometheus/cmd/prometheus)
  mv "$BIN/prometheus.tmp" "$BIN/prometheus"
  echo "$PROMETHEUS_VERSION" > "$BIN/prometheus.version"
  log "built prometheus in $((SECONDS - t0))s"
}

T0=$SECONDS
build_etcd
build_kube
build_kwok
build_prometheus
log "control plane ready in $((SECONDS - T0))s: $BIN"
echo "$BIN"

#!/usr/bin/env bash
# Build the rollguard image from the Dockerfile without a Docker engine, and cache it.
#
#   hack/build-image.sh            build (or reuse) the image; print its OCI layout directory last
#   hack/build-image.sh --key      print the cache key of the current inputs and exit
#   hack/build-image.sh --rebuild  ignore every cache (base, layers and image)
#
# How, with tools from Debian's packages only (hack/ensure-deps.sh installs them):
#   1. base: mmdebstrap lays out Debian bookworm (minbase, the slim image's dpkg excludes) with
#      the Dockerfile's BASE_PACKAGES, from this machine's apt sources: what the Dockerfile's
#      `base` stage makes of Debian's slim image with apt-get.
#   2. buildah (vfs storage, chroot isolation: no daemon, no overlay, no Docker) builds the
#      Dockerfile's `runtime` target with --build-arg BASE_IMAGE=<that base>: the same stages
#      `docker build .` runs (the base stage finds BASE_PACKAGES installed).
#   3. the result is written as an OCI image layout (umoci, runc and skopeo read it).
# Caches, under ${ROLLGUARD_CACHE:-~/.cache/rollguard}/image: the base, keyed by its packages and
# apt sources; buildah's layers (the dependencies' layer is rebuilt only when pyproject.toml
# changes, so a code change rebuilds the small code layer only); the image, keyed by the hash of
# every input (the Dockerfile, the build context the .dockerignore leaves, the base), so a run
# whose inputs did not change takes no time. The build time is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[build-image] %s\n' "$*" >&2; }

case "${1:-}" in
  -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --key|--rebuild|"") ;;
  *) echo "hack/build-image.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
esac

CACHE=${ROLLGUARD_CACHE:-$HOME/.cache/rollguard}/image
SUITE=bookworm
PACKAGES=$(sed -n 's/^ARG BASE_PACKAGES="\(.*\)"$/\1/p' Dockerfile)
[ -n "$PACKAGES" ] || { log "Dockerfile has no ARG BASE_PACKAGES=\"...\" line"; exit 1; }
# The Debian slim image's dpkg excludes (docs, man pages, translations), copyright files kept.
SLIM=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
      --dpkgopt='path-exclude=/usr/share/groff/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
      --dpkgopt='path-exclude=/usr/share/linda/*' --dpkgopt='path-exclude=/usr/share/locale/*')
# This machine's apt sources (never a mirror named here): a file list, or one file to override.
if [ -n "${ROLLGUARD_IMAGE_APT_SOURCES:-}" ]; then
  SOURCES=("$ROLLGUARD_IMAGE_APT_SOURCES")
else
  SOURCES=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [ -s "$f" ] && grep -qE "^[^#]*\b$SUITE\b" "$f" && SOURCES+=("$f")
  done
fi
[ ${#SOURCES[@]} -gt 0 ] || { log "no apt sources for Debian $SUITE on this machine; set ROLLGUARD_IMAGE_APT_SOURCES to a .sources file"; exit 1; }

# The build context: the tracked and untracked-but-not-ignored files the .dockerignore keeps
# (what `docker build` would send), in a deterministic tar whose hash is part of the key.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rollguard-image.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
python3 - "$WORK/context.tar" <<'PY'
import fnmatch, os, subprocess, sys, tarfile
out = sys.argv[1]
patterns = [ln.strip() for ln in open(".dockerignore") if ln.strip() and not ln.startswith("#")]
def ignored(rel):
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pat in patterns:
        if any(fnmatch.fnmatch(p, pat) for p in prefixes):  # a path and what is below it
            return True
        if pat.startswith("**/") and any(fnmatch.fnmatch(p, pat[3:]) for p in parts):
            return True
    return False
files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True,
                       check=True).stdout.decode().split("\0")
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
    for rel in sorted(f for f in files if f and not ignored(f) and os.path.lexists(f)):
        info = tar.gettarinfo(rel, arcname=rel)
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        info.mode = 0o755 if info.mode & 0o100 else 0o644
        if info.issym():
            info.mode = 0o777
            tar.addfile(info)
        else:
            with open(rel, "rb") as f:
                tar.addfile(info, f)
PY
sha() { sha256sum | cut -c1-16; }
BASE_KEY=$( { echo "mmdebstrap minbase $SUITE $PACKAGES ${SLIM[*]}"; cat "${SOURCES[@]}"; } | sha)
KEY=$( { echo "$BASE_KEY"; sha256sum <"$WORK/context.tar"; cat Dockerfile; } | sha)
if [ "${1:-}" = "--key" ]; then echo "$KEY"; exit 0; fi

for tool in mmdebstrap buildah; do
  command -v "$tool" >/dev/null || { log "missing $tool: run hack/ensure-deps.sh (apt-get install buildah mmdebstrap umoci runc)"; exit 1; }
done
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9  # one build at a time (make test and a test fixture may ask together)
OUT=$CACHE/rollguard-$KEY
if [ "${1:-}" != "--rebuild" ] && [ -f "$OUT/build.json" ]; then
  log "cached image $KEY ($(python3 -c 'import json, sys
b = json.load(open(sys.argv[1]))
print("built in %ss: base %ss, buildah %ss; %s MB compressed" % (b["build_seconds"], b["base_seconds"], b["image_seconds"], b["compressed_mb"]))' "$OUT/build.json")), found in 0s"
  echo "$OUT"
  exit 0
fi

T0=$SECONDS
STORE=$CACHE/buildah
[ "${1:-}" = "--rebuild" ] && { buildah --root "$STORE/root" --runroot "$STORE/run" --storage-driver vfs rmi --all --force >/dev/null 2>&1 || true; rm -rf "$STORE"; }
B=(buildah --root "$STORE/root" --runroot "$STORE/run" --storage-driver vfs)
BASE_REF=localhost/rollguard-base:$BASE_KEY
base_seconds=0
if ! "${B[@]}" inspect --type image "$BASE_REF" >/dev/null 2>&1; then
  log "base: mmdebstrap $SUITE minbase + $PACKAGES"
  # unsafe-io: dpkg skips its fsyncs (the tree is packed into a tar right after)
  mmdebstrap --quiet --variant=minbase --include="${PACKAGES// /,}" --dpkgopt=force-unsafe-io "${SLIM[@]}" \
    "$SUITE" "$WORK/base.tar" "${SOURCES[@]}"
  ctr=$("${B[@]}" from scratch)
  "${B[@]}" add --quiet "$ctr" "$WORK/base.tar" / >/dev/null
  # the environment Debian's own images carry, so RUN finds its commands
  "${B[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash "$ctr"
  "${B[@]}" commit --quiet "$ctr" "$BASE_REF" >/dev/null
  "${B[@]}" rm "$ctr" >/dev/null
  rm -f "$WORK/base.tar"
  base_seconds=$((SECONDS - T0))
  log "base built in ${base_seconds}s"
fi

T1=$SECONDS
mkdir -p "$WORK/context"
tar -xf "$WORK/context.tar" -C "$WORK/context"
# pip inside the build trusts what this machine's pip trusts (a TLS-inspecting proxy's CA), as a
# build secret: it is mounted for that RUN only and never stored in the image.
SECRET=()
CA=${PIP_CERT:-${SSL_CERT_FILE:-}}
[ -n "$CA" ] && [ -s "$CA" ] && SECRET=(--secret "id=ca-bundle,src=$CA")
BUILD=("${B[@]}" build --quiet --isolation chroot --pull=never --layers "${SECRET[@]}"
       --build-arg "BASE_IMAGE=$BASE_REF" -f "$PWD/Dockerfile")
log "image: buildah build --target runtime (Dockerfile stages base, build, deps, code, runtime)"
# ROLLGUARD_IMAGE_VERBOSE=1: buildah's steps (and which came from its cache) on stderr
if [ -n "${ROLLGUARD_IMAGE_VERBOSE:-}" ]; then
  "${BUILD[@]}" --quiet=false --target runtime -t "localhost/rollguard:$KEY" "$WORK/context" >&2
else
  "${BUILD[@]}" --target runtime -t "localhost/rollguard:$KEY" "$WORK/context" >/dev/null
fi
rm -rf "$OUT.tmp"
"${B[@]}" push --quiet "localhost/rollguard:$KEY" "oci:$OUT.tmp:latest"
image_seconds=$((SECONDS - T1))
compressed=$(python3 -c '
import json, sys
d = sys.argv[1]
idx = json.load(open(f"{d}/index.json"))
man = json.load(open(f"{d}/blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]))
print(round(sum(l["size"] for l in man["layers"]) / 1e6, 1))' "$OUT.tmp")
printf '{"key": "%s", "base_key": "%s", "build_seconds": %d, "base_seconds": %d, "image_seconds": %d, "compressed_mb": %s}\n' \
  "$KEY" "$BASE_KEY" $((SECONDS - T0)) "$base_seconds" "$image_seconds" "$compressed" > "$OUT.tmp/build.json"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
# Keep the newest few layouts, and in buildah's storage the latest image's name. Its untagged
# intermediate images are the layer cache (pruning them would rebuild every stage, dependencies
# included, the next time): they stay, until the storage passes ROLLGUARD_IMAGE_CACHE_GB
# (vfs stores each layer whole), which empties it.
ls -dt "$CACHE"/rollguard-* 2>/dev/null | tail -n +4 | xargs -r rm -rf
"${B[@]}" images --format '{{.Name}}:{{.Tag}}' | grep -E '^localhost/rollguard:' | grep -v ":$KEY\$" \
  | xargs -r "${B[@]}" rmi >/dev/null 2>&1 || true
if [ "$(du -s --block-size=1G "$STORE" | cut -f1)" -gt "${ROLLGUARD_IMAGE_CACHE_GB:-12}" ]; then
  log "buildah's storage passed ${ROLLGUARD_IMAGE_CACHE_GB:-12} GB: emptied (the next build starts cold)"
  "${B[@]}" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$STORE"
fi
log "built image $KEY in $((SECONDS - T0))s (base ${base_seconds}s, buildah ${image_seconds}s), ${compressed} MB compressed"
echo "$OUT"

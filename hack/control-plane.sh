#!/usr/bin/env bash
# Start, stop or describe the local cluster on loopback: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok's nodes, the pod runner, the service proxy
# (http://<service>.<namespace>.svc for HTTP clients) and a Prometheus that discovers pods.
# The binaries are built once by hack/build-control-plane.sh and cached in ~/.cache/rollguard/bin.
#   hack/control-plane.sh up     # start (or reuse) it and print how to use it
#   eval "$(hack/control-plane.sh env)"   # KUBECONFIG and PATH for kubectl, http_proxy
#   hack/control-plane.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" -m rollguard.localenv.controlplane "$@"

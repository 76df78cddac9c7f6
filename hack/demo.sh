#!/usr/bin/env bash
# The one-command demo (`make demo`): installs what is missing, then runs rollguard end to end
# on this machine, without Docker: a node-less control plane, Prometheus, the failures API,
# the operator, two tracks of a demo backend, and two CanaryRollouts (one promotes, one rolls
# back). Everything it starts is stopped and its state directory removed at the end.
#   hack/demo.sh [--db sqlite|postgres] [--interval 4s] [--rps 20] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/ensure-deps.sh
exec .venv/bin/python -m rollguard.demo "$@"

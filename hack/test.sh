#!/usr/bin/env bash
# The test command (`make test`): install what is missing, then lint, type-check and run the
# unit, integration and end-to-end suites against real services started on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
bash hack/ensure-deps.sh
export PATH="$PWD/.venv/bin:$PATH"
# The image: built from the Dockerfile without Docker (hack/build-image.sh), or reused from the
# cache when its inputs did not change; the line it prints says which, and the build time.
# tests/integration/test_image.py then runs it.
echo "[test] image"; bash hack/build-image.sh >/dev/null
echo "[test] ruff"; ruff check .
# mypy's incremental cache outside the checkout, like the built binaries: a fresh clone then
# checks only what differs from the last run (files are compared by content hash).
export MYPY_CACHE_DIR="${MYPY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rollguard/mypy}"
echo "[test] mypy"; mypy
# Workers (pytest-xdist): one per core, at most 4 (ROLLGUARD_TEST_WORKERS=N sets N; 0 runs
# in one process). Each worker has its own cluster, PostgreSQL and Prometheus (a cluster claims
# its own pod network: rollguard.localenv.podnet); a module with a module fixture, and the docs
# walk-throughs, stay on one worker (xdist_group). Most of a test's time is waiting on the
# operator's timers, so two workers on two cores roughly halve the run; more workers than cores
# overloaded the apiservers until the operator's status writes timed out.
CORES=$(nproc 2>/dev/null || echo 2)
WORKERS="${ROLLGUARD_TEST_WORKERS:-$(( CORES < 4 ? CORES : 4 ))}"
echo "[test] pytest ($WORKERS workers)"
pytest -n "$WORKERS" --dist loadgroup --durations=15 "$@"
echo "[test] done in $((SECONDS - T0))s"

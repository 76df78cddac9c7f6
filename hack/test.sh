#!/usr/bin/env bash
# The test command (`make test`): install what is missing, then lint, type-check and run the
# unit, integration and end-to-end suites against real services started on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$SECONDS
bash hack/ensure-deps.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "[test] ruff"; ruff check .
echo "[test] mypy"; mypy rollguard tests bench
# Workers (pytest-xdist): ROLLGUARD_TEST_WORKERS=N runs the suite on N workers, each with its
# own cluster, PostgreSQL and Prometheus (a cluster claims its own pod network:
# rollguard.localenv.podnet); a module with a module fixture stays on one worker
# (xdist_group). The default is 0, one process: on 2 cores, 4 workers overload the
# apiservers until the operator's status writes time out.
WORKERS="${ROLLGUARD_TEST_WORKERS:-0}"
echo "[test] pytest ($WORKERS workers)"
pytest -n "$WORKERS" --dist loadgroup --durations=15 "$@"
echo "[test] done in $((SECONDS - T0))s"

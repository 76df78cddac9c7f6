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
echo "[test] pytest"
pytest "$@"
echo "[test] done in $((SECONDS - T0))s"

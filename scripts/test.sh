#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Extra arguments go to pytest.
# Two workers (NEO_LOCAL_TEST_WORKERS; 0 = none), each taking whole test files: the suite's compiles
# are mostly single-threaded, so on CI's 2 cores this halves the run (24 -> 14 min measured here).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
workers="${NEO_LOCAL_TEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"

#!/usr/bin/env bash
# Set up (if needed), build the example model, compile it for ml_c5 with the neo-local CLI,
# run the artifact and print its output next to the framework's own.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"

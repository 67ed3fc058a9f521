#!/usr/bin/env bash
# The test command: sets up .venv on first use, then runs the whole test suite.
# Extra arguments go to pytest, e.g. ./run_tests.sh -k saliency
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh
exec python -m pytest "$@"

#!/usr/bin/env bash
# The test command: sets up .venv on first use, then runs the whole test suite on every CPU core
# (pytest-xdist: one worker a core; tests marked with one xdist_group share a worker, as the
# notebook runs do their cache). Extra arguments go to pytest, e.g. ./run_tests.sh -k saliency;
# ./run_tests.sh -n 0 (or -p no:xdist) runs the tests serially in this one process.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh
parallel=(-n auto --dist loadgroup)
for arg in "$@"; do
  case "$arg" in
    no:xdist | -pno:xdist) parallel=() ;; # xdist switched off: -n would be an unknown option
  esac
done
exec python -m pytest ${parallel[@]+"${parallel[@]}"} "$@"

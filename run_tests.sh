#!/usr/bin/env bash
# The test command: sets up .venv on first use, then runs the whole test suite on every CPU core
# (pytest-xdist: one worker a core; tests marked with one xdist_group share a worker, as the
# notebook runs do their cache). Extra arguments go to pytest, e.g. ./run_tests.sh -k saliency;
# ./run_tests.sh -n 0 (or -p no:xdist) runs the tests serially in this one process.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/bootstrap.sh
# The book's browser test (tests/test_book.py) drives Debian's chromium: install it when it is
# missing and we may (root with apt-get); otherwise, or if that fails, the test is skipped.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "[tsgd] installing chromium for the browser test (apt-get, first use only)" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; } \
    >/dev/null 2>&1 || echo "[tsgd] chromium could not be installed: the browser test is skipped" >&2
fi
parallel=(-n auto --dist loadgroup)
for arg in "$@"; do
  case "$arg" in
    no:xdist | -pno:xdist) parallel=() ;; # xdist switched off: -n would be an unknown option
  esac
done
exec python -m pytest ${parallel[@]+"${parallel[@]}"} "$@"

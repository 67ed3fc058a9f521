#!/usr/bin/env bash
# The test suite in one process, then on every core, one after the other in one call, so the two
# wall times are measured side by side on the same machine state. Prints one line per mode and a
# ratio; the numbers in README's "The two commands" come from this script.
#   bash scripts/time_tests.sh [pytest args...]
set -uo pipefail  # a failing test still gets its time measured (and shown)
cd "$(dirname "$0")/.."
declare -A wall
for mode in serial parallel; do
  flags=(-q)
  [ "$mode" = serial ] && flags+=(-n 0)
  start=$(date +%s.%N)
  # the summary line, and the name of each test that failed or errored
  ./run_tests.sh "${flags[@]}" -rfE "$@" | grep -E '^(FAILED|ERROR) | in [0-9.]+s'
  wall[$mode]=$(echo "$(date +%s.%N) - $start" | bc)
done
printf 'serial (-n 0): %.0f s; parallel (-n auto on %s cores): %.0f s; ratio %.2f\n' \
  "${wall[serial]}" "$(nproc)" "${wall[parallel]}" "$(echo "${wall[serial]} / ${wall[parallel]}" | bc -l)"

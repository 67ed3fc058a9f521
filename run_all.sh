#!/usr/bin/env bash
# Run every experiment of the report and build it: executes the notebooks with papermill.
#
#   ./run_all.sh                  # the default profile (the reported numbers)
#   ./run_all.sh --quick          # the quick profile: the whole grid in minutes
#   ./run_all.sh --profile smoke  # any profile of tsgd_core.grid.experiments.PROFILES
#   ./run_all.sh --profile real-cpu --dataset ucf101 --root ~/data/UCF101 --classes A B C
#                                 # a real dataset (any loader option of `tsgd teacher --help`)
#   ./run_all.sh --tune           # the tuning stage: every optimised method tuned equally on the
#                                 # validation split into reports/tuning/ and tsgd_core/tuned.json
#                                 # (python -m tsgd_core.cli.tuning --help for its options)
#   ./run_all.sh --ladder         # the resolution ladder (8x16x16, 8x32x32, 16x16x16 clips, each
#                                 # with its own teacher) into reports/ladder/
#                                 # (python -m tsgd_core.cli.ladder --help for its options)
#   ./run_all.sh --robustness [--profile P] [--dataset KIND --root DIR]
#                                 # robustness to the teacher's architecture, frame rate, frame size
#                                 # and compression into reports/<profile>/robustness.{csv,md,png}
#                                 # (python -m tsgd_core.cli.robustness --help for its options)
#   ./run_all.sh --help           # this text (nothing is installed)
#
# Other options go to scripts/run_grid.py (--force, --groups main,ablation, --ipcs 1,
# --methods random,tsgd, --fresh-kernels,
# --no-html, --device cuda, --dry-run; see python scripts/run_grid.py --help), among them the
# scale-out ones:
#
#   ./run_all.sh --quick --workers 2          # the grid's cells in 2 parallel processes (default:
#                                             # --workers auto, one per GPU or CPU core, at most 8)
#   ./run_all.sh --profile default --shard 0/4  # one part of 4 (a job array task), no report
#   ./run_all.sh --profile default --merge    # the report from the parts, once all have run
# Output: reports/<profile>/README.md (reports/<profile>-<dataset>/ for a real dataset), tables,
# figures, every executed notebook (+ HTML), and the book of them all: reports/<profile>/book/
# (index.html; python -m tsgd_core.report.book reports/<profile> rebuilds it without running anything).
set -euo pipefail
# --help answers at once, before anything is installed (plain bash, no other program): the
# comment block above is the usage. The stages' own --help needs their Python environment.
usage() {
  local line first=yes
  while IFS= read -r line; do
    [ "$first" = yes ] && { first=no; continue; }  # the #! line
    case "$line" in '#'*) line="${line#\#}"; printf '%s\n' "${line# }" ;; *) return 0 ;; esac
  done < "$0"
}
case "${1:-}" in --tune|--ladder|--robustness) ;; *)
  for a in "$@"; do case "$a" in -h|--help) usage; exit 0 ;; esac; done ;;
esac
cd "$(dirname "$0")"
# bad arguments: one line and exit code 2, as scripts/run_grid.py does for the others
die() { echo "run_all.sh: error: $*" >&2; exit 2; }
# An output folder is checked before anything is installed or run: a folder that cannot be
# written would otherwise be found only when the first result is saved, after the work.
writable() {  # FLAG FOLDER
  local dir="$2" probe
  [ -n "${dir// }" ] || die "$1: an empty path: give a folder (or leave the flag out)"
  case "$dir" in "~") dir="$HOME" ;; "~/"*) dir="$HOME/${dir#\~/}" ;; esac
  while [ ! -e "$dir" ]; do dir="$(dirname "$dir")"; done
  [ -d "$dir" ] || die "$1 $2 cannot be used: $dir is a file, not a folder"
  probe="$(mktemp -p "$dir" .run_all-write-check.XXXXXX 2>/dev/null)" \
    || die "$1 $2 is not writable: use a folder you can write in"
  rm -f "$probe"
}
check_output_folders() {  # the options of a stage, among them FLAGS (the folders it writes)
  local flags=" $1 " a
  shift
  while [ $# -gt 0 ]; do
    a="$1"
    case "$a" in
      --*=*) case "$flags" in *" ${a%%=*} "*) writable "${a%%=*}" "${a#*=}" ;; esac ;;
      --*) case "$flags" in *" $a "*)
             [ $# -ge 2 ] || die "$a needs a folder"
             writable "$a" "$2"; shift ;; esac ;;
    esac
    shift
  done
}
profile=default
dataset=
args=()
case "${1:-}" in
  --tune) shift; source scripts/bootstrap.sh; exec python -m tsgd_core.cli.tuning "$@" ;;
  --ladder) shift; source scripts/bootstrap.sh; exec python -m tsgd_core.cli.ladder "$@" ;;
  --robustness) shift; check_output_folders "--cache --out" "$@"
                source scripts/bootstrap.sh; exec python -m tsgd_core.cli.robustness "$@" ;;
esac
check_output_folders "--cache --reports" "$@"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) profile=quick ;;
    --profile) [ $# -ge 2 ] && [ -n "$2" ] || die "--profile needs a name (smoke, quick, default, ...)"
               profile="$2"; shift ;;
    --profile=*) profile="${1#*=}"; [ -n "$profile" ] || die "--profile needs a name (smoke, quick, default, ...)" ;;
    --dataset) [ $# -ge 2 ] && [ -n "$2" ] || die "--dataset needs a kind: ucf101, hmdb51, miniucf, kinetics, ssv2, frames"
               dataset="$2"; args+=("$1" "$2"); shift ;;
    --dataset=*) dataset="${1#*=}"; args+=("$1")
                 [ -n "$dataset" ] || die "--dataset needs a kind: ucf101, hmdb51, miniucf, kinetics, ssv2, frames" ;;
    *) args+=("$1") ;;
  esac
  shift
done
case "$profile$dataset" in
  */*|*..*) die "--profile and --dataset are names, not paths: got '$profile' '$dataset'" ;;
esac
# one grid worker per CPU core (or GPU) unless told how to scale: the default profile's
# budget of 120 minutes on 2 cores assumes two workers
scale_out=no
for a in ${args[@]+"${args[@]}"}; do
  case "$a" in --workers|--workers=*|--shard|--shard=*|--merge) scale_out=yes ;; esac
done
[ "$scale_out" = yes ] || args+=(--workers auto)
# then the book (reports/<profile>/book/) from the finished report: not after one part of a
# sharded run, a dry run or --help
book=yes
for a in ${args[@]+"${args[@]}"}; do
  case "$a" in --shard|--shard=*|--dry-run|-h|--help) book=no ;; esac
done
source scripts/bootstrap.sh
reports="reports/$profile${dataset:+-$dataset}"
# a --reports of the user's wins (run_grid.py takes the last one): the book follows it
prev=""
for a in ${args[@]+"${args[@]}"}; do
  [ "$prev" = --reports ] && reports="$a"
  case "$a" in --reports=*) reports="${a#*=}" ;; esac
  prev="$a"
done
python scripts/run_grid.py --profile "$profile" --reports "$reports" ${args[@]+"${args[@]}"} || exit $?
[ "$book" = yes ] || exit 0
# (through runtime.progress: a reader of stdout that has left, `| head -1`, fails no stage)
python -m tsgd_core.runtime.progress tsgd_core.report.book "$reports" \
  || { echo "run_all.sh: the report in $reports is complete; only its book failed" >&2; exit 1; }

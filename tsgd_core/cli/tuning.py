"""`./run_all.sh --tune`: the tuning stage's command line (tsgd_core.grid.tuning does the work):
the profile, the IPCs, where the tables and the chosen settings go, and how the cells run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..grid import experiments, tuning
from ..grid.profiles import TUNED_PATH
from ..runtime.paths import check_writable_file
from . import options
from .run_grid import ipc_list
from .stage import StageParser, add_run_flags, check_outputs, default_workers, run_stage


def build_parser() -> StageParser:
    parser = StageParser(
        "tune", prog="./run_all.sh --tune", description=tuning.__doc__.split("\n\n")[0]
    )
    parser.add_argument("--profile", default="default", choices=list(experiments.PROFILES))
    parser.add_argument(
        "--ipcs", type=ipc_list, default=[1, 5], help="comma-separated IPCs (default: 1,5)"
    )
    parser.add_argument(
        "--out", type=options.path_arg, help="output folder (default reports/tuning[-<profile>])"
    )
    add_run_flags(parser, workers=default_workers())
    parser.add_argument(
        "--tuned",
        type=options.path_arg,
        default=str(TUNED_PATH),
        help="the JSON file the chosen settings are merged into",
    )
    parser.add_argument(
        "--passes",
        type=int,
        choices=(1, 2),
        default=2,
        help="2: coarse then refine (the protocol); 1: coarse alone, choices from it",
    )
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="compute nothing: tables and choices from the cells already in the cache",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> int:
        # every path before any work: nothing found unwritable (or another's) after hours
        out = args.out or tuning.default_out(args.profile)
        cache, out = check_outputs(args.cache, out, tuning.OUT_MARKS)
        tuned = check_writable_file(args.tuned, "--tuned")  # a folder: said as such
        options.check_suffix(tuned, [".json"], "--tuned")
        table = tuning.tune(
            args.profile,
            ipcs=args.ipcs,
            out=Path(out),
            tuned_path=Path(tuned),
            passes=args.passes,
            cached_only=args.cached_only,
            cache_dir=cache,
            device=args.device,
            workers=args.workers,
        )
        chosen = ["method", "ipc", *tuning.KNOBS, "mean", "ci_low", "ci_high", "n"]
        print(table[table["chosen"]][chosen])
        return 0

    return run_stage("tune", work)


if __name__ == "__main__":
    raise SystemExit(main())

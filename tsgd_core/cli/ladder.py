"""`./run_all.sh --ladder`: the resolution ladder's command line (tsgd_core.grid.ladder does the
work): the rungs, the IPCs, where the report goes and how the cells run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..grid import ladder
from . import options
from .stage import StageParser, add_run_flags, check_outputs, default_workers, run_stage


def build_parser() -> StageParser:
    parser = StageParser(
        "ladder", prog="./run_all.sh --ladder", description=ladder.__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--rungs",
        nargs="+",
        type=ladder.parse_rung,
        default=list(ladder.DEFAULT_RUNGS),
        help="FRAMESxPIXELS rungs (default: 8x16 8x32 16x16; 8x64 costs ~16x the first)",
    )
    parser.add_argument(
        "--ipcs", nargs="+", type=options.field_value("ipc"), default=list(ladder.IPCS)
    )
    parser.add_argument("--out", type=options.path_arg, default=str(ladder.DEFAULT_OUT))
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="write the table and README again from OUT's all_runs.csv (no cell runs)",
    )
    add_run_flags(parser, workers=default_workers())
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def work() -> int:
        if args.rebuild:
            table = ladder.rebuild_ladder(Path(args.out))
            print("\n".join(ladder.ladder_sentences(table)))
            return 0
        cache, out = check_outputs(args.cache, args.out, ladder.OUT_MARKS)
        table = ladder.ladder(
            args.rungs,
            ipcs=list(dict.fromkeys(args.ipcs)),
            out=out,
            cache_dir=cache,
            device=args.device,
            workers=args.workers,
        )
        print("\n".join(ladder.ladder_sentences(table)))
        return 0

    return run_stage("ladder", work)


if __name__ == "__main__":
    raise SystemExit(main())

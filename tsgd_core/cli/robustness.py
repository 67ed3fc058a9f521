"""`./run_all.sh --robustness`: the robustness stage's command line (tsgd_core.grid.robustness
does the work): the profile or a real dataset folder, the IPC, draws, methods and axes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..grid import experiments
from ..grid.robustness import AXES, DRAWS, IPC, robustness, robustness_sentences
from ..runtime.paths import CACHE_SUBFOLDERS, check_writable_dir
from . import options as cli_parts
from .stage import StageParser, run_stage

STAGE_FLAGS = ("methods", "ipc", "draws", "axes", "out", "device", "workers")


def main(argv: Sequence[str] | None = None) -> int:
    parser = StageParser(
        "robustness", prog="./run_all.sh --robustness", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--profile", default="default", choices=list(experiments.PROFILES))
    parser.add_argument(
        "--ipc",
        type=cli_parts.field_value("ipc"),
        default=IPC,
        help=f"images per class (default {IPC})",
    )
    parser.add_argument(
        "--draws",
        type=cli_parts.field_value("distill_seed"),
        nargs="+",
        default=list(DRAWS),
        metavar="SEED",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(experiments.METHODS),
        help="default: random, tsgd and the main table's best other method (else herding)",
    )
    parser.add_argument("--axes", nargs="+", choices=AXES, default=list(AXES))
    parser.add_argument(
        "--out", type=cli_parts.path_arg, help="default: reports/<profile>[-<dataset>]"
    )
    parser.add_argument("--cache", type=cli_parts.path_arg, default="cache")
    parser.add_argument("--device", type=cli_parts.device_arg, default="cpu")
    parser.add_argument(
        "--workers", type=cli_parts.field_value("workers"), default=min(4, os.cpu_count() or 1)
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar while decoding")
    cli_parts.add_dataset_options(parser, workers_flag="--decode-workers")
    args = parser.parse_args(argv)
    args.cache = args.cache_dir = Path(args.cache)
    args.out = Path(args.out) if args.out else None

    def work() -> int:
        check_writable_dir(args.cache, "--cache", CACHE_SUBFOLDERS)  # before any work
        if args.out:
            check_writable_dir(args.out, "--out")
        dataset = cli_parts.dataset_text(args)
        if dataset:
            cli_parts.prepare_dataset(args, dataset)
        # the flags named as the stage's keywords pass through as they are
        stage = {name: getattr(args, name) for name in STAGE_FLAGS}
        table = robustness(args.profile, dataset=dataset, cache_dir=args.cache, **stage)
        print("\n".join(robustness_sentences(table)))
        return 0

    return run_stage("robustness", work)


if __name__ == "__main__":
    raise SystemExit(main())

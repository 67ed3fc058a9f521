"""`./run_all.sh --robustness`: the robustness stage's command line (tsgd_core.grid.robustness
does the work): the profile or a real dataset folder, the IPC, draws, methods and axes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..grid import experiments
from ..grid.robustness import AXES, DRAWS, IPC, robustness, robustness_sentences
from . import options as cli_parts

STAGE_FLAGS = ("methods", "ipc", "draws", "axes", "out", "device", "workers")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./run_all.sh --robustness", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--profile", default="default", choices=list(experiments.PROFILES))
    parser.add_argument("--ipc", type=int, default=IPC, help=f"images per class (default {IPC})")
    parser.add_argument("--draws", type=int, nargs="+", default=list(DRAWS), metavar="SEED")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(experiments.METHODS),
        help="default: random, tsgd and the main table's best other method (else herding)",
    )
    parser.add_argument("--axes", nargs="+", choices=AXES, default=list(AXES))
    parser.add_argument("--out", type=Path, help="default: reports/<profile>[-<dataset>]")
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--quiet", action="store_true", help="no progress bar while decoding")
    cli_parts.add_dataset_options(parser, workers_flag="--decode-workers")
    args = parser.parse_args(argv)
    args.cache_dir = args.cache
    try:
        dataset = cli_parts.dataset_text(args)
        if dataset:
            cli_parts.prepare_dataset(args, dataset)
        if args.ipc < 1 or args.workers < 1:
            raise ValueError(f"--ipc and --workers must be >= 1, got {args.ipc}, {args.workers}")
        # the flags named as the stage's keywords pass through as they are
        stage = {name: getattr(args, name) for name in STAGE_FLAGS}
        table = robustness(args.profile, dataset=dataset, cache_dir=args.cache, **stage)
    except (ValueError, cli_parts.CliError) as error:
        print(f"robustness: error: {cli_parts.one_line(error)}", file=sys.stderr)
        return 2
    print("\n".join(robustness_sentences(table)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

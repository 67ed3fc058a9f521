#!/usr/bin/env python
"""What the shared relabel plan saves: evaluate_set with and without it, timed side by side.

    nice -n 19 python scripts/bench_relabel.py --repeats 3

Random clips (no training data needed) and an untrained teacher of the default profile's size:
the cost of a step does not depend on what the weights have learned. Each repeat times one
evaluation with the plan and one without, in alternating order, so that load on a shared
machine hits both alike; the median of the per-repeat ratios is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsgd_core.data.clips import ClipSet  # noqa: E402
from tsgd_core.grid.profiles import PROFILES  # noqa: E402
from tsgd_core.training.evaluate import evaluate_set  # noqa: E402
from tsgd_core.training.teacher import ModelConfig  # noqa: E402


def random_clips(n: int, num_classes: int, shape: tuple[int, ...], seed: int) -> ClipSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    return ClipSet(
        torch.rand(n, *shape, generator=g), labels, [f"c{i}" for i in range(num_classes)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--labels", choices=("soft", "hard"), default="soft")
    parser.add_argument("--augment", choices=("none", "base", "tsgfa"), default="base")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    shape = (3, 8, 32, 32)
    data = random_clips(args.clips, args.classes, shape, seed=0)
    test = random_clips(4 * args.classes, args.classes, shape, seed=1)
    base = PROFILES["default"].student
    cfg = replace(
        base, labels=args.labels, augment=args.augment, fit=replace(base.fit, steps=args.steps)
    )
    teacher = ModelConfig().build(args.classes, shape, seed=0).eval()  # the default teacher's size
    seeds = tuple(range(args.seeds))

    def timed(shared: bool) -> float:
        start = time.perf_counter()
        evaluate_set(
            data,
            test,
            cfg,
            teacher=teacher,
            seeds=seeds,
            device=args.device,
            progress=False,
            shared_plan=shared,
        )
        return time.perf_counter() - start

    timed(True)  # warm-up: first-call allocations and kernel selection
    ratios = []
    for r in range(args.repeats):
        order = (True, False) if r % 2 == 0 else (False, True)
        t = {shared: timed(shared) for shared in order}
        ratios.append(t[True] / t[False])
        print(
            f"repeat {r}: plan {t[True]:.2f} s, live {t[False]:.2f} s, ratio {ratios[-1]:.3f}",
            flush=True,
        )
    print(
        f"{args.seeds} seeds x {args.steps} steps, {args.labels} labels, augment {args.augment}, "
        f"torch threads {torch.get_num_threads()}: median time ratio plan / live = {statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":
    main()

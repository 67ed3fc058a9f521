#!/usr/bin/env python
"""Check the motion benchmark: does the teacher recipe learn it, and does TSGF find the events?

    nice -n 19 python scripts/benchmark_check.py --models 16:16x2 16:32x3 32:32x3 --single-frame 16:16x2

Each model spec is SIZE:WIDTHxDEPTH (frames of SIZE x SIZE pixels, ConvNet3D of that width and
depth). For each, the benchmark (10 classes, 100 / 20 / 40 clips per class, 8 frames by default)
is generated, the teacher trained with the default profile's recipe (20 epochs, batch 32, AdamW
2e-3), and a markdown table printed: test accuracy, training wall time, and on the test clips the
mean correlation of the TSGF frame weights w_t with the true event window (and with windows
shuffled across clips, the control), and the w_t range (per-clip min and max, averaged), for
frame_norm "clip" and "max". `--single-frame SIZE:WxD` adds the same recipe on one middle frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tsgd_core, however the package was installed

import torch  # noqa: E402

from tsgd_core.data.clips import Splits, single_frame  # noqa: E402
from tsgd_core.data.synthetic import benchmark_event_masks, make_motion_benchmark  # noqa: E402
from tsgd_core.training.saliency import SaliencyConfig, frame_weights, window_correlation  # noqa: E402
from tsgd_core.training.teacher import ModelConfig, train_teacher  # noqa: E402
from tsgd_core.training.train import FitConfig  # noqa: E402


def parse_spec(text: str) -> tuple[int, ModelConfig]:
    """'16:16x2' -> (16, ModelConfig(width=16, depth=2))."""
    try:
        size, model = text.split(":")
        width, depth = model.lower().split("x")
        return int(size), ModelConfig(width=int(width), depth=int(depth))
    except ValueError:
        raise SystemExit(f"bad model spec {text!r}: write SIZE:WIDTHxDEPTH, e.g. 16:16x2") from None


# the flags whose dest is a keyword of make_motion_benchmark, passed on as they are
BENCHMARK_FLAGS = (
    "num_classes clips_per_class val_per_class test_per_class frames timing seed".split()
)


def benchmark(size: int, args: argparse.Namespace) -> Splits:
    given = {name: getattr(args, name) for name in BENCHMARK_FLAGS}
    return make_motion_benchmark(
        **given, height=size, width=size, event_fraction=tuple(args.event_fraction)
    )


def saliency_columns(splits: Splits) -> list[str]:
    """Window correlation, shuffled control and w_t range on the test clips, clip | max."""
    mask = benchmark_event_masks(splits.config, "test")
    shuffled = mask[torch.randperm(len(mask), generator=torch.Generator().manual_seed(0))]
    cells = []
    for norm in ("clip", "max"):
        weights = frame_weights(splits.test.videos, SaliencyConfig(frame_norm=norm))
        corr = window_correlation(weights, mask).nanmean().item()
        control = window_correlation(weights, shuffled).nanmean().item()
        low, high = weights.amin(1).mean().item(), weights.amax(1).mean().item()
        cells += [f"{corr:.2f} / {control:.2f}", f"{low:.3f}-{high:.3f}"]
    return cells


def teacher_row(splits: Splits, size: int, model: ModelConfig, fit: FitConfig, label: str) -> str:
    _, info = train_teacher(splits, model, fit, device="cpu", progress=False)
    cells = [label, f"{size}x{size}", f"{model.width}x{model.depth}", f"{100 * info.test_acc:.1f}"]
    cells.append(f"{info.train_wall_s:.0f}")
    cells += saliency_columns(splits) if splits.clip_shape[1] > 1 else ["-"] * 4
    row = "| " + " | ".join(cells) + " |"
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["16:16x2", "16:32x3", "32:32x3"])
    parser.add_argument("--single-frame", nargs="*", default=[], metavar="SIZE:WxD")
    parser.add_argument("--timing", default="window", choices=("window", "constant"))
    parser.add_argument("--event-fraction", nargs=2, type=float, default=[1 / 3, 2 / 3])
    parser.add_argument("--classes", dest="num_classes", metavar="CLASSES", type=int, default=10)
    parser.add_argument(
        "--train",
        dest="clips_per_class",
        metavar="TRAIN",
        type=int,
        default=100,
        help="train clips per class",
    )
    parser.add_argument("--val", dest="val_per_class", metavar="VAL", type=int, default=20)
    parser.add_argument("--test", dest="test_per_class", metavar="TEST", type=int, default=40)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fit = FitConfig(
        epochs=args.epochs, batch_size=32, lr=2e-3, weight_decay=1e-4, optimizer="adamw"
    )
    print(f"timing={args.timing}, event_fraction={tuple(round(f, 3) for f in args.event_fraction)}")
    print()
    print(
        "| data | frames | model (width x depth) | test acc % | train s "
        "| corr / shuffled (clip) | w_t range (clip) | corr / shuffled (max) | w_t range (max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for text in args.models:
        size, model = parse_spec(text)
        teacher_row(benchmark(size, args), size, model, fit, "clips")
    for text in args.single_frame:
        size, model = parse_spec(text)
        teacher_row(single_frame(benchmark(size, args)), size, model, fit, "one frame")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""How fast the motion benchmark renders: clips per second of `generate_motion_clips`.

    python scripts/benchmark_render.py --clips 1000 --frames 16 --size 32 --out render.json

Speed depends on the machine and on what else runs on it, so it is measured here and recorded
(the best of `--repeats` runs, with the torch thread count and the CPU), not asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tsgd_core, however the package was installed


def render_seconds(clips: int, frames: int, size: int, classes: int, seed: int) -> float:
    import torch

    from tsgd_core.data.synthetic import generate_motion_clips

    labels = torch.arange(clips) % classes
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    videos = generate_motion_clips(labels, frames, size, size, generator=generator)
    elapsed = time.perf_counter() - start
    assert videos.shape == (clips, 3, frames, size, size)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    import torch

    times = [
        render_seconds(args.clips, args.frames, args.size, args.classes, seed)
        for seed in range(args.repeats)
    ]
    best = min(times)
    result = {
        "clips": args.clips,
        "frames": args.frames,
        "size": args.size,
        "best_s": best,
        "all_s": times,
        "clips_per_s": args.clips / best,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    print(
        f"{args.clips} clips of {args.frames} frames at {args.size}x{args.size}: best "
        f"{best:.2f} s of {args.repeats} ({result['clips_per_s']:.0f} clips/s, "
        f"{result['torch_threads']} torch threads)"
    )
    if args.out:
        from tsgd_core.data.storage import save_json

        print(f"written: {save_json(result, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

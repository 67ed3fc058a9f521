#!/usr/bin/env python
"""Peak memory of `tsgd data` (decoding) and `tsgd teacher` on a real-video folder too large
to hold in RAM as float32. A benchmark, not a test: it takes minutes.

    python scripts/memory_benchmark.py --workdir /tmp/membench            # > half of RAM
    python scripts/memory_benchmark.py --workdir /tmp/membench --clips 600 # smaller, to extrapolate

It writes a UCF101-layout folder of MPEG-4 .avi files (a bright square moving in one of
`--classes` directions over noise; `--frames` x `--size` x `--size` pixels), then runs
`tsgd data` and `tsgd teacher` on it, each in a fresh process, and reports their peak resident
memory (ru_maxrss) next to the dataset's size as uint8 and as float32. The teacher is a tiny
ConvNet3D trained for one epoch (profile `membench`, registered here): the point is what the
data costs, not the model. Results: <workdir>/memory_benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Registers a profile with a tiny teacher (one epoch) and runs the tsgd command line.
CHILD = """
import sys
from tsgd_core.grid import experiments
from tsgd_core.training.teacher import ModelConfig
from tsgd_core.training.train import FitConfig
experiments.PROFILES["membench"] = experiments.Profile(
    name="membench", data=experiments.PROFILES["smoke"].data,
    teacher_model=ModelConfig(width=4, depth=1),
    teacher_fit=FitConfig(epochs=1, batch_size={batch}, lr=2e-3, optimizer="adamw"),
    student=experiments.PROFILES["smoke"].student, distill_iterations=1, dm_iterations=1,
    dm_batch_real=4,
)
from tsgd_core.cli import main
code = main(sys.argv[1:])
import resource
print(f"PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
sys.exit(code)
"""


def mem_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def square_clip(direction: int, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(T, S, S, 3) uint8: noise and a square moving in one of 8 directions."""
    clip = rng.integers(0, 60, (frames, size, size, 3), dtype=np.uint8)
    angle = 2 * np.pi * direction / 8
    side = size // 5
    x0, y0 = rng.integers(side, size - 2 * side, 2)
    for t in range(frames):
        step = (size // 3) * t / max(1, frames - 1)
        x = int(np.clip(x0 + step * np.cos(angle), 0, size - side))
        y = int(np.clip(y0 + step * np.sin(angle), 0, size - side))
        clip[t, y : y + side, x : x + side] = 230
    return clip


def write_dataset(root: Path, clips: int, classes: int, frames: int, size: int) -> float:
    """A UCF101-layout folder of `clips` .avi files (a fifth of each class is test); seconds taken."""
    import av

    start = time.perf_counter()
    rng = np.random.default_rng(0)
    names = [f"Move{c}" for c in range(classes)]
    train, test = [], []
    for i in range(clips):
        c = i % classes
        rel = f"{names[c]}/v_{names[c]}_g{i // classes + 1:04d}_c01.avi"
        path = root / rel
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.avi")
            with av.open(str(tmp), "w") as container:
                stream = container.add_stream("mpeg4", rate=25)
                stream.width = stream.height = size
                stream.pix_fmt = "yuv420p"
                for image in square_clip(c, frames, size, rng):
                    for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                        container.mux(packet)
                for packet in stream.encode():
                    container.mux(packet)
            tmp.rename(path)
        (test if (i // classes) % 5 == 0 else train).append(f"{rel} {c + 1}")
    notes = root / "ucfTrainTestlist"
    notes.mkdir(exist_ok=True)
    (notes / "classInd.txt").write_text("".join(f"{c + 1} {n}\n" for c, n in enumerate(names)))
    (notes / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (notes / "testlist01.txt").write_text("\n".join(r.split()[0] for r in test) + "\n")
    return time.perf_counter() - start


def run_measured(args: list[str], batch: int) -> dict[str, float]:
    """Run the tsgd CLI in a fresh process; its wall time and peak RSS (its own ru_maxrss)."""
    start = time.perf_counter()
    code = [sys.executable, "-c", CHILD.replace("{batch}", str(batch)), *args]
    done = subprocess.run(code, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    peak = [line for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB=")]
    print(done.stdout.strip())
    return {"wall_s": wall, "peak_rss_mb": int(peak[-1].split("=")[1]) / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="dataset, cache and results")
    parser.add_argument("--clips", type=int, help="videos (default: float32 > half of RAM)")
    parser.add_argument("--classes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=32, help="teacher batch size")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="decoding threads")
    args = parser.parse_args()

    clip_bytes = 3 * args.frames * args.size * args.size
    ram = mem_total_bytes()
    clips = args.clips or int(np.ceil(0.55 * ram / (4 * clip_bytes)))
    root = args.workdir / "UCF-membench"
    print(
        f"{clips} clips of 3x{args.frames}x{args.size}x{args.size}: float32 "
        f"{4 * clips * clip_bytes / 2**30:.1f} GiB, uint8 {clips * clip_bytes / 2**30:.1f} GiB; "
        f"RAM {ram / 2**30:.1f} GiB"
    )
    write_s = write_dataset(root, clips, args.classes, args.frames, args.size)
    print(f"wrote the folder in {write_s:.0f} s")
    data = [
        "--dataset",
        "ucf101",
        "--root",
        str(root),
        "--frames",
        str(args.frames),
        "--size",
        str(args.size),
        "--cache-dir",
        str(args.workdir / "cache"),
        "--quiet",
    ]
    baseline = run_measured(["--version"], args.batch)  # python, torch and tsgd imported
    decode = run_measured(["data", *data, "--workers", str(args.workers)], args.batch)
    teacher = run_measured(
        ["teacher", "--profile", "membench", "--device", "cpu", *data], args.batch
    )
    result = {
        "clips": clips,
        "clip_shape": [3, args.frames, args.size, args.size],
        "float32_gib": 4 * clips * clip_bytes / 2**30,
        "uint8_gib": clips * clip_bytes / 2**30,
        "ram_gib": ram / 2**30,
        "batch": args.batch,
        "write_s": write_s,
        "baseline": baseline,
        "decode": decode,
        "teacher": teacher,
        "float32_batch_mb": 4 * args.batch * clip_bytes / 2**20,
    }
    out = args.workdir / "memory_benchmark.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

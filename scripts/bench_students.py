#!/usr/bin/env python
"""Student steps per second: float32, bfloat16 autocast, torch.compile and stacked seeds, side by side.

    python scripts/bench_students.py                 # both profiles' shapes, reports/bench/students.json
    python scripts/bench_students.py --profiles default --repeats 3 --out /tmp/s.json

A step is what a student does per batch of the shared relabel plan: forward, the loss,
backward and the optimiser's step, on random clips of the profile's shape (a step's cost does
not depend on what the weights have learned). Variants run interleaved, one after another in
every repeat, so that load on a shared machine hits them alike; the medians and the ratio of
each variant to float32 come from the same run. The machine's peak is a large conv3d forward
and backward at the same dtype, timed in turn with the variants; the hot loop's GFLOP/s (counted by torch's FlopCounterMode)
is given as a fraction of it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsgd_core.data.storage import save_json  # noqa: E402
from tsgd_core.grid.profiles import PROFILES  # noqa: E402
from tsgd_core.training.models import biases_removed_by_norm  # noqa: E402
from tsgd_core.training.stacked import stacked_forward  # noqa: E402
from tsgd_core.training.train import autocast, cpu_has_fast_bf16, make_optimizer  # noqa: E402

# (profile, batch): the literature's 16x112x112 clips at a small batch, so a step takes seconds
SHAPES = {"default": None, "literature": 4}
STACKED_SEEDS = 3


def profile_setup(name: str, batch: int | None):
    """The profile's student recipe, clip shape and batch size."""
    prof = PROFILES[name]
    data = prof.data
    shape = (3, data["frames"], data["height"], data["width"])
    return prof.student, shape, batch or prof.student.fit.batch_size, data["num_classes"]


def make_step(cfg, shape, batch, classes, precision: str, compiled: bool = False):
    """A closure that runs one training step of one fresh student."""
    model = cfg.model.build(classes, shape, seed=0)
    model.train()
    optimizer = make_optimizer(model, cfg.fit)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *shape, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    forward = torch.compile(model) if compiled else model
    device = torch.device("cpu")

    def step() -> None:
        with autocast(device, precision):
            loss = F.cross_entropy(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, model


def make_stacked_step(cfg, shape, batch, classes, precision: str):
    """One step of STACKED_SEEDS students as one vmapped model."""
    students = [cfg.model.build(classes, shape, seed=s).train() for s in range(STACKED_SEEDS)]
    params, buffers, forward = stacked_forward(students)
    optimizer = make_optimizer(list(params.values()), cfg.fit)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(STACKED_SEEDS, batch, *shape, generator=g)
    y = torch.randint(0, classes, (STACKED_SEEDS, batch), generator=g)
    device = torch.device("cpu")

    def step() -> None:
        with autocast(device, precision):
            logits = forward(params, buffers, x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten()) * STACKED_SEEDS
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def step_flops(cfg, shape, batch, classes) -> int:
    """Floating-point operations of one student step (forward and backward)."""
    model = cfg.model.build(classes, shape, seed=0).train()
    x = torch.rand(batch, *shape)
    y = torch.randint(0, classes, (batch,))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops()


def seconds_per_call(fn: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def conv_peak_step(dtype: str) -> tuple[Callable[[], None], int]:
    """A large conv3d forward and backward at `dtype` (the machine's peak on this op), and its
    floating-point operations."""
    x = torch.rand(8, 64, 16, 32, 32, requires_grad=True)
    w = torch.rand(64, 64, 3, 3, 3, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        F.conv3d(x, w, padding=1).sum().backward()

    def once() -> None:
        with autocast(torch.device("cpu"), dtype):
            out = F.conv3d(x, w, padding=1)
        out.float().sum().backward()

    return once, counter.get_total_flops()


def interleaved_medians(
    variants: dict[str, Callable[[], None]], calls: dict[str, int], repeats: int
):
    """Median seconds per call of each variant, the variants taking turns in every repeat."""
    for step in variants.values():  # warm-up: kernel choice, allocator, compilation
        step()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for key, step in variants.items():
            times[key].append(seconds_per_call(step, calls[key]))
    return {k: statistics.median(v) for k, v in times.items()}


def same_weights_after_compile(cfg, shape, batch, classes, steps: int = 5) -> float:
    """Largest weight difference between eager and compiled training after `steps` steps."""
    eager, eager_model = make_step(cfg, shape, batch, classes, "fp32")
    comp, comp_model = make_step(cfg, shape, batch, classes, "fp32", compiled=True)
    for _ in range(steps):
        eager()
        comp()
    skip = biases_removed_by_norm(eager_model)  # rounding-noise gradients: see training.stacked
    ours, theirs = eager_model.state_dict(), comp_model.state_dict()
    return max(
        (ours[k].float() - theirs[k].float()).abs().max().item() for k in ours if k not in skip
    )


def bench_profile(name: str, batch: int | None, args) -> dict:
    cfg, shape, batch, classes = profile_setup(name, batch)
    variants: dict[str, Callable[[], None]] = {
        "fp32": make_step(cfg, shape, batch, classes, "fp32")[0],
        "bf16": make_step(cfg, shape, batch, classes, "bf16")[0],
    }
    if args.stacked:
        variants["stacked3_fp32"] = make_stacked_step(cfg, shape, batch, classes, "fp32")
        variants["stacked3_bf16"] = make_stacked_step(cfg, shape, batch, classes, "bf16")
    compile_s = {}
    if args.compile:
        for precision in ("fp32", "bf16"):
            step = make_step(cfg, shape, batch, classes, precision, compiled=True)[0]
            start = time.perf_counter()
            step()  # the first call compiles
            compile_s[precision] = time.perf_counter() - start
            variants[f"compiled_{precision}"] = step
    peaks = {d: conv_peak_step(d) for d in ("fp32", "bf16")}
    for d, (step, _) in peaks.items():
        variants[f"peak_{d}"] = step
    calls = {k: max(2, round(args.seconds / seconds_per_call(v, 1))) for k, v in variants.items()}
    median = interleaved_medians(variants, calls, args.repeats)
    peak_gflops = {d: flops / median.pop(f"peak_{d}") / 1e9 for d, (_, flops) in peaks.items()}
    # a stacked step trains STACKED_SEEDS students: per student it is a third of the step
    per_student = {k: median[k] / (STACKED_SEEDS if k.startswith("stacked") else 1) for k in median}
    flops = step_flops(cfg, shape, batch, classes)
    out = {
        "shape": list(shape),
        "batch": batch,
        "width": cfg.model.width,
        "depth": cfg.model.depth,
        "norm": cfg.model.norm,
        "calls_per_repeat": calls,
        "peak_gflops": peak_gflops,
        "repeats": args.repeats,
        "step_gflop": flops / 1e9,
        "student_steps_per_s": {k: 1 / v for k, v in per_student.items()},
        "speedup_vs_fp32": {k: per_student["fp32"] / v for k, v in per_student.items()},
        "gflops": {k: flops / v / 1e9 for k, v in per_student.items()},
        "compile_s": compile_s,
    }
    if args.compile:
        out["compiled_max_weight_diff"] = same_weights_after_compile(cfg, shape, batch, classes)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default=",".join(SHAPES), help="comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per variant and repeat")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--no-stacked", dest="stacked", action="store_false")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench" / "students.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {
        "command": "python scripts/bench_students.py " + " ".join(sys.argv[1:]),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_has_fast_bf16": cpu_has_fast_bf16(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": args.threads,
        "load_average": os.getloadavg()[0],
        "profiles": {},
    }
    for name in args.profiles.split(","):
        res = bench_profile(name, SHAPES.get(name), args)
        res["fraction_of_peak"] = {
            k: v / res["peak_gflops"]["bf16" if "bf16" in k else "fp32"]
            for k, v in res["gflops"].items()
        }
        result["profiles"][name] = res
        print(table(name, res), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_json(result, out)
    print(f"wrote {out}")


def table(name: str, res: dict) -> str:
    """A Markdown table of one profile's variants."""
    lines = [
        f"{name}: {res['shape']} x batch {res['batch']}, width {res['width']}",
        "| variant | student steps/s | vs fp32 | GFLOP/s | of peak |",
        "|---|---|---|---|---|",
    ]
    for k, v in res["student_steps_per_s"].items():
        lines.append(
            f"| {k} | {v:.2f} | {res['speedup_vs_fp32'][k]:.2f}x | {res['gflops'][k]:.1f} "
            f"| {100 * res['fraction_of_peak'][k]:.1f} % |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

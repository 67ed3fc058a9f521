"""The cells of a plan across processes: one worker per shard (one GPU each where there are
several), the teachers trained once before they start, their logs merged."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .kernels import INTERRUPT_CODES, INTERRUPTED, use_kernel_threads
from .planner import ROOT, Step

MAX_AUTO_WORKERS = 8  # each worker holds a kernel and the data: memory grows with them


def auto_workers(device: str) -> int:
    """One worker per GPU where the cells run on CUDA, else one per CPU core (at most 8)."""
    import torch

    from ..runtime import resolve_device

    if resolve_device(device).type == "cuda":
        return max(1, torch.cuda.device_count())
    return max(1, min(MAX_AUTO_WORKERS, os.cpu_count() or 1))


def worker_command(args: argparse.Namespace, reports: Path, index: int, count: int) -> list[str]:
    """This script's command line for worker `index` of `count`: its shard, cells only."""
    cmd = [sys.executable, str(ROOT / "scripts" / "run_grid.py"), "--profile", args.profile]
    cmd += ["--reports", str(reports), "--cache", str(args.cache.resolve())]
    cmd += ["--device", args.device, "--threads", str(args.threads), "--no-html"]
    cmd += ["--shard", f"{index}/{count}", "--cells-only"]
    if args.groups:
        cmd += ["--groups", ",".join(args.groups)]
    cmd += getattr(args, "cell_flags", [])  # the dataset and --ipcs, as given
    if args.force:
        cmd.append("--force")
    if args.fresh_kernels:
        cmd.append("--fresh-kernels")
    return cmd


def worker_env(index: int, device: str) -> dict[str, str]:
    """The environment of worker `index`: one GPU of its own when several are visible."""
    env = dict(os.environ)
    if device == "cpu":
        return env
    import torch

    gpus = torch.cuda.device_count()
    if gpus > 1:
        visible = env.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(gpus)))).split(",")
        env["CUDA_VISIBLE_DEVICES"] = visible[index % len(visible)]
    return env


def train_cell_teachers(steps: list[Step], cache: Path, device: str) -> None:
    """Every teacher the cells need (one per camera shake), trained once before the workers
    start, instead of by several workers at once (same result, wasted time)."""
    from .experiments import get_teacher

    use_kernel_threads()  # else it trains a teacher the kernels' thread count cannot find
    specs = [s.params["spec"] for s in steps if "spec" in s.params]
    for profile, shake in dict.fromkeys((spec["profile"], spec["camera_shake"]) for spec in specs):
        print(f"[teacher] profile {profile!r}, camera shake {shake:g} (cached once for all)")
        get_teacher(profile, shake, cache_dir=cache, device=device, progress=False)


def run_workers(args: argparse.Namespace, reports: Path, count: int) -> int:
    """`count` processes of this script, one shard each, in parallel; 0 when all succeeded."""
    logs = reports / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def one(index: int) -> int:
        log_path = logs / f"worker{index}of{count}.log"
        print(f"[worker {index}/{count}] started, log: {log_path}", flush=True)
        with open(log_path, "w") as out:
            code = subprocess.run(
                worker_command(args, reports, index, count),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=worker_env(index, args.device),
            ).returncode
        if code == 0:
            state = "done"
        elif code in INTERRUPT_CODES or INTERRUPTED.is_set():
            state = "interrupted"
        else:
            state = f"FAILED (exit code {code}; see the log)"
        print(f"[worker {index}/{count}] {state}: {log_path}", flush=True)
        return code

    with ThreadPoolExecutor(max_workers=count) as pool:
        codes = list(pool.map(one, range(count)))
    if INTERRUPTED.is_set() or any(code in INTERRUPT_CODES for code in codes):
        raise KeyboardInterrupt
    return max(codes)


def shard_summary_path(reports: Path, shard: tuple[int, int]) -> Path:
    return reports / "run_grid.shard{}of{}.json".format(*shard)


def worker_logs(reports: Path, count: int) -> list[dict[str, Any]]:
    """The step logs the workers left in their shard summaries (so the total counts them)."""
    log = []
    for index in range(count):
        path = shard_summary_path(reports, (index, count))
        if path.is_file():
            log += [e for e in json.loads(path.read_text())["steps"] if e["stage"] == "cell"]
    return log

#!/usr/bin/env python
"""Choose the teacher's and the students' recipes on the validation split.

    python scripts/recipe_sweep.py --teachers 32x3:80:2e-3 32x3:120:3e-3 \
        --students instance:2e-3:300 batch:5e-3:600 --sets full random5 random10 --jobs 2

A teacher spec is WIDTHxDEPTH:EPOCHS:LR (AdamW, batch 32, the default profile's augmentation);
each is trained on the default benchmark's train split and its validation (and, for the record,
test) accuracy printed. A student spec is NORM:LR:STEPS[:WIDTH[:BATCH]] (ConvNet3D depth 3,
AdamW, batch 32 unless given, cosine schedule); each is trained with soft labels from the
profile's cached teacher on every named set (`full`: the whole train split; `randomK`: K random
clips per class, draw 0) and scored on the validation split over `--seeds`. Every job trains
with one torch thread, as the grid's kernels do, so the students use the grid's teacher. Rows print as a markdown table; `--out`
writes them as CSV too. The test split is only read for the teachers' record line.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tsgd_core, however the package was installed

import torch  # noqa: E402

from tsgd_core.grid import experiments  # noqa: E402
from tsgd_core.grid.profiles import teacher_fit_config  # noqa: E402
from tsgd_core.methods.selection import select_subset  # noqa: E402
from tsgd_core.training.evaluate import evaluate_set  # noqa: E402
from tsgd_core.training.teacher import ModelConfig, train_teacher  # noqa: E402
from tsgd_core.training.train import FitConfig  # noqa: E402


def parse_teacher(text: str) -> tuple[ModelConfig, FitConfig]:
    """'32x3:80:2e-3' -> (ModelConfig(width=32, depth=3), AdamW 80 epochs lr 2e-3)."""
    try:
        model, epochs, lr = text.split(":")
        width, depth = model.lower().split("x")
        fit = teacher_fit_config(epochs=int(epochs), batch=32)
        return ModelConfig(width=int(width), depth=int(depth)), replace(fit, lr=float(lr))
    except ValueError:
        raise SystemExit(f"bad teacher spec {text!r}: write WIDTHxDEPTH:EPOCHS:LR") from None


def parse_student(text: str, base: experiments.StudentConfig) -> experiments.StudentConfig:
    """'batch:5e-3:600[:16[:32]]' -> the profile's student with that norm, lr, steps (and width,
    batch size)."""
    try:
        norm, lr, steps, *rest = text.split(":")
        width = int(rest[0]) if rest else base.model.width
        batch = int(rest[1]) if len(rest) > 1 else base.fit.batch_size
        fit = replace(base.fit, lr=float(lr), steps=int(steps), batch_size=batch)
        return replace(base, model=replace(base.model, norm=norm, width=width), fit=fit)
    except (ValueError, IndexError):
        raise SystemExit(
            f"bad student spec {text!r}: write NORM:LR:STEPS[:WIDTH[:BATCH]]"
        ) from None


def teacher_row(profile: str, text: str, device: str) -> dict:
    model, fit = parse_teacher(text)
    splits = experiments.load_data(profile)
    _, info = train_teacher(splits, model, fit, device=device, progress=False)
    return {
        "kind": "teacher",
        "spec": text,
        "set": "full",
        "val": round(100 * info.val_acc, 2),
        "test": round(100 * info.test_acc, 2),
        "wall_s": round(info.train_wall_s),
    }


def student_row(profile: str, text: str, set_name: str, seeds: int, device: str) -> dict:
    prof = experiments.get_profile(profile)
    splits = experiments.load_data(profile)
    teacher, _ = experiments.get_teacher(profile, device=device, progress=False)
    data = splits.train
    if set_name != "full":
        ipc = int(set_name.removeprefix("random"))
        data = select_subset("random", splits.train, ipc, seed=0).to_clipset()
    cfg = replace(parse_student(text, prof.student), labels="soft")
    res = evaluate_set(
        data,
        splits.val,
        cfg,
        teacher=teacher,
        seeds=tuple(range(seeds)),
        device=device,
        progress=False,
    )
    return {
        "kind": "student",
        "spec": text,
        "set": set_name,
        "val": round(100 * res.mean, 2),
        "std": round(100 * res.std, 2),
        "wall_s": round(sum(res.wall_s)),
    }


JOB_THREADS = 1  # one core per job: jobs run side by side


def run_job(job: tuple) -> dict:
    torch.set_num_threads(JOB_THREADS)
    kind, *args = job
    row = teacher_row(*args) if kind == "teacher" else student_row(*args)
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--teachers", nargs="*", default=[])
    parser.add_argument("--students", nargs="*", default=[])
    parser.add_argument("--sets", nargs="*", default=["full", "random5"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    jobs = [("teacher", args.profile, t, args.device) for t in args.teachers]
    jobs += [
        ("student", args.profile, s, name, args.seeds, args.device)
        for s in args.students
        for name in args.sets
    ]
    if args.students:  # the cached teacher, trained (once) before the jobs fork, with the
        # jobs' thread count: a CPU teacher's cache key names it
        torch.set_num_threads(JOB_THREADS)
        experiments.get_teacher(args.profile, device=args.device)
    if args.jobs > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(JOB_THREADS))
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(run_job, jobs))
    else:
        rows = [run_job(job) for job in jobs]
    columns = ["kind", "spec", "set", "val", "std", "test", "wall_s"]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    if args.out:
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    if rows and all(r["kind"] == "student" for r in rows):
        best = max(rows, key=lambda r: r["val"])
        print(f"best on validation: {best['spec']} on {best['set']} ({best['val']} %)")


if __name__ == "__main__":
    main()

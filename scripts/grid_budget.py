#!/usr/bin/env python
"""Estimate a grid's wall time before running it, from a finished run's record.

    python scripts/grid_budget.py                       # ./run_all.sh's groups, from reports/default
    python scripts/grid_budget.py --groups main --ipcs 1,5 --workers 2

A run's `run_grid.json` gives the worker-seconds each group took and how many cells it ran, for
that run and every earlier one it keeps; the grid of this checkout gives how many cells each
group has now. The estimate is the recorded seconds per cell times the new cell count, summed,
over the workers, plus the setup steps (data and teacher), which run before the cells. A cell
whose evaluation an earlier cell of the grid already made (an optimised method tuned to 0
iterations trains on its start set: `RunSpec.is_start_set`) finds it in the cache and counts as
free; a recorded cell that took under FOUND_CACHED_S did the same and is left out of the rate.
Groups the old run did not have are counted at the main group's seconds per cell and named.
The numbers are as good as the old run's machine and load were alike.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsgd_core.grid.cells import DEFAULT_GROUPS, build_grid  # noqa: E402
from tsgd_core.grid.planner import FULL_DATA_FOLDERS, full_data_label  # noqa: E402
from tsgd_core.report.book import recorded_runs  # noqa: E402

SETUP = ("data and saliency", "teacher")
# a cell that trains students takes a minute or more; one that found its evaluation cached, seconds
FOUND_CACHED_S = 30.0
# the upper bound under each student recipe: a step of every run, whatever its groups
UPPER_BOUNDS = tuple(full_data_label(recipe) for recipe in FULL_DATA_FOLDERS)


def cell_seconds(run: dict) -> dict[str, float]:
    """The seconds of each cell a run ran (its notebook steps summed), by the cell's label."""
    seconds: dict[str, float] = {}
    for step in run["steps"]:
        label = step["step"]
        if "/" in label and step.get("stage") == "cell" and not step.get("skipped"):
            seconds[label] = seconds.get(label, 0.0) + step.get("wall_s", FOUND_CACHED_S)
    return seconds


def cells_by_group(record: dict) -> dict[str, int]:
    """How many cells each group had in a finished run (its steps, one label a cell)."""
    return dict(Counter(label.split("/")[0] for label in cell_seconds(record)))


def cached_cells(run: dict) -> dict[str, tuple[int, float]]:
    """Per group, how many cells of a run found their evaluation cached, and their seconds."""
    out: dict[str, tuple[int, float]] = {}
    for label, seconds in cell_seconds(run).items():
        if seconds < FOUND_CACHED_S:
            n, total = out.get(label.split("/")[0], (0, 0.0))
            out[label.split("/")[0]] = (n + 1, total + seconds)
    return out


def pooled_rates(runs: list[dict]) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds per cell of each group over every recorded run (cells that found their
    evaluation cached left out), and the cells behind each."""
    seconds: dict[str, float] = {}
    cells: dict[str, int] = {}
    for run in runs:
        cached = cached_cells(run)
        for group, n in cells_by_group(run).items():
            fast, fast_s = cached.get(group, (0, 0.0))
            if n > fast and group in run["wall_s_by_group"]:
                seconds[group] = seconds.get(group, 0.0) + run["wall_s_by_group"][group] - fast_s
                cells[group] = cells.get(group, 0) + n - fast
    return {g: seconds[g] / cells[g] for g in cells}, cells


def last_timed(runs: list[dict], labels: tuple[str, ...]) -> dict[str, float]:
    """The worker-seconds of each step named in `labels` in the latest run that timed it: a
    later partial run that skipped the teacher or the upper bounds does not hide their time."""
    seconds: dict[str, float] = {}
    for run in runs:
        for label in labels:
            if run.get("wall_s_by_group", {}).get(label):
                seconds[label] = run["wall_s_by_group"][label]
    return seconds


def estimate(record: dict, profile: str, groups: list[str], ipcs: list[int] | None) -> dict:
    """Worker-seconds per group now, from the recorded runs' seconds per cell; a cell whose
    evaluation an earlier cell of the same grid makes is free (the cache has it)."""
    per_cell, old_cells = pooled_rates(recorded_runs(record))
    out = {}
    evaluated: set[str] = set()
    for group, specs in build_grid(profile).groups().items():
        if group not in groups:
            continue
        cells = [s for s in specs if not ipcs or s.ipc in ipcs]
        keys = [s.eval_key() for s in cells]
        new = set(keys) - evaluated
        evaluated |= new
        rate = per_cell.get(group, per_cell["main"])
        out[group] = {
            "cells": len(cells),
            "shared": len(cells) - len(new),
            "old_cells": old_cells.get(group, 0),
            "s_per_cell": rate,
            "worker_s": rate * len(new),
            "rate_from": group if group in per_cell else "main",
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", type=Path, default=ROOT / "reports/default/run_grid.json")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--groups", help="comma-separated (default: the run's own groups)")
    parser.add_argument("--ipcs", help="comma-separated IPCs (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        record = json.loads(args.record.read_text())
        runs = recorded_runs(record)
        longest = max(run["total_wall_s"] for run in runs)
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"grid_budget: cannot read {args.record}: {err!r}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("grid_budget: --workers must be at least 1", file=sys.stderr)
        return 2
    # unless told otherwise, what ./run_all.sh runs (not the groups of the record's last run)
    groups = args.groups.split(",") if args.groups else list(DEFAULT_GROUPS)
    ipcs = [int(i) for i in args.ipcs.split(",")] if args.ipcs else None
    rows = estimate(record, args.profile, groups, ipcs)
    setup = sum(last_timed(runs, SETUP).values())
    upper = last_timed(runs, UPPER_BOUNDS)
    total = sum(r["worker_s"] for r in rows.values()) + sum(upper.values())
    print(
        "| group | cells (cells timed) | of them, evaluated by another cell | s a cell | worker-s |"
    )
    print("|---|---:|---:|---:|---:|")
    for group, r in rows.items():
        note = "" if r["rate_from"] == group else f" (rate of {r['rate_from']})"
        line = f"| {group} | {r['cells']} ({r['old_cells']}) | {r['shared']} |"
        print(f"{line} {r['s_per_cell']:.0f}{note} | {r['worker_s']:,.0f} |")
    for label in UPPER_BOUNDS:
        seconds = upper.get(label)
        timed = f"{seconds:.0f} | {seconds:,.0f}" if seconds is not None else "untimed | 0"
        print(f"| {label} (upper bound) | 1 ({int(seconds is not None)}) | 0 | {timed} |")
    wall = setup + total / args.workers
    print(
        f"\n{total:,.0f} worker-s over {args.workers} workers + {setup:.0f} s of setup: about "
        f"{wall / 60:.0f} min of wall time (the longest recorded run: {longest / 60:.0f} min)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does the regime decide? The resolution ladder: the benchmark at larger frames and at more
frames, each rung with a teacher of its own, the start set against tuned TSGD and tuned
SRe2L-style at IPC 1 and 5 (test split, soft labels, paired draws).

The recovery settings are the ones the tuning stage chose at the default size (tuned.json):
the ladder asks whether the default's verdict moves with the regime, not what each rung would
tune to. `./run_all.sh --ladder` (its command line: tsgd_core/cli/ladder.py) writes
`reports/ladder/` (ladder.csv, ladder.png, README.md).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..data.storage import save_figure, save_json, write_table, write_text  # noqa: E402
from . import experiments  # noqa: E402
from .profiles import (  # noqa: E402
    LADDER_RUNGS,
    ladder_profile,
    per_ipc_text,
    setting_text,
    tuned_settings,
)
from .spec import RunSpec  # noqa: E402
from .stats import resolved, two_level_interval  # noqa: E402
from .tuning import run_specs, train_teachers  # noqa: E402

METHODS = ("random", "tsgd", "sre2l")  # the start set and the two recovery methods, tuned
IPCS = (1, 5)
DRAWS = (0, 1, 2)
DEFAULT_RUNGS = LADDER_RUNGS[:3]  # 8x64x64 is asked for by name (--rungs 8x64): ~16x the cost
DEFAULT_OUT = Path("reports/ladder")
# what `write_ladder` leaves beside its README.md: an --out holding a README.md without them is
# another program's folder
OUT_MARKS = ("ladder.csv", "ladder.json")
COLUMNS = ["size", "frames", "method", "ipc", "labels", "mean", "ci_low", "ci_high", "n"]
COLUMNS += ["gain_vs_start", "gain_ci_low", "gain_ci_high", "tuned_at"]


def rung_specs(frames: int, size: int, ipcs: Sequence[int] = IPCS) -> list[RunSpec]:
    """One rung's cells: each method over the draws, recovery settings as tuned at default."""
    profile = ladder_profile(frames, size)
    # the default rung's cells are the main grid's own (soft and hard labels, the same key), so
    # after ./run_all.sh it costs nothing; the ladder reads their soft-label result
    labels = RunSpec().labels if profile == "default" else ("soft",)
    specs = []
    for ipc in ipcs:
        for method in METHODS:
            tuned = tuned_settings("default", method, ipc) if method != "random" else {}
            knobs = {k: tuned[k] for k in ("lr", "iterations") if k in tuned}
            specs += [
                RunSpec(
                    method=method,
                    ipc=ipc,
                    profile=profile,
                    labels=labels,
                    distill_seed=seed,
                    **knobs,
                )
                for seed in DRAWS
            ]
    return specs


def parse_rung(text: str) -> tuple[int, int]:
    """'8x32' -> (8, 32): frames x pixels, one of LADDER_RUNGS."""
    try:
        frames, size = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a rung is FRAMESxPIXELS, e.g. 8x32; got {text!r}"
        ) from None
    if (frames, size) not in LADDER_RUNGS:
        known = ", ".join(f"{f}x{s}" for f, s in LADDER_RUNGS)
        raise argparse.ArgumentTypeError(f"no rung {text}: use {known}")
    return frames, size


def accuracies(record: dict[str, Any]) -> list[float]:
    return [float(a) for a in record["acc_soft_seeds"]]


def ladder_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (rung, method, IPC): accuracy and the paired gain over the start set, in
    percent (pairs: the same draw and student seed)."""
    by: dict[tuple, dict[int, list[float]]] = {}
    for rec in records:
        data = experiments.get_profile(rec["profile"]).data
        key = (data["height"], data["frames"], rec["method"], int(rec["ipc"]))
        by.setdefault(key, {})[int(rec["distill_seed"])] = accuracies(rec)
    rows = []
    for (size, frames, method, ipc), accs in by.items():
        acc = two_level_interval(accs)
        start = by.get((size, frames, "random", ipc), {})
        gains = {
            s: [a - b for a, b in zip(accs[s], start[s], strict=True)]
            for s in accs
            if s in start and method != "random"
        }
        gain = two_level_interval(gains)
        rows.append(
            {
                "size": size,
                "frames": frames,
                "method": experiments.METHOD_LABELS[method],
                "ipc": ipc,
                "labels": "soft",
                "mean": 100 * acc.mean,
                "ci_low": 100 * acc.low,
                "ci_high": 100 * acc.high,
                "n": acc.n,
                "gain_vs_start": 100 * gain.mean,
                "gain_ci_low": 100 * gain.low,
                "gain_ci_high": 100 * gain.high,
                "tuned_at": "" if method == "random" else "default (8x16x16)",
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.sort_values(["frames", "size", "ipc", "method"], ignore_index=True)


def rung_label(frames: int, size: int) -> str:
    return f"{frames}x{size}x{size}"


def plot_ladder(table: pd.DataFrame, path: Path) -> Path:
    """Accuracy per rung, one panel per IPC, a line per method with 95 % intervals."""
    ipcs = sorted(table["ipc"].unique())
    fig, axes = plt.subplots(1, len(ipcs), figsize=(5.5 * len(ipcs), 4), squeeze=False)
    rungs = table[["frames", "size"]].drop_duplicates().sort_values(["frames", "size"])
    labels = [rung_label(f, s) for f, s in rungs.itertuples(index=False)]
    for ax, ipc in zip(axes[0], ipcs, strict=True):
        for method, part in table[table["ipc"] == ipc].groupby("method"):
            part = part.set_index(["frames", "size"]).reindex(list(rungs.itertuples(index=False)))
            ax.errorbar(
                labels,
                part["mean"],
                yerr=[part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]],
                marker="o",
                capsize=3,
                label=method,
            )
        ax.set_title(f"IPC {ipc}, soft labels (test)")
        ax.set_xlabel("frames x pixels")
        ax.set_ylabel("test accuracy [%]")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = save_figure(fig, path)
    plt.close(fig)
    return out


def ladder_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per rung and IPC: where tuned TSGD and SRe2L-style stand against the start."""
    out = []
    for (frames, size, ipc), at in table.groupby(["frames", "size", "ipc"]):
        parts = []
        for _, row in at[at["method"] != experiments.METHOD_LABELS["random"]].iterrows():
            gain, low, high = row["gain_vs_start"], row["gain_ci_low"], row["gain_ci_high"]
            where = "above" if gain > 0.05 else "below" if gain < -0.05 else "level with"
            verdict = "resolved" if resolved(low, high, int(row["n"])) else "not resolved"
            parts.append(
                f"{row['method']} {where} it by {abs(gain):.1f} points [{low:+.1f}, {high:+.1f}],"
                f" {verdict}"
            )
        start = at[at["method"] == experiments.METHOD_LABELS["random"]]
        base = f"{start['mean'].iloc[0]:.1f} %" if len(start) else "no start set"
        out.append(
            f"{rung_label(frames, size)}, IPC {ipc}: start set {base}; " + "; ".join(parts) + "."
        )
    return out


def recovery_text(records: Sequence[dict[str, Any]]) -> str:
    """How the recovery methods' records ran, e.g. 'TSGD lr 3e-05, 400 iterations at IPC 1 and
    lr 3e-05, 100 iterations at IPC 5; SRe2L-style 0 iterations (the start set)' (a rerun after
    the tuning changed is told apart from the runs that the README describes)."""
    by_method: dict[str, dict[int, str]] = {}
    for rec in records:
        if rec["method"] != "random":
            text = setting_text(rec["lr_used"], rec["iterations_used"])
            by_method.setdefault(experiments.METHOD_LABELS[rec["method"]], {})[int(rec["ipc"])] = (
                text
            )
    return "; ".join(f"{name} {per_ipc_text(by_ipc)}" for name, by_ipc in by_method.items())


def ladder_readme(table: pd.DataFrame, records: Sequence[dict[str, Any]], wall: float) -> str:
    """The ladder's README.md: how it was made, a sentence per rung and IPC, the figure."""
    lines = "\n".join(f"* {s}" for s in ladder_sentences(table))
    return (
        "# Resolution ladder\n\nMade by `./run_all.sh --ladder` in "
        f"{wall / 60:.0f} min ({len(records)} runs). Test split, soft labels, "
        f"{len(DRAWS)} draws x the profile's student seeds; recovery as tuned at the default "
        f"size when they ran (`tsgd_core/tuned.json`): {recovery_text(records)}. Each rung "
        "trains a teacher of its own.\n\n"
        f"{lines}\n\n![ladder](ladder.png)\n"
    )


def write_ladder(table: pd.DataFrame, records: list[dict[str, Any]], out: Path, wall: float):
    out.mkdir(parents=True, exist_ok=True)
    # full precision: the report's ladder line rounds once, as this README does
    write_table(table.set_index("size"), out / "ladder")
    write_text(pd.DataFrame(records).to_csv(index=False), out / "all_runs.csv")
    plot_ladder(table, out / "ladder.png")
    write_text(ladder_readme(table, records, wall), out / "README.md")
    save_json({"wall_s": wall, "runs": len(records)}, out / "ladder.json")


def rebuild_ladder(out: Path = DEFAULT_OUT) -> pd.DataFrame:
    """The table and README again from `out`'s all_runs.csv and ladder.json, no cell run (after
    a change of how they are written); the figure and the records stay as they are."""
    runs = pd.read_csv(out / "all_runs.csv")
    records = runs.to_dict("records")
    for rec in records:  # a list written by pandas, e.g. "[0.1, 0.2]"
        rec["acc_soft_seeds"] = json.loads(rec["acc_soft_seeds"])
    table = ladder_table(records)
    wall = json.loads((out / "ladder.json").read_text())["wall_s"]
    write_table(table.set_index("size"), out / "ladder")
    write_text(ladder_readme(table, records, wall), out / "README.md")
    return table


def ladder(
    rungs: Sequence[tuple[int, int]] = DEFAULT_RUNGS,
    *,
    ipcs: Sequence[int] = IPCS,
    out: Path = DEFAULT_OUT,
    cache_dir: Path = Path("cache"),
    device: str = "cpu",
    workers: int = 1,
) -> pd.DataFrame:
    """Every rung's teacher, then its cells, the table, figure and README in `out`; returns the
    table (`./run_all.sh --ladder`, tsgd_core.cli.ladder, is its command line)."""
    start = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    specs = [s for frames, size in rungs for s in rung_specs(frames, size, ipcs)]
    # each rung's teacher first, in parallel, so that no two cells train the same one
    profiles = [ladder_profile(f, s) for f, s in rungs]
    train_teachers(profiles, cache_dir=cache_dir, device=device, workers=workers)
    records = run_specs(specs, cache_dir=cache_dir, device=device, workers=workers, desc="ladder")
    table = ladder_table(records)
    write_ladder(table, records, out, time.perf_counter() - start)
    return table

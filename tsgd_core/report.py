"""The report: gather the flat records of the grid, turn them into tables, figures and a README.

Every number in the report comes from the records that `experiments.run` writes (one
`record.json` per run) and every sentence that compares methods is computed from those numbers,
so the text says "TSGD does not beat ..." whenever the numbers say so. The plotting helpers here
are also what the tutorial notebooks call for their figures (frame strips, saliency over time,
loss curves, confusion matrices), so the notebooks stay short.

Figures are PNG (dpi 120), written atomically; matplotlib runs on the Agg backend.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in papermill kernels

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from .artifact import clip_grid_frames  # noqa: E402
from .evaluate import LABEL_MODES  # noqa: E402
from .experiments import (  # noqa: E402
    DISTILL_SWITCHES,
    METHOD_LABELS,
    RunSpec,
    get_profile,
    spec_from_params,
)
from .saliency import SaliencyConfig, frame_weights, saliency_map  # noqa: E402
from .storage import atomic_path  # noqa: E402

DPI = 120
RUNSPEC_FIELDS = tuple(f.name for f in fields(RunSpec))
BASELINES = ("random", "herding", "kcenter", "dm", "sre2l")
TSGD_NO_TSGFA = "TSGD w/o TSGFA"
FULL_DATA = "Full data (upper bound)"
# table and legend order: selection, distillation, then the method itself
METHOD_ORDER = (*(METHOD_LABELS[m] for m in BASELINES), TSGD_NO_TSGFA, METHOD_LABELS["tsgd"])
METHOD_COLORS = dict(zip(METHOD_ORDER, plt.get_cmap("tab10").colors, strict=False))
# switches whose default value defines "the method as published" (main table rows)
VARIANT_FIELDS = DISTILL_SWITCHES
SENSITIVITY_PARAMS = ("k", "eps", "beta", "alpha")
_VARIANT_NAMES = {
    ("init", "noise"): "noise init",
    ("modulation", "frame"): "per-frame modulation",
    ("lowpass", True): "+ temporal low-pass",
    ("saliency_source", "real"): "saliency of the real init clip",
}


# ----------------------------------------------------------------------------- records


def collect_records(runs_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every `record.json` under `runs_dir` as one row; `group` is the first folder below it.

    A run that appears in several groups (same `name`) is kept once.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(
            f"no runs folder at {runs_dir}: run the grid first (./run_all.sh) or pass runs_dir"
        )
    rows = []
    for path in sorted(runs_dir.rglob("record.json")):
        row = json.loads(path.read_text())
        parts = path.relative_to(runs_dir).parts
        row.setdefault("group", parts[0] if len(parts) > 2 else "")
        row["record_path"] = str(path)
        rows.append(row)
    if not rows:
        raise FileNotFoundError(
            f"no record.json under {runs_dir}: run notebooks/04_evaluate.ipynb (or the grid) first"
        )
    df = pd.DataFrame(rows)
    return df.drop_duplicates(subset="name", keep="first").reset_index(drop=True)


def spec_from_record(record: Mapping[str, Any]) -> RunSpec:
    """The RunSpec a flat record was made from (labels come back from "soft,hard")."""
    # a field missing from some records is NaN in the DataFrame: leave it at its default
    params = {
        k: _plain(record[k]) for k in RUNSPEC_FIELDS if k in record and not _missing(record[k])
    }
    if isinstance(params.get("labels"), str):
        params["labels"] = [x for x in params["labels"].split(",") if x]
    return spec_from_params(**params)


def _missing(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _plain(value: Any) -> Any:
    """numpy scalars (from a DataFrame row) to Python values, so RunSpec compares equal."""
    return value.item() if isinstance(value, np.generic) else value


def row_label(row: Mapping[str, Any]) -> str:
    """The method's name in tables: METHOD_LABELS, and 'TSGD w/o TSGFA' for that switch."""
    if row["method"] == "tsgd" and not row.get("tsgfa", True):
        return TSGD_NO_TSGFA
    return METHOD_LABELS[row["method"]]


def is_default_variant(row: Mapping[str, Any]) -> bool:
    """True when every TSGD switch (except TSGFA) is at its default: a main-table run."""
    defaults = RunSpec()
    return all(
        _same(row.get(f, getattr(defaults, f)), getattr(defaults, f)) for f in VARIANT_FIELDS
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, float) or isinstance(a, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return a == b


def variant_label(row: Mapping[str, Any]) -> str:
    """What a TSGD run changes relative to the full method, e.g. 'TSGD -TSGFO, noise init'."""
    if row["method"] != "tsgd":
        return METHOD_LABELS[row["method"]]
    defaults = RunSpec()
    switches = (("-TSGFO", row.get("tsgfo", True)), ("-TSGFA", row.get("tsgfa", True)))
    changes = [name for name, on in switches if not on]
    for f in VARIANT_FIELDS:
        value = _plain(row.get(f, getattr(defaults, f)))
        if f == "tsgfo" or _same(value, getattr(defaults, f)):
            continue
        changes.append(_VARIANT_NAMES.get((f, value), f"{f}={value}"))
    if not changes:
        return "TSGD (full)"
    return "TSGD " + ", ".join(changes).replace(", -", " -")


def _test_runs(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["eval_split"] == "test") & (df["camera_shake"] == 0)]


def main_records(df: pd.DataFrame) -> pd.DataFrame:
    """The main-table runs: test split, no camera shake, default switches."""
    runs = _test_runs(df)
    runs = runs[_mask(runs, is_default_variant)].copy()
    runs["row"] = [row_label(row) for _, row in runs.iterrows()]
    return runs


def _mask(df: pd.DataFrame, predicate: Any) -> pd.Series:
    """predicate(row) for every row as a boolean Series (also for an empty frame)."""
    return pd.Series([bool(predicate(row)) for _, row in df.iterrows()], index=df.index, dtype=bool)


def _acc_columns(row: Mapping[str, Any], labels: str) -> tuple[float, float, list[float]]:
    mean = row.get(f"acc_{labels}_mean")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return math.nan, math.nan, []
    seeds = row.get(f"acc_{labels}_seeds")
    return (
        float(mean),
        float(row[f"acc_{labels}_std"]),
        list(seeds) if isinstance(seeds, list) else [],
    )


def main_results(df: pd.DataFrame) -> pd.DataFrame:
    """Long numeric table of the main runs: one row per (method, IPC, label mode)."""
    out = []
    for _, row in main_records(df).iterrows():
        for labels in LABEL_MODES:
            mean, std, seeds = _acc_columns(row, labels)
            if math.isnan(mean):
                continue
            out.append(
                {
                    "method": row["row"],
                    "ipc": int(row["ipc"]),
                    "labels": labels,
                    "mean": mean,
                    "std": std,
                    "n_seeds": len(seeds),
                    "distill_wall_s": row.get("distill_wall_s"),
                    "distill_peak_mb": row.get("distill_peak_mb"),
                }
            )
    columns = [
        "method",
        "ipc",
        "labels",
        "mean",
        "std",
        "n_seeds",
        "distill_wall_s",
        "distill_peak_mb",
    ]
    return pd.DataFrame(out, columns=columns)


def format_mean_std(mean: float, std: float, scale: float = 100.0, digits: int = 1) -> str:
    """'45.2 ± 3.1' (accuracy in %, by default); '—' when there is no number."""
    if mean is None or std is None or math.isnan(mean):
        return "—"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def full_data_summary(results: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """{labels: (mean, std)} from `experiments.full_data_results` (EvalResult) or accuracy lists."""
    out = {}
    for labels, res in results.items():
        accs = list(res.accs) if hasattr(res, "accs") else list(res)
        out[labels] = (statistics.fmean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0)
    return out


def _ordered(labels: Sequence[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(METHOD_ORDER)}
    return sorted(set(labels), key=lambda name: (rank.get(name, len(rank)), name))


def main_table(
    df: pd.DataFrame, full: Mapping[str, tuple[float, float]] | None = None
) -> pd.DataFrame:
    """Methods x IPC: 'mean ± std' test accuracy (%) per label mode, distill time and memory.

    Time and memory are those of the largest IPC; `full` adds the full-data row. Without
    main-table runs (test split, no shake, default switches) the table is empty.
    """
    results = main_results(df)
    if results.empty:
        return pd.DataFrame(index=pd.Index([], name="Method"))
    ipcs = sorted(results["ipc"].unique())
    top = ipcs[-1]
    time_col, mem_col = f"distill time [s] (IPC {top})", f"peak memory [MiB] (IPC {top})"
    rows = []
    for method in _ordered(results["method"]):
        mine = results[results["method"] == method]
        row: dict[str, Any] = {"Method": method}
        for ipc in ipcs:
            for labels in LABEL_MODES:
                hit = mine[(mine["ipc"] == ipc) & (mine["labels"] == labels)]
                row[f"IPC {ipc} {labels}"] = (
                    format_mean_std(hit["mean"].iloc[0], hit["std"].iloc[0]) if len(hit) else "—"
                )
        at_top = mine[mine["ipc"] == top]
        row[time_col] = _format_number(at_top["distill_wall_s"].iloc[0] if len(at_top) else None)
        row[mem_col] = _format_number(at_top["distill_peak_mb"].iloc[0] if len(at_top) else None)
        rows.append(row)
    if full:
        row = {"Method": FULL_DATA}
        for ipc in ipcs:
            for labels in LABEL_MODES:
                row[f"IPC {ipc} {labels}"] = (
                    format_mean_std(*full[labels]) if labels in full else "—"
                )
        row[time_col] = row[mem_col] = "—"
        rows.append(row)
    return pd.DataFrame(rows).set_index("Method")


def _format_number(value: Any) -> str:
    """Three significant digits, without exponents for the sizes seen here ('0.0123', '47.6', '1234')."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    value = float(value)
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def tsgd_verdicts(df: pd.DataFrame, labels: str = "soft") -> pd.DataFrame:
    """Per IPC: TSGD against the best baseline (random, herding, k-center, DM, SRe2L-style).

    `beats` is mean(TSGD) > mean(best baseline); `clear` also asks the gap to exceed the larger
    of the two seed standard deviations.
    """
    results = main_results(df)
    results = results[results["labels"] == labels]
    tsgd, baseline_names = METHOD_LABELS["tsgd"], {METHOD_LABELS[m] for m in BASELINES}
    out = []
    for ipc in sorted(results["ipc"].unique()):
        at = results[results["ipc"] == ipc]
        mine, others = at[at["method"] == tsgd], at[at["method"].isin(baseline_names)]
        if mine.empty or others.empty:
            continue
        best = others.loc[others["mean"].idxmax()]
        gap = float(mine["mean"].iloc[0] - best["mean"])
        out.append(
            {
                "ipc": int(ipc),
                "labels": labels,
                "tsgd_mean": float(mine["mean"].iloc[0]),
                "tsgd_std": float(mine["std"].iloc[0]),
                "best_baseline": best["method"],
                "best_mean": float(best["mean"]),
                "best_std": float(best["std"]),
                "gap": gap,
                "beats": gap > 0,
                "clear": gap > max(float(mine["std"].iloc[0]), float(best["std"])),
            }
        )
    columns = [
        "ipc",
        "labels",
        "tsgd_mean",
        "tsgd_std",
        "best_baseline",
        "best_mean",
        "best_std",
        "gap",
        "beats",
        "clear",
    ]
    return pd.DataFrame(out, columns=columns)


def verdict_sentences(verdicts: pd.DataFrame) -> list[str]:
    """Plain-language claims computed from `tsgd_verdicts` (an overall line, then one per IPC)."""
    if verdicts.empty:
        return ["There are no TSGD and baseline runs at a common IPC to compare."]
    labels = verdicts["labels"].iloc[0]
    n, wins = len(verdicts), int(verdicts["beats"].sum())
    ipcs = ", ".join(str(i) for i in verdicts.loc[verdicts["beats"], "ipc"])
    if wins == n:
        overall = (
            f"With {labels} labels, TSGD beats the best baseline at every IPC tested ({n} of {n})."
        )
    elif wins == 0:
        overall = f"With {labels} labels, TSGD does not beat the best baseline at any IPC tested (0 of {n})."
    else:
        overall = (
            f"With {labels} labels, TSGD beats the best baseline at {wins} of {n} IPCs (IPC {ipcs}) "
            "and does not at the others."
        )
    lines = [overall]
    for _, v in verdicts.iterrows():
        tsgd = format_mean_std(v["tsgd_mean"], v["tsgd_std"])
        best = format_mean_std(v["best_mean"], v["best_std"])
        gap = 100 * v["gap"]
        if v["beats"]:
            verdict = f"TSGD is ahead by {gap:.1f} points"
            verdict += (
                "" if v["clear"] else ", less than one seed standard deviation (not a clear win)"
            )
        elif gap == 0:
            verdict = "a tie"
        else:
            verdict = f"TSGD does not beat it: {-gap:.1f} points behind"
        lines.append(
            f"IPC {v['ipc']}: TSGD {tsgd}% vs best baseline {v['best_baseline']} {best}% — {verdict}."
        )
    return lines


def filter_gain_sentences(df: pd.DataFrame, labels: str = "soft") -> list[str]:
    """TSGD against SRe2L-style (the same recipe without the filter) at each IPC."""
    results = main_results(df)
    results = results[results["labels"] == labels]
    lines = []
    for ipc in sorted(results["ipc"].unique()):
        at = results[results["ipc"] == ipc].set_index("method")["mean"]
        if METHOD_LABELS["tsgd"] in at and METHOD_LABELS["sre2l"] in at:
            gap = 100 * (at[METHOD_LABELS["tsgd"]] - at[METHOD_LABELS["sre2l"]])
            word = "adds" if gap > 0 else "does not add accuracy:"
            lines.append(
                f"IPC {ipc}: the temporal saliency filter (TSGD vs SRe2L-style) {word} "
                f"{gap:+.1f} points ({labels} labels)."
            )
    return lines


def ablation_results(df: pd.DataFrame) -> pd.DataFrame:
    """TSGD variants (and SRe2L-style) at the IPC of the ablation runs, test split, no shake."""
    runs = _test_runs(df)
    tsgd = runs[runs["method"] == "tsgd"]
    changed = tsgd[~_mask(tsgd, is_default_variant)]
    if changed.empty:
        return pd.DataFrame(columns=["variant", "ipc", "labels", "mean", "std"])
    ipc = int(changed["ipc"].mode().iloc[0])
    at = runs[(runs["ipc"] == ipc) & runs["method"].isin(["tsgd", "sre2l"])]
    out = []
    for _, row in at.iterrows():
        for labels in LABEL_MODES:
            mean, std, _ = _acc_columns(row, labels)
            if not math.isnan(mean):
                out.append(
                    {
                        "variant": variant_label(row),
                        "ipc": ipc,
                        "labels": labels,
                        "mean": mean,
                        "std": std,
                    }
                )
    return pd.DataFrame(out, columns=["variant", "ipc", "labels", "mean", "std"])


def sensitivity_results(df: pd.DataFrame, labels: str = "soft") -> pd.DataFrame:
    """Validation accuracy as one TSGF parameter moves and the others stay at their defaults."""
    runs = df[(df["eval_split"] == "val") & (df["method"] == "tsgd")]
    defaults = RunSpec()
    out = []
    for param in SENSITIVITY_PARAMS:
        others = [f for f in VARIANT_FIELDS if f != param]
        for _, row in runs.iterrows():
            if all(_same(row[f], getattr(defaults, f)) for f in others):
                mean, std, _ = _acc_columns(row, labels)
                if not math.isnan(mean):
                    out.append(
                        {
                            "param": param,
                            "value": _plain(row[param]),
                            "ipc": int(row["ipc"]),
                            "mean": mean,
                            "std": std,
                        }
                    )
    result = pd.DataFrame(out, columns=["param", "value", "ipc", "mean", "std"])
    result = result.drop_duplicates(subset=["param", "value", "ipc"])
    # parameters in a fixed order, values ascending (numbers) or by name (kernel shapes)
    key = [
        (SENSITIVITY_PARAMS.index(p), str(v) if isinstance(v, str) else float(v))
        for p, v in zip(result["param"], result["value"], strict=True)
    ]
    order = sorted(
        range(len(key)), key=lambda i: (key[i][0], isinstance(key[i][1], str), key[i][1])
    )
    return result.iloc[order].reset_index(drop=True)


def shake_results(df: pd.DataFrame, labels: str = "soft") -> pd.DataFrame:
    """SRe2L-style and TSGD with and without camera shake, at the IPCs of the shake runs."""
    runs = df[(df["eval_split"] == "test") & df["method"].isin(["sre2l", "tsgd"])]
    runs = runs[_mask(runs, is_default_variant) & runs["tsgfa"].astype(bool)]
    ipcs = set(runs.loc[runs["camera_shake"] > 0, "ipc"])
    out = []
    for _, row in runs[runs["ipc"].isin(ipcs)].iterrows():
        mean, std, _ = _acc_columns(row, labels)
        if not math.isnan(mean):
            out.append(
                {
                    "method": row_label(row),
                    "ipc": int(row["ipc"]),
                    "camera_shake": float(row["camera_shake"]),
                    "mean": mean,
                    "std": std,
                }
            )
    return pd.DataFrame(out, columns=["method", "ipc", "camera_shake", "mean", "std"])


def shake_sentences(shake: pd.DataFrame) -> list[str]:
    """How the TSGD - SRe2L-style gap changes when the camera shakes."""
    lines = []
    tsgd, sre2l = METHOD_LABELS["tsgd"], METHOD_LABELS["sre2l"]
    for ipc in sorted(shake["ipc"].unique()):
        at = shake[shake["ipc"] == ipc]
        gaps = {}
        for amount in sorted(at["camera_shake"].unique()):
            cond = at[at["camera_shake"] == amount].set_index("method")["mean"]
            if tsgd in cond and sre2l in cond:
                gaps[amount] = round(100 * (cond[tsgd] - cond[sre2l]), 1)
        if len(gaps) < 2 or 0.0 not in gaps:
            continue
        shaken = max(gaps)
        lines.append(
            f"IPC {ipc}: TSGD - SRe2L-style is {gaps[0.0]:+.1f} points without shake and "
            f"{gaps[shaken]:+.1f} with shake {shaken:g} (soft labels): shake changes the "
            f"filter's effect by {gaps[shaken] - gaps[0.0]:+.1f} points."
        )
    return lines


def label_gain_sentences(df: pd.DataFrame) -> list[str]:
    """TSGD's gain over the random real subset with soft and with hard labels, per IPC."""
    results = main_results(df)
    tsgd, rand = METHOD_LABELS["tsgd"], METHOD_LABELS["random"]
    lines = []
    for ipc in sorted(results["ipc"].unique()):
        at = results[results["ipc"] == ipc].set_index(["method", "labels"])["mean"]
        gains = {
            labels: 100 * (at[(tsgd, labels)] - at[(rand, labels)])
            for labels in LABEL_MODES
            if (tsgd, labels) in at and (rand, labels) in at
        }
        if len(gains) == 2:
            lines.append(
                f"IPC {ipc}: TSGD minus a random real subset is {gains['soft']:+.1f} points with "
                f"soft labels and {gains['hard']:+.1f} with hard labels."
            )
    return lines


def cost_results(df: pd.DataFrame) -> pd.DataFrame:
    """Distillation wall time and peak added memory of the main runs, per method and IPC."""
    runs = main_records(df)
    cols = ["method", "ipc", "distill_wall_s", "distill_peak_mb"]
    out = runs.drop(columns=["method"]).rename(columns={"row": "method"}).reindex(columns=cols)
    # TSGD w/o TSGFA shares the distilled set of TSGD: same cost, so one bar is enough
    out = out[out["method"] != TSGD_NO_TSGFA]
    rank = {name: i for i, name in enumerate(METHOD_ORDER)}
    out = out.assign(_rank=out["method"].map(rank)).sort_values(["_rank", "ipc"])
    return out.drop(columns="_rank").reset_index(drop=True)


def first_per_class(labels: torch.Tensor, per_class: int = 1) -> torch.Tensor:
    """Indices of the first `per_class` clips of every class, class by class."""
    labels = torch.as_tensor(labels).cpu().long()
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    order = torch.sort(labels, stable=True).indices
    sorted_labels = labels[order]
    starts = torch.searchsorted(sorted_labels, sorted_labels, right=False)
    rank = torch.arange(len(labels)) - starts  # position of each clip within its class
    return order[rank < per_class]


def show(path: str | os.PathLike[str] | None) -> Any:
    """Display a written figure in a notebook (an IPython Image), or say why there is none."""
    if path is None:
        print("(no figure: the runs it needs are not in the records)")
        return None
    from IPython.display import Image

    return Image(filename=str(path))


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, num_classes: int) -> np.ndarray:
    """Counts (true class, predicted class), shape (K, K)."""
    labels, preds = torch.as_tensor(labels).long(), torch.as_tensor(preds).long()
    if labels.shape != preds.shape:
        raise ValueError(
            f"labels {tuple(labels.shape)} and preds {tuple(preds.shape)} differ in shape"
        )
    counts = torch.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).numpy()


# ----------------------------------------------------------------------------- files


def save_figure(fig: plt.Figure, path: str | os.PathLike[str]) -> Path:
    """Write `fig` as PNG atomically and close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_table(table: pd.DataFrame, path_stem: str | os.PathLike[str]) -> tuple[Path, Path]:
    """`<stem>.md` (GitHub markdown) and `<stem>.csv` of a table."""
    stem = Path(path_stem)
    md = write_text(table.to_markdown() + "\n", stem.with_suffix(".md"))
    csv = write_text(table.to_csv(), stem.with_suffix(".csv"))
    return md, csv


# ----------------------------------------------------------------------------- figures


def _percent_axis(ax: plt.Axes, label: str = "top-1 accuracy [%]") -> None:
    ax.set_ylabel(label)
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{100 * v:.0f}"))
    ax.grid(axis="y", alpha=0.3)


def plot_accuracy_vs_ipc(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    full: Mapping[str, tuple[float, float]] | None = None,
) -> Path | None:
    """Test accuracy against IPC per method (mean ± std error bars), soft and hard labels."""
    results = main_results(df)
    if results.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, labels in zip(axes, LABEL_MODES, strict=True):
        at = results[results["labels"] == labels]
        for method in _ordered(at["method"]):
            m = at[at["method"] == method].sort_values("ipc")
            ax.errorbar(
                m["ipc"],
                m["mean"],
                yerr=m["std"],
                marker="o",
                capsize=3,
                label=method,
                color=METHOD_COLORS.get(method),
            )
        if full and labels in full:
            ax.axhline(full[labels][0], color="black", ls="--", lw=1, label=FULL_DATA)
        ax.set_xscale("log")
        ax.set_xticks(sorted(results["ipc"].unique()) or [1])
        ax.xaxis.set_major_formatter(mticker.ScalarFormatter())
        ax.set_xlabel("IPC (clips per class)")
        ax.set_title(f"{labels} labels")
        _percent_axis(ax)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("Test accuracy vs distillation budget (mean ± std over student seeds)")
    return save_figure(fig, path)


def _grouped_bars(
    ax: plt.Axes, table: pd.DataFrame, group: str, hue: str, colors: Mapping[str, Any] | None = None
) -> None:
    """Bars of `mean` ± `std`, one group per value of `group`, one bar per value of `hue`."""
    groups = list(dict.fromkeys(table[group]))
    hues = list(dict.fromkeys(table[hue]))
    width = 0.8 / max(len(hues), 1)
    for j, h in enumerate(hues):
        sub = table[table[hue] == h].set_index(group)
        xs = [i + (j - (len(hues) - 1) / 2) * width for i, g in enumerate(groups) if g in sub.index]
        ys = [sub.loc[g, "mean"] for g in groups if g in sub.index]
        es = [sub.loc[g, "std"] for g in groups if g in sub.index] if "std" in sub else None
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=str(h), color=(colors or {}).get(h))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([str(g) for g in groups])


def plot_ablation(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """Horizontal bars: each TSGD variant's test accuracy, soft and hard labels (None: no runs)."""
    table = ablation_results(df)
    if table.empty:
        return None
    names = sorted(set(table["variant"]))
    first = [v for v in ("TSGD (full)",) if v in names]
    last = [v for v in (METHOD_LABELS["sre2l"],) if v in names]
    order = first + [v for v in names if v not in first + last] + last
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(order) + 1.8))
    height = 0.38
    for j, labels in enumerate(LABEL_MODES):
        sub = table[table["labels"] == labels].set_index("variant")
        ys = [i + (j - 0.5) * height for i, v in enumerate(order) if v in sub.index]
        ax.barh(
            ys,
            [sub.loc[v, "mean"] for v in order if v in sub.index],
            height,
            xerr=[sub.loc[v, "std"] for v in order if v in sub.index],
            capsize=3,
            label=f"{labels} labels",
        )
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels(order)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{100 * v:.0f}"))
    ax.set_xlabel("top-1 test accuracy [%]")
    ax.grid(axis="x", alpha=0.3)
    full = table[(table["variant"] == "TSGD (full)") & (table["labels"] == "soft")]
    if len(full):
        ax.axvline(full["mean"].iloc[0], color="black", ls="--", lw=1, label="TSGD (full), soft")
    ax.legend(fontsize=8)
    ax.set_title(f"Ablation of TSGD's parts at IPC {int(table['ipc'].iloc[0])} (mean ± std)")
    return save_figure(fig, path)


def plot_sensitivity(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """Validation accuracy against k, eps, beta and alpha (one moved at a time)."""
    table = sensitivity_results(df)
    if table.empty:
        return None
    params = [p for p in SENSITIVITY_PARAMS if p in set(table["param"])]
    fig, axes = plt.subplots(
        1, len(params), figsize=(3.4 * len(params), 3.6), sharey=True, squeeze=False
    )
    defaults = RunSpec()
    for ax, param in zip(axes[0], params, strict=True):
        sub = table[table["param"] == param]
        numeric = param != "alpha"
        sub = sub.sort_values("value") if numeric else sub
        xs = sub["value"].astype(float) if numeric else range(len(sub))
        ax.errorbar(xs, sub["mean"], yerr=sub["std"], marker="o", capsize=3)
        if numeric:
            ax.axvline(float(getattr(defaults, param)), color="grey", ls=":", lw=1, label="default")
            if param == "eps":
                ax.set_xscale("log")
        else:
            ax.set_xticks(list(xs))
            ax.set_xticklabels(list(sub["value"]))
        ax.set_xlabel(
            {
                "k": "k (half-window, frames)",
                "eps": "eps",
                "beta": "beta (floor)",
                "alpha": "alpha (kernel shape)",
            }[param]
        )
        _percent_axis(ax, "validation accuracy [%]")
    ipc = int(table["ipc"].iloc[0])
    fig.suptitle(f"TSGF sensitivity on the validation split (TSGD, IPC {ipc}, soft labels)")
    return save_figure(fig, path)


def plot_shake(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """SRe2L-style vs TSGD test accuracy with and without camera shake."""
    table = shake_results(df)
    if table.empty or not (table["camera_shake"] > 0).any():
        return None
    table = table.assign(
        condition=[
            f"IPC {i}, {'no shake' if s == 0 else f'shake {s:g}'}"
            for i, s in zip(table["ipc"], table["camera_shake"], strict=True)
        ]
    ).sort_values(["ipc", "camera_shake"])
    fig, ax = plt.subplots(figsize=(7.5, 4))
    _grouped_bars(ax, table, "condition", "method", METHOD_COLORS)
    _percent_axis(ax, "top-1 test accuracy [%]")
    ax.legend(fontsize=8)
    ax.set_title("Camera shake: does saliency from frame differences still help? (soft labels)")
    return save_figure(fig, path)


def plot_cost(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """Distillation wall time and peak added memory per method and IPC (same machine)."""
    table = cost_results(df)
    if table.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, col, label in zip(
        axes,
        ("distill_wall_s", "distill_peak_mb"),
        ("distillation wall time [s]", "peak added memory [MiB]"),
        strict=True,
    ):
        sub = table.rename(columns={col: "mean"}).assign(ipc=[f"IPC {i}" for i in table["ipc"]])
        _grouped_bars(ax, sub, "method", "ipc")
        ax.set_ylabel(label)
        if col == "distill_wall_s" and (sub["mean"] > 0).all():
            ax.set_yscale("log")  # selection takes milliseconds, optimisation minutes
        ax.tick_params(axis="x", labelrotation=30)
        ax.grid(axis="y", alpha=0.3)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("Cost of making the distilled set, measured on the same machine")
    return save_figure(fig, path)


def plot_accuracy_bars(
    records: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    full: Mapping[str, tuple[float, float]] | None = None,
    chance: float | None = None,
    title: str = "Student accuracy",
    split: str = "test",
) -> Path:
    """Bars per run (mean ± std) with every seed as a dot, for soft and hard labels."""
    fig, ax = plt.subplots(figsize=(7, 4))
    modes = [m for m in LABEL_MODES if any(not math.isnan(_acc_columns(r, m)[0]) for r in records)]
    width = 0.8 / max(len(records), 1)
    for j, rec in enumerate(records):
        name = rec.get("display") or row_label(rec) + f" (IPC {rec['ipc']})"
        xs, means, stds = [], [], []
        for i, mode in enumerate(modes):
            mean, std, seeds = _acc_columns(rec, mode)
            x = i + (j - (len(records) - 1) / 2) * width
            xs.append(x)
            means.append(mean)
            stds.append(std)
            ax.scatter([x] * len(seeds), seeds, color="black", s=12, zorder=3)
        ax.bar(
            xs,
            means,
            width,
            yerr=stds,
            capsize=3,
            label=name,
            alpha=0.85,
            color=METHOD_COLORS.get(row_label(rec)),
        )
    for i, mode in enumerate(modes):
        if full and mode in full:
            ax.hlines(
                full[mode][0],
                i - 0.45,
                i + 0.45,
                colors="black",
                linestyles="--",
                label=FULL_DATA if i == 0 else None,
            )
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
    ax.set_xticks(range(len(modes)))
    ax.set_xticklabels([f"{m} labels" for m in modes])
    _percent_axis(ax, f"top-1 {split} accuracy [%]")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    ax.set_title(title)
    return save_figure(fig, path)


def plot_bars(
    values: Mapping[str, float],
    path: str | os.PathLike[str],
    *,
    title: str,
    ylabel: str = "top-1 test accuracy [%]",
    chance: float | None = None,
) -> Path:
    """A few named accuracies (fractions) as bars with their value printed on top."""
    fig, ax = plt.subplots(figsize=(1.6 * len(values) + 2.5, 3.6))
    bars = ax.bar(
        list(values), list(values.values()), color=plt.get_cmap("tab10").colors[: len(values)]
    )
    ax.bar_label(bars, labels=[f"{100 * v:.1f}" for v in values.values()])
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
        ax.legend(fontsize=8)
    _percent_axis(ax, ylabel)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    return save_figure(fig, path)


def frame_strip_image(
    videos: torch.Tensor, labels: torch.Tensor, num_classes: int, *, scale: int = 1, gap: int = 1
) -> tuple[np.ndarray, list[int]]:
    """One row per clip (sorted by class), frames left to right: uint8 (H, W, 3) and row classes."""
    grid = clip_grid_frames(videos, labels, num_classes, scale, per_row=1, gap=gap)
    order = torch.sort(torch.as_tensor(labels).cpu(), stable=True)
    return np.concatenate(list(grid), axis=1), order.values.tolist()


def plot_frame_strips(
    videos: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str,
    scale: int = 2,
) -> Path:
    """Each clip as a strip of its frames (rows = clips by class, columns = time)."""
    videos = videos.detach().cpu()
    image, row_classes = frame_strip_image(videos, labels, len(class_names), scale=scale)
    _, _, t, h, w = videos.shape
    gap = 1
    cell_h, cell_w = h * scale + gap, w * scale + 2 * gap
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * t + 2), 0.5 * len(row_classes) + 1.2))
    ax.imshow(image, interpolation="nearest")
    ax.set_yticks([gap + i * cell_h + h * scale / 2 for i in range(len(row_classes))])
    ax.set_yticklabels([class_names[c] for c in row_classes], fontsize=8)
    ax.set_xticks([gap + i * cell_w + w * scale / 2 for i in range(t)])
    ax.set_xticklabels([str(i) for i in range(t)], fontsize=8)
    ax.set_xlabel("frame t")
    ax.set_title(title)
    return save_figure(fig, path)


def _time_strip(frames: np.ndarray, gap: int = 1) -> np.ndarray:
    """(T, H, W, 3) frames side by side with white gaps: (H, T * (W + gap) - gap, 3)."""
    t, h, w, _ = frames.shape
    padded = np.ones((t, h, w + gap, 3), dtype=frames.dtype)
    padded[:, :, :w] = frames
    return np.concatenate(list(padded), axis=1)[:, : t * (w + gap) - gap]


def plot_saliency(
    clips: torch.Tensor,
    path: str | os.PathLike[str],
    *,
    cfg: SaliencyConfig | None = None,
    names: Sequence[str] | None = None,
    title: str = "Temporal saliency W' over time",
) -> Path:
    """For each clip (N, C, T, H, W): its frames, W' overlaid on them, and the frame weights w_t."""
    cfg = cfg or SaliencyConfig()
    clips = clips.detach().cpu().float()
    n, _, t, _, w = clips.shape
    names = list(names) if names is not None else [f"clip {i}" for i in range(n)]
    sal = saliency_map(clips, cfg)[:, 0].numpy()  # (N, T, H, W)
    weights = frame_weights(clips, cfg).numpy()  # (N, T)
    frames = clips.clamp(0, 1).expand(-1, 3, -1, -1, -1).permute(0, 2, 3, 4, 1).numpy()
    grey = frames.mean(axis=-1, keepdims=True)
    heat_rgb = plt.get_cmap("inferno")(sal)[..., :3]
    overlay = 0.35 * grey + 0.65 * heat_rgb  # W' over the grey frame
    fig, axes = plt.subplots(
        2 * n + 1,
        1,
        figsize=(1.0 * t + 2.5, 1.9 * n + 2.4),
        gridspec_kw={"height_ratios": [1] * (2 * n) + [1.6], "hspace": 0.25},
    )
    centres = [f * (w + 1) + (w - 1) / 2 for f in range(t)]
    for i in range(n):
        for row, image, label in ((2 * i, frames[i], names[i]), (2 * i + 1, overlay[i], "W'")):
            ax = axes[row]
            ax.imshow(_time_strip(image), interpolation="nearest")
            ax.set_yticks([])
            ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
            ax.set_xticks(centres if row == 0 else [])
            if row == 0:
                ax.set_xticklabels([f"t={f}" for f in range(t)], fontsize=8)
                ax.xaxis.tick_top()
    ax = axes[-1]
    for i in range(n):
        ax.plot(range(t), weights[i], marker="o", label=names[i])
    ax.axhline(cfg.beta, color="grey", ls=":", lw=1, label=f"floor beta={cfg.beta:g}")
    ax.set_xlabel("frame t")
    ax.set_ylabel("w_t (mean W')")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    scale = plt.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap="inferno")
    fig.colorbar(scale, ax=list(axes[:-1]), shrink=0.7, label="W' (saliency)")
    fig.suptitle(f"{title}  (k={cfg.k}, {cfg.alpha}, eps={cfg.eps:g}, beta={cfg.beta:g})")
    return save_figure(fig, path)


def plot_loss_history(
    history: Mapping[str, Sequence[float]], path: str | os.PathLike[str], *, title: str
) -> Path | None:
    """Distillation curves: loss, loss_ce, loss_bn (log scale) and the teacher's accuracy on S."""
    losses = {k: v for k, v in history.items() if k.startswith("loss") and len(v)}
    if not losses:
        return None
    acc = history.get("teacher_acc") or []
    fig, axes = plt.subplots(1, 2 if acc else 1, figsize=(10 if acc else 5.5, 3.6), squeeze=False)
    ax = axes[0][0]
    for name, values in losses.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    if all(min(v) > 0 for v in losses.values()):
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if acc:
        ax = axes[0][1]
        ax.plot(range(1, len(acc) + 1), acc, color="black")
        ax.set_xlabel("iteration")
        ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
        _percent_axis(ax, "teacher accuracy on S [%]")
        ax.set_ylim(0, 1.02)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_training_curves(
    history: Mapping[str, Sequence[float]], path: str | os.PathLike[str], *, title: str
) -> Path:
    """Training loss per step and validation accuracy per evaluation (the teacher's fit)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(history.get("step", range(len(history["loss"]))), history["loss"], lw=1)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss (cross-entropy)")
    axes[0].grid(alpha=0.3)
    if history.get("val_acc"):
        axes[1].plot(history["val_step"], history["val_acc"], marker="o", color="tab:green")
    axes[1].set_xlabel("step")
    _percent_axis(axes[1], "validation accuracy [%]")
    axes[1].set_ylim(0, 1.02)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_confusion(
    matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike[str], *, title: str
) -> Path:
    """Row-normalised confusion matrix with the counts written in the cells."""
    rows = matrix.sum(axis=1, keepdims=True)
    rates = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(0.55 * k + 2.5, 0.5 * k + 2))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i, j in zip(*np.nonzero(matrix), strict=True):
        ax.text(
            j,
            i,
            str(matrix[i, j]),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if rates[i, j] > 0.5 else "black",
        )
    ax.set_xticks(range(k))
    ax.set_xticklabels(class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k))
    ax.set_yticklabels(class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    ax.set_title(title)
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- README


def _image(alt: str, path: Path | None, base: Path) -> str:
    if path is None:
        return ""
    return f"![{alt}]({Path(os.path.relpath(path, base)).as_posix()})\n"


def _bullets(lines: Sequence[str]) -> str:
    return "".join(f"- {line}\n" for line in lines)


def _profile_line(profile: str) -> str:
    try:
        prof = get_profile(profile)
    except ValueError:
        return ""
    d = prof.data
    return (
        f"Data: the built-in motion benchmark, {d['num_classes']} classes, clips of "
        f"{d['frames']} frames x {d['height']}x{d['width']} pixels, {d['clips_per_class']} train / "
        f"{d['val_per_class']} val / {d['test_per_class']} test clips per class. Students: "
        f"{prof.student.fit.steps} steps each, {len(prof.seeds)} seeds. Distillation: "
        f"{prof.distill_iterations} iterations (DM: {prof.dm_iterations}).\n"
    )


def ablation_sentences(df: pd.DataFrame, labels: str = "soft") -> list[str]:
    """Each variant's accuracy relative to the full TSGD at the ablation IPC."""
    table = ablation_results(df)
    table = table[table["labels"] == labels].set_index("variant")
    if "TSGD (full)" not in table.index:
        return []
    base = table.loc["TSGD (full)", "mean"]
    lines = []
    for variant, row in table.drop(index="TSGD (full)").iterrows():
        gap = 100 * (row["mean"] - base)
        lines.append(
            f"{variant}: {format_mean_std(row['mean'], row['std'])}% ({gap:+.1f} points vs full TSGD)"
        )
    return lines


def sensitivity_sentences(df: pd.DataFrame) -> list[str]:
    """The best value of each filter parameter on the validation split, and how much it matters."""
    table = sensitivity_results(df)
    lines = []
    for param in SENSITIVITY_PARAMS:
        sub = table[table["param"] == param]
        if len(sub) < 2:
            continue
        spread = 100 * (sub["mean"].max() - sub["mean"].min())
        values = ", ".join(str(v) for v in sub["value"])
        if spread < 0.05:
            lines.append(f"{param}: no difference on validation over {param} = {values}")
            continue
        best = sub.loc[sub["mean"].idxmax()]
        lines.append(
            f"{param}: best on validation {param}={best['value']} "
            f"({format_mean_std(best['mean'], best['std'])}%), spread {spread:.1f} points "
            f"over {param} = {values}"
        )
    return lines


def readme_text(
    df: pd.DataFrame,
    *,
    profile: str,
    command: str,
    figures: Mapping[str, Path | None],
    base: str | os.PathLike[str],
    full: Mapping[str, tuple[float, float]] | None = None,
    generated: str | None = None,
    data: str | None = None,
) -> str:
    """The report's README.md: verdicts computed from the numbers, the main table, the figures.

    data: the line naming a real dataset and its sizes (default: the profile's benchmark).
    """
    base = Path(base)
    generated = generated or datetime.now(timezone.utc).isoformat(timespec="seconds")
    table = main_table(df, full)
    seeds = int(main_results(df)["n_seeds"].max()) if not table.empty else 0
    text = [f"# TSGD experiments: profile `{profile}`\n\n"]
    text.append(
        f"Generated by `notebooks/05_report.ipynb` from {len(df)} runs on {generated}. "
        f"Regenerate everything with:\n\n```bash\n{command}\n```\n\n"
    )
    text.append(f"Data: {data}.\n" if data else _profile_line(profile))
    if profile != "default" and not data:
        text.append(
            f"\n> The `{profile}` profile is sized to check the pipeline in minutes; its numbers are "
            "too small and noisy to support claims. Read the `default` profile's report for results.\n"
        )
    text.append("\n## Does TSGD beat the baselines?\n\n")
    text.append(
        "Computed from the main table below (test split, mean over student seeds); the best "
        "baseline is the strongest of random, herding, k-center, DM and SRe2L-style.\n\n"
    )
    for labels in LABEL_MODES:
        overall, *per_ipc = verdict_sentences(tsgd_verdicts(df, labels))
        text.append(f"- **{labels.capitalize()} labels.** {overall}\n")
        text.append("".join(f"  - {line}\n" for line in per_ipc))
    gains = filter_gain_sentences(df)
    if gains:
        text.append("- **What the filter adds** (TSGD vs SRe2L-style, same budget and recipe):\n")
        text.append("".join(f"  - {line}\n" for line in gains))
    label_gains = label_gain_sentences(df)
    if label_gains:
        text.append("- **Soft vs hard labels** (gain over the random subset, same training):\n")
        text.append("".join(f"  - {line}\n" for line in label_gains))
    text.append(
        f"\n## Main table\n\nTop-1 accuracy [%] on the real test split, mean ± std over {seeds} "
        "student seeds; students trained from scratch on the distilled set only. "
        "Soft: teacher relabels every augmented view; hard: class labels.\n\n"
    )
    if table.empty:
        text.append("No main-table runs in the records: run the grid's `main` group.\n\n")
    else:
        text.append(table.to_markdown() + "\n\n")
    text.append(_image("accuracy vs IPC", figures.get("accuracy_vs_ipc"), base))
    sections = [
        ("Ablations", "ablation", ablation_sentences(df)),
        ("Sensitivity of the filter (validation split)", "sensitivity", sensitivity_sentences(df)),
        ("Camera shake", "shake", shake_sentences(shake_results(df))),
        ("Time and memory", "cost", []),
    ]
    for heading, key, lines in sections:
        if figures.get(key) is None and not lines:
            continue
        text.append(f"\n## {heading}\n\n")
        text.append(_bullets(lines) + ("\n" if lines else ""))
        text.append(_image(heading, figures.get(key), base))
    clips = [(k, v) for k, v in figures.items() if k.startswith("distilled_") and v is not None]
    if clips:
        text.append("\n## Distilled clips\n\nOne row per class, frames left to right.\n\n")
        for key, path in clips:
            text.append(_image(key.removeprefix("distilled_"), path, base))
    text.append(
        "\n## Files\n\n- `main_table.md`, `main_table.csv`: the table above; `all_runs.csv`: every "
        "run's record\n- `runs/<group>/<run>/`: executed notebooks, figures and `record.json` of "
        "each run\n"
    )
    return "".join(text)


def write_report(
    df: pd.DataFrame,
    reports_dir: str | os.PathLike[str],
    *,
    profile: str,
    command: str,
    full: Mapping[str, tuple[float, float]] | None = None,
    extra_figures: Mapping[str, Path | None] | None = None,
    data: str | None = None,
) -> dict[str, Path | None]:
    """Tables, figures and README.md of the records `df` into `reports_dir`."""
    out = Path(reports_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path | None] = {}
    files["main_table_md"], files["main_table_csv"] = write_table(
        main_table(df, full), out / "main_table"
    )
    files["all_runs"] = write_text(
        df.drop(columns=["record_path"], errors="ignore").to_csv(index=False), out / "all_runs.csv"
    )
    figures = {
        "accuracy_vs_ipc": plot_accuracy_vs_ipc(df, fig_dir / "accuracy_vs_ipc.png", full),
        "ablation": plot_ablation(df, fig_dir / "ablation.png"),
        "sensitivity": plot_sensitivity(df, fig_dir / "sensitivity.png"),
        "shake": plot_shake(df, fig_dir / "shake.png"),
        "cost": plot_cost(df, fig_dir / "cost.png"),
        **(extra_figures or {}),
    }
    files.update(figures)
    files["readme"] = write_text(
        readme_text(
            df, profile=profile, command=command, figures=figures, base=out, full=full, data=data
        ),
        out / "README.md",
    )
    return files


def write_reports_index(reports_root: str | os.PathLike[str]) -> Path:
    """`reports/README.md`: a list of the profile reports found under `reports_root`."""
    root = Path(reports_root)
    found = sorted(p.parent for p in root.glob("*/README.md"))
    lines = [
        "# Reports\n\nGenerated by `./run_all.sh` (`scripts/run_grid.py`); one folder per profile. "
        "Only `default` is committed (without per-run notebooks, images and HTML); the others "
        "are regenerated by their commands.\n\n"
    ]
    if not found:
        lines.append("No report yet: run `./run_all.sh --quick` (minutes) or `./run_all.sh`.\n")
    for folder in found:
        lines.append(f"- [`{folder.name}`]({folder.name}/README.md)\n")
    return write_text("".join(lines), root / "README.md")

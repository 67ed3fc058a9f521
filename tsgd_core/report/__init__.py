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
from dataclasses import MISSING, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in papermill kernels

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ..data.artifact import clip_grid_frames  # noqa: E402
from ..data.storage import DPI, atomic_path, save_figure, write_table, write_text  # noqa: E402, F401
from ..grid import stats  # noqa: E402
from ..grid.experiments import (  # noqa: E402
    DISTILL_SWITCHES,
    METHOD_LABELS,
    RunSpec,
    get_profile,
    spec_from_params,
)
from ..training.evaluate import LABEL_MODES  # noqa: E402
from ..training.saliency import SaliencyConfig, frame_weights, saliency_map  # noqa: E402

RUNSPEC_FIELDS = tuple(f.name for f in fields(RunSpec))
# RunSpec fields the validation studies vary: records are grouped by them wherever they appear
STUDY_FIELDS = ("iterations", "student_scale", "tsgfa_parts", "first_bn", "dm_lr")
CONFIG_FIELDS = tuple(dict.fromkeys((*RUNSPEC_FIELDS, *STUDY_FIELDS)))
# selection of real clips (Salient windows keeps real footage too), then distillation
BASELINES = ("random", "herding", "kcenter", "salient", "dm", "sre2l")
TSGD_NO_TSGFA = "TSGD w/o TSGFA"
FULL_DATA = "Full data (upper bound)"
# table and legend order: selection, distillation, then the method itself
METHOD_ORDER = (*(METHOD_LABELS[m] for m in BASELINES), TSGD_NO_TSGFA, METHOD_LABELS["tsgd"])
# tab10 colours by position; Salient windows came later and takes olive, so the others keep theirs
_TAB10 = plt.get_cmap("tab10").colors
METHOD_COLORS = {
    **dict(zip((m for m in METHOD_ORDER if m != METHOD_LABELS["salient"]), _TAB10, strict=False)),
    METHOD_LABELS["salient"]: _TAB10[8],
}
# switches whose default value defines "the method as published" (main table rows)
VARIANT_FIELDS = DISTILL_SWITCHES
SENSITIVITY_PARAMS = ("k", "eps", "beta", "alpha")
PERCENT = 100.0  # tables and CSV files give accuracies and differences in percent (points)
POOLED = "n_distill"  # the column that marks a frame already pooled over distill seeds
_VARIANT_NAMES = {
    ("init", "noise"): "noise init",
    ("modulation", "frame"): "per-frame modulation",
    ("lowpass", True): "+ temporal low-pass",
    ("saliency_source", "real"): "saliency of the real init clip",
    ("recover_augment", False): "recovery without augmentation",
    ("train_pixels", "start"): "students on the start pixels",
    ("label_pixels", "start"): "labels of the start pixels",
}


# ----------------------------------------------------------------------------- records


def collect_records(runs_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every `record.json` under `runs_dir` as one row; `group` is the first folder below it.

    A run that appears in several groups (same `name`) is kept once, in `main` when it is there.
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
    rows.sort(key=lambda row: row["group"] != "main")  # stable: main first, then by path
    df = pd.DataFrame(rows)
    # a record written before a RunSpec field existed ran with that field's default
    for f in fields(RunSpec):
        if f.name not in df.columns and f.default is not MISSING:
            df[f.name] = [f.default] * len(df)
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


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _normal(value: Any) -> Any:
    """A JSON-able, comparable form of a record value (lists, None for missing)."""
    value = _plain(value)
    if isinstance(value, list | tuple | np.ndarray):
        return [_normal(v) for v in value]
    return None if _missing(value) else value


def config_id(record: Mapping[str, Any]) -> str:
    """The configuration of a record, as JSON: its grid group and every RunSpec field except
    `distill_seed` and `labels` (a draw evaluated with fewer label modes is the same
    configuration: the main group's later draws are evaluated with soft labels alone)."""
    spec = {f: _normal(record.get(f)) for f in CONFIG_FIELDS if f not in ("distill_seed", "labels")}
    spec["group"] = _normal(record.get("group"))
    return json.dumps(spec, sort_keys=True, default=str)


def pool_records(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration, its distillation seeds pooled.

    Per label mode L: `acc_L_mean` (mean of the distill-seed means), `acc_L_std` and
    `acc_L_seeds` over every (distill seed, student seed) pair, `acc_L_n` (pairs),
    `acc_L_ci_low` / `acc_L_ci_high` (`stats.two_level_interval`); `n_distill`,
    `distill_seeds`, the mean distillation time, the largest peak memory, and `records` (the
    raw records, for paired differences). A pooled frame is returned as it is.
    """
    if POOLED in df.columns:
        return df
    records = df.to_dict("records")
    by_config: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_config.setdefault(config_id(rec), []).append(rec)
    rows = [_pool(members) for members in by_config.values()]
    columns = list(df.columns) + [c for c in (rows[0] if rows else {}) if c not in df.columns]
    if not rows:
        columns += [POOLED, "distill_seeds", "records"]
    return pd.DataFrame(rows, columns=columns)


def _pool(members: list[dict[str, Any]]) -> dict[str, Any]:
    row = dict(members[0])
    seeds = sorted({stats.distill_seed_of(m) for m in members})
    row.update(distill_seed=seeds[0], distill_seeds=seeds, n_distill=len(seeds), records=members)
    evaluated = {mode for m in members for mode in str(m.get("labels") or "").split(",")}
    row["labels"] = ",".join(mode for mode in LABEL_MODES if mode in evaluated)
    for labels in LABEL_MODES:
        row.update(_pooled_accuracy(members, labels))
    row["distill_wall_s"] = _mean_of(members, "distill_wall_s", statistics.fmean)
    row["distill_peak_mb"] = _mean_of(members, "distill_peak_mb", max)
    if any("distill_final_loss" in m for m in members):
        row["distill_final_loss"] = _mean_of(members, "distill_final_loss", statistics.fmean)
    return row


def _mean_of(members: list[dict[str, Any]], key: str, reduce: Any) -> float:
    values = [float(m[key]) for m in members if not _missing(_plain(m.get(key)))]
    return reduce(values) if values else math.nan


def _pooled_accuracy(members: list[dict[str, Any]], labels: str) -> dict[str, Any]:
    values = stats.seed_accuracies(members, labels)
    interval = stats.two_level_interval(stats.by_distill_seed(values))
    accs = list(values.values())
    low, high = clip_accuracy_interval(interval.low, interval.high)
    return {
        f"acc_{labels}_mean": interval.mean,
        f"acc_{labels}_std": statistics.stdev(accs)
        if len(accs) > 1
        else (0.0 if accs else math.nan),
        f"acc_{labels}_seeds": accs,
        f"acc_{labels}_n": interval.n,
        f"acc_{labels}_n_distill": len({distill for distill, _ in values}),
        f"acc_{labels}_ci_low": low,
        f"acc_{labels}_ci_high": high,
    }


def clip_accuracy_interval(low: float, high: float, top: float = 1.0) -> tuple[float, float]:
    """An accuracy interval kept inside [0, top] (fractions: 1, percent: 100); NaN stays NaN.

    Only accuracies: a difference between two accuracies can be negative and is never clipped.
    """

    def clip(value: float) -> float:
        value = float(value)
        return value if math.isnan(value) else min(max(value, 0.0), top)

    return clip(low), clip(high)


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


def _missing(value: Any) -> bool:
    """None, or the NaN that pandas puts where a record has None."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(a: Any, b: Any) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
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
        if f in ("tsgfo", "distill_seed") or _same(value, getattr(defaults, f)):
            continue
        changes.append(_VARIANT_NAMES.get((f, value), f"{f}={value}"))
    if not changes:
        return "TSGD (full)"
    return "TSGD " + ", ".join(changes).replace(", -", " -")


def _in_group(df: pd.DataFrame, group: str) -> pd.DataFrame:
    """The pooled runs of one grid group (empty when the records carry no such group)."""
    runs = pool_records(df)
    if "group" not in runs.columns:
        return runs.iloc[0:0]
    return runs[runs["group"] == group]


def _test_runs(df: pd.DataFrame) -> pd.DataFrame:
    runs = pool_records(df)
    return runs[(runs["eval_split"] == "test") & (runs["camera_shake"] == 0)]


def main_records(df: pd.DataFrame) -> pd.DataFrame:
    """The main-table runs, pooled over distill seeds: test split, no camera shake, and the
    `main` group when the records name groups (otherwise: default switches)."""
    runs = _test_runs(df)
    if "group" in runs.columns and (runs["group"] == "main").any():
        runs = runs[runs["group"] == "main"].copy()
    else:
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


def _ci_columns(row: Mapping[str, Any], labels: str) -> dict[str, Any]:
    """n, ci_low, ci_high of a pooled row's label mode."""
    return {
        "n": int(row.get(f"acc_{labels}_n", 0) or 0),
        "ci_low": float(row.get(f"acc_{labels}_ci_low", math.nan)),
        "ci_high": float(row.get(f"acc_{labels}_ci_high", math.nan)),
    }


RESULT_COLUMNS = ["mean", "std", "n", "ci_low", "ci_high"]


def main_results(df: pd.DataFrame) -> pd.DataFrame:
    """Long numeric table of the main runs: one row per (method, IPC, label mode), pooled."""
    out = []
    for _, row in main_records(df).iterrows():
        for labels in LABEL_MODES:
            mean, std, _ = _acc_columns(row, labels)
            if math.isnan(mean):
                continue
            out.append(
                {
                    "method": row["row"],
                    "ipc": int(row["ipc"]),
                    "labels": labels,
                    "mean": mean,
                    "std": std,
                    **_ci_columns(row, labels),
                    # the draws evaluated with these labels (hard: the first draw alone)
                    "n_distill": int(row.get(f"acc_{labels}_n_distill", row["n_distill"])),
                    "distill_wall_s": row.get("distill_wall_s"),
                    "distill_peak_mb": row.get("distill_peak_mb"),
                }
            )
    columns = [
        "method",
        "ipc",
        "labels",
        *RESULT_COLUMNS,
        "n_distill",
        "distill_wall_s",
        "distill_peak_mb",
    ]
    return pd.DataFrame(out, columns=columns)


def teacher_warning(
    test_acc: float, num_classes: int, profile: str, margin: float = 0.2
) -> str | None:
    """A notebook's early warning (markdown) when the teacher is within `margin` of chance, else None."""
    chance = 1 / num_classes
    if test_acc >= chance + margin:
        return None
    return (
        f"**Warning:** the teacher reaches {100 * test_acc:.1f} % on the test split, within "
        f"{100 * margin:.0f} points of chance ({100 * chance:.1f} %), at profile `{profile}`. Everything "
        "below is distilled against or relabelled by a teacher that has not learned the motion, so "
        'its numbers check the pipeline only: run with `profile = "tutorial"` (seconds) or '
        '`"default"` to see the method work.'
    )


def format_mean_std(mean: float, std: float, scale: float = 100.0, digits: int = 1) -> str:
    """'45.2 ± 3.1' (accuracy in %, by default); '—' when there is no number."""
    if mean is None or std is None or math.isnan(mean):
        return "—"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def format_ci(mean: float, low: float, high: float, scale: float = 100.0, digits: int = 1) -> str:
    """'45.2 [41.0, 49.4]' (mean and 95 % CI, in % by default); no brackets without an interval."""
    if mean is None or math.isnan(mean):
        return "—"
    text = f"{mean * scale:.{digits}f}"
    if math.isnan(low) or math.isnan(high):
        return text
    return f"{text} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


class Summary(NamedTuple):
    """Mean and std of a set of student accuracies, with the t-interval of the mean."""

    mean: float
    std: float
    n: int = 0
    ci_low: float = math.nan
    ci_high: float = math.nan


def full_data_summary(results: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """{labels: (mean, std)} from `experiments.full_data_results` (EvalResult) or accuracy lists."""
    return {labels: (s.mean, s.std) for labels, s in full_data_intervals(results).items()}


def full_data_intervals(results: Mapping[str, Any]) -> dict[str, Summary]:
    """{labels: Summary} (mean, std, n, t-interval over student seeds) of full-data results."""
    out = {}
    for labels, res in results.items():
        accs = list(res.accs) if hasattr(res, "accs") else list(res)
        mean, low, high = stats.mean_ci(accs)
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        out[labels] = Summary(mean, std, len(accs), *clip_accuracy_interval(low, high))
    return out


def _summary(value: Sequence[float]) -> Summary:
    """A Summary from a Summary or a plain (mean, std) pair, its interval inside [0, 1]."""
    s = value if isinstance(value, Summary) else Summary(*value)
    return s._replace(
        **dict(zip(("ci_low", "ci_high"), clip_accuracy_interval(s.ci_low, s.ci_high), strict=True))
    )


def _ordered(labels: Sequence[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(METHOD_ORDER)}
    return sorted(set(labels), key=lambda name: (rank.get(name, len(rank)), name))


def main_table(df: pd.DataFrame, full: Mapping[str, Sequence[float]] | None = None) -> pd.DataFrame:
    """Methods x IPC: 'mean [95 % CI]' test accuracy (%) per label mode, distill time and memory.

    Time and memory are those of the largest IPC; `full` adds the full-data row. Without
    main-table runs (test split, no shake, main group) the table is empty.
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
                    format_ci(*hit[["mean", "ci_low", "ci_high"]].iloc[0]) if len(hit) else "—"
                )
        at_top = mine[mine["ipc"] == top]
        row[time_col] = _format_number(at_top["distill_wall_s"].iloc[0] if len(at_top) else None)
        row[mem_col] = _format_number(at_top["distill_peak_mb"].iloc[0] if len(at_top) else None)
        rows.append(row)
    if full:
        row = {"Method": FULL_DATA}
        for ipc in ipcs:
            for labels in LABEL_MODES:
                s = _summary(full[labels]) if labels in full else None
                row[f"IPC {ipc} {labels}"] = format_ci(s.mean, s.ci_low, s.ci_high) if s else "—"
        row[time_col] = row[mem_col] = "—"
        rows.append(row)
    return pd.DataFrame(rows).set_index("Method")


MAIN_TABLE_COLUMNS = ["method", "ipc", "labels", *RESULT_COLUMNS, "n_distill"]
# DD-Ranking-style columns after them: the gain over the start set, and how much of the full
# data's hard-label accuracy the set leaves to recover
GAIN_COLUMNS = ["gain_vs_start", "gain_ci_low", "gain_ci_high", "hard_label_recovery"]
START_GAIN_COLUMNS = ["method", "ipc", "labels", "mean_diff", "ci_low", "ci_high", "n", "n_distill"]


def start_gains(df: pd.DataFrame, paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each main method's paired difference to its start set, fractions: Random with the same
    distill seed, IPC and label mode, paired by (distill seed, student seed) as
    `paired_difference_results` pairs (Random itself has no row)."""
    paired = paired_difference_results(df) if paired is None else paired
    gains = paired[(paired["question"] == "vs_random") & (paired["b"] == RANDOM)]
    return gains.rename(columns={"a": "method"}).reindex(columns=START_GAIN_COLUMNS)


def _ipc_key(value: Any) -> int | None:
    """An IPC as a dict key (None for the full-data rows' missing IPC)."""
    return None if value is None or pd.isna(value) else int(value)


def _gain_columns(
    table: pd.DataFrame, gains: pd.DataFrame, full: Mapping[str, Sequence[float]]
) -> dict[str, list[float]]:
    """GAIN_COLUMNS (fractions) for the rows of `table`: NaN where there is no such number."""
    by_key = {(r["method"], int(r["ipc"]), r["labels"]): r for _, r in gains.iterrows()}
    hard = {
        (m, _ipc_key(i)): float(v)
        for m, i, lab, v in zip(
            table["method"], table["ipc"], table["labels"], table["mean"], strict=True
        )
        if lab == "hard" and m != FULL_DATA
    }
    full_hard = _summary(full["hard"]).mean if "hard" in full else math.nan
    out: dict[str, list[float]] = {col: [] for col in GAIN_COLUMNS}
    for method, ipc, labels in zip(table["method"], table["ipc"], table["labels"], strict=True):
        gain = by_key.get((method, _ipc_key(ipc), labels))
        for col, src in zip(GAIN_COLUMNS[:3], ("mean_diff", "ci_low", "ci_high"), strict=True):
            out[col].append(math.nan if gain is None else float(gain[src]))
        out["hard_label_recovery"].append(full_hard - hard.get((method, _ipc_key(ipc)), math.nan))
    return out


def main_table_long(
    df: pd.DataFrame,
    full: Mapping[str, Sequence[float]] | None = None,
    paired: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`main_table.csv`: one row per (method, IPC, label mode); accuracies in percent.

    mean: mean over distill seeds of the mean over student seeds; std: over all (distill seed,
    student seed) pairs; n: pairs; ci_low / ci_high: the 95 % interval of `stats.two_level_interval`.
    The full-data rows have no IPC and n_distill 0 (their interval is over student seeds).
    Then, in points: gain_vs_start with gain_ci_low / gain_ci_high (`start_gains`: the method
    minus its start set, paired; NaN for Random and the full-data rows) and hard_label_recovery
    (full-data hard-label accuracy minus this method's at this IPC, on its soft and its hard row;
    NaN where either is missing). `paired`: `paired_difference_results` when already computed.
    """
    results = main_results(df)
    results = results.assign(
        _rank=results["method"].map(_rank_of), _lrank=results["labels"].map(_label_rank)
    ).sort_values(["_rank", "ipc", "_lrank"])
    table = results.reindex(columns=MAIN_TABLE_COLUMNS)
    rows = [table]
    full = full or {}
    for labels in [m for m in LABEL_MODES if m in full]:  # not the cache's key order
        s = _summary(full[labels])
        row = dict(zip(["mean", "std", "n", "ci_low", "ci_high"], s, strict=True))
        rows.append(
            pd.DataFrame(
                [{"method": FULL_DATA, "ipc": None, "labels": labels, **row, "n_distill": 0}]
            )
        )
    table = pd.concat([r for r in rows if not r.empty] or [table], ignore_index=True)
    table = table.reindex(columns=MAIN_TABLE_COLUMNS)
    table = table.assign(**_gain_columns(table, start_gains(df, paired), full))
    table["ipc"] = table["ipc"].astype("Int64")
    for col in ("mean", "std", "ci_low", "ci_high", *GAIN_COLUMNS):
        table[col] = (PERCENT * table[col].astype(float)).round(2) + 0.0  # no "-0.0"
    return table


def _rank_of(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def _label_rank(labels: str) -> int:
    return LABEL_MODES.index(labels) if labels in LABEL_MODES else len(LABEL_MODES)


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


RANDOM, SRE2L, TSGD = METHOD_LABELS["random"], METHOD_LABELS["sre2l"], METHOD_LABELS["tsgd"]
# the sets that start from the random draw of the same distill seed
OPTIMISED = (METHOD_LABELS["dm"], SRE2L, TSGD_NO_TSGFA, TSGD)
# (question, a, b, subject, verbs when a - b is resolved above / below 0)
COMPARISONS = (
    ("filter", TSGD_NO_TSGFA, SRE2L, "the filter", ("helps", "hurts")),
    ("tsgfa", TSGD, TSGD_NO_TSGFA, "TSGFA", ("helps", "hurts")),
    (
        "tsgd",
        TSGD,
        SRE2L,
        "TSGD (filter and TSGFA)",
        ("beats SRe2L-style", "falls below SRe2L-style"),
    ),
)
PAIRED_COLUMNS = [
    "question",
    "comparison",
    "ipc",
    "labels",
    "mean_diff",
    "ci_low",
    "ci_high",
    "n",
    "n_distill",
    "resolved",
    "ci_method",
    "pairs_t_low",
    "pairs_t_high",
    "bootstrap_low",
    "bootstrap_high",
]


def _comparisons(methods: Sequence[str]) -> list[tuple[str, str, str, str, tuple[str, str]]]:
    """The fixed questions, then every other method against Random (its start set, if optimised)."""
    out = list(COMPARISONS)
    for method in _ordered(methods):
        if method != RANDOM:
            start = " (its start set)" if method in OPTIMISED else ""
            out.append(
                (
                    "vs_random",
                    method,
                    RANDOM,
                    method,
                    (f"beats Random{start}", f"falls below Random{start}"),
                )
            )
    return out


def paired_difference_results(df: pd.DataFrame) -> pd.DataFrame:
    """Paired differences of the main runs at each IPC and label mode, with 95 % intervals.

    Pairs share the distill seed and the student seed (`stats.paired_differences`); the
    interval is `stats.difference_summary`'s. Differences are fractions (x100 = points);
    `diffs` holds the per-pair differences, `subject`/`verbs` the words of the sentences, `a`
    and `b` the two methods (the difference is a - b).
    """
    runs = main_records(df)
    out = []
    for ipc in sorted(runs["ipc"].unique()):
        at = {row["row"]: row for _, row in runs[runs["ipc"] == ipc].iterrows()}
        for question, a, b, subject, verbs in _comparisons(list(at)):
            if a not in at or b not in at:
                continue
            for labels in LABEL_MODES:
                pairs = stats.paired_differences(at[a]["records"], at[b]["records"], labels)
                if pairs.empty:
                    continue
                out.append(
                    {
                        "question": question,
                        "comparison": f"{a} − {b}",
                        "ipc": int(ipc),
                        "labels": labels,
                        **stats.difference_summary(pairs),
                        "subject": subject,
                        "verbs": verbs,
                        "diffs": list(pairs["diff"]),
                        "a": a,
                        "b": b,
                    }
                )
    return pd.DataFrame(out, columns=[*PAIRED_COLUMNS, "subject", "verbs", "diffs", "a", "b"])


def difference_span(diff: Mapping[str, Any], unit: str = " points") -> str:
    """'+2.1 points [+0.4, +3.8]': a difference (fractions in, points out) with its interval."""
    mean = f"{PERCENT * diff['mean_diff']:+.1f}{unit}"
    if math.isnan(diff["ci_low"]) or math.isnan(diff["ci_high"]):
        return f"{mean} (no interval: too few pairs)"
    return f"{mean} [{PERCENT * diff['ci_low']:+.1f}, {PERCENT * diff['ci_high']:+.1f}]"


def difference_sentence(row: Mapping[str, Any], where: str) -> str:
    """'the filter helps at IPC 5 (soft labels): +2.1 points [+0.4, +3.8] (15 pairs, 3 distill seeds).'"""
    span = difference_span(row)
    draws = int(row["n_distill"])
    count = f"({row['n']} pairs, {draws} distill seed{'' if draws == 1 else 's'})"
    if row["resolved"]:
        up, down = row["verbs"]
        verb = up if row["mean_diff"] > 0 else down
        return f"{row['subject']} {verb} {where}: {span} {count}."
    return f"not resolved {where}: {row['subject']} {span}, the interval includes 0 {count}."


def difference_sentences(paired: pd.DataFrame, question: str) -> list[str]:
    """One computed sentence per IPC and label mode for one question of `paired_difference_results`."""
    lines = []
    for _, row in paired[paired["question"] == question].iterrows():
        where = f"at IPC {row['ipc']} ({row['labels']} labels)"
        lines.append(_capitalised(difference_sentence(row, where)))
    return lines


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def paired_table(paired: pd.DataFrame) -> pd.DataFrame:
    """`paired_differences.csv`: differences and intervals in percentage points, resolved yes/no."""
    table = paired.reindex(columns=PAIRED_COLUMNS).copy()
    for col in (
        "mean_diff",
        "ci_low",
        "ci_high",
        "pairs_t_low",
        "pairs_t_high",
        "bootstrap_low",
        "bootstrap_high",
    ):
        table[col] = (PERCENT * table[col].astype(float)).round(2) + 0.0  # no "-0.0"
    table["resolved"] = ["yes" if r else "no" for r in table["resolved"]]
    return table


def paired_markdown(paired: pd.DataFrame) -> pd.DataFrame:
    """The paired differences as a readable table: 'diff [low, high]' in points."""
    rows = [
        {
            "comparison": r["comparison"],
            "IPC": r["ipc"],
            "labels": r["labels"],
            "difference [points], 95 % CI": format_ci(r["mean_diff"], r["ci_low"], r["ci_high"]),
            "pairs": r["n"],
            "distill seeds": r["n_distill"],
            "resolved": "yes" if r["resolved"] else "no",
        }
        for _, r in paired.iterrows()
    ]
    return pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()


def gain_table(df: pd.DataFrame, paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """`gain_vs_start.md`: methods x (IPC, label mode), each method minus its start set in points
    with its 95 % interval (`start_gains`); empty without main-table pairs."""
    gains = start_gains(df, paired)
    if gains.empty:
        return pd.DataFrame(index=pd.Index([], name="Method"))
    columns = [
        (int(ipc), labels)
        for ipc in sorted(gains["ipc"].unique())
        for labels in LABEL_MODES
        if ((gains["ipc"] == ipc) & (gains["labels"] == labels)).any()
    ]
    rows = []
    for method in _ordered(gains["method"]):
        mine = gains[gains["method"] == method]
        row: dict[str, Any] = {"Method": method}
        for ipc, labels in columns:
            hit = mine[(mine["ipc"] == ipc) & (mine["labels"] == labels)]
            row[f"IPC {ipc} {labels}"] = difference_span(hit.iloc[0], "") if len(hit) else "—"
        rows.append(row)
    return pd.DataFrame(rows).set_index("Method")


# ----------------------------------------------------------------------------- pixels or labels?

CONTROL_COLUMNS = [
    "method",
    "control",
    "ipc",
    "labels",
    *RESULT_COLUMNS,
    "n_distill",
    "vs_main",
    "vs_main_low",
    "vs_main_high",
    "vs_main_n",
    "vs_start",
    "vs_start_low",
    "vs_start_high",
    "vs_start_n",
]
_PIXEL_WORDS = {"set": "recovered", "start": "start"}  # experiments.PIXEL_SOURCES in words
# the controls in table order (as the grid lists them); others follow by name
CONTROL_ORDER = (
    "recovered pixels, labels of the start pixels",
    "start pixels, labels of the recovered pixels",
    "recovery without augmentation",
)


def _setting(row: Mapping[str, Any], name: str, default: Any) -> Any:
    """A record's RunSpec field, its default where the record predates it (NaN in a frame)."""
    value = _plain(row.get(name, default))
    return default if _missing(value) else value


def control_label(row: Mapping[str, Any]) -> str:
    """What a `controls` run changes against its method's main cell, e.g. 'recovered pixels,
    labels of the start pixels' or 'recovery without augmentation'."""
    train = _setting(row, "train_pixels", "set")
    label = _setting(row, "label_pixels", "set")
    parts = []
    if (train, label) != ("set", "set"):
        parts.append(
            f"{_PIXEL_WORDS.get(train, train)} pixels, labels of the "
            f"{_PIXEL_WORDS.get(label, label)} pixels"
        )
    if not bool(_setting(row, "recover_augment", True)):
        parts.append("recovery without augmentation")
    return "; ".join(parts) or "as its main cell"


def paired_summary(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None, labels: str
) -> dict[str, Any] | None:
    """`stats.difference_summary` of two pooled rows (a - b, paired by distill and student seed);
    None when either is missing or they share no pair (different draws)."""
    if a is None or b is None:
        return None
    pairs = stats.paired_differences(a["records"], b["records"], labels)
    return None if pairs.empty else stats.difference_summary(pairs)


def _diff_columns(prefix: str, diff: Mapping[str, Any] | None) -> dict[str, Any]:
    if diff is None:
        return {
            prefix: math.nan,
            f"{prefix}_low": math.nan,
            f"{prefix}_high": math.nan,
            f"{prefix}_n": 0,
        }
    return {
        prefix: diff["mean_diff"],
        f"{prefix}_low": diff["ci_low"],
        f"{prefix}_high": diff["ci_high"],
        f"{prefix}_n": int(diff["n"]),
    }


def controls_results(df: pd.DataFrame) -> pd.DataFrame:
    """The `controls` group, fractions: each (method, control, IPC, label mode) cell's accuracy,
    and its paired difference to the method's own main cell (vs_main) and to the start set,
    Random's main cell (vs_start), on the draws and student seeds they share."""
    main = {(r["row"], int(r["ipc"])): r for _, r in main_records(df).iterrows()}
    out = []
    for _, row in _in_group(df, "controls").iterrows():
        method, ipc = row_label(row), int(row["ipc"])
        for labels in LABEL_MODES:
            mean, std, _ = _acc_columns(row, labels)
            if math.isnan(mean):
                continue
            out.append(
                {
                    "method": method,
                    "control": control_label(row),
                    "ipc": ipc,
                    "labels": labels,
                    "mean": mean,
                    "std": std,
                    **_ci_columns(row, labels),
                    "n_distill": int(row.get(f"acc_{labels}_n_distill", row["n_distill"])),
                    **_diff_columns(
                        "vs_main", paired_summary(row, main.get((method, ipc)), labels)
                    ),
                    **_diff_columns(
                        "vs_start", paired_summary(row, main.get((RANDOM, ipc)), labels)
                    ),
                }
            )
    table = pd.DataFrame(out, columns=CONTROL_COLUMNS)
    table = table.assign(
        _rank=table["method"].map(_rank_of),
        _crank=[
            CONTROL_ORDER.index(c) if c in CONTROL_ORDER else len(CONTROL_ORDER)
            for c in table["control"]
        ],
        _lrank=table["labels"].map(_label_rank),
    ).sort_values(["_rank", "ipc", "_crank", "control", "_lrank"])
    return table.drop(columns=["_rank", "_crank", "_lrank"]).reset_index(drop=True)


def controls_table(results: pd.DataFrame) -> pd.DataFrame:
    """`controls.csv`: `controls_results` with accuracies and differences in percent (points)."""
    table = results.reindex(columns=CONTROL_COLUMNS).copy()
    for col in ("mean", "std", "ci_low", "ci_high", *(c for c in CONTROL_COLUMNS if "vs_" in c)):
        if not col.endswith("_n"):
            table[col] = (PERCENT * table[col].astype(float)).round(2) + 0.0  # no "-0.0"
    return table


def controls_markdown(results: pd.DataFrame) -> pd.DataFrame:
    """`controls.md`: accuracy and both paired differences as 'value [low, high]'."""
    rows = [
        {
            "method": r["method"],
            "control": r["control"],
            "IPC": r["ipc"],
            "labels": r["labels"],
            "accuracy [%], 95 % CI": format_ci(r["mean"], r["ci_low"], r["ci_high"]),
            "− main cell [points]": _difference_cell(r, "vs_main"),
            "− start set [points]": _difference_cell(r, "vs_start"),
        }
        for _, r in results.iterrows()
    ]
    return pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame()


def _difference_cell(row: Mapping[str, Any], prefix: str) -> str:
    """'-5.2 points [-8.0, -2.4] (15 pairs)', or '—' without pairs."""
    if not row[f"{prefix}_n"]:
        return "—"
    return f"{difference_span(_stored_diff(row, prefix), '')} ({row[f'{prefix}_n']} pairs)"


def _stored_diff(row: Mapping[str, Any], prefix: str) -> dict[str, Any] | None:
    """A difference of `controls_results` back in `stats.difference_summary`'s names."""
    if not row[f"{prefix}_n"]:
        return None
    return {
        "mean_diff": row[prefix],
        "ci_low": row[f"{prefix}_low"],
        "ci_high": row[f"{prefix}_high"],
        "n": row[f"{prefix}_n"],
    }


def controls_sentences(results: pd.DataFrame) -> list[str]:
    """One computed sentence per row of `controls_results`."""
    lines = []
    for _, r in results.iterrows():
        where = f"{r['method']}, {r['control']} (IPC {r['ipc']}, {r['labels']} labels)"
        parts = [f"{where}: {format_ci(r['mean'], r['ci_low'], r['ci_high'])} %"]
        for prefix, other in (
            ("vs_main", f"{r['method']}'s main cell"),
            ("vs_start", f"the start set ({RANDOM}, same draws)"),
        ):
            diff = _stored_diff(r, prefix)
            parts.append(
                f"no pairs with {other}" if diff is None else paired_phrase("it", other, diff)
            )
        lines.append("; ".join(parts) + ".")
    return lines


def ablation_results(df: pd.DataFrame) -> pd.DataFrame:
    """TSGD variants (and SRe2L-style) at the IPC of the ablation runs, test split, no shake
    (the `controls` group has its own table)."""
    runs = _test_runs(df)
    if "group" in runs.columns:
        runs = runs[runs["group"] != "controls"]
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
    runs = pool_records(df)
    if "group" in runs.columns:  # records without groups: every TSGD run on the validation split
        runs = runs[runs["group"] == "sensitivity"]
    runs = runs[(runs["eval_split"] == "val") & (runs["method"] == "tsgd")]
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
    """SRe2L-style and TSGD w/o TSGFA (the filter on or off, the same students) with and without
    camera shake, at the IPCs of the shake runs."""
    runs = pool_records(df)
    runs = runs[(runs["eval_split"] == "test") & runs["method"].isin(["sre2l", "tsgd"])]
    filter_only = (runs["method"] == "sre2l") | ~runs["tsgfa"].astype(bool)
    runs = runs[_mask(runs, is_default_variant) & filter_only]
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
    """How the filter's effect (TSGD w/o TSGFA - SRe2L-style) changes when the camera shakes."""
    lines = []
    tsgd, sre2l = TSGD_NO_TSGFA, METHOD_LABELS["sre2l"]
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
            f"IPC {ipc}: TSGD w/o TSGFA - SRe2L-style is {gaps[0.0]:+.1f} points without shake and "
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


# ----------------------------------------------------------------------------- validation studies

PLATEAU_POINTS = 1.0  # "on the plateau": within this many points of the best value
CONVERGED_POINTS = 1.0  # doubling the student steps moves accuracy by less: converged
ALL_TSGFA_PARTS = ("crop", "mix", "temporal")


def _profile_or_none(name: Any) -> Any:
    try:
        return get_profile(str(name))
    except ValueError:
        return None


def iterations_of(row: Mapping[str, Any]) -> float:
    """The recover iterations of a run: its `iterations`, or its profile's default when null."""
    value = _plain(row.get("iterations"))
    if _missing(value):
        value = getattr(_profile_or_none(row.get("profile")), "distill_iterations", None)
    return math.nan if value is None else float(value)


def _scale_of(row: Mapping[str, Any]) -> float:
    value = _plain(row.get("student_scale"))
    return 1.0 if _missing(value) else float(value)


RECOVER_COLUMNS = ["method", "init", "iterations", "labels", *RESULT_COLUMNS, "final_loss"]


def recover_results(df: pd.DataFrame) -> pd.DataFrame:
    """The `recover` group: validation accuracy (and final recover loss) per iteration budget."""
    out = []
    for _, row in _in_group(df, "recover").iterrows():
        for labels in LABEL_MODES:
            mean, std, _ = _acc_columns(row, labels)
            if math.isnan(mean):
                continue
            init = row.get("init", "real")
            first_bn = _plain(row.get("first_bn"))
            if not _missing(first_bn):  # a budget's own point, not a step of the init's curve
                init = f"{init}, first BN x{first_bn:g}"
            out.append(
                {
                    "method": row_label(row),
                    "init": init,
                    "iterations": iterations_of(row),
                    "labels": labels,
                    "mean": mean,
                    "std": std,
                    **_ci_columns(row, labels),
                    "final_loss": float(_plain(row.get("distill_final_loss", math.nan))),
                }
            )
    table = pd.DataFrame(out, columns=RECOVER_COLUMNS)
    return table.sort_values(["method", "init", "labels", "iterations"]).reset_index(drop=True)


def plateau_start(budgets: list[float], means: list[float], tolerance: float) -> float | None:
    """The first budget from which every later one stays within `tolerance` of the best mean;
    None when the last one does not (the curve falls away from its best)."""
    best, start = max(means), None
    for budget, mean in zip(budgets, means, strict=True):
        if mean < best - tolerance:
            start = None
        elif start is None:
            start = budget
    return start


def recover_sentences(table: pd.DataFrame) -> list[str]:
    """Where each recover curve reaches its plateau (within PLATEAU_POINTS of its best)."""
    lines = []
    for (method, init, labels), sub in table.groupby(["method", "init", "labels"], sort=False):
        sub = sub.dropna(subset=["iterations"]).sort_values("iterations")
        if len(sub) < 2:
            continue
        means, its = list(PERCENT * sub["mean"]), list(sub["iterations"])
        best = max(means)
        reached = plateau_start(its, means, PLATEAU_POINTS)
        if reached is None:  # e.g. best at the start set, then recovery pulls it down
            plateau = (
                f"its best is {best:.1f}% at {its[means.index(best)]:g} iterations and it ends "
                f"{best - means[-1]:.1f} points below that"
            )
        else:
            plateau = (
                f"within {PLATEAU_POINTS:g} point of its best ({best:.1f}%) from {reached:g} "
                "iterations on"
            )
        line = (
            f"{method}, {init} init ({labels} labels): {means[0]:.1f}% at {its[0]:g} iterations, "
            f"{means[-1]:.1f}% at {its[-1]:g}; {plateau}; the last step ({its[-2]:g} -> "
            f"{its[-1]:g}) moves it by {means[-1] - means[-2]:+.1f} points"
        )
        losses = list(sub["final_loss"])
        if not any(math.isnan(v) for v in (losses[0], losses[-1])):
            line += f"; final recover loss {losses[0]:.3g} -> {losses[-1]:.3g}"
        lines.append(line + ".")
    return lines


CONVERGENCE_COLUMNS = ["method", "ipc", "student_scale", "labels", *RESULT_COLUMNS]


def convergence_scales(df: pd.DataFrame) -> list[float]:
    """The student step scales of the `convergence` group (what full-data runs to ask for)."""
    return sorted({_scale_of(row) for _, row in _in_group(df, "convergence").iterrows()})


def convergence_results(
    df: pd.DataFrame, full_scales: Mapping[float, Mapping[str, Sequence[float]]] | None = None
) -> pd.DataFrame:
    """The `convergence` group: validation accuracy per student step scale; plus full-data rows."""
    out = []
    for _, row in _in_group(df, "convergence").iterrows():
        for labels in LABEL_MODES:
            mean, std, _ = _acc_columns(row, labels)
            if not math.isnan(mean):
                out.append(
                    {
                        "method": row_label(row),
                        "ipc": int(row["ipc"]),
                        "student_scale": _scale_of(row),
                        "labels": labels,
                        "mean": mean,
                        "std": std,
                        **_ci_columns(row, labels),
                    }
                )
    for scale, results in (full_scales or {}).items():
        for labels, value in results.items():
            s = _summary(value)
            out.append(
                {
                    "method": FULL_DATA,
                    "ipc": None,
                    "student_scale": float(scale),
                    "labels": labels,
                    **s._asdict(),
                }
            )
    table = pd.DataFrame(out, columns=CONVERGENCE_COLUMNS)
    return table.sort_values(["method", "labels", "student_scale"]).reset_index(drop=True)


DOUBLING_COLUMNS = [
    "method",
    "ipc",
    "labels",
    "from_scale",
    "to_scale",
    "mean_diff",
    "ci_low",
    "ci_high",
    "n",
    "n_distill",
    "resolved",
    "converged",
]


def convergence_doublings(df: pd.DataFrame) -> pd.DataFrame:
    """Paired change of validation accuracy when the student steps double (same sets, same seeds).

    `converged` is |mean change| < CONVERGED_POINTS.
    """
    runs = _in_group(df, "convergence")
    curves: dict[tuple[str, int], dict[float, Any]] = {}
    for _, row in runs.iterrows():
        curves.setdefault((row_label(row), int(row["ipc"])), {})[_scale_of(row)] = row
    out = []
    for (method, ipc), by_scale in curves.items():
        for scale in sorted(by_scale):
            if 2 * scale not in by_scale:
                continue
            for labels in LABEL_MODES:
                pairs = stats.paired_differences(
                    by_scale[2 * scale]["records"], by_scale[scale]["records"], labels
                )
                if pairs.empty:
                    continue
                s = stats.difference_summary(pairs)
                out.append(
                    {
                        "method": method,
                        "ipc": ipc,
                        "labels": labels,
                        "from_scale": scale,
                        "to_scale": 2 * scale,
                        **{k: s[k] for k in DOUBLING_COLUMNS if k in s},
                        "converged": abs(PERCENT * s["mean_diff"]) < CONVERGED_POINTS,
                    }
                )
    return pd.DataFrame(out, columns=DOUBLING_COLUMNS)


def convergence_sentences(doublings: pd.DataFrame) -> list[str]:
    """'Random (IPC 5, soft labels): doubling the student steps (1x -> 2x) moves ... : under 1 point.'"""
    lines = []
    for _, r in doublings.iterrows():
        verdict = (
            f"under {CONVERGED_POINTS:g} point: converged at {r['from_scale']:g}x"
            if r["converged"]
            else f"{CONVERGED_POINTS:g} point or more: not converged at {r['from_scale']:g}x"
        )
        lines.append(
            f"{r['method']} (IPC {r['ipc']}, {r['labels']} labels): doubling the student steps "
            f"({r['from_scale']:g}x -> {r['to_scale']:g}x) moves validation accuracy by "
            f"{PERCENT * r['mean_diff']:+.1f} points "
            f"[{PERCENT * r['ci_low']:+.1f}, {PERCENT * r['ci_high']:+.1f}]: {verdict}."
        )
    return lines


def tsgfa_parts_label(row: Mapping[str, Any]) -> str:
    """'crop+mix+temporal', 'crop+mix', 'base only' or 'no TSGFA' for a TSGD run."""
    if not row.get("tsgfa", True):
        return "no TSGFA"
    parts = _normal(row.get("tsgfa_parts"))
    if parts is None:
        parts = list(ALL_TSGFA_PARTS)
    return "+".join(parts) if parts else "base only"


def dm_lr_label(row: Mapping[str, Any]) -> str:
    """'lr 0.1' or, where the study varies DM's embedding net too, 'student net, lr 0.1'."""
    value = _plain(row.get("dm_lr"))
    lr = "lr default" if _missing(value) else f"lr {float(value):g}"
    net = _plain(row.get("dm_net"))
    return lr if _missing(net) else f"{net} net, {lr}"


CHOICE_COLUMNS = [
    "choice",
    "labels",
    *RESULT_COLUMNS,
    "reference",
    "mean_diff",
    "diff_low",
    "diff_high",
    "resolved",
]


def choice_results(runs: pd.DataFrame, name_of: Any, reference: str | None = None) -> pd.DataFrame:
    """Accuracy of each named choice, and its paired difference to `reference` (None: the best).

    `runs` are pooled runs evaluated on the same split; `name_of(row)` names each choice.
    """
    named = {name_of(row): row for _, row in runs.iterrows()}
    if len(named) < len(runs):  # two configurations under one name: one would be lost
        raise ValueError(
            f"choices with the same name: {sorted(map(name_of, runs.to_dict('records')))}"
        )
    out = []
    for labels in LABEL_MODES:
        mine = {n: r for n, r in named.items() if not math.isnan(_acc_columns(r, labels)[0])}
        if not mine:
            continue
        ref = (
            reference
            if reference in mine
            else max(mine, key=lambda n: mine[n][f"acc_{labels}_mean"])
        )
        for name, row in mine.items():
            mean, std, _ = _acc_columns(row, labels)
            diff = {"mean_diff": 0.0, "ci_low": math.nan, "ci_high": math.nan, "resolved": False}
            if name != ref:
                pairs = stats.paired_differences(row["records"], mine[ref]["records"], labels)
                diff = stats.difference_summary(pairs) if not pairs.empty else diff
            out.append(
                {
                    "choice": name,
                    "labels": labels,
                    "mean": mean,
                    "std": std,
                    **_ci_columns(row, labels),
                    "reference": ref,
                    "mean_diff": diff["mean_diff"],
                    "diff_low": diff["ci_low"],
                    "diff_high": diff["ci_high"],
                    "resolved": bool(diff["resolved"]),
                }
            )
    return pd.DataFrame(out, columns=CHOICE_COLUMNS)


def tsgfa_parts_results(df: pd.DataFrame) -> pd.DataFrame:
    """The `tsgfa` group (validation): each subset of TSGFA's parts against all parts."""
    runs = _in_group(df, "tsgfa")
    return choice_results(runs, tsgfa_parts_label, "+".join(ALL_TSGFA_PARTS))


def dm_lr_results(df: pd.DataFrame) -> pd.DataFrame:
    """The `dm` group (validation): DM's pixel learning rates against the best of them."""
    return choice_results(_in_group(df, "dm"), dm_lr_label)


def choice_sentences(table: pd.DataFrame, what: str) -> list[str]:
    """Per label mode: the reference choice, then each other choice's paired difference to it."""
    lines = []
    for labels in LABEL_MODES:
        sub = table[table["labels"] == labels]
        if sub.empty:
            continue
        ref = sub[sub["choice"] == sub["reference"].iloc[0]].iloc[0]
        lines.append(
            f"{what}, {labels} labels: reference {ref['choice']} "
            f"{format_ci(ref['mean'], ref['ci_low'], ref['ci_high'])}% on validation"
        )
        for _, r in sub[sub["choice"] != ref["choice"]].iterrows():
            state = "resolved" if r["resolved"] else "not resolved"
            lines.append(
                f"{what}, {labels} labels: {r['choice']} {format_ci(r['mean'], r['ci_low'], r['ci_high'])}%, "
                f"{PERCENT * r['mean_diff']:+.1f} points vs {ref['choice']} "
                f"[{PERCENT * r['diff_low']:+.1f}, {PERCENT * r['diff_high']:+.1f}] ({state})"
            )
    return lines


def event_alignment(weights: Any, mask: Any, *, seed: int = 0) -> dict[str, float]:
    """How well per-frame weights w_t (N, T) follow the true event window `mask` (N, T).

    corr: mean over clips of the Pearson correlation of w_t with the mask (clips where either is
    constant are left out); shuffled_corr: the same with the masks of other clips (a seeded
    permutation), the control; w_inside / w_outside: mean weight in and out of the window.
    """
    w, m = _weights_and_mask(weights, mask)
    perm = np.random.default_rng(seed).permutation(len(m))
    return {
        "corr": _mean_row_corr(w, m),
        "shuffled_corr": _mean_row_corr(w, m[perm]),
        "w_inside": float(w[m > 0].mean()) if (m > 0).any() else math.nan,
        "w_outside": float(w[m == 0].mean()) if (m == 0).any() else math.nan,
        "n_clips": int(len(w)),
    }


def _weights_and_mask(weights: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(torch.as_tensor(weights).detach().cpu(), dtype=float)
    m = np.asarray(torch.as_tensor(mask).detach().cpu(), dtype=float)
    if w.ndim != 2 or w.shape != m.shape:
        raise ValueError(
            f"weights {w.shape} and mask {m.shape} must both be (clips, frames): pass w_t of "
            "saliency.frame_weights and the benchmark's per-frame event mask"
        )
    return w, m


def _mean_row_corr(w: np.ndarray, m: np.ndarray) -> float:
    ok = (w.std(axis=1) > 0) & (m.std(axis=1) > 0)
    if not ok.any():
        return math.nan
    wc = w[ok] - w[ok].mean(axis=1, keepdims=True)
    mc = m[ok] - m[ok].mean(axis=1, keepdims=True)
    corr = (wc * mc).sum(axis=1) / np.sqrt((wc**2).sum(axis=1) * (mc**2).sum(axis=1))
    return float(corr.mean())


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


# ----------------------------------------------------------------------------- figures


def _percent_formatter() -> mticker.Formatter:
    """Fractions as percent without the sign, with as many decimals as the axis range needs."""
    return mticker.PercentFormatter(xmax=1.0, decimals=None, symbol="")


def _percent_axis(ax: plt.Axes, label: str = "top-1 accuracy [%]") -> None:
    ax.set_ylabel(label)
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.grid(axis="y", alpha=0.3)


def _ci_errors(table: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bars (2, n) from mean, ci_low, ci_high (no bar where there is no interval)."""
    low = (table["mean"] - table["ci_low"]).astype(float)
    high = (table["ci_high"] - table["mean"]).astype(float)
    return np.nan_to_num(np.vstack([low, high]), nan=0.0)


def plot_accuracy_vs_ipc(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    full: Mapping[str, Sequence[float]] | None = None,
) -> Path | None:
    """Test accuracy against IPC per method (mean with 95 % CI), soft and hard labels."""
    results = main_results(df)
    if results.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, labels in zip(axes, LABEL_MODES, strict=True):
        at = results[results["labels"] == labels]
        methods = _ordered(at["method"])
        for j, method in enumerate(methods):
            m = at[at["method"] == method].sort_values("ipc")
            dodge = 1.0 + 0.03 * (j - (len(methods) - 1) / 2)  # intervals side by side (log x)
            ax.errorbar(
                m["ipc"] * dodge,
                m["mean"],
                yerr=_ci_errors(m),
                marker="o",
                capsize=3,
                label=method,
                color=METHOD_COLORS.get(method),
            )
        if full and labels in full:
            ax.axhline(_summary(full[labels]).mean, color="black", ls="--", lw=1, label=FULL_DATA)
        ax.set_xscale("log")
        ax.set_xticks(sorted(results["ipc"].unique()) or [1])
        ax.xaxis.set_major_formatter(mticker.ScalarFormatter())
        ax.set_xlabel("IPC (clips per class)")
        ax.set_title(f"{labels} labels")
        _percent_axis(ax)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(
        "Test accuracy vs distillation budget (mean and 95 % CI over distill x student seeds)"
    )
    return save_figure(fig, path)


def plot_paired_differences(paired: pd.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """Forest plot: each paired difference with its 95 % CI and every (distill, student) pair."""
    if paired.empty:
        return None
    import seaborn as sns

    modes = [m for m in LABEL_MODES if (paired["labels"] == m).any()]
    rows = list(
        dict.fromkeys(
            f"{c} @ IPC {i}" for c, i in zip(paired["comparison"], paired["ipc"], strict=True)
        )
    )
    fig, axes = plt.subplots(
        1,
        len(modes),
        figsize=(5.5 * len(modes), 0.38 * len(rows) + 1.8),
        sharey=True,
        squeeze=False,
    )
    for ax, labels in zip(axes[0], modes, strict=True):
        sub = paired[paired["labels"] == labels]
        names = [f"{c} @ IPC {i}" for c, i in zip(sub["comparison"], sub["ipc"], strict=True)]
        dots = pd.DataFrame(
            [(n, PERCENT * d) for n, diffs in zip(names, sub["diffs"], strict=True) for d in diffs],
            columns=["row", "diff"],
        )
        sns.stripplot(
            data=dots,
            x="diff",
            y="row",
            order=rows,
            ax=ax,
            color="grey",
            alpha=0.45,
            size=3,
            jitter=0.15,
        )
        y = [rows.index(n) for n in names]
        colors = [
            "tab:green" if r and d > 0 else "tab:red" if r else "black"
            for r, d in zip(sub["resolved"], sub["mean_diff"], strict=True)
        ]
        err = np.nan_to_num(
            PERCENT
            * np.vstack(
                [sub["mean_diff"] - sub["ci_low"], sub["ci_high"] - sub["mean_diff"]]
            ).astype(float)
        )
        for yi, x, e0, e1, c in zip(
            y, PERCENT * sub["mean_diff"], err[0], err[1], colors, strict=True
        ):
            ax.errorbar([x], [yi], xerr=[[e0], [e1]], fmt="D", color=c, capsize=3, ms=5, zorder=3)
        ax.axvline(0, color="black", lw=1)
        ax.set_xlabel("difference [points], 95 % CI")
        ax.set_ylabel("")
        ax.set_title(f"{labels} labels")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        "Paired differences (same distill and student seed): green/red resolved, black not; "
        "grey dots: single pairs",
        fontsize=10,
    )
    return save_figure(fig, path)


def _log_ticks(ax: plt.Axes, values: Sequence[float]) -> None:
    """A log x axis with a plain tick at every value (100, 200, 400, not 2 x 10^2); symmetric
    log, linear up to the smallest positive value, where a value is 0 (the start set)."""
    positive = [v for v in values if v > 0]
    if len(positive) < len(list(values)):
        ax.set_xscale("symlog", linthresh=min(positive, default=1.0))
    else:
        ax.set_xscale("log")
    ax.set_xticks(sorted(set(values)))
    ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())


def plot_recover(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """Recover plateau: validation accuracy (and final recover loss) against iterations."""
    table = recover_results(df).dropna(subset=["iterations"])
    if table.empty:
        return None
    modes = [m for m in LABEL_MODES if (table["labels"] == m).any()]
    has_loss = table["final_loss"].notna().any()
    panels = len(modes) + int(has_loss)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.8), squeeze=False)
    styles = {"real": "-", "noise": "--"}
    for ax, labels in zip(axes[0], modes, strict=False):
        for (method, init), sub in table[table["labels"] == labels].groupby(["method", "init"]):
            ax.errorbar(
                sub["iterations"],
                sub["mean"],
                yerr=_ci_errors(sub),
                marker="o",
                capsize=3,
                ls=styles.get(init, ":"),
                color=METHOD_COLORS.get(method),
                label=f"{method}, {init} init",
            )
        _log_ticks(ax, table["iterations"])
        ax.set_xlabel("recover iterations")
        ax.set_title(f"{labels} labels")
        _percent_axis(ax, "validation accuracy [%]")
        ax.legend(fontsize=8)
    if has_loss:
        ax = axes[0][-1]
        first = table.drop_duplicates(subset=["method", "init", "iterations"])
        for (method, init), sub in first.groupby(["method", "init"]):
            ax.plot(
                sub["iterations"],
                sub["final_loss"],
                marker="o",
                ls=styles.get(init, ":"),
                color=METHOD_COLORS.get(method),
                label=f"{method}, {init} init",
            )
        _log_ticks(ax, table["iterations"])
        ax.set_xlabel("recover iterations")
        ax.set_ylabel("final recover loss")
        ax.set_title("loss at the end (mean over distill seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.suptitle(
        "Recover budget on the validation split: where do loss and accuracy plateau?", y=1.04
    )
    return save_figure(fig, path)


def plot_convergence(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    full_scales: Mapping[float, Mapping[str, Sequence[float]]] | None = None,
) -> Path | None:
    """Student convergence: validation accuracy against the student step scale (mean, 95 % CI)."""
    table = convergence_results(df, full_scales)
    if table.empty:
        return None
    modes = [m for m in LABEL_MODES if (table["labels"] == m).any()]
    fig, axes = plt.subplots(
        1, len(modes), figsize=(5.5 * len(modes), 3.8), sharey=True, squeeze=False
    )
    for ax, labels in zip(axes[0], modes, strict=True):
        for method, sub in table[table["labels"] == labels].groupby("method", sort=False):
            full = method == FULL_DATA
            ax.errorbar(
                sub["student_scale"],
                sub["mean"],
                yerr=_ci_errors(sub),
                marker="s" if full else "o",
                ls="--" if full else "-",
                capsize=3,
                color="black" if full else METHOD_COLORS.get(method),
                label=method,
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(table["student_scale"].unique()))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_xlabel("student steps (x the profile's)")
        ax.set_title(f"{labels} labels")
        _percent_axis(ax, "validation accuracy [%]")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.suptitle(
        "Do the students converge? Doubling the steps should move accuracy by < 1 point", y=1.04
    )
    return save_figure(fig, path)


def plot_choices(table: pd.DataFrame, path: str | os.PathLike[str], *, title: str) -> Path | None:
    """Validation accuracy (mean, 95 % CI) of each choice of a setting, per label mode."""
    if table.empty:
        return None
    choices = list(dict.fromkeys(table["choice"]))
    modes = [m for m in LABEL_MODES if (table["labels"] == m).any()]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(choices) + 1.6))
    height = 0.8 / len(modes)
    for j, labels in enumerate(modes):
        sub = (
            table[table["labels"] == labels]
            .set_index("choice")
            .reindex(choices)
            .dropna(subset=["mean"])
        )
        ys = [choices.index(c) + (j - (len(modes) - 1) / 2) * height for c in sub.index]
        ax.errorbar(
            sub["mean"], ys, xerr=_ci_errors(sub), fmt="o", capsize=3, label=f"{labels} labels"
        )
    ax.set_yticks(range(len(choices)))
    ax.set_yticklabels(choices)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(_percent_formatter())
    ax.set_xlabel("validation accuracy [%], 95 % CI")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save_figure(fig, path)


def plot_event_weights(
    weights: Any,
    mask: Any,
    path: str | os.PathLike[str],
    *,
    title: str = "TSGF frame weights vs the event window",
    seed: int = 0,
) -> Path:
    """w_t (N, T) aligned to each clip's event onset (mean ± std), and w_t inside vs outside the window."""
    import seaborn as sns

    w, m = _weights_and_mask(weights, mask)
    numbers = event_alignment(w, m, seed=seed)
    has_event = (m > 0).any(axis=1)
    onsets = np.argmax(m > 0, axis=1)
    t = w.shape[1]
    rel = np.arange(-(t - 1), t)
    aligned = np.full((len(w), len(rel)), np.nan)
    for i in np.flatnonzero(has_event):
        aligned[i, (t - 1) - onsets[i] : (t - 1) - onsets[i] + t] = w[i]
    keep = ~np.isnan(aligned).all(axis=0)
    mean = np.nanmean(aligned[:, keep], axis=0)
    std = np.nanstd(aligned[:, keep], axis=0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    ax = axes[0]
    ax.plot(rel[keep], mean, marker="o", color="tab:blue", label="mean w_t")
    ax.fill_between(rel[keep], mean - std, mean + std, alpha=0.2, color="tab:blue", label="± std")
    length = float(m[has_event].sum(axis=1).mean()) if has_event.any() else 0.0
    ax.axvspan(
        -0.5,
        length - 0.5,
        color="tab:orange",
        alpha=0.15,
        label=f"event (mean length {length:.1f})",
    )
    ax.set_xlabel("frame relative to the event onset")
    ax.set_ylabel("w_t")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    where = np.where(m > 0, "inside the event", "outside")
    sns.histplot(
        x=w.ravel(),
        hue=where.ravel(),
        hue_order=["inside the event", "outside"],
        stat="density",
        common_norm=False,
        element="step",
        ax=axes[1],
    )
    axes[1].set_xlabel("w_t")
    axes[1].set_ylabel("w_t")
    axes[1].set_ylabel("density")
    axes[1].set_title(
        f"corr {numbers['corr']:.2f} (shuffled windows {numbers['shuffled_corr']:.2f})", fontsize=9
    )
    fig.suptitle(f"{title} ({numbers['n_clips']} clips)")
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
    ax.xaxis.set_major_formatter(_percent_formatter())
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


PIXEL_CHANGE_COLUMNS = ["method", "control", "distill_seed", "change_over_motion"] + [
    f"acc_{labels}_mean" for labels in LABEL_MODES
]


def _raw_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The records behind a frame: a pooled frame's `records`, else its rows."""
    if POOLED in df.columns:
        return [dict(m) for members in df["records"] for m in members]
    return df.to_dict("records")


def pixel_change_records(df: pd.DataFrame) -> pd.DataFrame:
    """One row per test-split record of the `main` and `controls` groups (every group when the
    records name none) with a positive `change_over_motion`, with its accuracy per label mode."""
    out = []
    for rec in _raw_records(df):
        group = _setting(rec, "group", "")
        ratio = _setting(rec, "change_over_motion", None)
        if ratio is None or not float(ratio) > 0 or _setting(rec, "eval_split", "test") != "test":
            continue
        if group not in ("", "main", "controls") or _setting(rec, "camera_shake", 0.0) != 0:
            continue
        out.append(
            {
                "method": row_label(rec),
                "control": control_label(rec) if group == "controls" else "main",
                "distill_seed": stats.distill_seed_of(rec),
                "change_over_motion": float(ratio),
                **{
                    f"acc_{labels}_mean": float(_setting(rec, f"acc_{labels}_mean", math.nan))
                    for labels in LABEL_MODES
                },
            }
        )
    return pd.DataFrame(out, columns=PIXEL_CHANGE_COLUMNS)


def plot_pixel_change(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """Test accuracy against change_over_motion (mean |set - start| over the start clips' mean
    |x_{t+1} - x_t|), one point per record, colour per method; None when no record has it."""
    table = pixel_change_records(df)
    modes = [m for m in LABEL_MODES if table[f"acc_{m}_mean"].notna().any()]
    if table.empty or not modes:
        return None
    markers = dict(zip(dict.fromkeys(["main", *table["control"]]), "o^sDvP*X", strict=False))
    fig, axes = plt.subplots(
        1, len(modes), figsize=(6 * len(modes), 4.2), sharey=True, squeeze=False
    )
    for ax, labels in zip(axes[0], modes, strict=True):
        col = f"acc_{labels}_mean"
        points = table.dropna(subset=[col])
        for (method, control), sub in points.groupby(["method", "control"], sort=False):
            ax.scatter(
                sub["change_over_motion"],
                sub[col],
                color=METHOD_COLORS.get(method),
                marker=markers.get(control, "o"),
                alpha=0.85,
                label=method if control == "main" else f"{method}, {control}",
            )
        ax.axvline(1.0, color="black", ls="--", lw=1, label="the update equals the clip's motion")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        ax.set_xlabel("pixel change / motion signal (log)")
        ax.set_title(f"{labels} labels")
        _percent_axis(ax, "top-1 test accuracy [%]")
    handles = {}  # every panel's entries once (the controls have soft labels only)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    axes[0][-1].legend(
        handles.values(), handles.keys(), fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5)
    )
    fig.suptitle(
        "How far recovery moves the pixels, against the motion the classes are made of "
        "(one point per distilled set)"
    )
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


# ----------------------------------------------------------------------------- headline

LADDER_CSV = Path("ladder") / "ladder.csv"  # beside the profiles' folders: reports/ladder/
LADDER_COLUMNS = ("size", "frames", "method", "ipc", "labels", "mean", "ci_low", "ci_high", "n")
LADDER_HINT = "the resolution ladder has not been run (`./run_all.sh --ladder`)"


def direction(points: float) -> str:
    """'above', 'below' or 'level with' for a difference in points, read from the number as
    printed to 0.1 points (level with: |difference| < 0.05, which prints as 0.0)."""
    shown = float(f"{points:.1f}")
    return "above" if shown > 0 else "below" if shown < 0 else "level with"


def gap_words(points: float) -> str:
    """'3.1 points above', '0.4 points below' or 'level with': the sign lives in the word."""
    word = direction(points)
    return word if word == "level with" else f"{abs(points):.1f} points {word}"


def headline_resolved(diff: Mapping[str, Any]) -> bool:
    """A paired difference (fractions) is resolved in the headline when its interval excludes 0,
    it rests on at least stats.MIN_PAIRS pairs and it is not level (it prints as non-zero)."""
    return (
        stats.resolved(float(diff["ci_low"]), float(diff["ci_high"]), int(diff["n"]))
        and direction(PERCENT * float(diff["mean_diff"])) != "level with"
    )


def paired_phrase(a: str, b: str, diff: Mapping[str, Any]) -> str:
    """'TSGD is 10.9 points below Random: -10.9 points [-13.1, -8.6], 15 pairs, resolved'."""
    n = int(diff["n"])
    verdict = "resolved" if headline_resolved(diff) else "not resolved"
    return (
        f"{a} is {gap_words(PERCENT * float(diff['mean_diff']))} {b}: {difference_span(diff)}, "
        f"{n} pair{'' if n == 1 else 's'}, {verdict}"
    )


def unpaired_phrase(a: str, b: str, points: float) -> str:
    """'DM is 1.2 points above Herding in mean, not paired (different draws)'."""
    return f"{a} is {gap_words(points)} {b} in mean, not paired (different draws)"


def accuracy_phrase(name: str, mean: float, low: float, high: float) -> str:
    """'TSGD 31.0 [28.9, 33.1] %' (an accuracy in fractions, its 95 % interval)."""
    return f"{name} {format_ci(mean, low, high)} %"


def best_phrase(
    best: Mapping[str, Any], runner_up: Mapping[str, Any] | None, lead: Mapping[str, Any] | None
) -> str:
    """The best method of a cell, and its paired lead over the runner-up ('not paired' when the
    two share no draw: then the gap of their means)."""
    text = "best: " + accuracy_phrase(best["method"], best["mean"], best["ci_low"], best["ci_high"])
    if runner_up is None:
        return text + " (the only method here)"
    other = (
        f"{runner_up['method']} (runner-up, "
        f"{format_ci(runner_up['mean'], runner_up['ci_low'], runner_up['ci_high'])} %)"
    )
    if lead is None:
        gap = PERCENT * (float(best["mean"]) - float(runner_up["mean"]))
        return f"{text}; {unpaired_phrase(best['method'], other, gap)}"
    return f"{text}; {paired_phrase(best['method'], other, lead)}"


def start_gain_phrase(name: str, gain: Mapping[str, Any] | None) -> str:
    """'TSGD (lr 0.05, 400 iterations) is 10.9 points below its start set (Random, same draws): ...'."""
    start = f"its start set ({RANDOM}, same draws)"
    if gain is None:
        return f"{name} shares no pair with {start}"
    return paired_phrase(name, start, gain)


def tuned_name(row: Mapping[str, Any]) -> str:
    """'TSGD (lr 0.05, 400 iterations)': the method with the recovery settings its records used."""
    lr, its = _setting(row, "lr_used", None), _setting(row, "iterations_used", None)
    used = [f"lr {float(lr):g}"] if lr is not None else []
    used += [f"{int(its)} iterations"] if its is not None else []
    return f"{row['row']} ({', '.join(used)})" if used else str(row["row"])


def headline_bullet(
    ipc: int,
    labels: str,
    cell: pd.DataFrame,
    runs: Mapping[str, Mapping[str, Any]],
    gains: pd.DataFrame,
) -> str:
    """One headline bullet: the best method, TSGD against its start set, Salient windows against
    the selections of real clips. `cell`: `main_results` rows of this IPC and label mode; `runs`:
    the pooled main rows of this IPC by method; `gains`: `start_gains`."""
    ranked = cell.assign(_rank=cell["method"].map(_rank_of)).sort_values(
        ["mean", "_rank"], ascending=[False, True]
    )
    best = ranked.iloc[0]
    runner_up = ranked.iloc[1] if len(ranked) > 1 else None
    lead = (
        paired_summary(runs.get(best["method"]), runs.get(runner_up["method"]), labels)
        if runner_up is not None
        else None
    )
    parts = [best_phrase(best, runner_up, lead)]
    if TSGD in runs and (cell["method"] == TSGD).any():
        gain = gains[
            (gains["method"] == TSGD) & (gains["ipc"] == ipc) & (gains["labels"] == labels)
        ]
        parts.append(start_gain_phrase(tuned_name(runs[TSGD]), gain.iloc[0] if len(gain) else None))
    salient, means = METHOD_LABELS["salient"], cell.set_index("method")["mean"]
    if salient in runs and salient in means:
        for other in (RANDOM, METHOD_LABELS["herding"], METHOD_LABELS["kcenter"]):
            if other not in runs or other not in means:
                continue
            diff = paired_summary(runs[salient], runs[other], labels)
            parts.append(
                paired_phrase(salient, other, diff)
                if diff is not None
                else unpaired_phrase(salient, other, PERCENT * (means[salient] - means[other]))
            )
    return f"**IPC {ipc}, {labels} labels.** " + ". ".join(_capitalised(p) for p in parts) + "."


def _shown(value: Any) -> str:
    """A ladder key as written: 32 rather than 32.0; text as it is."""
    value = _plain(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def ladder_phrase(
    size: Any, frames: Any, ipc: Any, labels: str, tsgd: Mapping[str, Any], start: Mapping[str, Any]
) -> str:
    """'8x32x32 clips, IPC 1 (soft labels): TSGD 20.1 [18.0, 22.2] % is 3.0 points below the start
    set's 23.1 [21.0, 25.2] %' (ladder numbers are in percent), then TSGD's paired gain over the
    start set where the ladder has it (' (paired gain -3.0 points [-5.0, -1.0])')."""

    def acc(row: Mapping[str, Any]) -> str:
        low, high = clip_accuracy_interval(row["ci_low"], row["ci_high"], top=PERCENT)
        return format_ci(float(row["mean"]), low, high, scale=1.0) + " %"

    points = float(tsgd["mean"]) - float(start["mean"])
    text = (
        f"{_shown(frames)}x{_shown(size)}x{_shown(size)} clips, IPC {_shown(ipc)} ({labels} "
        f"labels): {TSGD} {acc(tsgd)} is {gap_words(points)} the start set's {acc(start)}"
    )
    gain = {k: _setting(tsgd, f"gain_{k}", math.nan) for k in ("vs_start", "ci_low", "ci_high")}
    if math.isnan(float(gain["vs_start"])):
        return text
    names = {"vs_start": "mean_diff", "ci_low": "ci_low", "ci_high": "ci_high"}
    span = difference_span({names[k]: float(v) / PERCENT for k, v in gain.items()})
    return f"{text} (paired gain {span})"


def ladder_line(path: str | os.PathLike[str] | None) -> str:
    """The headline's line on the resolution ladder (`reports/ladder/ladder.csv`, in percent):
    TSGD's mean against its start set's (Random) per rung, IPC and label mode."""
    if path is None or not Path(path).is_file():
        return _capitalised(LADDER_HINT) + "."
    ladder = pd.read_csv(path)
    missing = [c for c in LADDER_COLUMNS if c not in ladder.columns]
    if missing:
        return (
            f"The resolution ladder's `{Path(path).name}` lacks the columns {', '.join(missing)}."
        )
    ladder = ladder.assign(method=[METHOD_LABELS.get(str(m), str(m)) for m in ladder["method"]])
    parts = []
    for (frames, size, ipc), sub in ladder.groupby(["frames", "size", "ipc"], sort=True):
        for labels in dict.fromkeys([*LABEL_MODES, *map(str, sub["labels"])]):
            at = sub[sub["labels"].astype(str) == labels]
            tsgd, start = at[at["method"] == TSGD], at[at["method"] == RANDOM]
            if len(tsgd) and len(start):
                parts.append(ladder_phrase(size, frames, ipc, labels, tsgd.iloc[0], start.iloc[0]))
    if not parts:
        return "The resolution ladder has no TSGD and start-set (Random) rows at a common size and IPC."
    return (
        "Resolution ladder (frames x pixels; TSGD's mean against its start set's, each with its "
        "95 % interval): " + "; ".join(parts) + "."
    )


def headline_lines(
    df: pd.DataFrame,
    paired: pd.DataFrame | None = None,
    ladder_csv: str | os.PathLike[str] | None = None,
) -> list[str]:
    """The README's headline: one bullet per (IPC, label mode) of the main table, then the ladder's."""
    results = main_results(df)
    runs = main_records(df)
    gains = start_gains(df, paired)
    lines = []
    for ipc in sorted(results["ipc"].unique()):
        at = {r["row"]: r for _, r in runs[runs["ipc"] == ipc].iterrows()}
        for labels in LABEL_MODES:
            cell = results[(results["ipc"] == ipc) & (results["labels"] == labels)]
            if len(cell):
                lines.append(headline_bullet(int(ipc), labels, cell, at, gains))
    lines.append(ladder_line(ladder_csv))
    return lines


# ----------------------------------------------------------------------------- README


def _image(alt: str, path: Path | None, base: Path) -> str:
    if path is None:
        return ""
    return f"![{alt}]({Path(os.path.relpath(path, base)).as_posix()})\n"


def _bullets(lines: Sequence[str]) -> str:
    return "".join(f"- {line}\n" for line in lines)


def _profile_line(profile: str) -> str:
    prof = _profile_or_none(profile)
    try:
        d = prof.data
        return (
            f"Data: the built-in motion benchmark, {d['num_classes']} classes, clips of "
            f"{d['frames']} frames x {d['height']}x{d['width']} pixels, {d['clips_per_class']} "
            f"train / {d['val_per_class']} val / {d['test_per_class']} test clips per class. "
            f"Students: {prof.student.fit.steps} steps each, {len(prof.seeds)} seeds. "
            f"Distillation: {prof.distill_iterations} iterations (DM: {prof.dm_iterations}).\n"
        )
    except (AttributeError, KeyError, TypeError):  # an unknown or reshaped profile: no line
        return ""


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


QUESTIONS = (
    (
        "filter",
        "Does the temporal saliency filter help?",
        "TSGD w/o TSGFA − SRe2L-style: the same recipe and budget, the filter on or off",
    ),
    (
        "tsgfa",
        "Does TSGFA help?",
        "TSGD − TSGD w/o TSGFA: the same distilled set, students trained with or without TSGFA",
    ),
    (
        "tsgd",
        "TSGD as a whole against SRe2L-style",
        "TSGD − SRe2L-style: filter and TSGFA together",
    ),
    (
        "vs_random",
        "Each method against Random",
        "method − Random with the same distill seed: for DM, SRe2L-style and TSGD that random draw is their own start set",
    ),
)


def readme_text(
    df: pd.DataFrame,
    *,
    profile: str,
    command: str,
    figures: Mapping[str, Path | None],
    base: str | os.PathLike[str],
    full: Mapping[str, Sequence[float]] | None = None,
    full_scales: Mapping[float, Mapping[str, Sequence[float]]] | None = None,
    event: Mapping[str, float] | None = None,
    paired: pd.DataFrame | None = None,
    generated: str | None = None,
    data: str | None = None,
    ladder_csv: str | os.PathLike[str] | None = None,
) -> str:
    """The report's README.md: a headline, paired differences with intervals, verdicts, tables,
    figures.

    Every sentence is computed from the records; `event` is `event_alignment`'s numbers for
    the w_t figure, `paired` the `paired_difference_results` when already computed.

    data: the line naming a real dataset and its sizes (default: the profile's benchmark).
    ladder_csv: the resolution ladder's table (default: `ladder/ladder.csv` beside `base`).
    """
    base = Path(base)
    generated = generated or datetime.now(timezone.utc).isoformat(timespec="seconds")
    table = main_table(df, full)
    results = main_results(df)
    paired = paired_difference_results(df) if paired is None else paired
    configs = pool_records(df)
    n_runs = int(sum(len(r) for r in configs["records"]))
    ladder_csv = base.parent / LADDER_CSV if ladder_csv is None else ladder_csv
    text = [f"# TSGD experiments: profile `{profile}`\n\n"]
    text.append(headline_text(df, paired, ladder_csv))
    text.append(
        f"Generated by `notebooks/05_report.ipynb` from {n_runs} runs ({len(configs)} "
        f"configurations, distill seeds pooled) on {generated}. "
        f"Regenerate everything with:\n\n```bash\n{command}\n```\n\n"
    )
    text.append(f"Data: {data}.\n" if data else _profile_line(profile))
    if profile != "default" and not data:
        text.append(
            f"\n> The `{profile}` profile is sized to check the pipeline in minutes; its numbers are "
            "too small and noisy to support claims. Read the `default` profile's report for results.\n"
        )
    text.append("\n## What the paired comparisons say\n\n")
    if paired.empty:
        text.append("No pair of main-table methods to compare: run the grid's `main` group.\n")
    else:
        text.append(
            "Accuracies and differences in percent (points). Each difference pairs runs with the same "
            "distill seed and the same student seed; the 95 % interval is the t-interval over the "
            "per-distill-seed mean differences (with one distill seed: over student seeds), see "
            "`tsgd_core/grid/stats.py`. A difference is *resolved* only when its interval excludes 0 "
            f"and rests on at least {stats.MIN_PAIRS} pairs.\n\n"
        )
        for question, heading, what in QUESTIONS:
            lines = difference_sentences(paired, question)
            if lines:
                text.append(f"- **{heading}** ({what}):\n")
                text.append("".join(f"  - {line}\n" for line in lines))
        text.append("\n" + _image("paired differences", figures.get("paired_differences"), base))
    text.append("\n## Does TSGD beat the baselines?\n\n")
    baselines = ", ".join(METHOD_LABELS[m] for m in BASELINES[:-1])
    text.append(
        "Computed from the main table below (test split, pooled means); the best baseline is the "
        f"strongest of {baselines} and {METHOD_LABELS[BASELINES[-1]]}. A gap is ranked by the "
        "paired intervals above, not by this comparison of means.\n\n"
    )
    for labels in LABEL_MODES:
        overall, *per_ipc = verdict_sentences(tsgd_verdicts(df, labels))
        text.append(f"- **{labels.capitalize()} labels.** {overall}\n")
        text.append("".join(f"  - {line}\n" for line in per_ipc))
    label_gains = label_gain_sentences(df)
    if label_gains:
        text.append("- **Soft vs hard labels** (gain over the random subset, same training):\n")
        text.append("".join(f"  - {line}\n" for line in label_gains))
    pairs = int(results["n"].max()) if not results.empty else 0
    seeds = int(results["n_distill"].max()) if not results.empty else 0
    text.append(
        f"\n## Main table\n\nTop-1 accuracy [%] on the real test split: mean over up to {seeds} "
        "distill seeds (`n_distill` in `main_table.csv`) of the mean over student seeds "
        f"(up to {pairs} pairs), with its 95 % interval [low, high]; students trained from "
        "scratch on the distilled set only. Soft: teacher relabels every augmented view; hard: "
        "class labels. `main_table.csv` has the same numbers in percent with std and n.\n\n"
    )
    if table.empty:
        text.append("No main-table runs in the records: run the grid's `main` group.\n\n")
    else:
        text.append(table.to_markdown() + "\n\n")
    text.append(_image("accuracy vs IPC", figures.get("accuracy_vs_ipc"), base))
    gains = gain_table(df, paired)
    if not gains.empty:
        text.append(
            "\n### Gain over the start set\n\nEach method minus its start set (Random with the "
            "same distill seed, IPC and labels), paired by (distill seed, student seed), in points "
            "with its 95 % interval (`gain_vs_start`, `gain_ci_low`, `gain_ci_high` in "
            "`main_table.csv`, beside `hard_label_recovery`: full-data hard-label accuracy minus "
            "the method's).\n\n" + gains.to_markdown() + "\n"
        )
    text.append(controls_text(df, figures.get("pixel_change"), base))
    event_lines = []
    if event:
        event_lines.append(
            f"Mean correlation of w_t with the true event window over {event['n_clips']} clips: "
            f"{event['corr']:.2f}, against {event['shuffled_corr']:.2f} with the windows of other "
            f"clips (control); mean w_t {event['w_inside']:.3f} inside the window, "
            f"{event['w_outside']:.3f} outside."
        )
    sections = [
        ("Saliency weights w_t and the event window", "event_weights", event_lines),
        ("Recover budget (validation split)", "recover", recover_sentences(recover_results(df))),
        (
            "Student convergence (validation split)",
            "convergence",
            convergence_sentences(convergence_doublings(df)),
        ),
        (
            "TSGFA parts (validation split)",
            "tsgfa_parts",
            choice_sentences(tsgfa_parts_results(df), "TSGFA parts"),
        ),
        (
            "DM learning rate (validation split)",
            "dm_lr",
            choice_sentences(dm_lr_results(df), "DM pixel learning rate"),
        ),
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
        "\n## Files\n\n- `main_table.md`: the table above; `main_table.csv`: one row per method, "
        "IPC and label mode (mean, std, n, ci_low, ci_high in percent; then gain_vs_start, "
        "gain_ci_low, gain_ci_high and hard_label_recovery in points)\n"
        "- `gain_vs_start.md`: each method minus its start set, with its interval\n"
        "- `paired_differences.md`, `paired_differences.csv`: every paired difference in points, "
        "with the reported interval, the alternatives (t over all pairs, two-level bootstrap) and "
        "`resolved`\n- `controls.md`, `controls.csv`: the pixels-or-labels controls\n"
        "- `all_runs.csv`: every run's record\n- `runs/<group>/<run>/`: executed "
        "notebooks, figures and `record.json` of each run\n"
    )
    return "".join(text)


def headline_text(
    df: pd.DataFrame, paired: pd.DataFrame, ladder_csv: str | os.PathLike[str] | None
) -> str:
    """The README's opening: `headline_lines` under a line saying how to read them."""
    return (
        "**Headline** (computed from the tables below; test split, accuracies in %, differences "
        "in points with their 95 % interval, paired by distill and student seed; *resolved*: the "
        f"interval excludes 0 and rests on at least {stats.MIN_PAIRS} pairs):\n\n"
        + _bullets(headline_lines(df, paired, ladder_csv))
        + "\n"
    )


def controls_text(df: pd.DataFrame, figure: Path | None, base: Path) -> str:
    """The README's "Pixels or labels?" section: the controls table, its sentences, the figure."""
    results = controls_results(df)
    text = ["\n## Pixels or labels?\n\n"]
    if results.empty:
        text.append(
            "The records carry no `controls` group: the pixels-or-labels controls were not run.\n"
        )
    else:
        text.append(
            "Test split. Each control changes one thing against its method's main cell: the "
            "students train on the recovered pixels with the soft labels the teacher gives the "
            "start pixels, or on the start pixels with the labels of the recovered pixels, or the "
            "set is recovered without augmentation. Paired differences (same distill and student "
            "seed) against the method's main cell and against the start set (Random), in points "
            f"(`controls.csv`); resolved: the interval excludes 0 and rests on at least "
            f"{stats.MIN_PAIRS} pairs.\n\n"
        )
        text.append(controls_markdown(results).to_markdown() + "\n\n")
        text.append(_bullets(controls_sentences(results)))
    if figure is not None:
        text.append(
            "\nAccuracy against how far recovery moved the pixels, relative to the start clips' "
            "own frame-to-frame motion (1: the update equals the clip's motion):\n\n"
        )
        text.append(_image("pixel change", figure, base))
    return "".join(text)


def write_report(
    df: pd.DataFrame,
    reports_dir: str | os.PathLike[str],
    *,
    profile: str,
    command: str,
    full: Mapping[str, Sequence[float]] | None = None,
    full_scales: Mapping[float, Mapping[str, Sequence[float]]] | None = None,
    event: Mapping[str, float] | None = None,
    extra_figures: Mapping[str, Path | None] | None = None,
    data: str | None = None,
) -> dict[str, Path | None]:
    """Tables, figures and README.md of the records `df` into `reports_dir`.

    `full`: full-data results per label mode (`full_data_summary`); `full_scales`: the same per
    student step scale, for the convergence figure; `event`: `event_alignment` of the w_t
    figure passed in `extra_figures["event_weights"]` (see `plot_event_weights`).
    """
    out = Path(reports_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    pooled = pool_records(df)
    paired = paired_difference_results(pooled)
    files: dict[str, Path | None] = {}
    files["main_table_md"] = write_text(
        main_table(pooled, full).to_markdown() + "\n", out / "main_table.md"
    )
    files["main_table_csv"] = write_text(
        main_table_long(pooled, full, paired).to_csv(index=False), out / "main_table.csv"
    )
    files["gain_md"] = write_text(
        gain_table(pooled, paired).to_markdown() + "\n", out / "gain_vs_start.md"
    )
    controls = controls_results(pooled)
    files["controls_csv"] = write_text(
        controls_table(controls).to_csv(index=False), out / "controls.csv"
    )
    files["controls_md"] = write_text(
        (controls_markdown(controls).to_markdown() if len(controls) else "No `controls` runs.")
        + "\n",
        out / "controls.md",
    )
    files["paired_md"] = write_text(
        paired_markdown(paired).to_markdown() + "\n", out / "paired_differences.md"
    )
    files["paired_csv"] = write_text(
        paired_table(paired).to_csv(index=False), out / "paired_differences.csv"
    )
    files["all_runs"] = write_text(
        df.drop(columns=["record_path"], errors="ignore").to_csv(index=False), out / "all_runs.csv"
    )
    figures = {
        "accuracy_vs_ipc": plot_accuracy_vs_ipc(pooled, fig_dir / "accuracy_vs_ipc.png", full),
        "paired_differences": plot_paired_differences(paired, fig_dir / "paired_differences.png"),
        "recover": plot_recover(pooled, fig_dir / "recover.png"),
        "convergence": plot_convergence(pooled, fig_dir / "convergence.png", full_scales),
        "tsgfa_parts": plot_choices(
            tsgfa_parts_results(pooled),
            fig_dir / "tsgfa_parts.png",
            title="TSGFA parts on the validation split",
        ),
        "dm_lr": plot_choices(
            dm_lr_results(pooled),
            fig_dir / "dm_lr.png",
            title="DM pixel learning rate on the validation split",
        ),
        "ablation": plot_ablation(pooled, fig_dir / "ablation.png"),
        "sensitivity": plot_sensitivity(pooled, fig_dir / "sensitivity.png"),
        "shake": plot_shake(pooled, fig_dir / "shake.png"),
        "cost": plot_cost(pooled, fig_dir / "cost.png"),
        "pixel_change": plot_pixel_change(pooled, fig_dir / "pixel_change.png"),
        **(extra_figures or {}),
    }
    files.update(figures)
    text = readme_text(
        pooled,
        profile=profile,
        command=command,
        figures=figures,
        base=out,
        full=full,
        full_scales=full_scales,
        event=event,
        paired=paired,
        data=data,
        ladder_csv=out.parent / LADDER_CSV,
    )
    files["readme"] = write_text(text, out / "README.md")
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

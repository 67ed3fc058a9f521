"""Records of the grid: collect the flat `record.json` files, pool distill seeds, name rows."""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps

from ..grid import stats
from ..grid.profiles import METHOD_LABELS
from ..grid.spec import DISTILL_SWITCHES, RunSpec, published_recipe, spec_from_params
from ..grid.stats import clip_accuracy_interval
from ..training.evaluate import LABEL_MODES

RUNSPEC_FIELDS = tuple(f.name for f in fields(RunSpec))


# RunSpec fields the validation studies vary: records are grouped by them wherever they appear
STUDY_FIELDS = ("iterations", "student_scale", "tsgfa_parts", "first_bn", "dm_lr")


# a record's configuration: its RunSpec fields, with the student recipe as one resolved column
# (records written before the recipe was an axis spell it `tsgfa`)
CONFIG_FIELDS = tuple(
    f
    for f in dict.fromkeys((*RUNSPEC_FIELDS, *STUDY_FIELDS, "recipe"))
    if f not in ("tsgfa", "student_augment")
)


# selection of real clips (Salient windows keeps real footage too), then distillation
BASELINES = ("random", "herding", "kcenter", "salient", "dm", "sre2l")


# a row trained under the TSGFA recipe is named "<method> + TSGFA"; under the base recipe, the
# method's name alone: the name says which set and which student recipe, the tables split them
TSGFA_SUFFIX = " + TSGFA"


def recipe_label(label: str, recipe: str) -> str:
    """The row name of a set (`label`) trained under `recipe`: 'TSGD', 'TSGD + TSGFA'."""
    return label + (TSGFA_SUFFIX if recipe == "tsgfa" else "")


def split_label(row: str) -> tuple[str, str]:
    """(set label, recipe) of a row name: 'Random + TSGFA' -> ('Random', 'tsgfa')."""
    if row.endswith(TSGFA_SUFFIX):
        return row[: -len(TSGFA_SUFFIX)], "tsgfa"
    return row, "base"


FULL_DATA = "Full data (upper bound)"


# table and legend order: selection, distillation, then the method itself; each set under the
# base recipe, then under TSGFA
METHOD_ORDER = tuple(
    recipe_label(METHOD_LABELS[m], recipe)
    for m in (*BASELINES, "tsgd")
    for recipe in ("base", "tsgfa")
)


# tab10 colours by position; Salient windows came later and takes olive, so the others keep theirs
_TAB10 = colormaps["tab10"].colors


_SET_COLORS = {
    **dict(
        zip(
            (METHOD_LABELS[m] for m in (*BASELINES, "tsgd") if m != "salient"),
            _TAB10,
            strict=False,
        )
    ),
    METHOD_LABELS["salient"]: _TAB10[8],
}


# a set keeps its colour under both recipes (figures tell the recipes apart by hatching)
METHOD_COLORS = {row: _SET_COLORS[split_label(row)[0]] for row in METHOD_ORDER}


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


# what each evaluated label mode adds to a record
LABEL_COLUMNS = (
    "acc_{labels}_mean",
    "acc_{labels}_std",
    "acc_{labels}_seeds",
    "eval_{labels}_wall_s",
    "eval_{labels}_peak_mb",
)


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
    for row in rows:
        row["recipe"] = record_recipe(row)
    df = pd.DataFrame(rows)
    # a record written before a RunSpec field existed ran with that field's default: fill it in
    # row by row, so that old and new records of one configuration pool together
    for f in fields(RunSpec):
        if f.default is MISSING or f.default is None:
            continue
        if f.name not in df.columns:
            df[f.name] = [f.default] * len(df)
        else:
            df[f.name] = [f.default if is_missing(v) else v for v in df[f.name]]
    # runs that all use one label mode (the dm group's: hard only) leave the other mode's
    # columns empty, not absent, so every table and sentence can ask for both
    for labels in LABEL_MODES:
        for column in LABEL_COLUMNS:
            name = column.format(labels=labels)
            if name not in df.columns:
                df[name] = [math.nan] * len(df)
    return df.drop_duplicates(subset="name", keep="first").reset_index(drop=True)


def spec_from_record(record: Mapping[str, Any]) -> RunSpec:
    """The RunSpec a flat record was made from (labels come back from "soft,hard")."""
    # a field missing from some records is NaN in the DataFrame: leave it at its default
    params = {
        k: plain_value(record[k])
        for k in RUNSPEC_FIELDS
        if k in record and not is_missing(record[k])
    }
    if isinstance(params.get("labels"), str):
        params["labels"] = [x for x in params["labels"].split(",") if x]
    return spec_from_params(**params)


def plain_value(value: Any) -> Any:
    """numpy scalars (from a DataFrame row) to Python values, so RunSpec compares equal."""
    return value.item() if isinstance(value, np.generic) else value


def normal_value(value: Any) -> Any:
    """A JSON-able, comparable form of a record value (lists, None for missing)."""
    value = plain_value(value)
    if isinstance(value, list | tuple | np.ndarray):
        return [normal_value(v) for v in value]
    return None if is_missing(value) else value


def config_id(record: Mapping[str, Any]) -> str:
    """The configuration of a record, as JSON: its grid group and every RunSpec field except
    `distill_seed` and `labels` (a draw evaluated with fewer label modes is the same
    configuration: the main group's later draws are evaluated with soft labels alone)."""
    spec = {
        f: normal_value(record.get(f)) for f in CONFIG_FIELDS if f not in ("distill_seed", "labels")
    }
    spec["recipe"] = record_recipe(record)  # also for a spec's fields, which do not name it
    spec["group"] = normal_value(record.get("group"))
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
    values = [float(m[key]) for m in members if not is_missing(plain_value(m.get(key)))]
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


def record_recipe(row: Mapping[str, Any]) -> str:
    """The student recipe a record was evaluated under: its `recipe`, else (a record written
    before the recipe was an axis) what its `student_augment` / `tsgfa` fields resolve to."""
    recipe = row.get("recipe")
    if isinstance(recipe, str) and recipe:
        return recipe
    if isinstance(row.get("student_augment"), str):
        return row["student_augment"]
    if row.get("tsgfa", True) is False or plain_value(row.get("tsgfa")) == 0:
        return "base"
    return published_recipe(row["method"])


def row_label(row: Mapping[str, Any]) -> str:
    """A record's row name in tables: the method's label, '+ TSGFA' under that recipe."""
    return recipe_label(METHOD_LABELS[row["method"]], record_recipe(row))


def is_default_variant(row: Mapping[str, Any]) -> bool:
    """True when every TSGD switch (except TSGFA) is at its default: a main-table run."""
    defaults = RunSpec()
    return all(
        same_value(row.get(f, getattr(defaults, f)), getattr(defaults, f)) for f in VARIANT_FIELDS
    )


def is_missing(value: Any) -> bool:
    """None, or the NaN that pandas puts where a record has None."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def same_value(a: Any, b: Any) -> bool:
    if is_missing(a) or is_missing(b):
        return is_missing(a) and is_missing(b)
    if isinstance(b, float) or isinstance(a, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return a == b


def variant_label(row: Mapping[str, Any]) -> str:
    """What a TSGD run changes relative to the full method, e.g. 'TSGD -TSGFO, noise init'."""
    if row["method"] != "tsgd":
        return row_label(row)
    defaults = RunSpec()
    tsgfa = record_recipe(row) == "tsgfa"
    switches = (("-TSGFO", row.get("tsgfo", True)), ("-TSGFA", tsgfa))
    changes = [name for name, on in switches if not on]
    for f in VARIANT_FIELDS:
        value = plain_value(row.get(f, getattr(defaults, f)))
        if f in ("tsgfo", "distill_seed") or same_value(value, getattr(defaults, f)):
            continue
        changes.append(_VARIANT_NAMES.get((f, value), f"{f}={value}"))
    if not changes:
        return "TSGD (full)"
    return "TSGD " + ", ".join(changes).replace(", -", " -")


def group_runs(df: pd.DataFrame, group: str) -> pd.DataFrame:
    """The pooled runs of one grid group (empty when the records carry no such group)."""
    runs = pool_records(df)
    if "group" not in runs.columns:
        return runs.iloc[0:0]
    return runs[runs["group"] == group]


def test_runs(df: pd.DataFrame) -> pd.DataFrame:
    runs = pool_records(df)
    return runs[(runs["eval_split"] == "test") & (runs["camera_shake"] == 0)]


def main_records(df: pd.DataFrame) -> pd.DataFrame:
    """The main-table runs, pooled over distill seeds: test split, no camera shake, and the
    `main` group when the records name groups (otherwise: default switches)."""
    runs = test_runs(df)
    if "group" in runs.columns and (runs["group"] == "main").any():
        runs = runs[runs["group"] == "main"].copy()
    else:
        runs = runs[row_mask(runs, is_default_variant)].copy()
    runs["row"] = [row_label(row) for _, row in runs.iterrows()]
    return runs


def row_mask(df: pd.DataFrame, predicate: Any) -> pd.Series:
    """predicate(row) for every row as a boolean Series (also for an empty frame)."""
    return pd.Series([bool(predicate(row)) for _, row in df.iterrows()], index=df.index, dtype=bool)


def accuracy_columns(row: Mapping[str, Any], labels: str) -> tuple[float, float, list[float]]:
    mean = row.get(f"acc_{labels}_mean")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return math.nan, math.nan, []
    seeds = row.get(f"acc_{labels}_seeds")
    return (
        float(mean),
        float(row[f"acc_{labels}_std"]),
        list(seeds) if isinstance(seeds, list) else [],
    )


def interval_columns(row: Mapping[str, Any], labels: str) -> dict[str, Any]:
    """n, ci_low, ci_high of a pooled row's label mode."""
    return {
        "n": int(row.get(f"acc_{labels}_n", 0) or 0),
        "ci_low": float(row.get(f"acc_{labels}_ci_low", math.nan)),
        "ci_high": float(row.get(f"acc_{labels}_ci_high", math.nan)),
    }


RESULT_COLUMNS = ["mean", "std", "n", "ci_low", "ci_high"]
# a paired difference in a table: mean, 95 % interval, pairs, distill draws, whether resolved
DIFF_COLUMNS = ["mean_diff", "ci_low", "ci_high", "n", "n_distill", "resolved"]

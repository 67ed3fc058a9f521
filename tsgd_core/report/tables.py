"""Tables of results computed from pooled records: main results, paired differences, controls,
ablation, sensitivity, shake and cost (numbers only; their text is in `sentences`)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd

from ..grid import stats
from ..grid.profiles import METHOD_LABELS
from ..grid.spec import RECIPES, RunSpec
from ..training.evaluate import LABEL_MODES
from .format import difference_span, in_points, resolved_mark
from .records import (
    BASELINES,
    DIFF_COLUMNS,
    FULL_DATA,
    METHOD_ORDER,
    RESULT_COLUMNS,
    SENSITIVITY_PARAMS,
    TSGFA_SUFFIX,
    VARIANT_FIELDS,
    accuracy_columns,
    clip_accuracy_interval,
    group_runs,
    interval_columns,
    is_default_variant,
    is_missing,
    main_records,
    plain_value,
    pool_records,
    recipe_label,
    record_recipe,
    row_label,
    row_mask,
    same_value,
    split_label,
    test_runs,
    variant_label,
)


def main_results(df: pd.DataFrame) -> pd.DataFrame:
    """Long numeric table of the main runs: one row per (method, IPC, label mode), pooled."""
    out = []
    for _, row in main_records(df).iterrows():
        for labels in LABEL_MODES:
            mean, std, _ = accuracy_columns(row, labels)
            if math.isnan(mean):
                continue
            out.append(
                {
                    "method": row["row"],
                    "recipe": row["recipe"],
                    "ipc": int(row["ipc"]),
                    "labels": labels,
                    "mean": mean,
                    "std": std,
                    **interval_columns(row, labels),
                    # the draws evaluated with these labels (hard: the first draw alone)
                    "n_distill": int(row.get(f"acc_{labels}_n_distill", row["n_distill"])),
                    "distill_wall_s": row.get("distill_wall_s"),
                    "distill_peak_mb": row.get("distill_peak_mb"),
                }
            )
    columns = [
        "method",
        "recipe",
        "ipc",
        "labels",
        *RESULT_COLUMNS,
        "n_distill",
        "distill_wall_s",
        "distill_peak_mb",
    ]
    return pd.DataFrame(out, columns=columns)


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


def accuracy_summary(value: Sequence[float]) -> Summary:
    """A Summary from a Summary or a plain (mean, std) pair, its interval inside [0, 1]."""
    s = value if isinstance(value, Summary) else Summary(*value)
    return s._replace(
        **dict(zip(("ci_low", "ci_high"), clip_accuracy_interval(s.ci_low, s.ci_high), strict=True))
    )


def ordered_rows(labels: Sequence[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(METHOD_ORDER)}
    return sorted(set(labels), key=lambda name: (rank.get(name, len(rank)), name))


MAIN_TABLE_COLUMNS = ["method", "recipe", "ipc", "labels", *RESULT_COLUMNS, "n_distill"]


# DD-Ranking-style columns after them: the gain over the start set, and how much of the full
# data's hard-label accuracy the set leaves to recover
GAIN_COLUMNS = ["gain_vs_start", "gain_ci_low", "gain_ci_high", "hard_label_recovery"]


START_GAIN_COLUMNS = ["method", "ipc", "labels", "mean_diff", "ci_low", "ci_high", "n", "n_distill"]


def start_gains(df: pd.DataFrame, paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each main row's paired difference to its start set under the same student recipe,
    fractions: Random (or Random + TSGFA) with the same distill seed, IPC and label mode, paired
    by (distill seed, student seed) as `paired_difference_results` pairs (Random has no row)."""
    paired = paired_difference_results(df) if paired is None else paired
    gains = paired[(paired["question"] == "vs_random") & paired["b"].isin(STARTS)]
    return gains.rename(columns={"a": "method"}).reindex(columns=START_GAIN_COLUMNS)


def _ipc_key(value: Any) -> int | None:
    """An IPC as a dict key (None for the full-data rows' missing IPC)."""
    return None if value is None or pd.isna(value) else int(value)


def full_by_recipe(full: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """Full-data results as {recipe: {labels: results}}; a plain {labels: results} (the form
    before the recipe was an axis) is the base recipe's."""
    full = dict(full or {})
    if any(key in LABEL_MODES for key in full):
        return {"base": full}
    return {recipe: dict(results) for recipe, results in full.items() if results}


def _gain_columns(
    table: pd.DataFrame, gains: pd.DataFrame, full: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[float]]:
    """GAIN_COLUMNS (fractions) for the rows of `table`: NaN where there is no such number.
    Hard-label recovery compares with the full data under the row's own student recipe."""
    by_key = {(r["method"], int(r["ipc"]), r["labels"]): r for _, r in gains.iterrows()}
    hard = {
        (m, _ipc_key(i)): float(v)
        for m, i, lab, v in zip(
            table["method"], table["ipc"], table["labels"], table["mean"], strict=True
        )
        if lab == "hard" and split_label(m)[0] != FULL_DATA
    }
    full_hard = {
        recipe: accuracy_summary(results["hard"]).mean
        for recipe, results in full.items()
        if "hard" in results
    }
    out: dict[str, list[float]] = {col: [] for col in GAIN_COLUMNS}
    for method, ipc, labels in zip(table["method"], table["ipc"], table["labels"], strict=True):
        gain = by_key.get((method, _ipc_key(ipc), labels))
        for col, src in zip(GAIN_COLUMNS[:3], ("mean_diff", "ci_low", "ci_high"), strict=True):
            out[col].append(math.nan if gain is None else float(gain[src]))
        bound = full_hard.get(split_label(method)[1], math.nan)
        out["hard_label_recovery"].append(bound - hard.get((method, _ipc_key(ipc)), math.nan))
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
        _rank=results["method"].map(row_rank), _lrank=results["labels"].map(_label_rank)
    ).sort_values(["_rank", "ipc", "_lrank"])
    table = results.reindex(columns=MAIN_TABLE_COLUMNS)
    rows = [table]
    by_recipe = full_by_recipe(full)
    for recipe, results_of in by_recipe.items():
        for labels in [m for m in LABEL_MODES if m in results_of]:  # not the cache's key order
            s = accuracy_summary(results_of[labels])
            row = dict(zip(["mean", "std", "n", "ci_low", "ci_high"], s, strict=True))
            name = recipe_label(FULL_DATA, recipe)
            head = {"method": name, "recipe": recipe, "ipc": None, "labels": labels}
            rows.append(pd.DataFrame([{**head, **row, "n_distill": 0}]))
    table = pd.concat([r for r in rows if not r.empty] or [table], ignore_index=True)
    table = table.reindex(columns=MAIN_TABLE_COLUMNS)
    table = table.assign(**_gain_columns(table, start_gains(df, paired), by_recipe))
    # the set's name alone: the recipe has its own column
    table["method"] = [split_label(m)[0] for m in table["method"]]
    table["ipc"] = table["ipc"].astype("Int64")
    for col in ("mean", "std", "ci_low", "ci_high", *GAIN_COLUMNS):
        table[col] = in_points(table[col])
    return table


def row_rank(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def _label_rank(labels: str) -> int:
    return LABEL_MODES.index(labels) if labels in LABEL_MODES else len(LABEL_MODES)


VERDICT_COLUMNS = [
    "ipc",
    "labels",
    "tsgd_mean",
    "tsgd_std",
    "best_baseline",
    "best_mean",
    "best_std",
    "gap",
    *DIFF_COLUMNS,
    "beats",
    "behind",
]


# the paired difference of two cells that share no draw
UNPAIRED = {"mean_diff": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0, "n_distill": 0}


def tsgd_verdicts(df: pd.DataFrame, labels: str = "soft", recipe: str = "tsgfa") -> pd.DataFrame:
    """Per IPC: TSGD against the best baseline by mean (random, herding, k-center, DM, SRe2L-style),
    every set trained under the same student `recipe` (default: the paper's, TSGFA).

    `gap` is mean(TSGD) - mean(best baseline); `mean_diff`, `ci_low`, `ci_high`, `n`,
    `n_distill` their paired difference (same distill and student seeds; NaN and 0 pairs when they
    share none). `beats` / `behind`: that difference is resolved (`stats.resolved`) above / below 0.
    """
    results = main_results(df)
    results = results[(results["labels"] == labels) & (results["recipe"] == recipe)]
    runs = main_records(df)
    runs = runs[runs["recipe"] == recipe]
    tsgd = recipe_label(METHOD_LABELS["tsgd"], recipe)
    baseline_names = {recipe_label(METHOD_LABELS[m], recipe) for m in BASELINES}
    out = []
    for ipc in sorted(results["ipc"].unique()):
        at = results[results["ipc"] == ipc]
        mine, others = at[at["method"] == tsgd], at[at["method"].isin(baseline_names)]
        if mine.empty or others.empty:
            continue
        best = others.loc[others["mean"].idxmax()]
        pooled = {r["row"]: r for _, r in runs[runs["ipc"] == ipc].iterrows()}
        diff = paired_summary(pooled.get(tsgd), pooled.get(best["method"]), labels)
        diff = diff or UNPAIRED
        resolved = stats.resolved(diff["ci_low"], diff["ci_high"], int(diff["n"]))
        out.append(
            {
                "ipc": int(ipc),
                "labels": labels,
                "tsgd_mean": float(mine["mean"].iloc[0]),
                "tsgd_std": float(mine["std"].iloc[0]),
                "best_baseline": best["method"],
                "best_mean": float(best["mean"]),
                "best_std": float(best["std"]),
                "gap": float(mine["mean"].iloc[0] - best["mean"]),
                **{k: diff[k] for k in DIFF_COLUMNS if k != "resolved"},
                "resolved": resolved,
                "beats": resolved and diff["mean_diff"] > 0,
                "behind": resolved and diff["mean_diff"] < 0,
            }
        )
    return pd.DataFrame(out, columns=VERDICT_COLUMNS)


RANDOM, SRE2L, TSGD = METHOD_LABELS["random"], METHOD_LABELS["sre2l"], METHOD_LABELS["tsgd"]
RANDOM_TSGFA, TSGD_TSGFA = RANDOM + TSGFA_SUFFIX, TSGD + TSGFA_SUFFIX


# the start sets, one per student recipe: Random's draw under that recipe
STARTS = (RANDOM, RANDOM_TSGFA)


# the sets that start from the random draw of the same distill seed (under either recipe)
OPTIMISED = tuple(
    recipe_label(m, recipe) for m in (METHOD_LABELS["dm"], SRE2L, TSGD) for recipe in RECIPES
)


# (question, a, b, subject, verbs when a - b is resolved above / below 0): the filter under each
# recipe, and TSGFA's effect on TSGD's set (the paper's full pipeline against the same set
# under the base recipe); every set's TSGFA effect is the "recipe" question
COMPARISONS = (
    ("filter", TSGD, SRE2L, "the filter", ("helps", "hurts")),
    ("filter", TSGD_TSGFA, SRE2L + TSGFA_SUFFIX, "the filter (under TSGFA)", ("helps", "hurts")),
    ("tsgfa", TSGD_TSGFA, TSGD, "TSGFA", ("helps", "hurts")),
)


PAIRED_COLUMNS = [
    "question",
    "comparison",
    "recipe",
    "ipc",
    "labels",
    *DIFF_COLUMNS,
    "ci_method",
    "pairs_t_low",
    "pairs_t_high",
    "bootstrap_low",
    "bootstrap_high",
]


def _comparisons(methods: Sequence[str]) -> list[tuple[str, str, str, str, tuple[str, str]]]:
    """The fixed questions, every set's TSGFA effect (the same set under both recipes), then
    every other row against Random under the same recipe (its start set, if optimised)."""
    out = list(COMPARISONS)
    for method in ordered_rows(methods):
        label, recipe = split_label(method)
        if recipe == "tsgfa" and label != TSGD and label in methods:
            out.append(("recipe", method, label, f"TSGFA on {label}", ("helps", "hurts")))
        random = recipe_label(RANDOM, recipe)
        if label != RANDOM:
            start = f" (its start set{', same recipe' if recipe == 'tsgfa' else ''})"
            start = start if method in OPTIMISED else ""
            out.append(
                (
                    "vs_random",
                    method,
                    random,
                    method,
                    (f"beats {random}{start}", f"falls below {random}{start}"),
                )
            )
    return out


def pair_recipe(a: str, b: str) -> str:
    """The student recipe two rows share ('base', 'tsgfa'), or 'tsgfa − base' across them."""
    ra, rb = split_label(a)[1], split_label(b)[1]
    return ra if ra == rb else f"{ra} − {rb}"


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
                        "recipe": pair_recipe(a, b),
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
        table[col] = in_points(table[col])
    table["resolved"] = ["yes" if r else "no" for r in table["resolved"]]
    return table


def gain_table(df: pd.DataFrame, paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """`gain_vs_start.md`: methods x (IPC, label mode), each method minus its start set in points
    with its 95 % interval (`start_gains`) and ✓ where resolved, – where not; empty without
    main-table pairs."""
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
    for method in ordered_rows(gains["method"]):
        mine = gains[gains["method"] == method]
        row: dict[str, Any] = {"Method": method}
        for ipc, labels in columns:
            hit = mine[(mine["ipc"] == ipc) & (mine["labels"] == labels)]
            cell = hit.iloc[0] if len(hit) else None
            row[f"IPC {ipc} {labels}"] = (
                "—" if cell is None else f"{difference_span(cell, '')} {resolved_mark(cell)}"
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("Method")


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


# spec.PIXEL_SOURCES in words
_PIXEL_WORDS = {"set": "recovered", "start": "start", "perturbed": "randomly perturbed start"}


# what a controls run that changes nothing is called: the recovered set at the studies' setting
RECOVERED_SET = "the recovered set itself"
# the controls in table order (as the grid lists them); others follow by name
CONTROL_ORDER = (
    RECOVERED_SET,
    "recovered pixels, labels of the start pixels",
    "start pixels, labels of the recovered pixels",
    "randomly perturbed start pixels with their own labels",
    "recovery without augmentation",
)


def record_setting(row: Mapping[str, Any], name: str, default: Any) -> Any:
    """A record's RunSpec field, its default where the record predates it (NaN in a frame)."""
    value = plain_value(row.get(name, default))
    return default if is_missing(value) else value


def control_label(row: Mapping[str, Any]) -> str:
    """What a `controls` run changes against its method's main cell, e.g. 'recovered pixels,
    labels of the start pixels' or 'recovery without augmentation'."""
    train = record_setting(row, "train_pixels", "set")
    label = record_setting(row, "label_pixels", "set")
    parts = []
    if train == label != "set":
        parts.append(f"{_PIXEL_WORDS.get(train, train)} pixels with their own labels")
    elif (train, label) != ("set", "set"):
        parts.append(
            f"{_PIXEL_WORDS.get(train, train)} pixels, labels of the "
            f"{_PIXEL_WORDS.get(label, label)} pixels"
        )
    if not bool(record_setting(row, "recover_augment", True)):
        parts.append("recovery without augmentation")
    return "; ".join(parts) or RECOVERED_SET


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
    and its paired difference to the method's recovered set (vs_main: the group's own run that
    changes nothing, where the studies fix their recovery, else the main cell) and to the start
    set, Random's main cell (vs_start), on the draws and student seeds they share."""
    main = {(r["row"], int(r["ipc"])): r for _, r in main_records(df).iterrows()}
    runs = group_runs(df, "controls")
    own = {
        (row_label(r), int(r["ipc"])): r
        for _, r in runs.iterrows()
        if control_label(r) == RECOVERED_SET
    }
    out = []
    for _, row in runs.iterrows():
        method, ipc = row_label(row), int(row["ipc"])
        reference = own.get((method, ipc), main.get((method, ipc)))
        if control_label(row) == RECOVERED_SET:
            reference = None  # no difference with itself
        for labels in LABEL_MODES:
            mean, std, _ = accuracy_columns(row, labels)
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
                    **interval_columns(row, labels),
                    "n_distill": int(row.get(f"acc_{labels}_n_distill", row["n_distill"])),
                    **_diff_columns("vs_main", paired_summary(row, reference, labels)),
                    **_diff_columns(
                        "vs_start",
                        paired_summary(
                            row, main.get((recipe_label(RANDOM, record_recipe(row)), ipc)), labels
                        ),
                    ),
                }
            )
    table = pd.DataFrame(out, columns=CONTROL_COLUMNS)
    table = table.assign(
        _rank=table["method"].map(row_rank),
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
            table[col] = in_points(table[col])
    return table


def difference_cell(row: Mapping[str, Any], prefix: str) -> str:
    """'-5.2 points [-8.0, -2.4] (15 pairs)', or '—' without pairs."""
    if not row[f"{prefix}_n"]:
        return "—"
    return f"{difference_span(stored_diff(row, prefix), '')} ({row[f'{prefix}_n']} pairs)"


def stored_diff(row: Mapping[str, Any], prefix: str) -> dict[str, Any] | None:
    """A difference of `controls_results` back in `stats.difference_summary`'s names."""
    if not row[f"{prefix}_n"]:
        return None
    return {
        "mean_diff": row[prefix],
        "ci_low": row[f"{prefix}_low"],
        "ci_high": row[f"{prefix}_high"],
        "n": row[f"{prefix}_n"],
    }


ABLATION_COLUMNS = ["variant", "ipc", "labels", "mean", "std", *DIFF_COLUMNS]


def ablation_results(df: pd.DataFrame) -> pd.DataFrame:
    """TSGD variants (and SRe2L-style) at the IPC of the ablation runs, test split, no shake
    (the `controls` group has its own table)."""
    runs = test_runs(df)
    if "group" in runs.columns:
        runs = runs[runs["group"] != "controls"]
    tsgd = runs[runs["method"] == "tsgd"]
    changed = tsgd[~row_mask(tsgd, is_default_variant)]
    if changed.empty:
        return pd.DataFrame(columns=ABLATION_COLUMNS)
    ipc = int(changed["ipc"].mode().iloc[0])
    at = runs[(runs["ipc"] == ipc) & runs["method"].isin(["tsgd", "sre2l"])]
    # SRe2L-style under the base recipe, as published; full TSGD is the paper's pipeline
    at = at[(at["method"] == "tsgd") | row_mask(at, lambda r: record_recipe(r) == "base")]
    full = at[
        (at["method"] == "tsgd")
        & row_mask(at, lambda r: is_default_variant(r) and record_recipe(r) == "tsgfa")
    ]
    out = []
    for _, row in at.iterrows():
        for labels in LABEL_MODES:
            mean, std, _ = accuracy_columns(row, labels)
            if math.isnan(mean):
                continue
            entry = {"variant": variant_label(row), "ipc": ipc, "labels": labels}
            entry.update(mean=mean, std=std, **_against_full(row, full, labels))
            out.append(entry)
    return pd.DataFrame(out, columns=ABLATION_COLUMNS)


def _against_full(row: pd.Series, full: pd.DataFrame, labels: str) -> dict[str, Any]:
    """The paired difference (same draws and students) of an ablation run to full TSGD; empty
    (NaN) for full TSGD itself, or where the two share no (draw, student) pair."""
    reference = None if full.empty or row["name"] == full.iloc[0]["name"] else full.iloc[0]
    diff = paired_summary(row, reference, labels)
    if diff is None:
        return {c: math.nan for c in DIFF_COLUMNS} | {"resolved": False}
    return {c: diff[c] for c in DIFF_COLUMNS}


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
            if all(same_value(row[f], getattr(defaults, f)) for f in others):
                mean, std, _ = accuracy_columns(row, labels)
                if not math.isnan(mean):
                    out.append(
                        {
                            "param": param,
                            "value": plain_value(row[param]),
                            "ipc": int(row["ipc"]),
                            "mean": mean,
                            "std": std,
                            "variant": row_label(row),
                        }
                    )
    result = pd.DataFrame(out, columns=["param", "value", "ipc", "mean", "std", "variant"])
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


def sensitivity_differences(df: pd.DataFrame, labels: str = "soft") -> pd.DataFrame:
    """Each sensitivity run against the run at the defaults (the same draws and students):
    param, value, reference (the default value), mean_diff, ci_low, ci_high, n, n_distill,
    resolved (fractions), and the runs' variant label (e.g. 'TSGD w/o TSGFA')."""
    columns = ["param", "value", "reference", "variant", *DIFF_COLUMNS]
    runs = pool_records(df)
    if "group" in runs.columns:
        runs = runs[runs["group"] == "sensitivity"]
    runs = runs[(runs["eval_split"] == "val") & (runs["method"] == "tsgd")]
    defaults = RunSpec()
    at_default = [
        r
        for _, r in runs.iterrows()
        if all(same_value(r[f], getattr(defaults, f)) for f in VARIANT_FIELDS)
    ]
    if not at_default:
        return pd.DataFrame(columns=columns)
    ref = at_default[0]
    out = []
    for param in SENSITIVITY_PARAMS:
        others = [f for f in VARIANT_FIELDS if f != param]
        for _, row in runs.iterrows():
            if same_value(row[param], getattr(defaults, param)):
                continue
            if not all(same_value(row[f], getattr(defaults, f)) for f in others):
                continue
            pairs = stats.paired_differences(row["records"], ref["records"], labels)
            if pairs.empty:
                continue
            diff = stats.difference_summary(pairs)
            out.append(
                {
                    "param": param,
                    "value": plain_value(row[param]),
                    "reference": plain_value(getattr(defaults, param)),
                    "variant": row_label(row),
                    **{c: diff[c] for c in DIFF_COLUMNS},
                }
            )
    return pd.DataFrame(out, columns=columns)


def shake_results(df: pd.DataFrame, labels: str = "soft") -> pd.DataFrame:
    """SRe2L-style and TSGD under the base recipe (the filter on or off, the same students) with
    and without camera shake, at the IPCs of the shake runs."""
    runs = pool_records(df)
    runs = runs[(runs["eval_split"] == "test") & runs["method"].isin(["sre2l", "tsgd"])]
    # the filter alone: both sets under the base recipe
    runs = runs[row_mask(runs, lambda r: is_default_variant(r) and record_recipe(r) == "base")]
    ipcs = set(runs.loc[runs["camera_shake"] > 0, "ipc"])
    out = []
    for _, row in runs[runs["ipc"].isin(ipcs)].iterrows():
        mean, std, _ = accuracy_columns(row, labels)
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


def cost_results(df: pd.DataFrame) -> pd.DataFrame:
    """Distillation wall time and peak added memory of the main runs, per method and IPC."""
    runs = main_records(df)
    cols = ["method", "ipc", "distill_wall_s", "distill_peak_mb"]
    out = runs.drop(columns=["method"]).rename(columns={"row": "method"}).reindex(columns=cols)
    # a set costs the same whichever recipe trains on it: one bar a set, named by the set
    recipes = out["method"].map(lambda m: split_label(str(m))[1])
    out = out.assign(method=out["method"].map(lambda m: split_label(str(m))[0]), _r=recipes)
    out = out.sort_values("_r").drop_duplicates(["method", "ipc"]).drop(columns="_r")
    rank = {name: i for i, name in enumerate(METHOD_ORDER)}
    out = out.assign(_rank=out["method"].map(rank)).sort_values(["_rank", "ipc"])
    return out.drop(columns="_rank").reset_index(drop=True)

"""What the data adds and what the training adds: every set under both student recipes.

A set (Random, Herding, ..., TSGD's recovered clips) is one axis; the student recipe that
trains on it (the base augmentation, or TSGFA on top of it) is another. `parts_results` pairs
the main runs to separate the two, as DD-Ranking asks an evaluation to:

* the recipe's effect on the start set: Random + TSGFA - Random;
* recovery's effect under each recipe: each optimised set minus its start set, same recipe;
* the filter's effect: TSGD - SRe2L-style, same recipe;
* selection's effect: Salient windows, Herding, K-Center - Random, same recipe;
* the interaction: (TSGD + TSGFA - Random + TSGFA) - (TSGD - Random), paired by draw and student.

`headline_table` gives the best set under each recipe, and `headline_sentences` one short
sentence per question, each computed from the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..data.storage import save_figure  # noqa: E402
from ..grid import stats  # noqa: E402
from ..grid.profiles import METHOD_LABELS  # noqa: E402
from ..grid.spec import RECIPES  # noqa: E402
from ..training.evaluate import LABEL_MODES  # noqa: E402
from .format import (
    difference_span,  # noqa: E402
    in_points,  # noqa: E402
    resolved_mark,  # noqa: E402
)
from .records import (  # noqa: E402
    DIFF_COLUMNS,
    METHOD_COLORS,
    PERCENT,
    main_records,
    recipe_label,
    split_label,
)
from .tables import main_results, row_rank  # noqa: E402

RANDOM, SRE2L, TSGD = METHOD_LABELS["random"], METHOD_LABELS["sre2l"], METHOD_LABELS["tsgd"]
SELECTIONS = tuple(METHOD_LABELS[m] for m in ("salient", "herding", "kcenter"))
RECOVERIES = tuple(METHOD_LABELS[m] for m in ("tsgd", "sre2l", "dm"))


# p: the two-sided p-value of the reported interval's test; p_holm: Holm-adjusted within the
# row's effect (one family a question), resolved_holm: still resolved at a family-wise 5 %
HOLM_COLUMNS = ["p", "p_holm", "resolved_holm"]
PARTS_COLUMNS = ["effect", "comparison", "recipe", "ipc", "labels", *DIFF_COLUMNS, *HOLM_COLUMNS]


def part_comparisons() -> list[tuple[str, str, str, str]]:
    """(effect, a, b, recipe) for every difference of the parts table; a - b, paired."""
    out = [("recipe on the start set", recipe_label(RANDOM, "tsgfa"), RANDOM, "tsgfa − base")]
    for recipe in RECIPES:
        start = recipe_label(RANDOM, recipe)
        out += [("recovery", recipe_label(m, recipe), start, recipe) for m in RECOVERIES]
        out.append(("filter", recipe_label(TSGD, recipe), recipe_label(SRE2L, recipe), recipe))
        out += [("selection", recipe_label(m, recipe), start, recipe) for m in SELECTIONS]
    return out


def _pairs(runs: Mapping[str, Any], a: str, b: str, labels: str) -> pd.DataFrame | None:
    """The (draw, student) pairs of rows a and b, or None when either row is missing."""
    if a not in runs or b not in runs:
        return None
    pairs = stats.paired_differences(runs[a]["records"], runs[b]["records"], labels)
    return None if pairs.empty else pairs


def interaction_pairs(runs: Mapping[str, Any], labels: str) -> pd.DataFrame | None:
    """Per (draw, student): TSGD's gain over its start set under TSGFA minus under the base
    recipe (does TSGFA help TSGD's set more than it helps Random's?)."""
    tsgfa = _pairs(runs, recipe_label(TSGD, "tsgfa"), recipe_label(RANDOM, "tsgfa"), labels)
    base = _pairs(runs, TSGD, RANDOM, labels)
    if tsgfa is None or base is None:
        return None
    keys = ["distill_seed", "student_seed"]
    both = tsgfa.merge(base, on=keys, suffixes=("_tsgfa", "_base"))
    if both.empty:
        return None
    return both.assign(diff=both["diff_tsgfa"] - both["diff_base"])


def parts_results(df: pd.DataFrame) -> pd.DataFrame:
    """Every effect of `part_comparisons` and the interaction, per IPC and label mode, as paired
    differences (fractions) with their 95 % intervals; rows whose sets were not run are absent."""
    runs = main_records(df)
    out = []
    for ipc in sorted(runs["ipc"].unique()):
        at = {row["row"]: row for _, row in runs[runs["ipc"] == ipc].iterrows()}
        for labels in LABEL_MODES:
            found = [
                (effect, f"{a} − {b}", recipe, _pairs(at, a, b, labels))
                for effect, a, b, recipe in part_comparisons()
            ]
            found.append(
                (
                    "interaction",
                    f"({TSGD} + TSGFA − {RANDOM} + TSGFA) − ({TSGD} − {RANDOM})",
                    "tsgfa − base",
                    interaction_pairs(at, labels),
                )
            )
            for effect, comparison, recipe, pairs in found:
                if pairs is None:
                    continue
                summary = stats.difference_summary(pairs)
                out.append(
                    {
                        "effect": effect,
                        "comparison": comparison,
                        "recipe": recipe,
                        "ipc": int(ipc),
                        "labels": labels,
                        **{k: summary[k] for k in [*DIFF_COLUMNS, "p"]},
                    }
                )
    return with_holm(pd.DataFrame(out, columns=PARTS_COLUMNS))


def with_holm(parts: pd.DataFrame) -> pd.DataFrame:
    """Holm's correction within each effect: every effect asks one question over many cells
    (IPCs, label modes, recipes, sets), and one cell in twenty resolves by chance alone."""
    parts = parts.copy()
    parts["p_holm"] = parts["p"].astype(float)
    for _, rows in parts.groupby("effect", sort=False):
        parts.loc[rows.index, "p_holm"] = stats.holm_adjusted(list(rows["p"].astype(float)))
    alpha = 1 - stats.LEVEL
    parts["resolved_holm"] = parts["resolved"].astype(bool) & (parts["p_holm"] < alpha)
    return parts


def parts_table(parts: pd.DataFrame) -> pd.DataFrame:
    """`parts.csv`: `parts_results` in percentage points, resolved yes/no."""
    table = parts.reindex(columns=PARTS_COLUMNS).copy()
    for col in ("mean_diff", "ci_low", "ci_high"):
        table[col] = in_points(table[col])
    for col in ("resolved", "resolved_holm"):
        table[col] = ["yes" if r else "no" for r in table[col]]
    return table


def parts_markdown(parts: pd.DataFrame) -> str:
    """`parts.md`: one row per effect and comparison, one column per (IPC, label mode)."""
    if parts.empty:
        return "No effect could be paired: the main group has no set under both recipes.\n"
    columns = sorted({(int(i), lab) for i, lab in zip(parts["ipc"], parts["labels"], strict=True)})
    columns.sort(key=lambda c: (c[0], LABEL_MODES.index(c[1])))
    rows = []
    for (effect, comparison), sub in parts.groupby(["effect", "comparison"], sort=False):
        row = {"effect": effect, "comparison": comparison}
        for ipc, labels in columns:
            hit = sub[(sub["ipc"] == ipc) & (sub["labels"] == labels)]
            cell = "—"
            if len(hit):
                h = hit.iloc[0]
                cell = difference_span(h, "")
                cell += " ✓✓" if h["resolved_holm"] else " ✓" if h["resolved"] else ""
            row[f"IPC {ipc} {labels}"] = cell
        rows.append(row)
    note = (
        "\nPoints, paired by draw and student seed, with the 95 % interval; ✓: resolved "
        "(the interval excludes 0 with at least 5 pairs); ✓✓: still resolved after Holm's "
        "correction over the effect's cells (family-wise 5 %; `p_holm` in parts.csv).\n"
    )
    return pd.DataFrame(rows).to_markdown(index=False) + "\n" + note


HEADLINE_COLUMNS = ["ipc", "labels", "recipe", "best set", "accuracy", "its gain over Random"]


def headline_table(df: pd.DataFrame, parts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per IPC and label mode, the best set under each recipe with its interval, and its paired
    gain over the start set under the same recipe (✓ resolved, – not)."""
    results = main_results(df)
    parts = parts_results(df) if parts is None else parts
    rows = []
    for (ipc, labels, recipe), sub in results.groupby(["ipc", "labels", "recipe"]):
        best = sub.loc[sub["mean"].idxmax()]
        name = split_label(best["method"])[0]
        gain = parts[
            (parts["comparison"] == f"{best['method']} − {recipe_label(RANDOM, recipe)}")
            & (parts["ipc"] == ipc)
            & (parts["labels"] == labels)
        ]
        gain_text = "(the start set)" if name == RANDOM else "—"
        if len(gain):
            g = gain.iloc[0]
            gain_text = f"{difference_span(g, '')} {resolved_mark(g)}"
        rows.append(
            {
                "ipc": int(ipc),
                "labels": labels,
                "recipe": recipe,
                "best set": name,
                "accuracy": f"{PERCENT * best['mean']:.1f} "
                f"[{PERCENT * best['ci_low']:.1f}, {PERCENT * best['ci_high']:.1f}]",
                "its gain over Random": gain_text,
            }
        )
    table = pd.DataFrame(rows, columns=HEADLINE_COLUMNS)
    order = {labels: i for i, labels in enumerate(LABEL_MODES)}
    table = table.assign(_l=table["labels"].map(order)).sort_values(["ipc", "_l", "recipe"])
    return table.drop(columns="_l").reset_index(drop=True)


def _effect_rows(parts: pd.DataFrame, effect: str, comparisons: Sequence[str]) -> pd.DataFrame:
    return parts[(parts["effect"] == effect) & parts["comparison"].isin(comparisons)]


def tally_sentence(subject: str, rows: pd.DataFrame) -> str | None:
    """'<subject>: resolved up in 2/12 cells, down in 1; largest +3.1 [+1.6, +4.6] at IPC 5
    soft tsgfa.' (None without rows): 25 words or fewer for a subject of up to eight."""
    if rows.empty:
        return None
    up = int((rows["resolved"] & (rows["mean_diff"] > 0)).sum())
    down = int((rows["resolved"] & (rows["mean_diff"] < 0)).sum())
    top = rows.loc[rows["mean_diff"].abs().idxmax()]
    recipe = str(top["recipe"]).replace(" − ", "−")
    return (
        f"{subject}: resolved up in {up}/{len(rows)} cells, down in {down}; largest "
        f"{difference_span(top, '')} at IPC {top['ipc']} "
        f"{top['labels']} {recipe}."
    )


def headline_sentences(parts: pd.DataFrame) -> list[str]:
    """The three findings under the same recipe, one short sentence each (resolved counts)."""
    recovery = [f"{recipe_label(TSGD, r)} − {recipe_label(RANDOM, r)}" for r in RECIPES]
    recipe = [f"{recipe_label(RANDOM, 'tsgfa')} − {RANDOM}"]
    salient = [
        f"{recipe_label(METHOD_LABELS['salient'], r)} − {recipe_label(RANDOM, r)}" for r in RECIPES
    ]
    lines = [
        tally_sentence(
            "TSGD minus its start set, same recipe",
            _effect_rows(parts, "recovery", recovery),
        ),
        tally_sentence(
            "TSGFA on Random's set",
            _effect_rows(parts, "recipe on the start set", recipe),
        ),
        tally_sentence(
            "Salient windows minus Random, same recipe", _effect_rows(parts, "selection", salient)
        ),
    ]
    lines.append(salient_against_selection(parts))
    lines.append(holm_sentence(parts))
    return [line for line in lines if line]


def holm_sentence(parts: pd.DataFrame) -> str | None:
    """How many resolved differences survive Holm's correction within their effect."""
    resolved = parts[parts["resolved"].astype(bool)]
    if resolved.empty:
        return None
    kept = resolved[resolved["resolved_holm"].astype(bool)]
    effects = ", ".join(dict.fromkeys(kept["effect"])) or "none"
    return (
        f"Holm's correction within each effect keeps {len(kept)} of the {len(resolved)} "
        f"resolved differences ({effects})."
    )


def salient_against_selection(parts: pd.DataFrame) -> str | None:
    """Whether Salient windows beats Herding and K-Center too: compares the three selections'
    gains over Random (unpaired with each other, so the sentence says only which is larger)."""
    sel = parts[parts["effect"] == "selection"]
    if sel.empty:
        return None
    best = sel.assign(who=[split_label(c.split(" − ")[0])[0] for c in sel["comparison"]])
    wins = best.loc[best.groupby(["ipc", "labels", "recipe"])["mean_diff"].idxmax()]
    count = int((wins["who"] == METHOD_LABELS["salient"]).sum())
    return (
        f"Salient windows beats Herding and K-Center in mean in {count}/{len(wins)} cells, "
        "same recipe (unpaired with them)."
    )


def recipe_figure(df: pd.DataFrame, path: str | Path | None = None) -> plt.Figure:
    """Accuracy per set at each IPC (columns) and label mode (rows), the two recipes side by
    side (TSGFA hatched), with each row's 95 % interval."""
    results = main_results(df)
    ipcs = sorted(results["ipc"].unique()) or [0]
    modes = [m for m in LABEL_MODES if (results["labels"] == m).any()] or ["soft"]
    fig, axes = plt.subplots(
        len(modes), len(ipcs), figsize=(4.2 * len(ipcs), 3.2 * len(modes)), squeeze=False
    )
    for i, labels in enumerate(modes):
        for j, ipc in enumerate(ipcs):
            _recipe_bars(axes[i][j], results, int(ipc), labels)
    handles = [
        plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch=h)
        for h in ("", "//")
    ]
    fig.legend(handles, ["base recipe", "TSGFA"], loc="upper right", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    if path is not None:
        save_figure(fig, path)
    return fig


def _recipe_bars(ax: plt.Axes, results: pd.DataFrame, ipc: int, labels: str) -> None:
    at = results[(results["ipc"] == ipc) & (results["labels"] == labels)]
    # the tables' order (Random, selection, distillation, TSGD), not the records' order
    sets = sorted(dict.fromkeys(split_label(m)[0] for m in at["method"]), key=row_rank)
    width = 0.4
    for k, name in enumerate(sets):
        for r, recipe in enumerate(RECIPES):
            hit = at[at["method"] == recipe_label(name, recipe)]
            if hit.empty:
                continue
            h = hit.iloc[0]
            x = k + (r - 0.5) * width
            err = [[PERCENT * (h["mean"] - h["ci_low"])], [PERCENT * (h["ci_high"] - h["mean"])]]
            ax.bar(
                x,
                PERCENT * h["mean"],
                width,
                color=METHOD_COLORS.get(h["method"], "grey"),
                hatch="//" if recipe == "tsgfa" else "",
                edgecolor="black",
                linewidth=0.5,
                yerr=err,
                capsize=2,
            )
    ax.set_xticks(range(len(sets)), sets, rotation=40, ha="right", fontsize=8)
    ax.set_title(f"IPC {ipc}, {labels} labels", fontsize=9)
    ax.set_ylabel("test accuracy (%)")


def with_row_names(table: pd.DataFrame) -> pd.DataFrame:
    """A `main_table.csv` with its rows named as the report names them ('TSGD + TSGFA' under
    TSGFA), so that each (row, IPC, label mode) is one row; a table without a recipe column (a
    report made before the recipe was an axis) is returned as it is."""
    out = table.copy()
    if "recipe" in out.columns:
        out["method"] = [
            recipe_label(m, str(r)) for m, r in zip(out["method"], out["recipe"], strict=True)
        ]
    return out


def tsgd_and_start(rows: Sequence[str]) -> tuple[str, str] | None:
    """TSGD's row and its start set's under one student recipe, from the rows a report has: the
    paper's recipe (TSGFA) where both are there, else the base recipe's; None without a pair."""
    for recipe in ("tsgfa", "base"):
        pair = (recipe_label(TSGD, recipe), recipe_label(RANDOM, recipe))
        if all(name in rows for name in pair):
            return pair
    return None

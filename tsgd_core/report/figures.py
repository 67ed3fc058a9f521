"""Figures of results: accuracy against IPC, paired differences, recovery and convergence
curves, choices, event weights, ablation, sensitivity, shake and cost. PNG, written atomically."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in papermill kernels

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..data.storage import save_figure  # noqa: E402
from ..grid.profiles import METHOD_LABELS  # noqa: E402
from ..grid.spec import RunSpec  # noqa: E402
from ..training.evaluate import LABEL_MODES  # noqa: E402
from .records import (
    FULL_DATA,
    METHOD_COLORS,
    PERCENT,
    SENSITIVITY_PARAMS,
    recipe_label,
    split_label,
)
from .studies import convergence_results, event_alignment, recover_results, weights_and_mask
from .tables import (
    ablation_results,
    accuracy_summary,
    cost_results,
    full_by_recipe,
    main_results,
    ordered_rows,
    sensitivity_results,
    shake_results,
)


def _percent_formatter() -> mticker.Formatter:
    """Fractions as percent without the sign, with as many decimals as the axis range needs."""
    return mticker.PercentFormatter(xmax=1.0, decimals=None, symbol="")


def percent_axis(ax: plt.Axes, label: str = "top-1 accuracy [%]") -> None:
    ax.set_ylabel(label)
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.grid(axis="y", alpha=0.3)


def _names_down_percent_across(ax: plt.Axes, names: Sequence[str], xlabel: str) -> None:
    """Horizontal rows: `names` down the y axis (the first on top), percent along x with a grid."""
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(_percent_formatter())
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)


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
        methods = ordered_rows(at["method"])
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
                ls=":" if split_label(method)[1] == "tsgfa" else "-",  # the recipe: dotted TSGFA
            )
        for recipe, results_of in full_by_recipe(full).items():
            if labels in results_of:
                ax.axhline(
                    accuracy_summary(results_of[labels]).mean,
                    color="black",
                    ls=":" if recipe == "tsgfa" else "--",
                    lw=1,
                    label=recipe_label(FULL_DATA, recipe),
                )
        ax.set_xscale("log")
        ax.set_xticks(sorted(results["ipc"].unique()) or [1])
        ax.xaxis.set_major_formatter(mticker.ScalarFormatter())
        ax.set_xlabel("IPC (clips per class)")
        ax.set_title(f"{labels} labels")
        percent_axis(ax)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(
        "Test accuracy vs distillation budget (mean and 95 % CI over distill x student seeds)"
    )
    return save_figure(fig, path)


JITTER_SEED = 0  # the strip plots' dots: the same figure from the same numbers


@contextmanager
def numpy_global_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for the block (seaborn's jitter draws from it), then give
    the caller's state back."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


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
        with numpy_global_seed(JITTER_SEED):
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
        percent_axis(ax, "validation accuracy [%]")
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
        percent_axis(ax, "validation accuracy [%]")
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
    _names_down_percent_across(ax, choices, "validation accuracy [%], 95 % CI")
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

    w, m = weights_and_mask(weights, mask)
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
    _names_down_percent_across(ax, order, "top-1 test accuracy [%]")
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
    # a parameter run at one value only has nothing to plot against: no panel for it
    counts = table["param"].value_counts()
    params = [p for p in SENSITIVITY_PARAMS if counts.get(p, 0) >= 2]
    if not params:
        return None
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
        percent_axis(ax, "validation accuracy [%]")
    ipc = int(table["ipc"].iloc[0])
    variant = " / ".join(dict.fromkeys(table["variant"]))  # the runs' own label, e.g. w/o TSGFA
    single = [p for p in SENSITIVITY_PARAMS if counts.get(p, 0) == 1]
    note = f"; {', '.join(single)} at one value only" if single else ""
    fig.suptitle(
        f"TSGF sensitivity on the validation split ({variant}, IPC {ipc}, soft labels{note})"
    )
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
    percent_axis(ax, "top-1 test accuracy [%]")
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

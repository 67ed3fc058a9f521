"""Validation studies read from the records: recovery length, student convergence, the choices
of TSGFA parts and DM learning rates, and how saliency lines up with the true events."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..grid import stats
from ..grid.profiles import METHOD_LABELS, get_profile
from ..training.evaluate import LABEL_MODES
from .records import (
    DIFF_COLUMNS,
    FULL_DATA,
    PERCENT,
    RESULT_COLUMNS,
    accuracy_columns,
    group_runs,
    interval_columns,
    is_missing,
    normal_value,
    plain_value,
    row_label,
)
from .tables import accuracy_summary

PLATEAU_POINTS = 1.0  # "on the plateau": within this many points of the best value


CONVERGED_POINTS = 1.0  # doubling the student steps moves accuracy by less: converged


ALL_TSGFA_PARTS = ("crop", "mix", "temporal")


def profile_or_none(name: Any) -> Any:
    try:
        return get_profile(str(name))
    except ValueError:
        return None


def iterations_of(row: Mapping[str, Any]) -> float:
    """The recover iterations of a run: its `iterations`, or its profile's default when null."""
    value = plain_value(row.get("iterations"))
    if is_missing(value):
        value = getattr(profile_or_none(row.get("profile")), "distill_iterations", None)
    return math.nan if value is None else float(value)


def _scale_of(row: Mapping[str, Any]) -> float:
    value = plain_value(row.get("student_scale"))
    return 1.0 if is_missing(value) else float(value)


RECOVER_COLUMNS = ["method", "init", "iterations", "labels", *RESULT_COLUMNS, "final_loss"]


def recover_results(df: pd.DataFrame) -> pd.DataFrame:
    """The `recover` group: validation accuracy (and final recover loss) per iteration budget."""
    out = []
    for _, row in group_runs(df, "recover").iterrows():
        for labels in LABEL_MODES:
            mean, std, _ = accuracy_columns(row, labels)
            if math.isnan(mean):
                continue
            init = row.get("init", "real")
            first_bn = plain_value(row.get("first_bn"))
            if not is_missing(first_bn):  # a budget's own point, not a step of the init's curve
                init = f"{init}, first BN x{first_bn:g}"
            out.append(
                {
                    "method": row_label(row),
                    "init": init,
                    "iterations": iterations_of(row),
                    "labels": labels,
                    "mean": mean,
                    "std": std,
                    **interval_columns(row, labels),
                    "final_loss": float(plain_value(row.get("distill_final_loss", math.nan))),
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


CONVERGENCE_COLUMNS = ["method", "ipc", "student_scale", "labels", *RESULT_COLUMNS]


def convergence_scales(df: pd.DataFrame) -> list[float]:
    """The student step scales of the `convergence` group (what full-data runs to ask for)."""
    return sorted({_scale_of(row) for _, row in group_runs(df, "convergence").iterrows()})


def convergence_results(
    df: pd.DataFrame, full_scales: Mapping[float, Mapping[str, Sequence[float]]] | None = None
) -> pd.DataFrame:
    """The `convergence` group: validation accuracy per student step scale; plus full-data rows."""
    out = []
    for _, row in group_runs(df, "convergence").iterrows():
        for labels in LABEL_MODES:
            mean, std, _ = accuracy_columns(row, labels)
            if not math.isnan(mean):
                out.append(
                    {
                        "method": row_label(row),
                        "ipc": int(row["ipc"]),
                        "student_scale": _scale_of(row),
                        "labels": labels,
                        "mean": mean,
                        "std": std,
                        **interval_columns(row, labels),
                    }
                )
    for scale, results in (full_scales or {}).items():
        for labels, value in results.items():
            s = accuracy_summary(value)
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
    *DIFF_COLUMNS,
    "verdict",
    "converged",
]


def convergence_verdict(ci_low: float, ci_high: float, n: int) -> str:
    """'converged' when the paired change's whole interval lies within CONVERGED_POINTS of 0,
    'not converged' when it lies wholly beyond, else 'undecided' (also with no interval or fewer
    than stats.MIN_PAIRS pairs): a mean under one point with a wide interval shows nothing."""
    low, high = PERCENT * ci_low, PERCENT * ci_high
    if math.isnan(low) or math.isnan(high) or n < stats.MIN_PAIRS:
        return "undecided"
    if -CONVERGED_POINTS < low and high < CONVERGED_POINTS:
        return "converged"
    if low >= CONVERGED_POINTS or high <= -CONVERGED_POINTS:
        return "not converged"
    return "undecided"


def convergence_curves(df: pd.DataFrame) -> dict[tuple[str, int], dict[float, Any]]:
    """The convergence group's runs by (set, IPC), then by student step scale."""
    curves: dict[tuple[str, int], dict[float, Any]] = {}
    for _, row in group_runs(df, "convergence").iterrows():
        curves.setdefault((row_label(row), int(row["ipc"])), {})[_scale_of(row)] = row
    return curves


def convergence_doublings(df: pd.DataFrame) -> pd.DataFrame:
    """Paired change of validation accuracy when the student steps double (same sets, same seeds).

    `verdict` is `convergence_verdict` of the paired change; `converged`: it is 'converged'.
    """
    out = []
    for (method, ipc), by_scale in convergence_curves(df).items():
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
                verdict = convergence_verdict(s["ci_low"], s["ci_high"], int(s["n"]))
                out.append(
                    {
                        "method": method,
                        "ipc": ipc,
                        "labels": labels,
                        "from_scale": scale,
                        "to_scale": 2 * scale,
                        **{k: s[k] for k in DOUBLING_COLUMNS if k in s},
                        "verdict": verdict,
                        "converged": verdict == "converged",
                    }
                )
    return pd.DataFrame(out, columns=DOUBLING_COLUMNS)


COMPARISON_COLUMNS = ["method", "ipc", "labels", "scale", *DIFF_COLUMNS]


def convergence_comparisons(df: pd.DataFrame) -> pd.DataFrame:
    """Each set of the convergence group minus Random at every student budget (the same draws
    and student seeds): does a comparison's verdict depend on how long the students train?"""
    curves = convergence_curves(df)
    random = METHOD_LABELS["random"]
    out = []
    for (method, ipc), by_scale in curves.items():
        start = curves.get((random, ipc))
        if method == random or start is None:
            continue
        for labels in LABEL_MODES:
            for scale in sorted(set(by_scale) & set(start)):
                pairs = stats.paired_differences(
                    by_scale[scale]["records"], start[scale]["records"], labels
                )
                if pairs.empty:
                    continue
                s = stats.difference_summary(pairs)
                out.append(
                    {"method": method, "ipc": ipc, "labels": labels, "scale": scale}
                    | {k: s[k] for k in DIFF_COLUMNS}
                )
    return pd.DataFrame(out, columns=COMPARISON_COLUMNS)


def tsgfa_parts_label(row: Mapping[str, Any]) -> str:
    """'crop+mix+temporal', 'crop+mix', 'base only' or 'no TSGFA' for a TSGD run."""
    if not row.get("tsgfa", True):
        return "no TSGFA"
    parts = normal_value(row.get("tsgfa_parts"))
    if parts is None:
        parts = list(ALL_TSGFA_PARTS)
    return "+".join(parts) if parts else "base only"


def dm_lr_label(row: Mapping[str, Any]) -> str:
    """'lr 0.1' or, where the study varies DM's embedding net too, 'student net, lr 0.1'."""
    value = plain_value(row.get("dm_lr"))
    lr = "lr default" if is_missing(value) else f"lr {float(value):g}"
    net = plain_value(row.get("dm_net"))
    return lr if is_missing(net) else f"{net} net, {lr}"


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
        mine = {n: r for n, r in named.items() if not math.isnan(accuracy_columns(r, labels)[0])}
        if not mine:
            continue
        ref = (
            reference
            if reference in mine
            else max(mine, key=lambda n: mine[n][f"acc_{labels}_mean"])
        )
        for name, row in mine.items():
            mean, std, _ = accuracy_columns(row, labels)
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
                    **interval_columns(row, labels),
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
    runs = group_runs(df, "tsgfa")
    return choice_results(runs, tsgfa_parts_label, "+".join(ALL_TSGFA_PARTS))


def dm_lr_results(df: pd.DataFrame) -> pd.DataFrame:
    """The `dm` group (validation): DM's pixel learning rates against the best of them."""
    return choice_results(group_runs(df, "dm"), dm_lr_label)


def event_alignment(weights: Any, mask: Any, *, seed: int = 0) -> dict[str, float]:
    """How well per-frame weights w_t (N, T) follow the true event window `mask` (N, T).

    corr: mean over clips of the Pearson correlation of w_t with the mask (clips where either is
    constant are left out); shuffled_corr: the same with the masks of other clips (a seeded
    permutation), the control; w_inside / w_outside: mean weight in and out of the window.
    """
    w, m = weights_and_mask(weights, mask)
    perm = np.random.default_rng(seed).permutation(len(m))
    return {
        "corr": _mean_row_corr(w, m),
        "shuffled_corr": _mean_row_corr(w, m[perm]),
        "w_inside": float(w[m > 0].mean()) if (m > 0).any() else math.nan,
        "w_outside": float(w[m == 0].mean()) if (m == 0).any() else math.nan,
        "n_clips": int(len(w)),
    }


def weights_and_mask(weights: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
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

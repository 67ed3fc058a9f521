"""Figures of clips and training: pixel change, accuracy bars, frame strips, saliency over
time, loss curves and confusion matrices (the tutorial notebooks' figures)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in papermill kernels

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from ..data.artifact import clip_grid_frames  # noqa: E402
from ..data.storage import save_figure  # noqa: E402
from ..grid import stats  # noqa: E402
from ..training.evaluate import LABEL_MODES  # noqa: E402
from ..training.saliency import SaliencyConfig, frame_weights, saliency_map  # noqa: E402
from .figures import percent_axis
from .records import FULL_DATA, METHOD_COLORS, POOLED, accuracy_columns, row_label
from .tables import control_label, record_setting

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
        group = record_setting(rec, "group", "")
        ratio = record_setting(rec, "change_over_motion", None)
        if (
            ratio is None
            or not float(ratio) > 0
            or record_setting(rec, "eval_split", "test") != "test"
        ):
            continue
        if group not in ("", "main", "controls") or record_setting(rec, "camera_shake", 0.0) != 0:
            continue
        out.append(
            {
                "method": row_label(rec),
                "control": control_label(rec) if group == "controls" else "main",
                "distill_seed": stats.distill_seed_of(rec),
                "change_over_motion": float(ratio),
                **{
                    f"acc_{labels}_mean": float(record_setting(rec, f"acc_{labels}_mean", math.nan))
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
        percent_axis(ax, "top-1 test accuracy [%]")
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
    modes = [
        m for m in LABEL_MODES if any(not math.isnan(accuracy_columns(r, m)[0]) for r in records)
    ]
    width = 0.8 / max(len(records), 1)
    for j, rec in enumerate(records):
        name = rec.get("display") or row_label(rec) + f" (IPC {rec['ipc']})"
        xs, means, stds = [], [], []
        for i, mode in enumerate(modes):
            mean, std, seeds = accuracy_columns(rec, mode)
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
    percent_axis(ax, f"top-1 {split} accuracy [%]")
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
    percent_axis(ax, ylabel)
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


# contact sheet: one inch of figure per this many pixels of frames (each frame pixel is
# `scale` pixels; at the saved DPI the frames keep at least their own resolution)
CONTACT_PX_PER_INCH = 72
CONTACT_NAME_INCHES = 1.8  # the class-name column on the left


def contact_sheet_figure(
    videos: torch.Tensor,
    labels: torch.Tensor,
    class_names: Sequence[str],
    *,
    title: str = "",
    scale: int = 3,
) -> plt.Figure:
    """A set as a contact sheet: one row per clip (by class), its frames left to right, and
    the clip's class name written at the left of its row."""
    videos = videos.detach().cpu()
    image, row_classes = frame_strip_image(videos, labels, len(class_names), scale=scale)
    _, _, t, h, _ = videos.shape
    gap = 1
    height, width = image.shape[0] / CONTACT_PX_PER_INCH, image.shape[1] / CONTACT_PX_PER_INCH
    top = 0.45 if title else 0.1
    fig = plt.figure(figsize=(width + CONTACT_NAME_INCHES, height + top))
    total_w, total_h = width + CONTACT_NAME_INCHES, height + top
    ax = fig.add_axes((CONTACT_NAME_INCHES / total_w, 0, width / total_w, height / total_h))
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    for row, c in enumerate(row_classes):
        y = gap + row * (h * scale + gap) + h * scale / 2
        ax.text(-3 * gap, y, class_names[c], ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(f"{title} ({t} frames per row, time left to right)", fontsize=10)
    return fig


def save_contact_sheet(
    ds: Any, path: str | os.PathLike[str], *, title: str | None = None, scale: int = 3
) -> Path:
    """A distilled set (or ClipSet) as a contact-sheet PNG with each row's class name."""
    name = title if title is not None else contact_title(ds)
    fig = contact_sheet_figure(ds.videos, ds.labels, ds.class_names, title=name, scale=scale)
    return save_figure(fig, path)


def contact_title(ds: Any) -> str:
    """'tsgd, IPC 1, 10 classes' for a distilled set; the class count for other clips."""
    method, ipc = getattr(ds, "method", None), getattr(ds, "ipc", None)
    parts = [str(method)] if method else []
    parts += [f"IPC {ipc}"] if ipc else []
    return ", ".join([*parts, f"{len(ds.class_names)} classes"])


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
        percent_axis(ax, "teacher accuracy on S [%]")
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
    percent_axis(axes[1], "validation accuracy [%]")
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

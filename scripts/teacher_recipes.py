#!/usr/bin/env python
"""Compare teacher recipes for real footage on the CPU, chosen on the group-aware val split
(issue 29, item 3).

    python scripts/teacher_recipes.py --root ../shared/ucf101-5/UCF101
    python scripts/teacher_recipes.py --root DIR --recipes base size=48 frames=16 epochs=40

A recipe is `base` (the real-cpu teacher: 8 x 32 x 32, ConvNet3D width 32 depth 3, the
profile's epochs with the real-data step floor, AdamW, class-balanced loss, the random resized
crop and photometric jitter of `student_augment`) or comma-separated changes to it:

    frames=N  size=N  epochs=N  width=N  smooth=X (label smoothing)  jitter=N (temporal jitter:
    each view shifted by up to N frames, ends repeated)  aug=none|crop|crop+flip
    sampling=spread|stride

Each recipe trains once (seed 0) with `--threads` torch threads, keeps the weights of its best
val accuracy and is then tested once; a recipe whose projected training time passes `--minutes`
is cut to the steps that fit (the row says so). Rows go to a markdown table (`--out`, written
whole at the end and after each row) with val and test accuracy and the training time. The
choice is made on val: test is there for the record.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tsgd_core, however the package was installed

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tsgd_core.data.datasets import DataSpec, class_weights, with_budget  # noqa: E402
from tsgd_core.data.storage import write_text  # noqa: E402
from tsgd_core.grid.profiles import get_profile  # noqa: E402
from tsgd_core.training.augment import AugmentConfig, student_augment  # noqa: E402
from tsgd_core.training.train import accuracy, fit  # noqa: E402

DEFAULT_RECIPES = (
    "base",
    "size=48",
    "frames=16",
    "size=64",
    "epochs=40",
    "aug=none",
    "aug=crop+flip",
    "jitter=1",
    "smooth=0.1",
    "width=64",
    "sampling=stride",
)
AUGMENTATIONS = ("none", "crop", "crop+flip")


@dataclass(frozen=True)
class Recipe:
    """One teacher recipe: the clip geometry and how the teacher trains."""

    name: str
    frames: int = 8
    size: int = 32
    epochs: int = 0  # 0: the profile's
    width: int = 0  # 0: the profile's
    aug: str = "crop"
    jitter: int = 0
    smooth: float = 0.0
    sampling: str = "spread"


def parse_recipe(text: str) -> Recipe:
    """'base' or 'size=48,epochs=40' -> a Recipe (exit with a one-line message otherwise)."""
    if text == "base":
        return Recipe("base")
    types = {"frames": int, "size": int, "epochs": int, "width": int, "jitter": int}
    types |= {"smooth": float, "aug": str, "sampling": str}
    changes = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in types or not value:
            raise SystemExit(
                f"bad recipe {text!r}: write base or KEY=VALUE[,...], KEY in {list(types)}"
            )
        try:
            changes[key] = types[key](value)
        except ValueError:
            raise SystemExit(f"bad recipe {text!r}: {key} takes a {types[key].__name__}") from None
    recipe = replace(Recipe(text), **changes)
    if recipe.aug not in AUGMENTATIONS:
        raise SystemExit(f"bad recipe {text!r}: aug is one of {', '.join(AUGMENTATIONS)}")
    return recipe


def temporal_jitter(videos: torch.Tensor, most: int, generator: torch.Generator) -> torch.Tensor:
    """Each clip (N, C, T, H, W) shifted in time by up to `most` frames, its ends repeated."""
    n, _, t = videos.shape[:3]
    shift = torch.randint(-most, most + 1, (n, 1), generator=generator)
    index = (torch.arange(t)[None] + shift).clamp(0, t - 1).to(videos.device)
    return torch.stack([clip[:, frames] for clip, frames in zip(videos, index, strict=True)])


def batch_loss_of(recipe: Recipe, weights: torch.Tensor | None):
    """The teacher's loss on an augmented view of each clip, as the recipe says."""
    augment = AugmentConfig(flip=recipe.aug == "crop+flip")

    def batch_loss(model, videos, labels, generator):
        views = temporal_jitter(videos, recipe.jitter, generator) if recipe.jitter else videos
        if recipe.aug != "none":
            views = student_augment(views, generator, augment)
        weight = None if weights is None else weights.to(labels.device)
        return F.cross_entropy(model(views), labels, weight=weight, label_smoothing=recipe.smooth)

    return batch_loss


def seconds_per_step(model, splits, fit_cfg, loss) -> float:
    """Time of a few training steps of a copy of the model (to cap a recipe at --minutes)."""
    import copy

    probe = copy.deepcopy(model)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=fit_cfg.lr)
    generator = torch.Generator().manual_seed(0)
    index = torch.randperm(len(splits.train), generator=generator)[: fit_cfg.batch_size]
    videos, labels = splits.train.videos[index], splits.train.labels[index]
    start = time.perf_counter()
    for _ in range(3):
        optimizer.zero_grad()
        loss(probe, videos, labels, generator).backward()
        optimizer.step()
    return (time.perf_counter() - start) / 3


def run_recipe(recipe: Recipe, args: argparse.Namespace) -> dict:
    spec = DataSpec(
        args.dataset,
        str(Path(args.root).expanduser().resolve()),
        frames=recipe.frames,
        size=(recipe.size, recipe.size),
        sampling=recipe.sampling,
    )
    splits = spec.load(args.cache_dir, progress=False)
    prof = get_profile("real-cpu")
    model_cfg = replace(prof.teacher_model, width=recipe.width or prof.teacher_model.width)
    fit_cfg = replace(prof.teacher_fit, epochs=recipe.epochs or prof.teacher_fit.epochs)
    fit_cfg = with_budget(fit_cfg, len(splits.train))
    loss = batch_loss_of(recipe, class_weights(splits.train.labels, splits.num_classes))
    model = model_cfg.build(splits.num_classes, splits.clip_shape, seed=fit_cfg.seed)
    affordable = int(60 * args.minutes / seconds_per_step(model, splits, fit_cfg, loss))
    capped = affordable < fit_cfg.steps
    if capped:
        fit_cfg = replace(fit_cfg, steps=max(1, affordable))
    start = time.perf_counter()
    result = fit(model, splits.train, fit_cfg, batch_loss=loss, val=splits.val, progress=False)
    wall = time.perf_counter() - start
    return {
        "recipe": recipe.name,
        "clips": f"{recipe.frames}x{recipe.size}²",
        "sampling": recipe.sampling,
        "epochs": f"{fit_cfg.epochs} ({fit_cfg.steps} steps{', capped' if capped else ''})",
        "augmentation": recipe.aug + (f" + jitter ±{recipe.jitter}" if recipe.jitter else ""),
        "smoothing": f"{recipe.smooth:g}",
        "width": model_cfg.width,
        "val": 100 * (result.best_val_acc or 0.0),
        "test": 100 * accuracy(model, splits.test),
        "seconds": wall,
        "carving": splits.config.get("val_carving", ""),
        "sizes": f"{len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test",
    }


COLUMNS = ("recipe", "clips", "sampling", "epochs", "augmentation", "smoothing", "width")


def table(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Teacher recipes on real footage (CPU)",
        "",
        f"Data: `--dataset {args.dataset} --root {args.root}`; "
        + (f"{rows[0]['sizes']} clips; {rows[0]['carving']}." if rows else ""),
        f"One training run each (seed 0), {args.threads} torch thread(s), at most "
        f"{args.minutes:g} minutes of training a recipe; weights chosen on val, test once.",
        f"Command: `python scripts/teacher_recipes.py {' '.join(sys.argv[1:])}`",
        "",
        "| " + " | ".join([*COLUMNS, "val %", "test %", "train s"]) + " |",
        "|" + "---|" * (len(COLUMNS) + 3),
    ]
    for row in rows:
        cells = [str(row[c]) for c in COLUMNS]
        cells += [f"{row['val']:.1f}", f"{row['test']:.1f}", f"{row['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the dataset folder (a copy)")
    parser.add_argument("--dataset", default="ucf101")
    parser.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES))
    parser.add_argument(
        "--cache-dir", default=str(ROOT / "cache"), help="decoded clips: <dir>/videos"
    )
    parser.add_argument("--minutes", type=float, default=15.0, help="training time a recipe")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "reports/real-cpu-ucf101/teacher_recipes.md"))
    args = parser.parse_args()
    recipes = [parse_recipe(text) for text in args.recipes]  # all checked before any training
    torch.set_num_threads(args.threads)
    rows = []
    for recipe in recipes:
        rows.append(run_recipe(recipe, args))
        row = rows[-1]
        print(
            f"{row['recipe']}: val {row['val']:.1f} %, test {row['test']:.1f} %, {row['seconds']:.0f} s",
            flush=True,
        )
        write_text(table(rows, args), args.out)
    print(f"table: {args.out}")


if __name__ == "__main__":
    main()

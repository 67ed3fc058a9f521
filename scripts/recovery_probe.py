#!/usr/bin/env python
"""Why does recovery help under one student recipe and not the other? The teacher's view of the
start pixels against the recovered pixels (issue: one student recipe for every set, item 5).

    python scripts/recovery_probe.py --cache /work/cache-default --ipc 5

For each draw of TSGD's set at `--ipc` (cached by a grid run: nothing is distilled here unless
the set is missing), the views students see under each recipe (base augmentation, TSGFA) are
drawn with the same seeds for the start clips and for the recovered clips, and the teacher labels
them at the students' temperature tau. The table gives, per recipe and pixels, the mean top
probability, the entropy and the probability of the clip's own class, paired by draw, with the
recovered-minus-start difference and its 95 % interval over the draws. Written to
`--out` (CSV and markdown). The student-side controls (recovered pixels with the start pixels'
labels, the reverse, and a random perturbation of recovery's size) are cells of the grid's
`controls` group.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from tsgd_core.data.storage import write_text  # noqa: E402
from tsgd_core.grid import experiments, stats  # noqa: E402
from tsgd_core.grid.cells import study_settings  # noqa: E402
from tsgd_core.grid.spec import RECIPES, RunSpec  # noqa: E402
from tsgd_core.training.evaluate import make_view  # noqa: E402
from tsgd_core.training.relabel import confidence_stats, teacher_soft_labels  # noqa: E402

MEASURES = ("top_prob", "entropy", "own_class_prob")


def probe_draw(spec: RunSpec, ctx: experiments.RunContext, views: int) -> list[dict]:
    """One draw: per recipe and pixels (start, recovered), the teacher's confidence stats."""
    ds = experiments.distil(ctx)
    start = experiments.start_set(spec, ctx.splits.train)
    tau = spec.prof.student.tau
    rows = []
    for recipe in RECIPES:
        cfg = experiments.student_config(replace(spec, student_augment=recipe), "soft")
        for pixels, clips in (("start", start), ("recovered", ds.videos.float())):
            probs, labels = [], []
            for v in range(views):  # the same seeds for both pixel sources: paired views
                view, _, _ = make_view(cfg, clips, torch.Generator().manual_seed(1000 + v))
                with torch.no_grad():
                    probs.append(teacher_soft_labels(ctx.teacher, view, tau))
                labels.append(ds.labels)
            stats_ = confidence_stats(torch.cat(probs), torch.cat(labels))
            rows.append({"draw": spec.distill_seed, "recipe": recipe, "pixels": pixels, **stats_})
    return rows


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per recipe and measure: both means and recovered - start with its interval over draws."""
    out = []
    for recipe, sub in rows.groupby("recipe", sort=False):
        wide = sub.pivot(index="draw", columns="pixels", values=list(MEASURES))
        for measure in MEASURES:
            diff = (wide[(measure, "recovered")] - wide[(measure, "start")]).tolist()
            mean, low, high = stats.mean_ci(diff)
            out.append(
                {
                    "recipe": recipe,
                    "measure": measure,
                    "start": wide[(measure, "start")].mean(),
                    "recovered": wide[(measure, "recovered")].mean(),
                    "diff": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "draws": len(diff),
                }
            )
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--ipc", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("--views", type=int, default=8, help="views per clip and recipe")
    parser.add_argument("--out", type=Path, default=Path("reports/default-recipes/probe"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    prof = experiments.get_profile(args.profile)
    study = study_settings(prof)
    for seed in prof.distill_seeds:
        # the set the controls study: recovered at the studies' setting, where it moves pixels
        spec = RunSpec(
            method="tsgd", ipc=args.ipc, profile=args.profile, distill_seed=seed, **study
        )
        ctx = experiments.run_context(spec, cache_dir=args.cache, device="cpu", progress=False)
        rows += probe_draw(spec, ctx, args.views)
    table = summarise(pd.DataFrame(rows))
    command = "python scripts/recovery_probe.py " + " ".join(argv or sys.argv[1:])
    write_text(table.to_csv(index=False), args.out.with_suffix(".csv"))
    setting = f"lr {spec.recover_lr:g}, {spec.recover_iterations} iterations"
    text = (
        f"# Teacher's view of start and recovered pixels\n\n`{command}`\n\n"
        f"TSGD's sets at IPC {args.ipc}, recovered with {setting} (the studies' setting).\n\n"
    )
    write_text(
        text + table.to_markdown(index=False, floatfmt=".4f") + "\n", args.out.with_suffix(".md")
    )
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

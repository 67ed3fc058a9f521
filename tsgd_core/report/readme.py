"""The written report: README text, `write_report` (tables, figures, README of one profile)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..data.storage import write_text
from ..grid import stats
from ..grid.profiles import METHOD_LABELS
from ..training.evaluate import LABEL_MODES
from .clip_figures import plot_pixel_change
from .figures import (
    plot_ablation,
    plot_accuracy_vs_ipc,
    plot_choices,
    plot_convergence,
    plot_cost,
    plot_paired_differences,
    plot_recover,
    plot_sensitivity,
    plot_shake,
)
from .parts import (
    headline_sentences,
    headline_table,
    parts_markdown,
    parts_results,
    parts_table,
    recipe_figure,
)
from .records import BASELINES, pool_records
from .sentences import (
    LADDER_CSV,
    _bullets,
    _image,
    ablation_sentences,
    choice_sentences,
    controls_markdown,
    controls_text,
    convergence_sentences,
    difference_sentences,
    distillation_sentence,
    headline_text,
    label_gain_sentences,
    main_table,
    paired_markdown,
    recover_sentences,
    sensitivity_sentences,
    shake_sentences,
    verdict_sentences,
)
from .studies import (
    _profile_or_none,
    convergence_doublings,
    dm_lr_results,
    recover_results,
    tsgfa_parts_results,
)
from .tables import (
    controls_results,
    controls_table,
    gain_table,
    main_results,
    main_table_long,
    paired_difference_results,
    paired_table,
    shake_results,
    tsgd_verdicts,
)


def _profile_line(profile: str, df: pd.DataFrame, data: str | None = None) -> str:
    """The data line: the dataset, the students, and the distillation settings the records used
    (the profile's own iterations only where no record names its settings)."""
    prof = _profile_or_none(profile)
    distill = distillation_sentence(df)
    if data:
        return f"Data: {data}." + (f" {distill}" if distill else "") + "\n"
    try:
        d = prof.data
        return (
            f"Data: the built-in motion benchmark, {d['num_classes']} classes, clips of "
            f"{d['frames']} frames x {d['height']}x{d['width']} pixels, {d['clips_per_class']} "
            f"train / {d['val_per_class']} val / {d['test_per_class']} test clips per class. "
            f"Students: {prof.student.fit.steps} steps each, {len(prof.seeds)} seeds. "
            + (
                distill
                or f"Distillation: {prof.distill_iterations} iterations (DM: {prof.dm_iterations})."
            )
            + "\n"
        )
    except (AttributeError, KeyError, TypeError):  # an unknown or reshaped profile: no line
        return ""


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


def same_recipe_text(
    df: pd.DataFrame, parts: pd.DataFrame | None, figure: Path | None, base: Path
) -> str:
    """The report's opening: per IPC and label mode, the best set under each student recipe,
    then one short computed sentence per question (`parts.headline_sentences`)."""
    parts = parts_results(df) if parts is None else parts
    table = headline_table(df, parts)
    if table.empty:
        return ""
    lines = "".join(f"- {line}\n" for line in headline_sentences(parts))
    return (
        "Best set under each student recipe (test accuracy %, 95 % interval; gain: paired with "
        "Random under the same recipe, ✓ resolved):\n\n"
        + table.to_markdown(index=False)
        + "\n\n"
        + lines
        + "\n"
        + _image("every set under both recipes", figure, base)
        + "\n"
    )


def plot_recipes(df: pd.DataFrame, path: Path) -> Path | None:
    """`recipe_figure` saved at `path` (None without main-table runs)."""
    if main_results(df).empty:
        return None
    recipe_figure(df, path)
    return path


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
    parts: pd.DataFrame | None = None,
) -> str:
    """The report's README.md: the same-recipe headline table and its sentences, paired
    differences with intervals, verdicts, tables, figures.

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
    text.append(same_recipe_text(df, parts, figures.get("recipes"), base))
    # the ladder's rungs are the built-in benchmark's: no line of theirs on a real dataset
    text.append(headline_text(df, paired, ladder_csv, with_ladder=not data))
    text.append(
        f"Generated by `notebooks/05_report.ipynb` from {n_runs} runs ({len(configs)} "
        f"configurations, distill seeds pooled) on {generated}. "
        f"Regenerate everything with:\n\n```bash\n{command}\n```\n\n"
    )
    text.append(_profile_line(profile, df, data))
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
            "`tsgd_core/grid/stats.py`. A difference is *resolved* only when its interval excludes 0, "
            f"rests on at least {stats.MIN_PAIRS} pairs and has a non-zero width.\n\n"
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
        "Test split; every set trains under the same student recipe, TSGFA (the paper's), "
        "so the verdict is about the sets. The best baseline at each IPC is the one with the "
        "highest mean of "
        f"{baselines} and {METHOD_LABELS[BASELINES[-1]]}, and TSGD is compared with it by their "
        "paired difference: it beats or trails that baseline only where the interval is "
        "resolved.\n\n"
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
    text.append(robustness_section(base))
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


ROBUSTNESS_CSV = "robustness.csv"  # written beside the report by ./run_all.sh --robustness


def robustness_section(base: Path) -> str:
    """The robustness stage's results when `base/robustness.csv` exists: its figure, then per
    axis (teacher architecture, frame rate, frame size, compression) the sentences and table."""
    from ..grid.robustness import AXES, AXIS_TITLES, plot_robustness, robustness_sentences

    csv = base / ROBUSTNESS_CSV
    if not csv.is_file():
        return ""
    table = pd.read_csv(csv)
    figure = base / "figures" / "robustness.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    text = [
        "\n## Robustness\n\nThe start set, TSGD and the best other method under another teacher "
        "network, frame rate, frame size and H.264 compression of the test clips (`robustness.csv`"
        ", from `./run_all.sh --robustness`). Drop = clean minus the setting, in points (positive: "
        "a loss), paired by draw and student seed, with its 95 % interval.\n\n",
        _image("robustness", plot_robustness(table, figure), base),
    ]
    for axis in AXES:
        rows = table[table["axis"] == axis]
        text.append(f"\n### {AXIS_TITLES[axis].capitalize()}\n\n")
        if rows.empty:
            text.append("Not run: `./run_all.sh --robustness --axes " + axis + "`.\n")
            continue
        text.append(_bullets(robustness_sentences(rows)) + "\n")
        # formatted as the sentences format them (not rounded twice: 34.15 reads 34.1 in both)
        shown = rows.drop(columns=["axis"]).astype({"ipc": "Int64", "n": "Int64"})
        text.append(shown.to_markdown(index=False, floatfmt=".1f") + "\n")
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
    parts = parts_results(pooled)
    files["parts_csv"] = write_text(parts_table(parts).to_csv(index=False), out / "parts.csv")
    files["parts_md"] = write_text(parts_markdown(parts), out / "parts.md")
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
        "recipes": plot_recipes(pooled, fig_dir / "recipes.png"),
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
        parts=parts,
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

"""Every sentence, phrase and formatted cell that states a number of the report.

The one place where text about numbers is produced: the README, the headline and the notebooks
take their words from here, so the text says what the numbers say."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..grid import stats
from ..grid.profiles import METHOD_LABELS, per_ipc_text, setting_text
from ..training.evaluate import LABEL_MODES
from .format import (
    UNRESOLVED_MARK,
    difference_span,
    format_ci,
    format_mean_std,
    format_number,
    gap_words,
    headline_resolved,
    resolved_mark,
)
from .parts import tally_sentence
from .records import (
    FULL_DATA,
    PERCENT,
    SENSITIVITY_PARAMS,
    main_records,
    plain_value,
    recipe_label,
)
from .studies import CONVERGED_POINTS, PLATEAU_POINTS, plateau_start
from .tables import (
    TSGD,
    ablation_results,
    accuracy_summary,
    controls_results,
    difference_cell,
    full_by_recipe,
    main_results,
    ordered_rows,
    record_setting,
    sensitivity_differences,
    sensitivity_results,
)


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
    for method in ordered_rows(results["method"]):
        mine = results[results["method"] == method]
        row: dict[str, Any] = {"Method": method}
        for ipc in ipcs:
            for labels in LABEL_MODES:
                hit = mine[(mine["ipc"] == ipc) & (mine["labels"] == labels)]
                row[f"IPC {ipc} {labels}"] = (
                    format_ci(*hit[["mean", "ci_low", "ci_high"]].iloc[0]) if len(hit) else "—"
                )
        at_top = mine[mine["ipc"] == top]
        row[time_col] = format_number(at_top["distill_wall_s"].iloc[0] if len(at_top) else None)
        row[mem_col] = format_number(at_top["distill_peak_mb"].iloc[0] if len(at_top) else None)
        rows.append(row)
    for recipe, results_of in full_by_recipe(full).items():
        row = {"Method": recipe_label(FULL_DATA, recipe)}
        for ipc in ipcs:
            for labels in LABEL_MODES:
                s = accuracy_summary(results_of[labels]) if labels in results_of else None
                row[f"IPC {ipc} {labels}"] = format_ci(s.mean, s.ci_low, s.ci_high) if s else "—"
        row[time_col] = row[mem_col] = "—"
        rows.append(row)
    return pd.DataFrame(rows).set_index("Method")


def verdict_sentences(verdicts: pd.DataFrame) -> list[str]:
    """Claims computed from `tsgd_verdicts`: an overall line that counts resolved wins, unresolved
    IPCs and resolved losses separately, each with its paired interval, then one line per IPC."""
    if verdicts.empty:
        return ["There are no TSGD and baseline runs at a common IPC to compare."]
    labels, n = verdicts["labels"].iloc[0], len(verdicts)
    rows = [v for _, v in verdicts.iterrows()]
    counted = {
        word: [_verdict_where(v) for v in rows if verdict_outcome(v) == word]
        for word in VERDICT_OUTCOMES
    }
    parts = [
        f"{phrase} at {_count(len(counted[word]), n)}"
        + (f" ({'; '.join(counted[word])})" if counted[word] else "")
        for word, phrase in VERDICT_OUTCOMES.items()
    ]
    overall = (
        f"With {labels} labels, against the best baseline of each IPC (paired 95 % interval of "
        f"TSGD minus it): TSGD {parts[0]}; {parts[1]}; {parts[2]}."
    )
    lines = [overall]
    for _, v in verdicts.iterrows():
        tsgd = format_mean_std(v["tsgd_mean"], v["tsgd_std"])
        best = format_mean_std(v["best_mean"], v["best_std"])
        lines.append(
            f"IPC {v['ipc']}: TSGD {tsgd}% vs best baseline {v['best_baseline']} {best}% — "
            f"{_verdict_detail(v)}."
        )
    return lines


# an IPC's outcome -> how the overall line says it
VERDICT_OUTCOMES = {
    "beats": "beats it (resolved)",
    "unresolved": "is not resolved from it",
    "behind": "falls below it (resolved)",
}


def verdict_outcome(v: Mapping[str, Any]) -> str:
    """'beats', 'behind' (the paired difference is resolved above / below 0) or 'unresolved'."""
    if int(v["n"]) and headline_resolved(v):
        return "beats" if v["mean_diff"] > 0 else "behind"
    return "unresolved"


def _count(k: int, n: int) -> str:
    return f"{k} of {n} IPC{'' if n == 1 else 's'}"


def _verdict_where(v: Mapping[str, Any]) -> str:
    """'IPC 10: +6.4 points [+4.1, +8.7]' (or the gap of the means when the cells share no pair)."""
    if int(v["n"]) == 0:
        return f"IPC {v['ipc']}: {PERCENT * v['gap']:+.1f} points in mean, not paired"
    return f"IPC {v['ipc']}: {difference_span(v)}"


def _verdict_detail(v: Mapping[str, Any]) -> str:
    """TSGD against the best baseline: the paired phrase with, when unresolved, the reason."""
    if int(v["n"]) == 0:
        return unpaired_phrase("TSGD", "it", PERCENT * v["gap"])
    text = paired_phrase("TSGD", "it", v)
    if verdict_outcome(v) != "unresolved":
        return text
    reason = stats.unresolved_reason(float(v["ci_low"]), float(v["ci_high"]), int(v["n"]))
    return f"{text} ({reason or 'level: it prints as 0.0 points'})"


def difference_sentence(row: Mapping[str, Any], where: str) -> str:
    """'the filter helps at IPC 5 (soft labels): +2.1 points [+0.4, +3.8] (15 pairs, 3 distill seeds).'"""
    span = difference_span(row)
    draws = int(row["n_distill"])
    count = f"({row['n']} pairs, {draws} distill seed{'' if draws == 1 else 's'})"
    if row["resolved"]:
        up, down = row["verbs"]
        verb = up if row["mean_diff"] > 0 else down
        return f"{row['subject']} {verb} {where}: {span} {count}."
    reason = stats.unresolved_reason(row["ci_low"], row["ci_high"], int(row["n"]))
    return f"not resolved {where}: {row['subject']} {span}, {reason} {count}."


def difference_sentences(paired: pd.DataFrame, question: str) -> list[str]:
    """One computed sentence per IPC and label mode for one question of `paired_difference_results`."""
    lines = []
    for _, row in paired[paired["question"] == question].iterrows():
        where = f"at IPC {row['ipc']} ({row['labels']} labels)"
        lines.append(_capitalised(difference_sentence(row, where)))
    return lines


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


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


def controls_markdown(results: pd.DataFrame) -> pd.DataFrame:
    """`controls.md`: accuracy and both paired differences as 'value [low, high]'."""
    rows = [
        {
            "method": r["method"],
            "control": r["control"],
            "IPC": r["ipc"],
            "labels": r["labels"],
            "accuracy [%], 95 % CI": format_ci(r["mean"], r["ci_low"], r["ci_high"]),
            "− recovered set [points]": difference_cell(r, "vs_main"),
            "− start set [points]": difference_cell(r, "vs_start"),
        }
        for _, r in results.iterrows()
    ]
    return pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame()


def shake_sentences(shake: pd.DataFrame) -> list[str]:
    """How the filter's effect (TSGD w/o TSGFA - SRe2L-style) changes when the camera shakes."""
    lines = []
    tsgd, sre2l = TSGD, METHOD_LABELS["sre2l"]
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
            f"IPC {ipc}: TSGD - SRe2L-style (base recipe) is {gaps[0.0]:+.1f} points without shake and "
            f"{gaps[shaken]:+.1f} with shake {shaken:g} (soft labels, means of unpaired cells, no "
            f"interval): the two gaps differ by {gaps[shaken] - gaps[0.0]:+.1f} points."
        )
    return lines


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


def convergence_sentences(doublings: pd.DataFrame) -> list[str]:
    """'Random (IPC 5, soft labels): doubling the student steps (1x -> 2x) moves ... : under 1 point:
    converged at 1x.' The verdict reads the whole interval (`studies.convergence_verdict`)."""
    lines = []
    for _, r in doublings.iterrows():
        n = int(r["n"])
        lines.append(
            f"{r['method']} (IPC {r['ipc']}, {r['labels']} labels): doubling the student steps "
            f"({r['from_scale']:g}x -> {r['to_scale']:g}x) moves validation accuracy by "
            f"{difference_span(r)} ({n} pair{'' if n == 1 else 's'}): {convergence_words(r)}."
        )
    return lines


def convergence_comparison_sentences(comparisons: pd.DataFrame) -> list[str]:
    """'TSGD − Random (IPC 5, soft labels) by student steps: -2.3 [-5.0, +0.5] at 1x, -0.4
    [-5.2, +4.4] at 2x (15 pairs each): the same verdict at every budget.' (or: 'the verdict
    changes', where one budget resolves what another does not, or the sign flips)"""
    lines = []
    for (method, ipc, labels), sub in comparisons.groupby(["method", "ipc", "labels"], sort=False):
        spans = ", ".join(
            f"{difference_span(r, '')}{' ✓' if r['resolved'] else ''} at {r['scale']:g}x"
            for _, r in sub.iterrows()
        )
        verdicts = {
            (bool(r["resolved"]), bool(r["resolved"]) and r["mean_diff"] > 0)
            for _, r in sub.iterrows()
        }
        same = "the same verdict at every budget" if len(verdicts) == 1 else "the verdict changes"
        n = int(sub["n"].min())
        lines.append(
            f"{method} − {METHOD_LABELS['random']} (IPC {ipc}, {labels} labels) by student steps: "
            f"{spans} ({n} pairs each): {same}."
        )
    return lines


def convergence_words(r: Mapping[str, Any]) -> str:
    """The verdict of one doubling in words, with why it is undecided."""
    scale, limit = f"{r['from_scale']:g}x", f"{CONVERGED_POINTS:g} point"
    if r["verdict"] == "converged":
        return f"under {limit}: converged at {scale}"
    if r["verdict"] == "not converged":
        return f"{limit} or more: not converged at {scale}"
    if int(r["n"]) < stats.MIN_PAIRS or math.isnan(float(r["ci_low"])):
        why = f"fewer than {stats.MIN_PAIRS} pairs"
    else:
        why = f"the interval reaches both within and beyond {limit}"
    return f"{why}: undecided at {scale}"


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


LADDER_CSV = Path("ladder") / "ladder.csv"  # beside the profiles' folders: reports/ladder/


LADDER_COLUMNS = ("size", "frames", "method", "ipc", "labels", "mean", "ci_low", "ci_high", "n")


LADDER_HINT = "the resolution ladder has not been run (`./run_all.sh --ladder`)"


def _span_verdict(diff: Mapping[str, Any]) -> str:
    """'+1.1 points [-0.2, +2.5], 15 pairs, not resolved'."""
    n = int(diff["n"])
    verdict = "resolved" if headline_resolved(diff) else "not resolved"
    return f"{difference_span(diff)}, {n} pair{'' if n == 1 else 's'}, {verdict}"


def paired_phrase(a: str, b: str, diff: Mapping[str, Any]) -> str:
    """'TSGD is 10.9 points below Random: -10.9 points [-13.1, -8.6], 15 pairs, resolved'."""
    return f"{a} is {gap_words(PERCENT * float(diff['mean_diff']))} {b}: {_span_verdict(diff)}"


def unpaired_phrase(a: str, b: str, points: float) -> str:
    """'DM is 1.2 points above Herding in mean, not paired (different draws)'."""
    return f"{a} is {gap_words(points)} {b} in mean, not paired (different draws)"


def accuracy_phrase(name: str, mean: float, low: float, high: float) -> str:
    """'TSGD 31.0 [28.9, 33.1] %' (an accuracy in fractions, its 95 % interval)."""
    return f"{name} {format_ci(mean, low, high)} %"


def _and_joined(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def distillation_sentence(df: pd.DataFrame) -> str | None:
    """'Distillation (main table, as its records ran): DM lr 0.03, 100 iterations at IPC 1 and lr
    0.1, 400 iterations at IPC 5; SRe2L-style and TSGD lr 0.0003, 100 iterations.': the learning
    rate and iterations each optimised method's records used (`lr_used`, `iterations_used`),
    methods with the same settings named together; None when no record carries them."""
    runs = main_records(df)
    by_method: dict[str, dict[int, str]] = {}
    for _, row in runs.sort_values("ipc").iterrows():
        lr, its = record_setting(row, "lr_used", None), record_setting(row, "iterations_used", None)
        if lr is not None or its is not None:
            by_method.setdefault(row["row"], {})[int(row["ipc"])] = setting_text(lr, its)
    if not by_method:
        return None
    grouped: dict[str, list[str]] = {}
    for method in ordered_rows(by_method):
        grouped.setdefault(per_ipc_text(by_method[method]), []).append(method)
    parts = [f"{_and_joined(methods)} {text}" for text, methods in grouped.items()]
    return "Distillation (main table, as its records ran): " + "; ".join(parts) + "."


def _shown(value: Any) -> str:
    """A ladder key as written: 32 rather than 32.0; text as it is."""
    value = plain_value(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def ladder_sentence(path: str | os.PathLike[str] | None) -> str:
    """The resolution ladder (`reports/ladder/ladder.csv`, in percent) in one short sentence:
    how many of its cells resolve TSGD's paired gain over its start set, and the largest."""
    if path is None or not Path(path).is_file():
        return _capitalised(LADDER_HINT) + "."
    ladder = pd.read_csv(path)
    missing = [c for c in LADDER_COLUMNS if c not in ladder.columns]
    if missing:
        return (
            f"The resolution ladder's `{Path(path).name}` lacks the columns {', '.join(missing)}."
        )
    tsgd = ladder[ladder["method"].map(lambda m: METHOD_LABELS.get(str(m), str(m))) == TSGD]
    gains = ladder_gains(tsgd)
    if gains.empty:
        return "The resolution ladder has no paired gain of TSGD over its start set (Random)."
    # the ladder's cells take each method's published recipe (ladder.rung_specs): TSGD's gain
    # there holds TSGFA's own, which the main table's same-recipe rows separate
    return tally_sentence("Ladder, TSGD + TSGFA minus base-recipe Random", gains)


def ladder_gains(tsgd: pd.DataFrame) -> pd.DataFrame:
    """TSGD's rows of the ladder as `tally_sentence` reads them: the paired gain in fractions,
    resolved or not, and the clip size in the `recipe` column ('8x16x16')."""
    if "gain_vs_start" not in tsgd.columns:
        return pd.DataFrame()
    rows = []
    for _, r in tsgd.dropna(subset=["gain_vs_start"]).iterrows():
        diff = {
            "mean_diff": float(r["gain_vs_start"]) / PERCENT,
            "ci_low": float(r["gain_ci_low"]) / PERCENT,
            "ci_high": float(r["gain_ci_high"]) / PERCENT,
            "n": int(r["n"]),
        }
        size = f"{_shown(r['frames'])}x{_shown(r['size'])}x{_shown(r['size'])}"
        rows.append(
            {**diff, "resolved": headline_resolved(diff), "ipc": _shown(r["ipc"]),
             "labels": r["labels"], "recipe": size}
        )  # fmt: skip
    return pd.DataFrame(rows)


# the README's subject of each question of `paired_difference_results`
QUESTION_SUBJECTS = {
    "filter": "The filter (TSGD − SRe2L-style, same recipe)",
    "tsgfa": "TSGFA on TSGD's set",
    "recipe": "TSGFA on each other set",
    "vs_random": "Each set minus Random, same recipe",
}


def question_sentences(paired: pd.DataFrame) -> list[str]:
    """One short sentence per question of `paired`: how many of its cells are resolved up and
    down, and its largest difference (`tally_sentence`)."""
    lines = []
    for question, subject in QUESTION_SUBJECTS.items():
        line = tally_sentence(subject, paired[paired["question"] == question])
        if line:
            lines.append(line)
    return lines


def verdict_tally(verdicts: pd.DataFrame) -> str:
    """'Soft labels: TSGD beats the best baseline at 1 of 3 IPCs, falls below it at 0,
    unresolved at 2.' (the outcomes of `verdict_outcome`)."""
    if verdicts.empty:
        return "There are no TSGD and baseline runs at a common IPC to compare."
    outcomes = [verdict_outcome(v) for _, v in verdicts.iterrows()]
    beats, behind = outcomes.count("beats"), outcomes.count("behind")
    labels = str(verdicts["labels"].iloc[0]).capitalize()
    return (
        f"{labels} labels: TSGD beats the best baseline at {_count(beats, len(outcomes))}, "
        f"falls below it at {behind}, unresolved at {outcomes.count('unresolved')}."
    )


def verdict_markdown(verdicts: pd.DataFrame) -> str:
    """The verdicts as a table: TSGD and the best baseline (mean ± std over student seeds), the
    paired difference with its interval, and ✓ where it is resolved."""
    rows = [
        {
            "IPC": v["ipc"],
            "labels": v["labels"],
            "TSGD": format_mean_std(v["tsgd_mean"], v["tsgd_std"]),
            "best baseline": v["best_baseline"],
            "its accuracy": format_mean_std(v["best_mean"], v["best_std"]),
            "TSGD − it [points]": difference_span(v, "") if int(v["n"]) else "not paired",
            "resolved": resolved_mark(v) if int(v["n"]) else UNRESOLVED_MARK,
        }
        for _, v in verdicts.iterrows()
    ]
    return pd.DataFrame(rows).to_markdown(index=False) + "\n" if rows else ""


def image_link(alt: str, path: Path | None, base: Path) -> str:
    if path is None:
        return ""
    return f"![{alt}]({Path(os.path.relpath(path, base)).as_posix()})\n"


def bullet_list(lines: Sequence[str]) -> str:
    return "".join(f"- {line}\n" for line in lines)


def ablation_sentences(df: pd.DataFrame, labels: str = "soft") -> list[str]:
    """Each variant's accuracy and its paired difference to full TSGD (same draws and students)
    at the ablation IPC, with its interval and whether it is resolved."""
    table = ablation_results(df)
    table = table[table["labels"] == labels].set_index("variant")
    if "TSGD (full)" not in table.index:
        return []
    base = table.loc["TSGD (full)", "mean"]
    lines = []
    for variant, row in table.drop(index="TSGD (full)").iterrows():
        accuracy = f"{variant}: {format_mean_std(row['mean'], row['std'])}%"
        if math.isnan(float(row["n"])):  # no shared (draw, student) pair: the means alone
            gap = gap_words(PERCENT * (row["mean"] - base))
            lines.append(f"{accuracy}, {gap} full TSGD in mean, not paired (different draws)")
        else:
            gap = gap_words(PERCENT * float(row["mean_diff"]))
            lines.append(f"{accuracy}, {gap} full TSGD: {_span_verdict(row)}")
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
        lines.append(  # the highest mean, not a resolved best: the paired lines below say that
            f"{param}: highest mean on validation at {param}={best['value']} "
            f"({format_mean_std(best['mean'], best['std'])}%), spread {spread:.1f} points "
            f"over {param} = {values}"
        )
    diffs = sensitivity_differences(df)
    for _, r in diffs.iterrows():
        where = f"{r['param']} = {r['value']} against the default {r['param']} = {r['reference']}"
        lines.append(_capitalised(paired_phrase(r["variant"] + f" ({where})", "the default", r)))
    return lines


def controls_text(df: pd.DataFrame, figure: Path | None, base: Path) -> str:
    """The README's "Pixels or labels?" section: the controls table and the figure."""
    results = controls_results(df)
    text = ["\n## Pixels or labels?\n\n"]
    if results.empty:
        text.append(
            "The records carry no `controls` group: the pixels-or-labels controls were not run.\n"
        )
    else:
        text.append(
            "Test split. Each control changes one thing against its method's recovered set: the "
            "students train on the recovered pixels with the soft labels the teacher gives the "
            "start pixels, or on the start pixels with the labels of the recovered pixels, or the "
            "set is recovered without augmentation. Paired differences (same distill and student "
            "seed) against the recovered set ('the recovered set itself' where the studies fix "
            "their recovery, else the main cell) and against the start set (Random), in points "
            f"(`controls.csv`); resolved: the interval excludes 0, rests on at least "
            f"{stats.MIN_PAIRS} pairs and has a non-zero width.\n\n"
        )
        text.append(controls_markdown(results).to_markdown() + "\n")
    if figure is not None:
        text.append(
            "\nAccuracy against how far recovery moved the pixels, relative to the start clips' "
            "own frame-to-frame motion (1: the update equals the clip's motion):\n\n"
        )
        text.append(image_link("pixel change", figure, base))
    return "".join(text)

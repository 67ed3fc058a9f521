"""The report on hand-made records: tables, verdict sentences computed from the numbers, figures."""

from __future__ import annotations

import json
import math
import re
import shutil
import statistics
from dataclasses import asdict, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from tsgd_core import report
from tsgd_core.data.artifact import DistilledSet
from tsgd_core.data.clips import ClipSet
from tsgd_core.grid import stats
from tsgd_core.grid.cells import build_grid
from tsgd_core.grid.experiments import record
from tsgd_core.grid.profiles import get_profile
from tsgd_core.grid.spec import RunSpec
from tsgd_core.training.evaluate import EvalResult
from tsgd_core.training.saliency import SaliencyConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CELL = re.compile(r"^\d+\.\d \[\d+\.\d, \d+\.\d\]$")
T_0975_DF2 = 4.302652729911275  # Student-t 97.5 % quantile, 2 degrees of freedom (tables)
T_0975_DF1 = 12.706204736174698  # the same, 1 degree of freedom
DISTILL_SEEDS = (0, 1, 2)
STUDENT_SEEDS = (0, 1, 2, 3, 4)
# accuracy of each method (fraction) before the IPC bonus; TSGD's own is set per test
BASE_ACC = {
    "random": 0.30,
    "herding": 0.35,
    "kcenter": 0.33,
    "salient": 0.36,
    "dm": 0.40,
    "sre2l": 0.50,
}
# per student seed: the same for every method, so it cancels in paired differences
STUDENT_OFFSET = (-0.02, -0.01, 0.0, 0.01, 0.02)


# The main table's rows after Random, in the order of the table
METHODS_AFTER_RANDOM = (
    "Random + TSGFA",
    "Herding",
    "K-Center",
    "Salient windows",
    "DM",
    "SRe2L-style",
    "TSGD",
    "TSGD + TSGFA",
)
# The long main table starts with these columns, in this order
LONG_TABLE_COLUMNS = ["method", "recipe", "ipc", "labels", "mean", "std", "n", "ci_low", "ci_high"]


def distill_offset(spec: RunSpec) -> float:
    """Set-to-set luck of distill seed d: TSGD's varies 3x as much as most others', Salient
    windows' 2x (so its differences to the selections vary with the draw)."""
    return {"tsgd": 0.03, "salient": 0.02}.get(spec.method, 0.01) * (spec.distill_seed - 1)


def fake_record(spec: RunSpec, accs: list[float], **extra) -> dict:
    """A record as experiments.run makes it (one accuracy per student seed), plus `extra` fields."""
    k = 4
    ds = DistilledSet(
        videos=torch.zeros(k * spec.ipc, 3, 2, 4, 4),
        labels=torch.arange(k).repeat_interleave(spec.ipc),
        class_names=[f"c{i}" for i in range(k)],
        method=spec.method,
        ipc=spec.ipc,
        config={"distill_wall_s": 1.5 * spec.ipc, "distill_peak_mb": 10.0 + spec.ipc},
    )
    n = len(accs)
    results = {
        labels: EvalResult(list(accs), [0.1] * n, [1.0] * n, labels, spec.recipe, len(ds.labels))
        for labels in spec.labels
    }
    rec = {**record(spec, ds, results), "student_seeds": list(STUDENT_SEEDS[:n]), **extra}
    if extra:  # fields the RunSpec of this checkout may not know yet: a name of their own
        rec["name"] += "_" + "_".join(f"{k}-{v}" for k, v in sorted(extra.items()))
    return rec


def seed_accs(acc: float, spec: RunSpec) -> list[float]:
    return [acc + distill_offset(spec) + off for off in STUDENT_OFFSET]


def accuracy_for(spec: RunSpec, tsgd_by_ipc: dict[int, float]) -> float:
    """A deterministic accuracy per configuration; TSGD's comes from `tsgd_by_ipc`."""
    if spec.method == "tsgd":
        acc = tsgd_by_ipc[spec.ipc]
        acc -= (
            0.05 * (spec.recipe == "base") + 0.04 * (not spec.tsgfo) + 0.03 * (spec.init == "noise")
        )
        acc -= (
            0.01 * abs(spec.k - 1) + 0.02 * (spec.beta == 1.0) + 0.01 * (spec.modulation == "frame")
        )
    else:
        acc = BASE_ACC[spec.method] + 0.05 * spec.ipc
    return acc - 0.1 * (spec.camera_shake > 0)


def grid_records(
    tsgd_by_ipc: dict[int, float], seeds=DISTILL_SEEDS, every_recipe: bool = False
) -> pd.DataFrame:
    """Records for every spec of the smoke grid x distill seeds, grouped as the grid groups them.

    Under TSGFA only Random and TSGD (the start set and the paper's pipeline) unless
    `every_recipe`; a set's accuracy does not depend on the recipe but for TSGD's."""
    rows = []
    for group, specs in build_grid("smoke").groups().items():
        for base in specs:
            if base.distill_seed != 0:  # the first draw's spec, replicated over `seeds`
                continue
            lean = group == "main" and base.method not in ("random", "tsgd")
            if lean and base.recipe == "tsgfa" and not every_recipe:
                continue
            for d in seeds:
                spec = replace(base, distill_seed=d)
                acc = accuracy_for(spec, tsgd_by_ipc)
                rows.append({**fake_record(spec, seed_accs(acc, spec)), "group": group})
    return pd.DataFrame(rows).drop_duplicates(subset="name").reset_index(drop=True)


FULL = {"soft": (0.9, 0.01), "hard": (0.85, 0.02)}
WINS = {1: 0.70, 2: 0.80}  # above SRe2L-style (0.55, 0.60) at both IPCs
LOSES = {1: 0.45, 2: 0.50}  # below SRe2L-style at both IPCs
MIXED = {1: 0.70, 2: 0.50}
CLOSE = {1: 0.58, 2: 0.63}  # the filter alone: -2 points, inside the interval
HALF_OTHERS = T_0975_DF2 * 0.01 / math.sqrt(3)  # CI half-width of a non-TSGD mean
HALF_TSGD = T_0975_DF2 * 0.03 / math.sqrt(3)
HALF_DIFF = T_0975_DF2 * 0.02 / math.sqrt(3)  # TSGD minus a non-TSGD method, paired


def test_pooling_groups_distill_seeds_of_one_configuration():
    df = grid_records(WINS)
    pooled = report.pool_records(df)
    assert report.pool_records(pooled) is pooled, "pooling a pooled frame changes nothing"
    assert len(df) == 3 * len(pooled)
    with_soft = pooled["labels"].str.contains("soft")  # the dm study: hard labels only
    assert set(pooled["n_distill"]) == {3} and set(pooled.loc[with_soft, "acc_soft_n"]) == {15}
    row = pooled[(pooled["method"] == "dm") & (pooled["ipc"] == 2) & (pooled["group"] == "main")]
    row = row.iloc[0]
    assert row["distill_seeds"] == [0, 1, 2] and len(row["records"]) == 3
    assert row["acc_hard_mean"] == pytest.approx(0.50)
    assert row["acc_hard_ci_low"] == pytest.approx(0.50 - HALF_OTHERS)
    assert row["acc_hard_ci_high"] == pytest.approx(0.50 + HALF_OTHERS)
    assert row["distill_wall_s"] == pytest.approx(3.0)
    # a record that lost one student seed: 14 pairs
    damaged = df.copy()
    i = damaged.index[(damaged["method"] == "dm") & (damaged["ipc"] == 2)][0]
    for col in ("acc_soft_seeds", "acc_hard_seeds", "student_seeds"):
        damaged.at[i, col] = damaged.at[i, col][:4]
    again = report.pool_records(damaged)
    hit = again[(again["method"] == "dm") & (again["ipc"] == 2) & (again["group"] == "main")]
    assert hit["acc_soft_n"].item() == 14 and hit["acc_hard_n"].item() == 14


def test_main_table_rows_columns_and_cells():
    table = report.main_table(grid_records(WINS), FULL)
    assert list(table.index) == ["Random", *METHODS_AFTER_RANDOM, report.FULL_DATA]
    accuracy_cols = ["IPC 1 soft", "IPC 1 hard", "IPC 2 soft", "IPC 2 hard"]
    assert list(table.columns) == [
        *accuracy_cols,
        "distill time [s] (IPC 2)",
        "peak memory [MiB] (IPC 2)",
    ]
    assert all(
        CELL.match(cell) for cell in table.loc[table.index[:-1], accuracy_cols].to_numpy().ravel()
    )
    lo, hi = 100 * (0.70 - HALF_TSGD), 100 * (0.70 + HALF_TSGD)
    assert table.loc["TSGD + TSGFA", "IPC 1 soft"] == f"70.0 [{lo:.1f}, {hi:.1f}]"
    assert table.loc["DM", "IPC 2 hard"] == "50.0 [47.5, 52.5]"
    assert table.loc[report.FULL_DATA, "IPC 2 hard"] == "85.0"  # (mean, std) only: no interval
    assert table.loc["DM", "distill time [s] (IPC 2)"] == "3"
    assert table.loc[report.FULL_DATA, "peak memory [MiB] (IPC 2)"] == "—"


def test_main_table_long_has_the_csv_columns_in_percent():
    full = report.full_data_intervals({"soft": [0.88, 0.90, 0.92], "hard": [0.85, 0.85, 0.85]})
    assert report.full_data_summary({"soft": [0.88, 0.90, 0.92]})["soft"] == pytest.approx(
        (0.9, 0.02)
    )
    table = report.main_table_long(grid_records(WINS), full)
    assert list(table.columns[:9]) == LONG_TABLE_COLUMNS
    assert len(table) == (1 + len(METHODS_AFTER_RANDOM)) * 2 * 2 + 2
    assert list(table["method"][:4]) == ["Random"] * 4
    assert list(table["labels"][:4]) == ["soft", "hard", "soft", "hard"]
    tsgd = table[
        (table["method"] == "TSGD")
        & (table["recipe"] == "tsgfa")
        & (table["ipc"] == 1)
        & (table["labels"] == "soft")
    ].iloc[0]
    assert tsgd["mean"] == pytest.approx(70.0)
    assert tsgd["n"] == 15 and tsgd["n_distill"] == 3
    assert tsgd["ci_low"] == pytest.approx(100 * (0.70 - HALF_TSGD), abs=0.006)
    # std over the 15 pairs: distill offsets -3/0/+3 points plus student offsets
    values = [0.03 * (d - 1) + o for d in DISTILL_SEEDS for o in STUDENT_OFFSET]
    assert tsgd["std"] == pytest.approx(100 * statistics.stdev(values), abs=0.006)
    soft = table[table["method"] == report.FULL_DATA].set_index("labels").loc["soft"]
    half = 4.302652729911275 * 0.02 / math.sqrt(3)
    assert soft["mean"] == pytest.approx(90.0) and soft["n"] == 3
    assert soft["ci_high"] == pytest.approx(100 * (0.90 + half), abs=0.006)
    assert pd.isna(soft["ipc"])


def test_csv_numbers_read_back_and_rounded_once_print_as_the_report_prints(tmp_path):
    from tsgd_core.report.format import format_ci, in_points

    # 12.853 % rounded to 2 decimals (12.85) and then to 1 prints 12.8; the report prints 12.9
    raw = pd.DataFrame({"mean": [0.128533, 0.298466], "ci_low": [0.0315462, -0.0000001]})
    table = raw.assign(**{c: in_points(raw[c]) for c in raw.columns})
    table.to_csv(tmp_path / "t.csv", index=False)
    back = pd.read_csv(tmp_path / "t.csv")
    for i in range(len(raw)):
        printed = format_ci(raw["mean"][i], raw["ci_low"][i], raw["mean"][i])
        assert printed.startswith(f"{back['mean'][i]:.1f} [{back['ci_low'][i]:.1f},")
    assert [f"{v:.1f}" for v in back["mean"]] == ["12.9", "29.8"]
    assert f"{back['ci_low'][0]:+.1f}" == "+3.2"


def test_main_table_excludes_other_groups():
    df = grid_records(WINS, every_recipe=True)
    main = report.main_records(df)
    assert set(main["group"]) == {"main"}
    configs = {
        report.config_id({**asdict(s), "labels": ",".join(s.labels)})
        for s in build_grid("smoke").main
    }
    assert len(main) == len(configs)


def test_format_mean_std_and_ci():
    assert report.format_mean_std(0.4567, 0.0123) == "45.7 ± 1.2"
    assert report.format_mean_std(float("nan"), 0.1) == "—"
    assert report.format_ci(0.4567, 0.41, 0.5) == "45.7 [41.0, 50.0]"
    assert report.format_ci(0.4567, float("nan"), 0.5) == "45.7"


def test_paired_differences_values_and_resolved_flags():
    paired = report.paired_difference_results(grid_records(CLOSE))
    at = paired.set_index(["comparison", "ipc", "labels"])
    # the filter: TSGD w/o TSGFA (0.53) - SRe2L-style (0.55), distill luck differs by 2 points/seed
    row = at.loc[("TSGD − SRe2L-style", 1, "soft")]
    assert row["mean_diff"] == pytest.approx(-0.02)
    assert row["ci_low"] == pytest.approx(-0.02 - HALF_DIFF)
    assert row["ci_high"] == pytest.approx(-0.02 + HALF_DIFF)
    assert row["n"] == 15 and row["n_distill"] == 3 and not row["resolved"]
    # TSGFA: the same set with and without it: a constant +5 points, a zero-width interval,
    # which identical differences give and which is no evidence: not resolved
    row = at.loc[("TSGD + TSGFA − TSGD", 2, "hard")]
    assert row["ci_low"] == pytest.approx(0.05) and row["ci_high"] == pytest.approx(0.05)
    assert not row["resolved"]
    # TSGD against its start set varies with the draw (3 points vs 1 per seed): resolved
    row = at.loc[("TSGD + TSGFA − Random + TSGFA", 1, "soft")]
    assert row["ci_low"] > 0 and row["ci_high"] - row["ci_low"] > 0.01 and row["resolved"]
    # every other method against Random, with the same distill seed
    assert at.loc[("DM − Random", 1, "soft"), "mean_diff"] == pytest.approx(0.10)
    assert at.loc[("DM − Random", 1, "soft"), "ci_low"] == pytest.approx(0.10)
    vs_random = paired[paired["question"] == "vs_random"]
    # each set against the start set under its own recipe
    assert set(vs_random["comparison"]) == {
        f"{m} − Random" for m in METHODS_AFTER_RANDOM if "TSGFA" not in m
    } | {"TSGD + TSGFA − Random + TSGFA"}
    assert set(paired.loc[paired["question"] == "recipe", "comparison"]) == {
        "Random + TSGFA − Random"
    }
    assert len(paired) == 10 * 2 * 2
    lines = report.difference_sentences(paired, "filter")
    assert lines[0].startswith("Not resolved at IPC 1 (soft labels): the filter -2.0 points [")
    tsgfa = report.difference_sentences(paired, "tsgfa")
    assert (
        tsgfa[0]
        == "Not resolved at IPC 1 (soft labels): TSGFA +5.0 points [+5.0, +5.0], identical differences (a zero-width interval is not evidence) (15 pairs, 3 distill seeds)."
    )
    wins = report.paired_difference_results(grid_records(WINS))
    line = report.difference_sentences(wins, "filter")[0]
    assert (
        line
        == "The filter helps at IPC 1 (soft labels): +10.0 points [+5.0, +15.0] (15 pairs, 3 distill seeds)."
    )
    mixed = report.difference_sentences(
        report.paired_difference_results(grid_records(MIXED)), "filter"
    )
    assert mixed[2].startswith("The filter hurts at IPC 2 (soft labels): -15.0 points")


def test_paired_differences_with_one_distill_seed_use_the_student_seeds():
    paired = report.paired_difference_results(grid_records(WINS, seeds=(0,)))
    row = paired.set_index(["comparison", "ipc", "labels"]).loc[("DM − Random", 2, "hard")]
    assert row["n"] == 5 and row["n_distill"] == 1 and row["ci_method"] == "t over student seeds"


@pytest.mark.parametrize(
    "tsgd, overall, per_ipc",
    [
        (WINS, "beats it (resolved) at 2 of 2 IPCs (IPC 1: +", ["above it", "above it"]),
        (LOSES, "falls below it (resolved) at 2 of 2 IPCs (IPC 1: -", ["below it", "below it"]),
        (MIXED, "beats it (resolved) at 1 of 2 IPCs (IPC 1: +", ["above it", "below it"]),
    ],
)
def test_verdict_follows_the_numbers(tsgd, overall, per_ipc):
    df = grid_records(tsgd, every_recipe=True)
    verdicts = report.tsgd_verdicts(df, "soft")  # under the paper's recipe, TSGFA, for every set
    assert list(verdicts["best_baseline"]) == ["SRe2L-style + TSGFA"] * 2
    expected = [tsgd[ipc] > BASE_ACC["sre2l"] + 0.05 * ipc for ipc in (1, 2)]
    assert list(verdicts["beats"]) == expected, "each gap here is resolved (15 pairs)"
    assert list(verdicts["behind"]) == [not e for e in expected]
    lines = report.verdict_sentences(verdicts)
    assert overall in lines[0]
    for line, word in zip(lines[1:], per_ipc, strict=True):
        assert word in line and line.endswith(", 15 pairs, resolved.")
    text = report.readme_text(
        df, profile="smoke", command="./run_all.sh", figures={}, base=".", full=FULL
    )
    beats = sum(expected)
    assert (
        f"Soft labels: TSGD beats the best baseline at {beats} of 2 IPCs, falls below it at "
        f"{2 - beats}, unresolved at 0." in text
    )
    table = report.verdict_markdown(verdicts)
    assert table in text and table.count(" ✓ ") == 2  # each verdict resolved
    if not all(expected):
        assert "| -10.0 [" in table  # TSGD 50 % against SRe2L-style 60 % at IPC 2


def test_verdict_calls_a_gap_inside_the_seed_spread_not_resolved():
    # 1 point above SRe2L-style, pair std > 2 points
    df = grid_records({1: 0.56, 2: 0.61}, every_recipe=True)
    verdicts = report.tsgd_verdicts(df)
    assert (verdicts["gap"] > 0).all() and not verdicts["beats"].any()
    lines = report.verdict_sentences(verdicts)
    assert "beats it (resolved) at 0 of 2 IPCs; is not resolved from it at 2 of 2 IPCs" in lines[0]
    assert lines[1].endswith("not resolved (the interval includes 0).")


def test_ablation_sensitivity_shake_and_cost_tables():
    df = grid_records(WINS)
    ablation = report.ablation_results(df)
    variants = set(ablation["variant"])
    assert {
        "TSGD (full)",
        "TSGD -TSGFO",
        "TSGD -TSGFO -TSGFA, noise init",
        "SRe2L-style",
    } <= variants
    assert {"TSGD -TSGFA, per-frame modulation", "TSGD -TSGFA, + temporal low-pass"} <= variants
    assert set(ablation["ipc"]) == {2}
    assert not ablation.duplicated(subset=["variant", "labels"]).any(), "distill seeds pooled"
    soft = ablation[ablation["labels"] == "soft"].set_index("variant")
    assert soft.loc["SRe2L-style", "mean_diff"] == pytest.approx(-0.20)
    assert soft.loc["SRe2L-style", "resolved"] and soft.loc["SRe2L-style", "n"] == 15
    assert math.isnan(soft.loc["TSGD (full)", "mean_diff"]), "no difference to itself"
    no_variants = report.ablation_results(df[df["method"] != "tsgd"])
    assert no_variants.empty and list(no_variants.columns) == list(ablation.columns)
    lines = {line.split(":")[0]: line for line in report.ablation_sentences(df)}
    assert lines["SRe2L-style"] == (
        "SRe2L-style: 60.0 ± 1.7%, 20.0 points below full TSGD: -20.0 points [-25.0, -15.0], "
        "15 pairs, resolved"
    )
    # every pair differs by exactly 4 points: a zero-width interval is never called resolved
    assert lines["TSGD -TSGFO"].endswith(
        "4.0 points below full TSGD: -4.0 points [-4.0, -4.0], 15 pairs, not resolved"
    )
    sens = report.sensitivity_results(df)
    assert list(sens.loc[sens["param"] == "k", "value"]) == [0, 1, 2]
    assert list(sens.loc[sens["param"] == "beta", "value"]) == [0.0, 0.2, 1.0]
    assert set(sens.loc[sens["param"] == "alpha", "value"]) == {"gaussian", "uniform"}
    best_k = sens[sens["param"] == "k"].set_index("value")["mean"].idxmax()
    assert best_k == 1
    shake = report.shake_results(df)
    assert set(shake["camera_shake"]) == {0.0, 2.0} and set(shake["method"]) == {
        "SRe2L-style",
        "TSGD",
    }
    assert len(shake) == 2 * 2 * 2
    assert len(report.shake_sentences(shake)) == 2
    cost = report.cost_results(df)
    assert "TSGD + TSGFA" not in set(cost["method"]), "one bar a set"
    assert cost.loc[(cost["method"] == "DM") & (cost["ipc"] == 2), "distill_wall_s"].item() == 3.0


# ----------------------------------------------------------------------------- validation studies


def study_records(group: str, base: RunSpec, variants: list[dict], acc_of) -> list[dict]:
    """Records of one validation study: every variant x distill seed, accuracy from acc_of(v)."""
    rows = []
    for extra in variants:
        for d in DISTILL_SEEDS:
            spec = replace(base, distill_seed=d, **{k: v for k, v in extra.items() if k in RUNSPEC})
            fields = {k: v for k, v in extra.items() if k not in RUNSPEC}
            accs = seed_accs(acc_of(extra), spec)
            rows.append({**fake_record(spec, accs, **fields), "group": group})
    return rows


RUNSPEC = set(RunSpec.__dataclass_fields__)
VAL_HARD = RunSpec(method="sre2l", ipc=2, profile="smoke", eval_split="val", labels=("hard",))


def recover_records() -> list[dict]:
    curve = {100: 0.20, 200: 0.40, 400: 0.495, 800: 0.50}
    variants = [
        {"method": m, "init": init, "iterations": it, "distill_final_loss": 1.0 / it}
        for m in ("sre2l", "tsgd")
        for init in ("real", "noise")
        for it in curve
    ]

    def acc(v):
        return (
            curve[v["iterations"]] - 0.1 * (v["init"] == "noise") + 0.02 * (v["method"] == "tsgd")
        )

    return study_records("recover", replace(VAL_HARD, tsgfa=False), variants, acc)


def convergence_records() -> list[dict]:
    levels = {
        "random": {0.5: 0.30, 1.0: 0.35, 2.0: 0.355},
        "tsgd": {0.5: 0.40, 1.0: 0.48, 2.0: 0.50},
    }
    # the grid's studies train under the base recipe
    variants = [
        {"method": m, "student_scale": s, "student_augment": "base"}
        for m in levels
        for s in (0.5, 1.0, 2.0)
    ]
    base = replace(VAL_HARD, labels=("soft", "hard"))
    return study_records(
        "convergence", base, variants, lambda v: levels[v["method"]][v["student_scale"]]
    )


def test_the_plateau_starts_where_the_curve_stays_near_its_best():
    assert report.plateau_start([0, 1, 2, 3], [10, 20, 19.5, 20], 1) == 1
    assert report.plateau_start([0, 1, 2, 3], [20, 15, 19.5, 20], 1) == 2  # dips, comes back
    assert report.plateau_start([0, 1, 2], [40, 17, 18], 1) is None  # falls from its best
    assert report.plateau_start([0, 1], [5, 5], 1) == 0


def test_recover_results_and_plateau_sentences():
    df = pd.DataFrame(recover_records())
    table = report.recover_results(df)
    assert len(table) == 2 * 2 * 4 and set(table["labels"]) == {"hard"}
    sre2l = table[(table["method"] == "SRe2L-style") & (table["init"] == "real")]
    assert list(sre2l["iterations"]) == [100, 200, 400, 800]
    assert sre2l["mean"].tolist() == pytest.approx([0.20, 0.40, 0.495, 0.50])
    assert sre2l["final_loss"].tolist() == pytest.approx([0.01, 0.005, 0.0025, 0.00125])
    lines = report.recover_sentences(table)
    assert len(lines) == 4
    line = next(x for x in lines if x.startswith("SRe2L-style, real init"))
    assert "20.0% at 100 iterations, 50.0% at 800" in line
    assert "within 1 point of its best (50.0%) from 400 iterations on" in line
    assert "moves it by +0.5 points" in line and "final recover loss 0.01 -> 0.00125" in line


def test_a_first_bn_budget_is_its_own_point_not_a_step_of_the_curve():
    stronger = study_records(
        "recover",
        replace(VAL_HARD, tsgfa=False),
        [{"method": "sre2l", "init": "real", "iterations": 400, "first_bn": 10.0}],
        lambda v: 0.10,
    )
    table = report.recover_results(pd.DataFrame(recover_records() + stronger))
    curve = table[(table["method"] == "SRe2L-style") & (table["init"] == "real")]
    assert curve["mean"].tolist() == pytest.approx([0.20, 0.40, 0.495, 0.50])
    point = table[table["init"] == "real, first BN x10"]
    assert len(point) == 1 and point["mean"].item() == pytest.approx(0.10)


def test_recover_iterations_default_to_the_profile():
    rec = fake_record(VAL_HARD, [0.5], iterations=None)
    assert report.iterations_of(rec) == float(get_profile("smoke").distill_iterations)


def test_convergence_doublings_flag_what_moves_less_than_a_point():
    df = pd.DataFrame(convergence_records())
    assert report.convergence_scales(df) == [0.5, 1.0, 2.0]
    doublings = report.convergence_doublings(df).set_index(["method", "labels", "from_scale"])
    random = doublings.loc[("Random", "soft", 1.0)]
    assert random["mean_diff"] == pytest.approx(0.005) and random["converged"]
    assert random["ci_low"] == pytest.approx(0.005) and random["n"] == 15
    assert not doublings.loc[("Random", "soft", 0.5), "converged"]
    assert not doublings.loc[("TSGD", "hard", 1.0), "converged"]  # +2 points
    lines = report.convergence_sentences(report.convergence_doublings(df))
    assert (
        "Random (IPC 2, soft labels): doubling the student steps (1x -> 2x) moves validation "
        "accuracy by +0.5 points [+0.5, +0.5] (15 pairs): under 1 point: converged at 1x." in lines
    )
    full = {1.0: {"soft": (0.9, 0.01)}, 2.0: {"soft": (0.92, 0.01)}}
    table = report.convergence_results(df, full)
    assert set(table.loc[table["method"] == report.FULL_DATA, "student_scale"]) == {1.0, 2.0}


def test_tsgfa_parts_and_dm_lr_choices():
    parts = [["crop", "mix", "temporal"], ["crop", "mix"], ["temporal"], []]
    acc = {3: 0.50, 2: 0.53, 1: 0.45, 0: 0.44}
    base = replace(VAL_HARD, method="tsgd")
    df = pd.DataFrame(
        study_records(
            "tsgfa", base, [{"tsgfa_parts": p} for p in parts], lambda v: acc[len(v["tsgfa_parts"])]
        )
        + study_records(
            "dm",
            replace(VAL_HARD, method="dm"),
            [{"dm_lr": lr} for lr in (0.01, 0.1, 1.0)],
            lambda v: {0.01: 0.40, 0.1: 0.42, 1.0: 0.20}[v["dm_lr"]],
        )
    )
    table = report.tsgfa_parts_results(df).set_index("choice")
    assert list(table.index) == ["crop+mix+temporal", "crop+mix", "temporal", "base only"]
    assert set(table["reference"]) == {"crop+mix+temporal"}
    assert table.loc["crop+mix", "mean_diff"] == pytest.approx(0.03)
    # the same sets with and without a part: identical differences, a zero-width interval
    assert table.loc["crop+mix", "diff_high"] == pytest.approx(table.loc["crop+mix", "diff_low"])
    assert not table.loc["crop+mix", "resolved"] and not table.loc["crop+mix+temporal", "resolved"]
    dm = report.dm_lr_results(df).set_index("choice")
    assert set(dm["reference"]) == {"lr 0.1"}, "the best on validation"
    assert dm.loc["lr 1", "mean_diff"] == pytest.approx(-0.22)
    lines = report.choice_sentences(report.dm_lr_results(df), "DM pixel learning rate")
    assert lines[0].startswith("DM pixel learning rate, hard labels: reference lr 0.1 42.0 [")
    assert lines[-1] == (
        "DM pixel learning rate, hard labels: lr 1 20.0 [17.5, 22.5]%, -22.0 points vs lr 0.1 "
        "[-22.0, -22.0] (not resolved)"  # identical differences: a zero-width interval
    )


def test_event_alignment_and_figure(tmp_path):
    rng = torch.Generator().manual_seed(0)
    n, t = 12, 8
    starts = torch.randint(0, 4, (n,), generator=rng)
    frames = torch.arange(t)
    mask = ((frames >= starts[:, None]) & (frames < starts[:, None] + 3)).float()
    weights = 0.2 + 0.5 * mask + 0.05 * torch.rand(n, t, generator=rng)
    numbers = report.event_alignment(weights, mask)
    assert numbers["corr"] > 0.95 and numbers["shuffled_corr"] < 0.6
    assert numbers["w_inside"] > 0.7 > 0.3 > numbers["w_outside"] and numbers["n_clips"] == n
    flat = report.event_alignment(torch.full((n, t), 0.3), mask)
    assert math.isnan(flat["corr"]), "constant weights: no correlation to speak of"
    with pytest.raises(ValueError, match="clips, frames"):
        report.event_alignment(weights, mask[:, :4])
    assert _is_png(report.plot_event_weights(weights, mask, tmp_path / "wt.png"))


def test_percent_axis_keeps_the_decimals_the_range_needs():
    fig, ax = plt.subplots()
    report.percent_axis(ax)
    ax.set_ylim(0.02, 0.03)
    ax.set_yticks([0.02, 0.025, 0.03])
    fig.canvas.draw()
    # 2.5 % used to print as "2" (a formatter with no decimals)
    assert [float(tick.get_text()) for tick in ax.get_yticklabels()] == [2.0, 2.5, 3.0]
    plt.close(fig)


def test_write_report_writes_tables_figures_and_readme(tmp_path):
    grid = grid_records(LOSES, every_recipe=True)
    grid = grid[~grid["group"].isin(["recover", "convergence"])]  # made by hand below
    df = pd.concat(
        [grid, pd.DataFrame(recover_records() + convergence_records())],
        ignore_index=True,
    ).drop_duplicates(subset="name")  # as collect_records keeps a run of two groups once
    weights, mask = torch.rand(4, 8), (torch.arange(8) < 4).float().repeat(4, 1)
    event_png = report.plot_event_weights(weights, mask, tmp_path / "figures" / "wt.png")
    files = report.write_report(
        df,
        tmp_path,
        profile="smoke",
        command="./run_all.sh --profile smoke",
        full={"base": FULL, "tsgfa": FULL},
        full_scales={1.0: FULL, 2.0: FULL},
        event=report.event_alignment(weights, mask),
        extra_figures={"event_weights": event_png},
    )
    for key in (
        "accuracy_vs_ipc",
        "paired_differences",
        "recover",
        "convergence",
        "ablation",
        "sensitivity",
        "shake",
        "cost",
        "tsgfa_parts",  # the grid's own validation studies
        "dm_lr",
    ):
        data = files[key].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, key
    md = (tmp_path / "main_table.md").read_text()
    assert "| TSGD " in md and report.FULL_DATA in md
    csv = pd.read_csv(tmp_path / "main_table.csv")
    assert list(csv.columns) == [*report.MAIN_TABLE_COLUMNS, *report.GAIN_COLUMNS]
    tsgfa = csv["recipe"] == "tsgfa"
    hit = csv[(csv["method"] == "TSGD") & tsgfa & (csv["ipc"] == 2) & (csv["labels"] == "soft")]
    assert hit["mean"].item() == pytest.approx(50.0) and hit["n"].item() == 15
    # TSGD + TSGFA 50 % against its start set Random + TSGFA 40 % (same draws), the full data's
    # hard 85 % under the same recipe
    assert hit["gain_vs_start"].item() == pytest.approx(10.0)
    assert hit["hard_label_recovery"].item() == pytest.approx(35.0)
    gains = (tmp_path / "gain_vs_start.md").read_text()
    assert "| TSGD " in gains and "+10.0 [+5.0, +15.0]" in gains
    paired = pd.read_csv(tmp_path / "paired_differences.csv")
    assert set(paired["resolved"]) <= {"yes", "no"}
    row = paired[(paired["comparison"] == "TSGD + TSGFA − TSGD") & (paired["ipc"] == 1)].iloc[0]
    # identical differences in every pair: a zero-width interval, not evidence
    assert row["mean_diff"] == pytest.approx(5.0) and row["resolved"] == "no"
    assert "TSGD − SRe2L-style" in (tmp_path / "paired_differences.md").read_text()
    assert len(pd.read_csv(tmp_path / "all_runs.csv")) == len(df)
    readme = (tmp_path / "README.md").read_text()
    # the report opens with the best set under each recipe, then the gains over the start set
    assert readme.startswith("# TSGD experiments: profile `smoke`\n\nBest set under each student")
    assert (
        readme.index("| best set ")
        < readme.index("Gain over the start set")
        < readme.index("Generated by")
    )
    assert "./run_all.sh --profile smoke" in readme and "`smoke`" in readme
    assert f"from {len(df)} runs ({len(df) // 3} configurations" in readme
    assert "Soft labels: TSGD beats the best baseline at 0 of 2 IPCs, falls below it at 2" in readme
    # TSGD + TSGFA - TSGD: +5 points on every pair, a zero-width interval: not resolved
    assert (
        "TSGFA on TSGD's set: resolved up in 0/4 cells, down in 0; largest +5.0 [+5.0, +5.0]"
        in readme
    )
    assert "within 1 point of its best" in readme and "doubling the student steps" in readme
    assert "Mean correlation of w_t with the true event window over 4 clips" in readme
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    # the eleven figures and, first, every set under both recipes
    assert len(links) == 12 and all((tmp_path / link).is_file() for link in links)
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files left behind"
    # the index lists the profile folders of a reports root: one of the test's own (never the
    # shared parent of every test's folder, which pytest-xdist workers write beside)
    root = tmp_path / "reports_root"
    (root / "smoke").mkdir(parents=True)
    shutil.copy(tmp_path / "README.md", root / "smoke" / "README.md")
    index = report.write_reports_index(root)
    assert index == root / "README.md"
    assert "[`smoke`](smoke/README.md)" in index.read_text()
    assert "Committed" not in index.read_text()  # none of the committed folders is here
    (root / "smoke" / "README.md").unlink()
    assert "No report yet" in report.write_reports_index(root).read_text()


def test_a_record_from_before_a_field_existed_pools_with_its_configuration(tmp_path):
    # the first draw rerun today records precision; the other draws, run before it existed, do not
    spec = RunSpec(method="herding", ipc=5, profile="smoke")
    for draw in range(3):
        rec = fake_record(replace(spec, distill_seed=draw), [0.3, 0.3, 0.3])
        if draw:
            rec.pop("precision")
        folder = tmp_path / "main" / replace(spec, distill_seed=draw).name()
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps(rec))
    df = report.collect_records(tmp_path)
    assert list(df["precision"]) == ["fp32"] * 3
    pooled = report.pool_records(df)
    assert len(pooled) == 1 and pooled.iloc[0]["n_distill"] == 3


def test_collect_records_reads_groups_and_drops_duplicates(tmp_path):
    spec = RunSpec(method="tsgd", ipc=1, profile="smoke")
    rec = fake_record(spec, [0.48, 0.5, 0.52])
    for group in ("main", "ablation"):  # the same run in two groups is counted once
        folder = tmp_path / group / spec.name()
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps(rec))
    other = replace(spec, method="random")
    folder = tmp_path / "main" / other.name()
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(fake_record(other, [0.3, 0.3, 0.3])))
    df = report.collect_records(tmp_path)
    assert len(df) == 2 and set(df["method"]) == {"tsgd", "random"}
    assert list(df.sort_values("method")["group"]) == ["main", "main"], "main wins duplicates"
    assert report.spec_from_record(df[df["method"] == "tsgd"].iloc[0]) == spec
    with pytest.raises(FileNotFoundError, match="no record.json"):
        report.collect_records(_empty(tmp_path))
    with pytest.raises(FileNotFoundError, match="no runs folder"):
        report.collect_records(tmp_path / "missing")


def test_records_of_one_label_mode_still_have_both_modes_columns(tmp_path):
    """The dm group's runs use hard labels alone: the soft columns are there, empty (NaN), so
    05_report's overview and the report never ask for a column that is missing."""
    for lr in (0.1, 1.0):
        spec = RunSpec(method="dm", ipc=1, profile="smoke", labels=("hard",), dm_lr=lr)
        folder = tmp_path / "runs" / "dm" / spec.name()
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps(fake_record(spec, [0.3, 0.4, 0.5])))
    df = report.collect_records(tmp_path / "runs")
    assert len(df) == 2 and "acc_soft_seeds" not in json.loads(
        next((tmp_path / "runs").rglob("record.json")).read_text()
    )
    overview = df[["group", "name", "acc_soft_mean", "acc_hard_mean", "distill_wall_s"]]
    assert overview["acc_soft_mean"].isna().all()
    assert overview["acc_hard_mean"].tolist() == pytest.approx([0.4, 0.4])
    files = report.write_report(df, tmp_path / "report", profile="smoke", command="./run_all.sh")
    assert "No main-table runs" in files["readme"].read_text()


def _empty(tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_spec_from_record_round_trips_every_grid_spec():
    for specs in build_grid("smoke").groups().values():
        for spec in specs:
            assert report.spec_from_record(fake_record(spec, [0.5])) == spec


def test_confusion_matrix_counts():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    preds = torch.tensor([0, 1, 1, 2, 0, 2])
    cm = report.confusion_matrix(labels, preds, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    with pytest.raises(ValueError, match="differ in shape"):
        report.confusion_matrix(labels, preds[:3], 3)


def test_frame_strip_image_layout(tiny_clips):
    videos, labels = tiny_clips.videos[:3], torch.tensor([1, 0, 1])
    image, rows = report.frame_strip_image(videos, labels, 2, scale=2, gap=1)
    _, _, t, h, w = videos.shape
    assert rows == [0, 1, 1]
    assert image.shape == (3 * (2 * h + 1) + 1, t * (2 * w + 2), 3)
    # row 0 holds clip 1 (class 0): its frame 3 sits in the 4th cell
    cell = image[1 : 1 + 2 * h, 3 * (2 * w + 2) + 1 : 3 * (2 * w + 2) + 1 + 2 * w]
    expected = (videos[1, :, 3].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
    assert torch.equal(torch.from_numpy(cell[::2, ::2].copy()), expected)


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data.startswith(PNG_MAGIC) and len(data) > 2000


def test_notebook_figures_are_written(tmp_path, tiny_clips):
    clips = ClipSet(tiny_clips.videos[:4], tiny_clips.labels[:4], tiny_clips.class_names)
    assert _is_png(
        report.plot_frame_strips(
            clips.videos, clips.labels, clips.class_names, tmp_path / "strips.png", title="clips"
        )
    )
    assert _is_png(
        report.plot_saliency(clips.videos[:2], tmp_path / "sal.png", cfg=SaliencyConfig(k=2))
    )
    history = {
        "loss": [3.0, 2.0, 1.5],
        "loss_ce": [2.5, 1.8, 1.2],
        "loss_bn": [0.5, 0.2, 0.3],
        "teacher_acc": [0.2, 0.5, 0.9],
    }
    assert _is_png(report.plot_loss_history(history, tmp_path / "loss.png", title="loss"))
    assert report.plot_loss_history({}, tmp_path / "none.png", title="none") is None
    assert not (tmp_path / "none.png").exists()
    fit = {
        "step": [0, 1, 2, 3],
        "loss": [2.0, 1.5, 1.0, 0.8],
        "val_acc": [0.4, 0.7],
        "val_step": [2, 4],
    }
    assert _is_png(report.plot_training_curves(fit, tmp_path / "fit.png", title="teacher"))
    cm = report.confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
    assert _is_png(report.plot_confusion(cm, ["a", "b"], tmp_path / "cm.png", title="cm"))
    recs = [
        fake_record(RunSpec(method=m, ipc=1, profile="smoke"), [0.48, 0.5, 0.52])
        for m in ("tsgd", "random")
    ]
    assert _is_png(
        report.plot_accuracy_bars(recs, tmp_path / "bars.png", full=FULL, chance=0.25, title="t")
    )
    assert _is_png(report.plot_bars({"frame 0": 0.3, "3D": 0.8}, tmp_path / "b.png", title="t"))


def test_first_per_class_picks_the_first_clips_of_each_class():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 0])
    assert report.first_per_class(labels, 1).tolist() == [1, 2, 0]
    assert report.first_per_class(labels, 2).tolist() == [1, 3, 2, 5, 0, 4]
    with pytest.raises(ValueError, match="per_class"):
        report.first_per_class(labels, 0)


def test_report_without_main_runs_still_writes_a_readme(tmp_path):
    df = grid_records(WINS)
    df = df[df["group"] == "ablation"]
    assert report.main_table(df).empty
    files = report.write_report(df, tmp_path, profile="smoke", command="./run_all.sh")
    assert files["accuracy_vs_ipc"] is None and files["ablation"] is not None
    text = files["readme"].read_text()
    assert "No main-table runs" in text and "There are no TSGD and baseline runs" in text


def test_unset_optional_switches_read_from_a_table_count_as_defaults():
    # pandas stores a record's None (first_bn, iterations, dm_lr unset) as NaN
    row = {**asdict(RunSpec()), "first_bn": float("nan"), "iterations": float("nan")}
    assert report.is_default_variant(row)
    assert not report.is_default_variant({**row, "first_bn": 10.0})


def test_teacher_warning_only_near_chance():
    from tsgd_core.report import teacher_warning

    assert teacher_warning(0.91, 4, "tutorial") is None
    text = teacher_warning(0.08, 10, "quick")
    assert "8.0 %" in text and "10.0 %" in text and "`quick`" in text
    assert teacher_warning(0.44, 4, "x") is not None and teacher_warning(0.45, 4, "x") is None


def test_later_draws_with_soft_labels_alone_pool_into_one_row_per_method():
    """Every draw with soft labels, the first with hard labels too (as the grid once ran)."""
    main = [
        RunSpec(method=m, ipc=ipc, profile="smoke", distill_seed=d, labels=labels)
        for m in ("random", "sre2l")
        for ipc in (1, 2)
        for d, labels in ((0, ("soft", "hard")), (1, ("soft",)))
    ]
    rows = [{**fake_record(s, seed_accs(accuracy_for(s, WINS), s)), "group": "main"} for s in main]
    table = report.main_table_long(pd.DataFrame(rows))
    one = table[(table["method"] == "SRe2L-style") & (table["ipc"] == 1)].set_index("labels")
    assert list(one.index) == ["soft", "hard"]  # one row per label mode, not one per draw
    assert one.loc["soft", "n_distill"] == 2 and one.loc["soft", "n"] == 10
    assert one.loc["hard", "n_distill"] == 1 and one.loc["hard", "n"] == 5
    # the first draw's hard-label mean, the mean of both draws' soft-label means
    first = [s for s in main if s.method == "sre2l" and s.ipc == 1]
    means = [statistics.fmean(seed_accs(accuracy_for(s, WINS), s)) for s in first]
    assert one.loc["hard", "mean"] == pytest.approx(100 * means[0], abs=0.01)
    assert one.loc["soft", "mean"] == pytest.approx(100 * statistics.fmean(means), abs=0.01)
    paired = report.paired_difference_results(pd.DataFrame(rows)).set_index(
        ["comparison", "ipc", "labels"]
    )
    assert paired.loc[("SRe2L-style − Random", 1, "soft"), "n_distill"] == 2
    assert paired.loc[("SRe2L-style − Random", 1, "hard"), "n_distill"] == 1
    hard = report.difference_sentences(paired.reset_index(), "vs_random")
    assert any(line.endswith("(5 pairs, 1 distill seed).") for line in hard)


def test_the_dm_study_names_each_embedding_net_and_lr():
    variants = [
        {"dm_lr": lr, "dm_net": net} for net in ("literature", "student") for lr in (0.1, 1)
    ]
    accs = {("literature", 0.1): 0.42, ("literature", 1): 0.20, ("student", 0.1): 0.30}
    df = pd.DataFrame(
        study_records(
            "dm",
            replace(VAL_HARD, method="dm"),
            variants,
            lambda v: accs.get((v["dm_net"], v["dm_lr"]), 0.10),
        )
    )
    dm = report.dm_lr_results(df).set_index("choice")
    assert set(dm.index) == {
        "literature net, lr 0.1",
        "literature net, lr 1",
        "student net, lr 0.1",
        "student net, lr 1",
    }
    assert dm.loc["student net, lr 0.1", "mean_diff"] == pytest.approx(-0.12)
    with pytest.raises(ValueError, match="same name"):
        report.choice_results(report.pool_records(df), lambda row: "one name")


def test_the_recover_curve_starts_at_the_start_set(tmp_path):
    real = {
        s.iterations
        for s in build_grid("default").recover
        if s.init == "real" and s.first_bn is None
    }
    assert real == {0, 100, 200, 400, 800}, "0 iterations: the start set, the curve's origin"
    curve = {0: 0.34, 100: 0.13, 400: 0.14}
    df = pd.DataFrame(
        study_records(
            "recover",
            replace(VAL_HARD, tsgfa=False),
            [{"method": "sre2l", "init": "real", "iterations": it} for it in curve],
            lambda v: curve[v["iterations"]],
        )
    )
    line = report.recover_sentences(report.recover_results(df))[0]
    assert line.startswith(
        "SRe2L-style, real init (hard labels): 34.0% at 0 iterations, 14.0% at 400"
    )
    # the best is the start set and the curve never comes back: no plateau "from 0 on"
    assert "its best is 34.0% at 0 iterations and it ends 20.0 points below that" in line
    assert "from 0 iterations on" not in line
    assert report.plot_recover(df, tmp_path / "recover.png").is_file()


# ----------------------------------------------------------------------------- DD-Ranking columns,
# headline, controls, ladder, pixel change


def draw_records(
    method: str,
    accs_by_draw: dict[int, list[float]],
    *,
    hard: dict[int, list[float]] | None = None,
    ipc: int = 1,
    group: str = "main",
    **fields,
) -> list[dict]:
    """One record per draw with these soft-label accuracies (hard: `hard`, else the same)."""
    rows = []
    for d, accs in accs_by_draw.items():
        spec = RunSpec(method=method, ipc=ipc, profile="smoke", distill_seed=d, **fields)
        rec = {**fake_record(spec, accs), "group": group}
        if hard is not None:
            rec["acc_hard_seeds"] = list(hard[d])
            rec["acc_hard_mean"] = statistics.fmean(hard[d])
        rows.append(rec)
    return rows


# Random draws 0 and 1; TSGD draws 0, 1 and 2 (draw 2 has no start set: never paired)
RANDOM_SOFT = {0: [0.30, 0.32, 0.31], 1: [0.40, 0.36, 0.41]}
TSGD_SOFT = {0: [0.35, 0.33, 0.40], 1: [0.38, 0.30, 0.45], 2: [0.90, 0.90, 0.90]}
TSGD_HARD = {0: [0.20, 0.22, 0.21], 1: [0.25, 0.27, 0.29], 2: [0.24, 0.24, 0.24]}
FULL_HARD = [0.80, 0.82, 0.84]


def small_records() -> pd.DataFrame:
    return pd.DataFrame(
        draw_records("random", RANDOM_SOFT)
        # TSGD's set under the base recipe, paired with Random under the same recipe
        + draw_records("tsgd", TSGD_SOFT, hard=TSGD_HARD, student_augment="base")
        + draw_records("herding", {0: [0.33, 0.33, 0.33]})
    )


def test_gain_vs_start_is_the_paired_difference_to_random():
    df = small_records()
    full = report.full_data_intervals({"soft": [0.9, 0.9, 0.9], "hard": FULL_HARD})
    table = report.main_table_long(df, full)
    assert list(table.columns) == [*report.MAIN_TABLE_COLUMNS, *report.GAIN_COLUMNS]
    rows = table.set_index(["method", "labels"])
    tsgd = rows.loc[("TSGD", "soft")]
    # by hand: per draw, the mean of TSGD - Random over student seeds; then their mean
    per_draw = [
        statistics.fmean(t - r for t, r in zip(TSGD_SOFT[d], RANDOM_SOFT[d], strict=True))
        for d in (0, 1)
    ]
    assert tsgd["gain_vs_start"] == pytest.approx(100 * statistics.fmean(per_draw), abs=0.006)
    # draw 0: (+5 + 1 + 9) / 3 = +5 points; draw 1: (-2 - 6 + 4) / 3 = -1.33; mean +1.83
    assert tsgd["gain_vs_start"] == pytest.approx(1.83, abs=0.006)
    pairs = stats.paired_differences(
        draw_records("tsgd", TSGD_SOFT), draw_records("random", RANDOM_SOFT), "soft"
    )
    assert len(pairs) == 6  # draw 2 has no start set
    summary = stats.difference_summary(pairs)
    assert tsgd["gain_ci_low"] == pytest.approx(100 * summary["ci_low"], abs=0.006)
    assert tsgd["gain_ci_high"] == pytest.approx(100 * summary["ci_high"], abs=0.006)
    half = T_0975_DF1 * statistics.stdev(per_draw) / math.sqrt(2)  # t over the 2 draw means
    assert tsgd["gain_ci_high"] - tsgd["gain_vs_start"] == pytest.approx(100 * half, abs=0.01)
    assert tsgd["gain_ci_low"] < 0 < tsgd["gain_ci_high"], "a difference is never clipped"
    # one draw of Herding: paired on draw 0 alone
    herding = rows.loc[("Herding", "soft")]
    assert herding["gain_vs_start"] == pytest.approx(100 * (0.33 - 0.31), abs=0.006)
    # full-data hard accuracy minus the method's hard accuracy, on its soft and its hard row
    tsgd_hard = statistics.fmean(statistics.fmean(TSGD_HARD[d]) for d in (0, 1, 2))
    recovery = 100 * (statistics.fmean(FULL_HARD) - tsgd_hard)
    assert tsgd["hard_label_recovery"] == pytest.approx(recovery, abs=0.006)
    assert rows.loc[("TSGD", "hard"), "hard_label_recovery"] == tsgd["hard_label_recovery"]
    assert rows.loc[("TSGD", "hard"), "gain_vs_start"] == pytest.approx(
        100
        * statistics.fmean(
            statistics.fmean(h - r for h, r in zip(TSGD_HARD[d], RANDOM_SOFT[d], strict=True))
            for d in (0, 1)
        ),
        abs=0.006,
    )
    for labels in ("soft", "hard"):
        start = rows.loc[("Random", labels)]
        assert start[["gain_vs_start", "gain_ci_low", "gain_ci_high"]].isna().all()
        assert start["hard_label_recovery"] == pytest.approx(
            100 * (statistics.fmean(FULL_HARD) - 0.35), abs=0.006
        )
        assert rows.loc[(report.FULL_DATA, labels), report.GAIN_COLUMNS].isna().all()
    # without full-data results there is nothing to recover towards
    assert report.main_table_long(df)["hard_label_recovery"].isna().all()


def test_accuracy_intervals_are_clipped_to_0_and_100():
    low = {0: [0.0, 0.0, 0.3]}  # mean 10 %, t-interval from about -33 % (raw)
    high = {0: [1.0, 1.0, 0.7]}
    df = pd.DataFrame(draw_records("random", low) + draw_records("herding", high))
    raw = stats.mean_ci(low[0])
    assert raw[1] < 0 and stats.mean_ci(high[0])[2] > 1, "the case needs raw bounds outside"
    table = report.main_table_long(df).set_index(["method", "labels"])
    assert table.loc[("Random", "soft"), "ci_low"] == 0.0
    assert table.loc[("Random", "soft"), "ci_high"] == pytest.approx(100 * raw[2], abs=0.006)
    assert table.loc[("Herding", "soft"), "ci_high"] == 100.0
    # a difference (points) is not an accuracy: Herding - Random = +100, +100, +40
    gain = table.loc[("Herding", "soft")]
    assert gain["gain_vs_start"] == pytest.approx(80.0, abs=0.006)
    assert gain["gain_ci_high"] > 100.0
    cells = report.main_table(df)
    assert cells.loc["Random", "IPC 1 soft"] == f"10.0 [0.0, {100 * raw[2]:.1f}]"
    full = report.full_data_intervals({"soft": [0.0, 0.0, 0.3]})
    assert full["soft"].ci_low == 0.0
    assert report.accuracy_summary(report.Summary(0.5, 0.1, 3, -0.2, 1.3))[3:] == (0.0, 1.0)
    assert stats.clip_accuracy_interval(-5.0, 104.0, top=100.0) == (0.0, 100.0)
    assert all(math.isnan(v) for v in stats.clip_accuracy_interval(math.nan, math.nan))
    # a difference is not an accuracy: its interval stays below 0
    pairs = stats.paired_differences(
        draw_records("random", low), draw_records("herding", {0: [0.5, 0.1, 0.0]}), "soft"
    )
    assert stats.difference_summary(pairs)["ci_low"] < -0.5


def diff(mean: float, low: float, high: float, n: int = 15) -> dict:
    """A paired difference in fractions, as stats.difference_summary names it."""
    return {"mean_diff": mean, "ci_low": low, "ci_high": high, "n": n}


@pytest.mark.parametrize(
    "difference, words, verdict",
    [
        (diff(0.031, 0.012, 0.050), "3.1 points above", "resolved"),
        (diff(-0.109, -0.131, -0.086), "10.9 points below", "resolved"),
        (diff(0.020, -0.010, 0.050), "2.0 points above", "not resolved"),
        (diff(-0.020, -0.050, 0.010), "2.0 points below", "not resolved"),
        (diff(0.031, 0.012, 0.050, n=4), "3.1 points above", "not resolved"),  # too few pairs
        (diff(0.0004, 0.0001, 0.0007), "level with", "not resolved"),  # prints as +0.0
        (diff(0.02, math.nan, math.nan, n=1), "2.0 points above", "not resolved"),
    ],
)
def test_headline_templates_say_what_the_numbers_say(difference, words, verdict):
    line = report.paired_phrase("TSGD", "its start set", difference)
    assert line.startswith(f"TSGD is {words} its start set: ")
    assert line.endswith(f", {verdict}")
    assert report.headline_resolved(difference) == (verdict == "resolved")
    points = 100 * difference["mean_diff"]
    assert f"{points:+.1f} points" in line
    assert report.resolved_mark(difference) == ("✓" if verdict == "resolved" else "–")


def test_direction_follows_the_printed_sign():
    assert report.direction(1.23) == "above" and report.direction(-1.23) == "below"
    assert report.direction(0.04) == "level with" and report.direction(-0.049) == "level with"
    assert report.direction(0.06) == "above" and report.direction(-0.06) == "below"
    assert report.gap_words(-2.0) == "2.0 points below" and report.gap_words(0.0) == "level with"
    assert (
        report.unpaired_phrase("DM", "Herding", 1.2)
        == "DM is 1.2 points above Herding in mean, not paired (different draws)"
    )


def write_ladder(path, rows, gains=None) -> None:
    """ladder.csv as tsgd_core/grid/ladder.py writes it (percent); `gains`: its gain columns, or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["size", "frames", "method", "ipc", "labels", "mean", "ci_low", "ci_high", "n"]
    table = pd.DataFrame(rows, columns=columns)
    if gains is not None:
        table[["gain_vs_start", "gain_ci_low", "gain_ci_high"]] = gains
    table.to_csv(path, index=False)


def test_the_ladder_sentence_with_and_without_a_ladder(tmp_path):
    path = tmp_path / "ladder" / "ladder.csv"
    assert report.ladder_sentence(path) == (
        "The resolution ladder has not been run (`./run_all.sh --ladder`)."
    )
    rows = [
        (32, 8, "TSGD", 1, "soft", 18.0, 15.0, 21.0, 5),
        (32, 8, "Random", 1, "soft", 24.5, 20.0, 29.0, 5),
        (32, 8, "SRe2L-style", 1, "soft", 50.0, 40.0, 60.0, 5),
        (16, 8, "TSGD", 1, "soft", 30.0, 25.0, 35.0, 5),
        (16, 8, "Random", 1, "soft", 20.0, -3.0, 43.0, 5),
    ]
    write_ladder(path, rows)  # an older ladder: no paired gains
    assert report.ladder_sentence(path) == (
        "The resolution ladder has no paired gain of TSGD over its start set (Random)."
    )
    # the ladder's own paired gains (percent); SRe2L-style's is not TSGD's
    gains = [
        (-6.5, -9.0, -4.0),
        (math.nan,) * 3,
        (25.5, 10.0, 41.0),
        (10.0, 1.0, 19.0),
        (math.nan,) * 3,
    ]
    write_ladder(path, rows, gains)
    line = report.ladder_sentence(path)
    assert line == (
        "Ladder, TSGD + TSGFA minus base-recipe Random: resolved up in 1/2 cells, down in 1; "
        "largest +10.0 [+1.0, +19.0] at IPC 1 soft 8x16x16."
    )
    assert len(line.split()) <= 25
    write_ladder(path, rows, [(-1.0, -3.0, 1.0), *gains[1:]])  # an interval that holds 0
    assert "resolved up in 1/2 cells, down in 0;" in report.ladder_sentence(path)
    # readme_text finds it beside the profile's folder
    text = report.readme_text(
        grid_records(WINS), profile="smoke", command="x", figures={}, base=tmp_path / "smoke"
    )
    assert f"- {report.ladder_sentence(path)}\n" in text and "has not been run" not in text
    write_ladder(path, [r for r in rows if r[2] != "TSGD"], [(math.nan,) * 3] * 3)
    assert "no paired gain of TSGD" in report.ladder_sentence(path)


def control_records() -> pd.DataFrame:
    """SRe2L-style's main cell and Random at IPC 2 over draws 0-2, and two controls."""
    base = {d: [0.50 + 0.01 * d + o for o in (-0.01, 0.0, 0.01)] for d in (0, 1, 2)}
    start = {d: [a - 0.20 for a in accs] for d, accs in base.items()}
    swapped = {d: [a - 0.06 - 0.01 * d for a in accs] for d, accs in base.items()}  # -7 on average
    no_aug = {d: [a + 0.001 for a in accs] for d, accs in base.items()}
    controls = dict(group="controls", labels=("soft",), ipc=2)
    return pd.DataFrame(
        draw_records("sre2l", base, ipc=2)
        + draw_records("random", start, ipc=2)
        + draw_records("sre2l", swapped, train_pixels="set", label_pixels="start", **controls)
        + draw_records("sre2l", no_aug, recover_augment=False, **controls)
    )


def test_a_control_pairs_with_the_recovered_set_of_its_own_group_where_there_is_one():
    """Where the studies fix their recovery, the main cell recovers otherwise: each control is
    compared with the group's own run that changes nothing, which is listed, with no difference
    with itself, and still paired with the start set."""
    df = control_records()
    base = {d: [0.40 + 0.01 * d + o for o in (-0.01, 0.0, 0.01)] for d in (0, 1, 2)}  # 10 below
    own = pd.DataFrame(draw_records("sre2l", base, group="controls", labels=("soft",), ipc=2))
    results = report.controls_results(pd.concat([df, own], ignore_index=True))
    assert list(results["control"]) == [
        report.RECOVERED_SET,
        "recovered pixels, labels of the start pixels",
        "recovery without augmentation",
    ]
    itself, swapped = results.iloc[0], results.iloc[1]
    assert math.isnan(itself["vs_main"]) and itself["vs_start"] == pytest.approx(0.10)
    # per draw the swap is 0.04 - 0.01 d above the own set (the main cell: 0.06 + 0.01 d below)
    assert swapped["vs_main"] == pytest.approx(0.03) and swapped["vs_main_n"] == 9


def test_the_controls_table_pairs_each_control_with_its_main_cell_and_start_set(tmp_path):
    df = control_records()
    results = report.controls_results(df)
    assert list(results["control"]) == [
        "recovered pixels, labels of the start pixels",
        "recovery without augmentation",
    ]
    swapped = results.iloc[0]
    assert (
        swapped["method"] == "SRe2L-style" and swapped["ipc"] == 2 and swapped["labels"] == "soft"
    )
    assert swapped["mean"] == pytest.approx(0.51 - 0.07)
    assert swapped["vs_main"] == pytest.approx(-0.07) and swapped["vs_main_n"] == 9
    half = T_0975_DF2 * 0.01 / math.sqrt(3)
    assert swapped["vs_main_low"] == pytest.approx(-0.07 - half)
    assert swapped["vs_start"] == pytest.approx(0.13) and swapped["vs_start_n"] == 9
    table = report.controls_table(results)
    assert table.loc[0, "vs_main"] == pytest.approx(-7.0) and table.loc[0, "mean"] == pytest.approx(
        44.0
    )
    md = report.controls_markdown(results)
    assert md.iloc[0]["accuracy [%], 95 % CI"].startswith("44.0 [")
    assert md.iloc[0]["− recovered set [points]"].startswith("-7.0 [")
    assert md.iloc[0]["− recovered set [points]"].endswith("(9 pairs)")
    assert md.iloc[0]["− start set [points]"].startswith("+13.0 [")
    assert md.iloc[1]["− recovered set [points]"] == "+0.1 [+0.1, +0.1] (9 pairs)"
    # the ablation table leaves the controls out
    assert "SRe2L-style" not in set(report.ablation_results(df)["variant"])
    files = report.write_report(df, tmp_path, profile="smoke", command="x")
    readme = files["readme"].read_text()
    assert "## Pixels or labels?" in readme and md.to_markdown() in readme
    assert pd.read_csv(files["controls_csv"])["vs_start"].tolist() == pytest.approx([13.0, 20.1])
    assert "recovery without augmentation" in files["controls_md"].read_text()
    # without the controls group: one line
    main_only = df[df["group"] == "main"]
    text = report.readme_text(main_only, profile="smoke", command="x", figures={}, base=tmp_path)
    section = text[text.index("## Pixels or labels?") :].split("\n## ")[0]
    assert section.strip().splitlines()[-1] == (
        "The records carry no `controls` group: the pixels-or-labels controls were not run."
    )


def test_salient_windows_is_a_selection_method_of_its_own():
    order = report.METHOD_ORDER
    # after K-Center under both recipes
    assert order.index("Salient windows") == order.index("K-Center + TSGFA") + 1
    # a set keeps its colour under both recipes, and no other set has Salient windows'
    assert report.METHOD_COLORS["Salient windows"] not in [
        c for m, c in report.METHOD_COLORS.items() if not m.startswith("Salient windows")
    ]
    rec = fake_record(RunSpec(method="salient", ipc=1, profile="smoke", window="random"), [0.4])
    assert report.variant_label(rec) == "Salient windows" == report.row_label(rec)
    assert "salient" in report.BASELINES  # TSGD's verdicts count it among the baselines


def test_the_pixel_change_figure(tmp_path):
    rows = []
    for method, ratio, acc in (("sre2l", 3.0, 0.3), ("tsgd", 0.5, 0.5)):
        for d in (0, 1):
            spec = RunSpec(method=method, ipc=2, profile="smoke", distill_seed=d)
            rows.append(
                {
                    **fake_record(spec, [acc, acc + 0.01], change_over_motion=ratio * (1 + d)),
                    "group": "main",
                }
            )
    spec = RunSpec(method="random", ipc=2, profile="smoke")
    rows.append({**fake_record(spec, [0.2, 0.2]), "group": "main"})  # a selection: no ratio
    val = RunSpec(method="tsgd", ipc=2, profile="smoke", eval_split="val")
    rows.append({**fake_record(val, [0.9], change_over_motion=1.0), "group": "tsgfa"})
    df = pd.DataFrame(rows)
    points = report.pixel_change_records(df)
    assert len(points) == 4 and set(points["method"]) == {"SRe2L-style", "TSGD + TSGFA"}
    assert sorted(points["change_over_motion"]) == [0.5, 1.0, 3.0, 6.0]
    assert _is_png(report.plot_pixel_change(df, tmp_path / "pc.png"))
    assert _is_png(report.plot_pixel_change(report.pool_records(df), tmp_path / "pooled.png"))
    assert (
        report.plot_pixel_change(df.drop(columns="change_over_motion"), tmp_path / "no.png") is None
    )
    assert not (tmp_path / "no.png").exists()


def test_the_ladder_line_reads_what_the_ladder_writes(tmp_path):
    from tsgd_core.grid.ladder import ladder_table

    recs = draw_records("random", {0: [0.30, 0.32], 1: [0.34, 0.36]}) + draw_records(
        "tsgd", {0: [0.40, 0.42], 1: [0.40, 0.46]}
    )
    path = tmp_path / "ladder.csv"
    ladder_table(recs).to_csv(path, index=False)
    data = get_profile("smoke").data
    size, frames = data["height"], data["frames"]
    line = report.ladder_sentence(path)
    # TSGD 42.0 % against Random 33.0 %: +9 points, paired over both draws
    # 2 draws x 2 students: 4 pairs, fewer than stats.MIN_PAIRS, so not resolved
    assert "resolved up in 0/1 cells, down in 0; largest +9.0 [" in line
    assert line.endswith(f"at IPC 1 soft {frames}x{size}x{size}.")


def test_a_report_on_real_data_has_no_ladder_line_and_names_its_classes():
    """The ladder's rungs are the benchmark's: a real dataset's headline says nothing of them."""
    from tsgd_core.data import datasets

    df = grid_records({1: 0.70, 2: 0.80})
    data = "ucf101 split 1 (8x16x16) from /d: 5 classes (A, B, C, D, PlayingDhol), 65 train"
    text = report.readme_text(df, profile="quick", command="x", figures={}, base="r/q", data=data)
    assert "resolution ladder" not in text.lower() and "PlayingDhol" in text
    assert datasets.class_list(["A", "B", "C"]) == "A, B, C"
    assert datasets.class_list([f"c{i}" for i in range(14)], most=2) == "c0, c1 and 12 more"


def test_the_paired_differences_figure_is_the_same_whatever_numpy_drew_before(tmp_path):
    # seaborn jitters the dots with numpy's global generator: seeded inside, restored after
    paired = report.paired_difference_results(grid_records(WINS))
    np.random.seed(1)
    first = report.plot_paired_differences(paired, tmp_path / "a.png")
    after = np.random.random()
    np.random.seed(2)
    second = report.plot_paired_differences(paired, tmp_path / "b.png")
    assert first.read_bytes() == second.read_bytes()
    np.random.seed(1)
    assert np.random.random() == after  # the caller's stream goes on where it was


def test_convergence_compares_each_set_with_random_at_every_budget():
    # TSGD - Random: 0.10 at 0.5x, 0.13 at 1x, 0.145 at 2x on average over 3 draws
    table = report.convergence_comparisons(pd.DataFrame(convergence_records()))
    assert list(table.columns) == report.studies.COMPARISON_COLUMNS
    assert set(table["method"]) == {"TSGD"} and list(table["labels"][:3]) == ["soft"] * 3
    soft = table[table["labels"] == "soft"]
    assert soft["scale"].tolist() == [0.5, 1.0, 2.0]
    assert soft["mean_diff"].tolist() == pytest.approx([0.10, 0.13, 0.145])
    assert (table["n"] == 15).all() and table["resolved"].all()
    lines = report.convergence_comparison_sentences(table)
    assert lines[0] == (
        "TSGD − Random (IPC 2, soft labels) by student steps: +10.0 [+5.0, +15.0] ✓ at 0.5x, "
        "+13.0 [+8.0, +18.0] ✓ at 1x, +14.5 [+9.5, +19.5] ✓ at 2x (15 pairs each): "
        "the same verdict at every budget."
    )


def test_a_comparison_resolved_at_one_budget_only_is_said_to_change():
    rows = [
        {"method": "TSGD", "ipc": 5, "labels": "hard", "scale": 1.0, "mean_diff": 0.012,
         "ci_low": 0.001, "ci_high": 0.024, "n": 15, "n_distill": 5, "resolved": True},
        {"method": "TSGD", "ipc": 5, "labels": "hard", "scale": 2.0, "mean_diff": -0.003,
         "ci_low": -0.022, "ci_high": 0.015, "n": 15, "n_distill": 5, "resolved": False},
    ]  # fmt: skip
    (line,) = report.convergence_comparison_sentences(pd.DataFrame(rows))
    assert line.endswith("+1.2 [+0.1, +2.4] ✓ at 1x, -0.3 [-2.2, +1.5] at 2x (15 pairs each): "
                         "the verdict changes.")  # fmt: skip

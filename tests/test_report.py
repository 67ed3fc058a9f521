"""The report on hand-made records: tables, verdict sentences computed from the numbers, figures."""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import asdict, replace

import pandas as pd
import pytest
import torch

from tsgd_core import report
from tsgd_core.artifact import DistilledSet
from tsgd_core.data import ClipSet
from tsgd_core.evaluate import EvalResult
from tsgd_core.experiments import RunSpec, build_grid, record
from tsgd_core.saliency import SaliencyConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CELL = re.compile(r"^\d+\.\d \[\d+\.\d, \d+\.\d\]$")
T_0975_DF2 = 4.302652729911275  # Student-t 97.5 % quantile, 2 degrees of freedom (tables)
DISTILL_SEEDS = (0, 1, 2)
STUDENT_SEEDS = (0, 1, 2, 3, 4)
# accuracy of each method (fraction) before the IPC bonus; TSGD's own is set per test
BASE_ACC = {"random": 0.30, "herding": 0.35, "kcenter": 0.33, "dm": 0.40, "sre2l": 0.50}
# per student seed: the same for every method, so it cancels in paired differences
STUDENT_OFFSET = (-0.02, -0.01, 0.0, 0.01, 0.02)


def distill_offset(spec: RunSpec) -> float:
    """Set-to-set luck of distill seed d: TSGD's varies 3x as much as the others'."""
    return (0.03 if spec.method == "tsgd" else 0.01) * (spec.distill_seed - 1)


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
        labels: EvalResult(
            list(accs), [0.1] * n, [1.0] * n, labels, spec.eval_augment, len(ds.labels)
        )
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
        acc -= 0.05 * (not spec.tsgfa) + 0.04 * (not spec.tsgfo) + 0.03 * (spec.init == "noise")
        acc -= (
            0.01 * abs(spec.k - 1) + 0.02 * (spec.beta == 1.0) + 0.01 * (spec.modulation == "frame")
        )
    else:
        acc = BASE_ACC[spec.method] + 0.05 * spec.ipc
    return acc - 0.1 * (spec.camera_shake > 0)


def grid_records(tsgd_by_ipc: dict[int, float], seeds=DISTILL_SEEDS) -> pd.DataFrame:
    """Records for every spec of the smoke grid x distill seeds, grouped as the grid groups them."""
    rows = []
    for group, specs in build_grid("smoke").groups().items():
        for base in specs:
            if base.distill_seed != 0:  # the first draw's spec, replicated over `seeds`
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
    assert list(table.index) == [
        "Random",
        "Herding",
        "K-Center",
        "DM",
        "SRe2L-style",
        "TSGD w/o TSGFA",
        "TSGD",
        report.FULL_DATA,
    ]
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
    assert table.loc["TSGD", "IPC 1 soft"] == f"70.0 [{lo:.1f}, {hi:.1f}]"
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
    assert list(table.columns[:8]) == [
        "method",
        "ipc",
        "labels",
        "mean",
        "std",
        "n",
        "ci_low",
        "ci_high",
    ]
    assert len(table) == 7 * 2 * 2 + 2
    assert list(table["method"][:4]) == ["Random"] * 4
    assert list(table["labels"][:4]) == ["soft", "hard", "soft", "hard"]
    tsgd = table[
        (table["method"] == "TSGD") & (table["ipc"] == 1) & (table["labels"] == "soft")
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


def test_main_table_excludes_other_groups():
    df = grid_records(WINS)
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
    row = at.loc[("TSGD w/o TSGFA − SRe2L-style", 1, "soft")]
    assert row["mean_diff"] == pytest.approx(-0.02)
    assert row["ci_low"] == pytest.approx(-0.02 - HALF_DIFF)
    assert row["ci_high"] == pytest.approx(-0.02 + HALF_DIFF)
    assert row["n"] == 15 and row["n_distill"] == 3 and not row["resolved"]
    # TSGFA: the same set with and without it: a constant +5 points, a zero-width interval
    row = at.loc[("TSGD − TSGD w/o TSGFA", 2, "hard")]
    assert row["ci_low"] == pytest.approx(0.05) and row["ci_high"] == pytest.approx(0.05)
    assert row["resolved"]
    # every other method against Random, with the same distill seed
    assert at.loc[("DM − Random", 1, "soft"), "mean_diff"] == pytest.approx(0.10)
    assert at.loc[("DM − Random", 1, "soft"), "ci_low"] == pytest.approx(0.10)
    vs_random = paired[paired["question"] == "vs_random"]
    assert set(vs_random["comparison"]) == {
        f"{m} − Random"
        for m in ("Herding", "K-Center", "DM", "SRe2L-style", "TSGD w/o TSGFA", "TSGD")
    }
    assert len(paired) == 9 * 2 * 2
    lines = report.difference_sentences(paired, "filter")
    assert lines[0].startswith("Not resolved at IPC 1 (soft labels): the filter -2.0 points [")
    tsgfa = report.difference_sentences(paired, "tsgfa")
    assert (
        tsgfa[0]
        == "TSGFA helps at IPC 1 (soft labels): +5.0 points [+5.0, +5.0] (15 pairs, 3 distill seeds)."
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
        (WINS, "beats the best baseline at every IPC tested (2 of 2)", ["ahead", "ahead"]),
        (LOSES, "does not beat the best baseline at any IPC tested (0 of 2)", ["behind", "behind"]),
        (MIXED, "beats the best baseline at 1 of 2 IPCs (IPC 1)", ["ahead", "behind"]),
    ],
)
def test_verdict_follows_the_numbers(tsgd, overall, per_ipc):
    df = grid_records(tsgd)
    verdicts = report.tsgd_verdicts(df, "soft")
    assert list(verdicts["best_baseline"]) == ["SRe2L-style", "SRe2L-style"]
    expected = [tsgd[ipc] > BASE_ACC["sre2l"] + 0.05 * ipc for ipc in (1, 2)]
    assert list(verdicts["beats"]) == expected
    lines = report.verdict_sentences(verdicts)
    assert overall in lines[0]
    for line, word in zip(lines[1:], per_ipc, strict=True):
        assert word in line
    text = report.readme_text(
        df, profile="smoke", command="./run_all.sh", figures={}, base=".", full=FULL
    )
    assert overall in text
    if not all(expected):
        assert "TSGD does not beat it" in text


def test_verdict_calls_a_gap_inside_the_seed_spread_not_clear():
    df = grid_records({1: 0.56, 2: 0.61})  # 1 point above SRe2L-style, pair std > 2 points
    verdicts = report.tsgd_verdicts(df)
    assert verdicts["beats"].all() and not verdicts["clear"].any()
    assert "not a clear win" in report.verdict_sentences(verdicts)[1]


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
    sens = report.sensitivity_results(df)
    assert list(sens.loc[sens["param"] == "k", "value"]) == [0, 1, 2]
    assert list(sens.loc[sens["param"] == "beta", "value"]) == [0.0, 0.2, 1.0]
    assert set(sens.loc[sens["param"] == "alpha", "value"]) == {"gaussian", "uniform"}
    best_k = sens[sens["param"] == "k"].set_index("value")["mean"].idxmax()
    assert best_k == 1
    shake = report.shake_results(df)
    assert set(shake["camera_shake"]) == {0.0, 2.0} and set(shake["method"]) == {
        "SRe2L-style",
        "TSGD w/o TSGFA",
    }
    assert len(shake) == 2 * 2 * 2
    assert len(report.shake_sentences(shake)) == 2
    cost = report.cost_results(df)
    assert "TSGD w/o TSGFA" not in set(cost["method"])
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
    variants = [{"method": m, "student_scale": s} for m in levels for s in (0.5, 1.0, 2.0)]
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
    assert report.iterations_of(rec) == float(report.get_profile("smoke").distill_iterations)


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
        "accuracy by +0.5 points [+0.5, +0.5]: under 1 point: converged at 1x." in lines
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
    assert table.loc["crop+mix", "resolved"] and not table.loc["crop+mix+temporal", "resolved"]
    dm = report.dm_lr_results(df).set_index("choice")
    assert set(dm["reference"]) == {"lr 0.1"}, "the best on validation"
    assert dm.loc["lr 1", "mean_diff"] == pytest.approx(-0.22)
    lines = report.choice_sentences(report.dm_lr_results(df), "DM pixel learning rate")
    assert lines[0].startswith("DM pixel learning rate, hard labels: reference lr 0.1 42.0 [")
    assert lines[-1] == (
        "DM pixel learning rate, hard labels: lr 1 20.0 [17.5, 22.5]%, -22.0 points vs lr 0.1 "
        "[-22.0, -22.0] (resolved)"
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
    fig, ax = report.plt.subplots()
    report._percent_axis(ax)
    ax.set_ylim(0.02, 0.03)
    ax.set_yticks([0.02, 0.025, 0.03])
    fig.canvas.draw()
    # 2.5 % used to print as "2" (a formatter with no decimals)
    assert [float(tick.get_text()) for tick in ax.get_yticklabels()] == [2.0, 2.5, 3.0]
    report.plt.close(fig)


def test_write_report_writes_tables_figures_and_readme(tmp_path):
    grid = grid_records(LOSES)
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
        full=FULL,
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
    hit = csv[(csv["method"] == "TSGD") & (csv["ipc"] == 2) & (csv["labels"] == "soft")]
    assert hit["mean"].item() == pytest.approx(50.0) and hit["n"].item() == 15
    paired = pd.read_csv(tmp_path / "paired_differences.csv")
    assert set(paired["resolved"]) <= {"yes", "no"}
    row = paired[(paired["comparison"] == "TSGD − TSGD w/o TSGFA") & (paired["ipc"] == 1)].iloc[0]
    assert row["mean_diff"] == pytest.approx(5.0) and row["resolved"] == "yes"
    assert "TSGD − SRe2L-style" in (tmp_path / "paired_differences.md").read_text()
    assert len(pd.read_csv(tmp_path / "all_runs.csv")) == len(df)
    readme = (tmp_path / "README.md").read_text()
    assert "./run_all.sh --profile smoke" in readme and "`smoke`" in readme
    assert f"from {len(df)} runs ({len(df) // 3} configurations" in readme
    assert "does not beat the best baseline at any IPC" in readme
    assert "TSGFA helps at IPC 1 (soft labels): +5.0 points [+5.0, +5.0]" in readme
    assert "within 1 point of its best" in readme and "doubling the student steps" in readme
    assert "Mean correlation of w_t with the true event window over 4 clips" in readme
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(links) == 11 and all((tmp_path / link).is_file() for link in links)
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files left behind"
    index = report.write_reports_index(tmp_path.parent)
    assert f"[`{tmp_path.name}`]({tmp_path.name}/README.md)" in index.read_text()


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
    """The grid's main group: every draw with soft labels, the first with hard labels too."""
    main = build_grid("smoke").main
    assert {s.labels for s in main if s.distill_seed != 0 and s.method == "sre2l"} == {("soft",)}
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

"""Recovery settings as spec fields, the tuning stage's plan, table and choices, and the
pixels-or-labels control of the evaluation."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest
import torch
from test_distill import make_teacher, random_clips

from tsgd_core.grid import experiments, profiles, tuning
from tsgd_core.grid.spec import RunSpec
from tsgd_core.methods.distill import TSGDConfig, distill_tsgd
from tsgd_core.training.evaluate import StudentConfig, build_relabel_plan, evaluate_set
from tsgd_core.training.teacher import ModelConfig
from tsgd_core.training.train import FitConfig

TABLE = {
    "smoke": {
        "sre2l": {"1": {"lr": 0.001, "iterations": 3}, "5": {"lr": 0.01, "iterations": 2}},
        "dm": {"1": {"dm_lr": 0.7, "iterations": 5}},
        "salient": {"1": {"window": "random", "pack": "none"}},
    }
}


@pytest.fixture
def tuned(monkeypatch):
    monkeypatch.setattr(profiles, "tuned_table", lambda: TABLE)


# ----------------------------------------------------------------------------- spec fields


def test_a_spec_takes_what_tuning_chose_unless_it_sets_its_own(tuned):
    spec = RunSpec(method="sre2l", profile="smoke", ipc=1)
    assert (spec.recover_lr, spec.recover_iterations) == (0.001, 3)
    assert RunSpec(method="sre2l", profile="smoke", ipc=1, lr=0.2).recover_lr == 0.2
    # an untuned IPC takes the nearest tuned one below it
    assert RunSpec(method="sre2l", profile="smoke", ipc=7).recover_lr == 0.01
    assert RunSpec(method="sre2l", profile="smoke", ipc=4).recover_lr == 0.001
    assert RunSpec(method="dm", profile="smoke").dm_pixel_lr == 0.7
    salient = RunSpec(method="salient", profile="smoke")
    assert (salient.salient_window, salient.salient_pack) == ("random", "none")
    # an untuned profile keeps whole clips (packing lost 15-30 points in the default's tuning)
    assert RunSpec(method="salient", profile="quick").salient_pack == "none"
    # TSGD was not tuned here: the profile's budget and lr
    prof = experiments.get_profile("smoke")
    tsgd = RunSpec(method="tsgd", profile="smoke")
    assert (tsgd.recover_lr, tsgd.recover_iterations) == (prof.distill_lr, prof.distill_iterations)


def test_tsgd_without_its_filter_is_tuned_as_sre2l(tuned):
    spec = RunSpec(method="tsgd", tsgfo=False, profile="smoke", ipc=1)
    # TSGD's published recipe is TSGFA: its set without the filter is SRe2L-style's under TSGFA,
    # which was not tuned here, so it reads SRe2L-style's choice
    assert (spec.variant, spec.tuned_variant) == ("sre2l-tsgfa", "sre2l")
    assert spec.recover_lr == 0.001
    assert replace(spec, student_augment="base").variant == "sre2l"
    assert RunSpec(method="tsgd", tsgfa=False).variant == "tsgd-notsgfa"


def test_the_student_recipe_is_an_axis_of_its_own():
    # one spelling per recipe: the older tsgfa=False is student_augment="base"
    assert RunSpec(method="tsgd", tsgfa=False) == RunSpec(method="tsgd", student_augment="base")
    assert RunSpec(method="random", student_augment="base") == RunSpec(method="random")
    assert RunSpec(method="random").recipe == "base" and RunSpec().recipe == "tsgfa"
    random_tsgfa = RunSpec(method="random", student_augment="tsgfa")
    assert random_tsgfa.recipe == "tsgfa" and random_tsgfa.variant == "random-tsgfa"
    # the recipe changes the evaluation, not the set
    assert random_tsgfa.distill_key() == RunSpec(method="random").distill_key()
    assert random_tsgfa.eval_key() != RunSpec(method="random").eval_key()
    assert experiments.student_config(random_tsgfa, "soft").augment == "tsgfa"
    assert experiments.student_config(RunSpec(method="random"), "soft").augment == "base"
    with pytest.raises(ValueError, match="unknown student_augment 'mixup'"):
        RunSpec(student_augment="mixup")
    with pytest.raises(ValueError, match="contradicts"):
        RunSpec(tsgfa=False, student_augment="tsgfa")


def test_recovery_settings_change_the_set_key_and_are_recorded(tuned):
    base = RunSpec(method="sre2l", profile="smoke")
    keys = {
        replace(base, **kw).distill_key()
        for kw in ({}, {"lr": 0.3}, {"lr_schedule": "constant"}, {"recover_augment": False})
    }
    assert len(keys) == 4
    # evaluation-only switches share the set
    assert replace(base, label_pixels="start").distill_key() == base.distill_key()
    assert replace(base, label_pixels="start").eval_key() != base.eval_key()
    assert replace(base, n_students=2).eval_key() != base.eval_key()
    used = experiments.resolved_settings(base)
    assert used["lr_used"] == 0.001 and used["iterations_used"] == 3
    assert experiments.resolved_settings(RunSpec(method="random"))["lr_used"] is None
    assert experiments.tsgd_config(base).lr == 0.001


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr_schedule": "step"}, "unknown lr_schedule 'step'"),
        ({"n_students": 9}, "n_students must be 1 to 3"),
        ({"train_pixels": "noise"}, "unknown train_pixels 'noise'"),
        ({"pack": "grid"}, "unknown pack 'grid'"),
        ({"window": "best"}, "unknown window 'best'"),
    ],
)
def test_bad_recovery_settings_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        RunSpec(profile="smoke", **kw)


def test_the_students_are_the_first_n_seeds():
    assert RunSpec(profile="smoke", n_students=2).student_seeds == (0, 1)
    assert RunSpec(profile="smoke").student_seeds == experiments.get_profile("smoke").seeds


def test_a_constant_schedule_moves_pixels_further_than_cosine():
    teacher, train = make_teacher(), random_clips()
    cfg = TSGDConfig(iterations=4, lr=0.05, augment=False)
    start = distill_tsgd(teacher, train, replace(cfg, iterations=0), progress=False).videos
    moved = {
        schedule: (
            distill_tsgd(teacher, train, replace(cfg, lr_schedule=schedule), progress=False).videos
            - start
        )
        .abs()
        .mean()
        for schedule in ("cosine", "constant")
    }
    assert moved["constant"] > moved["cosine"] > 0
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        distill_tsgd(teacher, train, replace(cfg, lr_schedule="step"), progress=False)


def test_pixel_change_is_measured_against_the_motion_signal():
    start = torch.zeros(2, 3, 4, 2, 2)
    start[:, :, 1::2] = 0.5  # every frame difference is 0.5
    out = experiments.pixel_change(start + 0.25, start)
    assert out["pixel_change"] == pytest.approx(0.25)
    assert out["motion_signal"] == pytest.approx(0.5)
    assert out["change_over_motion"] == pytest.approx(0.5)
    assert experiments.pixel_change(start, None)["change_over_motion"] is None


def test_the_start_set_is_the_random_draw_of_the_same_seed():
    splits = experiments.load_data("smoke")
    spec = RunSpec(method="sre2l", profile="smoke", ipc=2, distill_seed=1)
    start = experiments.start_set(spec, splits.train)
    index = experiments.select_subset("random", splits.train, 2, seed=1).videos
    assert torch.equal(start, index)
    assert experiments.start_set(replace(spec, init="noise"), splits.train) is None
    assert experiments.start_set(replace(spec, method="herding"), splits.train) is None


@pytest.mark.parametrize(
    "method,knobs", [("tsgd", {"lr": 1e-3}), ("sre2l", {"lr": 3e-5}), ("dm", {"dm_lr": 0.1})]
)
def test_zero_iterations_is_the_start_set_and_shares_its_evaluation(tmp_path, method, knobs):
    from tsgd_core.data.artifact import content_digest

    where = {"cache_dir": tmp_path, "device": "cpu", "progress": False}
    for recipe in ("base", "tsgfa"):
        draw = {"profile": "smoke", "ipc": 2, "distill_seed": 1, "student_augment": recipe}
        start = RunSpec(method="random", **draw)
        zero = RunSpec(method=method, iterations=0, **knobs, **draw)
        assert zero.is_start_set and not replace(zero, iterations=1).is_start_set
        assert zero.eval_key() == start.eval_key(), "the start set's students train once"
        assert zero.distill_key() != start.distill_key(), "each method keeps its own set record"
        assert replace(zero, iterations=1).eval_key() != start.eval_key()
        assert replace(zero, init="noise").eval_key() != start.eval_key()
    # what makes the shared evaluation right: no step taken, the very clips of the draw
    made = [experiments.make_distilled(s, **where) for s in (start, zero)]
    assert content_digest(made[0]) == content_digest(made[1])


# ----------------------------------------------------------------------------- pixels or labels


def student(labels: str = "soft") -> StudentConfig:
    return StudentConfig(
        model=ModelConfig(width=4, depth=1, norm="batch"),
        fit=FitConfig(steps=3, batch_size=6, lr=1e-3),
        labels=labels,
    )


def test_the_teacher_labels_the_same_views_of_the_other_clips():
    teacher, data = make_teacher(), random_clips()
    other = replace(data, videos=random_clips(seed=1).videos)  # other clips, the same classes
    own = build_relabel_plan(data, student(), teacher=teacher, seed=0, device="cpu")
    swapped = build_relabel_plan(
        data, student(), teacher=teacher, seed=0, device="cpu", label_data=other
    )
    direct = build_relabel_plan(other, student(), teacher=teacher, seed=0, device="cpu")
    assert torch.equal(own.indices, swapped.indices)  # the same batches and views
    assert torch.allclose(swapped.soft, direct.soft)  # labelled from the other clips
    assert not torch.allclose(swapped.soft, own.soft)
    same = evaluate_set(data, data, student(), teacher=teacher, seeds=(0,), progress=False)
    again = evaluate_set(
        data, data, student(), teacher=teacher, seeds=(0,), progress=False, label_data=data
    )
    assert same.accs == again.accs
    with pytest.raises(ValueError, match="same clips' classes"):
        build_relabel_plan(data, student(), teacher=teacher, label_data=random_clips(per_class=2))


# ----------------------------------------------------------------------------- the tuning plan


def test_every_optimised_method_gets_the_same_coarse_grid_on_val():
    specs = tuning.coarse_specs("default", (1, 5))
    assert all(s.eval_split == "val" and s.labels == ("soft",) for s in specs)
    assert all(s.n_students == tuning.STUDENTS for s in specs)
    per = pd.Series([(s.variant, s.ipc, s.distill_seed) for s in specs]).value_counts()
    # eight settings per variant, IPC and draw (Salient windows: its six); each start set once
    assert set(per.to_dict().values()) == {1, 6, 8}
    # every method under each student recipe, each beside the start set under that recipe
    assert {s.variant for s in specs} == set(tuning.VARIANTS) | set(tuning.STARTS)
    assert {s.recipe for s in specs if s.method == "random"} == {"base", "tsgfa"}
    for variant in ("tsgd", "tsgd-notsgfa", "sre2l", "sre2l-tsgfa"):
        lrs = {s.lr for s in specs if s.variant == variant}
        assert lrs == set(tuning.RECOVER_LRS) and min(lrs) <= 3e-5 and 1e-4 in lrs
    assert len({s.dm_lr for s in specs if s.method == "dm"}) == 8
    assert {s.recover_iterations for s in specs if s.method in ("sre2l", "tsgd", "dm")} == {100}


def record(variant: str, ipc: int, seed: int, accs: list[float], **used) -> dict:
    fields = dict(tuning.VARIANTS.get(variant, ("", {"method": variant}))[1])
    return {
        **fields,
        "ipc": ipc,
        "labels": "soft",
        "distill_seed": seed,
        "acc_soft_seeds": accs,
        "change_over_motion": used.pop("change", None),
        **used,
    }


def test_the_table_pools_draws_and_chooses_by_mean_validation_accuracy():
    recs = [
        record("sre2l", 1, s, [0.2 + 0.1 * lr_i, 0.3], lr_used=lr, iterations_used=10, change=1.0)
        for s in (0, 1)
        for lr_i, lr in enumerate((0.1, 0.01))
    ]
    coarse = tuning.summarise(recs, "coarse")
    assert len(coarse) == 2
    row = coarse[coarse["lr"] == 0.01].iloc[0]
    assert row["mean"] == pytest.approx(100 * (0.3 + 0.3) / 2)
    assert (row["n"], row["n_distill"]) == (4, 2)
    assert row["change_over_motion"] == pytest.approx(1.0)
    refine = tuning.summarise(
        [
            record("sre2l", 1, s, [a], lr_used=lr, iterations_used=it)
            for s in range(5)
            for lr, it, a in ((0.01, 10, 0.5), (0.01, 40, 0.4))
        ],
        "refine",
    )
    table = tuning.mark_chosen(pd.concat([coarse, refine], ignore_index=True))
    chosen = table[table["chosen"]]
    assert len(chosen) == 1 and chosen.iloc[0]["iterations"] == 10
    assert tuning.chosen_settings(table, "smoke") == {
        "sre2l": {"1": {"lr": 0.01, "iterations": 10}}
    }


def test_the_refine_pass_takes_the_best_two_settings_at_every_iteration_count():
    coarse = pd.DataFrame(
        [
            {"variant": "sre2l", "ipc": 1, "lr": lr, "iterations": 1, "mean": m}
            for lr, m in ((0.1, 10.0), (0.01, 30.0), (0.001, 20.0))
        ]
        + [{"variant": "salient", "ipc": 1, "window": "salient", "pack": "time", "mean": 5.0}]
    )
    specs = tuning.refine_specs("smoke", coarse, (1,))
    sre2l = {(s.lr, s.iterations) for s in specs if s.method == "sre2l"}
    counts = tuning.iteration_counts("smoke")
    # and 0 iterations (no recovery) at the best setting: the start set is a candidate
    assert sre2l == {(lr, it) for lr in (0.01, 0.001) for it in counts} | {(0.01, 0)}
    assert {s.distill_seed for s in specs} == set(tuning.REFINE_SEEDS)
    assert sum(s.method == "salient" for s in specs) == len(tuning.REFINE_SEEDS)


def test_the_choices_are_merged_into_the_tuned_file(tmp_path):
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps({"profiles": {"other": {"dm": {"1": {"dm_lr": 1.0}}}}}))
    table = pd.DataFrame(
        [{"variant": "dm", "ipc": 5, "lr": 0.3, "iterations": 100, "chosen": True}]
    )
    tuning.write_tuned(table, "smoke", path)
    data = json.loads(path.read_text())
    assert data["profiles"]["smoke"] == {"dm": {"5": {"dm_lr": 0.3, "iterations": 100}}}
    assert data["profiles"]["other"] == {"dm": {"1": {"dm_lr": 1.0}}}


def test_a_cell_runs_in_a_worker_process(tmp_path):
    spec = tuning.spec_for("smoke", "sre2l", 1, {"lr": 0.01, "iterations": 1}, 0)
    (rec,) = tuning.run_specs([spec], cache_dir=tmp_path, device="cpu", workers=1, desc="t")
    assert rec["lr_used"] == 0.01 and rec["iterations_used"] == 1
    assert rec["eval_split"] == "val" and len(rec["acc_soft_seeds"]) == tuning.STUDENTS
    assert rec["change_over_motion"] > 0


def test_without_a_refine_pass_the_choice_comes_from_the_coarse_one():
    coarse = tuning.summarise(
        [
            record("dm", 5, s, [acc], lr_used=lr, iterations_used=100)
            for s in (0, 1)
            for lr, acc in ((0.3, 0.2), (1.0, 0.4))
        ],
        "coarse",
    )
    table = tuning.mark_chosen(coarse)
    assert table[table["chosen"]]["lr"].tolist() == [1.0]
    assert tuning.chosen_settings(table, "x") == {"dm": {"5": {"dm_lr": 1.0, "iterations": 100}}}


def test_gains_are_paired_with_the_start_set_of_the_same_draws():
    recs = [record("random", 1, s, [0.5, 0.6]) for s in range(5)]
    recs += [record("sre2l", 1, s, [0.4, 0.4], lr_used=0.01, iterations_used=5) for s in range(5)]
    table = tuning.mark_chosen(tuning.summarise(recs, "refine"))
    row = table[table["variant"] == "sre2l"].iloc[0]
    assert row["gain_vs_start"] == pytest.approx(-15.0)  # (-0.1 - 0.2) / 2 per draw
    assert row["n"] == 10
    start = table[table["variant"] == "random"].iloc[0]
    assert start["gain_vs_start"] != start["gain_vs_start"]  # NaN
    text = tuning.gain_text(row)
    # every draw has the same difference: a zero-width interval below 0, on 10 pairs
    # identical differences in every pair: a zero-width interval, which is not evidence
    assert text.startswith("15.0 points below the start set (-15.0 [-15.0, -15.0], not resolved)")
    lines = tuning.readme_lines(table)
    assert lines[0] == "IPC 1: Random (start set) scores 55.0 % [55.0, 55.0] (n = 10)."
    assert lines[1].startswith(
        "IPC 1, SRe2L-style: chosen lr 0.01, 5 iterations (refine pass), 40.0 %"
    )


def test_the_invocations_are_kept_across_reruns(tmp_path):
    path = tmp_path / "tuning.json"
    assert tuning.invocation_history(path) == []
    path.write_text(json.dumps({"wall_s": 10.0, "workers": 2}))  # the first format
    assert tuning.invocation_history(path) == [{"wall_s": 10.0, "workers": 2}]
    path.write_text(json.dumps({"invocations": [{"wall_s": 1.0}, {"wall_s": 2.0}]}))
    assert [i["wall_s"] for i in tuning.invocation_history(path)] == [1.0, 2.0]


def test_the_readme_says_when_planned_runs_are_missing():
    full = [{"wall_s": 600.0, "workers": 2, "runs": 10, "planned": 10}]
    assert "Incomplete" not in tuning.invocation_text(full)
    assert "1: 10.0 min, 2 workers, computing what was missing, 10 of 10" in (
        tuning.invocation_text(full)
    )
    partial = [*full, {"wall_s": 30.0, "workers": 2, "cached_only": True, "runs": 7, "planned": 10}]
    text = tuning.invocation_text(partial)
    assert "2: 0.5 min, 2 workers, from the cache alone, 7 of 10 planned runs" in text
    assert "Incomplete: 3 planned runs are not in the cache" in text
    stopped = [{"wall_s": 60.0, "workers": 1, "runs": 4, "planned": 10, "stopped": "by hand"}]
    text = tuning.invocation_text([*stopped, *full])
    assert "1: 1.0 min, 1 worker, computing what was missing, 4 of 10 planned runs, stopped" in text
    assert "2: 10.0 min, 2 workers" in text and "Incomplete" not in text


def test_a_cached_record_is_found_only_when_set_and_evaluation_are_cached(tmp_path):
    spec = tuning.spec_for("smoke", "sre2l", 1, {"lr": 0.01, "iterations": 1}, 0)
    other = replace(spec, lr=0.02)
    common = {"cache_dir": tmp_path, "device": "cpu", "workers": 1, "desc": "t"}
    # the workers' one torch thread names the teacher: nothing is cached (or trained) yet
    assert tuning.run_specs([spec], cached_only=True, **common) == []
    assert not list(tmp_path.rglob("*.pt"))
    (computed,) = tuning.run_specs([spec], **common)
    (found,) = tuning.run_specs([spec, other], cached_only=True, **common)
    assert found["acc_soft_seeds"] == computed["acc_soft_seeds"]
    assert found["lr_used"] == 0.01  # the uncached lr 0.02 cell is left out, not computed
    assert len(list((tmp_path / "distilled").glob("*.pt"))) == 1


def test_settings_are_written_at_full_precision_and_no_recovery_is_named(tmp_path):
    recs = [record("random", 1, s, [0.5, 0.6]) for s in range(5)]
    recs += [record("sre2l", 1, s, [0.6, 0.6], lr_used=3e-5, iterations_used=0) for s in range(5)]
    table = tuning.mark_chosen(tuning.summarise(recs, "refine"))
    tuning.write_tables(table, recs, tmp_path)
    written = pd.read_csv(tmp_path / "tuning.csv")
    sre2l = written[written["variant"] == "sre2l"].iloc[0]
    assert sre2l["lr"] == 3e-5 and sre2l["iterations"] == 0 and bool(sre2l["chosen"])
    assert sre2l["recipe"] == "base"
    chosen = table[table["chosen"]].iloc[0]
    assert tuning.knob_text(chosen) == "0 iterations (no recovery: the start set itself)"

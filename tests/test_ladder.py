"""The resolution ladder: rungs as profiles, tuned settings carried over, the paired table."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from tsgd_core.grid import experiments, ladder, profiles


def test_each_rung_is_the_default_profile_at_another_clip_size():
    default = experiments.get_profile("default")
    for frames, size in experiments.LADDER_RUNGS[1:]:
        prof = experiments.get_profile(experiments.ladder_profile(frames, size))
        assert (prof.data["frames"], prof.data["height"], prof.data["width"]) == (
            frames,
            size,
            size,
        )
        assert prof.student == default.student and prof.teacher_fit == default.teacher_fit
        # a rung's data differs, so its teacher is its own
        assert prof.data != default.data
    assert experiments.ladder_profile(8, 16) == "default"


def test_the_rungs_use_the_settings_tuned_at_the_default_size(monkeypatch):
    table = {"default": {"tsgd": {"1": {"lr": 0.002, "iterations": 30}}}}
    monkeypatch.setattr(profiles, "tuned_table", lambda: table)
    specs = ladder.rung_specs(8, 32, ipcs=(1,))
    tsgd = [s for s in specs if s.method == "tsgd"]
    assert {(s.lr, s.iterations) for s in tsgd} == {(0.002, 30)}
    assert {s.profile for s in specs} == {"ladder-8x32"}
    assert {s.method for s in specs} == set(ladder.METHODS)
    assert all(s.eval_split == "test" and s.labels == ("soft",) for s in specs)
    assert {s.distill_seed for s in specs} == set(ladder.DRAWS)


def test_a_rung_is_parsed_or_refused_with_the_known_ones():
    assert ladder.parse_rung("8x32") == (8, 32)
    with pytest.raises(argparse.ArgumentTypeError, match="use 8x16, 8x32"):
        ladder.parse_rung("4x4")
    with pytest.raises(argparse.ArgumentTypeError, match="FRAMESxPIXELS"):
        ladder.parse_rung("big")


def rec(method: str, seed: int, accs: list[float], profile: str = "ladder-8x32") -> dict:
    return {
        "profile": profile,
        "method": method,
        "ipc": 1,
        "distill_seed": seed,
        "acc_soft_seeds": accs,
    }


def test_the_table_pairs_each_method_with_the_start_set_of_the_same_draw():
    records = [rec("random", s, [0.5, 0.6]) for s in (0, 1)]
    records += [rec("tsgd", 0, [0.4, 0.4]), rec("tsgd", 1, [0.45, 0.55])]
    table = ladder.ladder_table(records)
    tsgd = table[table["method"] == "TSGD"].iloc[0]
    # draw 0: -0.1, -0.2; draw 1: -0.05, -0.05 -> draw means -0.15, -0.05 -> -10 points
    assert tsgd["gain_vs_start"] == pytest.approx(-10.0)
    assert (tsgd["size"], tsgd["frames"], tsgd["n"]) == (32, 8, 4)
    assert tsgd["mean"] == pytest.approx(100 * (0.4 + 0.5) / 2)
    start = table[table["method"] == "Random"].iloc[0]
    assert start["gain_vs_start"] != start["gain_vs_start"]  # NaN: no gain over itself
    (sentence,) = ladder.ladder_sentences(table)
    assert sentence.startswith("8x32x32, IPC 1: start set 55.0 %")
    assert "TSGD below it by 10.0 points" in sentence and "not resolved" in sentence


def test_the_default_rung_is_made_of_the_main_grids_own_cells():
    """After ./run_all.sh the default rung costs nothing: every cell has a main-grid key."""
    main = {s.eval_key() for s in experiments.build_grid("default").main}
    specs = ladder.rung_specs(8, 16)
    assert {s.profile for s in specs} == {"default"}
    assert all(s.eval_key() in main for s in specs)


def test_a_rebuild_from_the_runs_writes_what_the_run_wrote_and_names_its_settings(tmp_path):
    records = [rec("random", s, [0.5, 0.6]) for s in (0, 1)]
    records += [rec("tsgd", 0, [0.4, 0.4]), rec("tsgd", 1, [0.4513, 0.5527])]
    records += [{**rec("tsgd", 0, [0.4, 0.5]), "ipc": 5}, {**rec("tsgd", 1, [0.4, 0.5]), "ipc": 5}]
    records += [{**rec("random", s, [0.3, 0.5]), "ipc": 5} for s in (0, 1)]
    for r in records:
        r.update(lr_used=3e-5, iterations_used=400 if r["ipc"] == 1 else 100)
    table = ladder.ladder_table(records)
    ladder.write_ladder(table, records, tmp_path, wall=120.0)
    written = {name: (tmp_path / name).read_text() for name in ("README.md", "ladder.csv")}
    assert (
        "TSGD lr 3e-05, 400 iterations at IPC 1 and lr 3e-05, 100 iterations at IPC 5"
        in (written["README.md"])
    )
    assert "2 min (8 runs)" in written["README.md"]
    ladder.rebuild_ladder(tmp_path)
    assert {name: (tmp_path / name).read_text() for name in written} == written
    # the CSV keeps full precision: a reader rounding once prints what the README prints
    csv = pd.read_csv(tmp_path / "ladder.csv")
    assert csv["mean"].tolist() == pytest.approx(table["mean"].tolist(), rel=1e-12)
    assert any(round(m, 2) != m for m in csv["mean"]), "the numbers were not rounded"

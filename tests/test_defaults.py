"""One setting, one value: the Python defaults (`TSGDConfig()`), the CLI's (`tsgd distill` with no
recovery flag), the default run's (`RunSpec(profile="default")`) and what its committed records
say they ran with are the same recovery settings."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import pytest

from tsgd_core.grid import experiments
from tsgd_core.grid.profiles import get_profile, tuned_settings
from tsgd_core.grid.spec import RunSpec
from tsgd_core.methods.distill import TSGDConfig
from tsgd_core.training.evaluate import EvalResult

ROOT = Path(__file__).resolve().parents[1]
RECORDS = sorted((ROOT / "reports" / "default" / "runs" / "main").glob("*/record.json"))
# the recovery settings every path must agree on
RECOVERY = ("lr", "iterations", "lr_schedule", "r_bn", "first_bn", "init", "augment", "filter")


def recovery_of(cfg: TSGDConfig) -> dict[str, object]:
    return {name: getattr(cfg, name) for name in RECOVERY}


def cli_spec(*flags: str) -> RunSpec:
    """The RunSpec `tsgd distill` resolves its flags to (nothing is distilled)."""
    from tsgd_core.cli.app import build_parser
    from tsgd_core.cli.commands import build_spec, spec_params

    return build_spec(spec_params(build_parser().parse_args(["distill", *flags])))


@pytest.mark.parametrize("ipc", [1, 5, 10])
def test_python_cli_and_default_run_recover_alike(ipc):
    python = TSGDConfig(ipc=ipc)
    run = RunSpec(method="tsgd", profile="default", ipc=ipc)
    # the whole config, saliency included, not only the learning rate
    assert experiments.tsgd_config(run) == python
    assert (run.recover_lr, run.recover_iterations) == (python.lr, python.iterations)
    cli = cli_spec("--ipc", str(ipc))
    assert cli == run, "tsgd distill without flags is the default run"
    assert experiments.tsgd_config(cli) == python
    # SRe2L-style (the filter off) recovers with the same settings
    sre2l = experiments.tsgd_config(RunSpec(method="sre2l", profile="default", ipc=ipc))
    assert recovery_of(sre2l) == {**recovery_of(python), "filter": False}


def test_the_defaults_are_the_tuned_values():
    """TSGDConfig's lr and iterations are tuned.json's for the default profile at every IPC it
    tuned, for TSGD and SRe2L-style alike (the values are not a second copy that can drift)."""
    python = TSGDConfig()
    for variant in ("tsgd", "sre2l"):
        for ipc in get_profile("default").ipcs:
            tuned = tuned_settings("default", variant, ipc)
            assert tuned, f"no tuned {variant} at IPC {ipc}"
            assert (tuned["lr"], tuned["iterations"]) == (python.lr, python.iterations)


def test_the_committed_records_ran_with_the_defaults():
    python = TSGDConfig()
    assert RECORDS, "no committed reports/default/runs/main"
    checked = 0
    for path in RECORDS:
        record = json.loads(path.read_text())
        if record["method"] not in ("tsgd", "sre2l"):
            continue
        assert record["lr_used"] == python.lr and record["iterations_used"] == python.iterations
        assert record["first_bn_used"] == python.first_bn and record["r_bn"] == python.r_bn
        spec = RunSpec(method=record["method"], profile="default", ipc=record["ipc"])
        assert (spec.recover_lr, spec.recover_iterations) == (
            record["lr_used"],
            record["iterations_used"],
        ), path.parent.name
        checked += 1
    assert checked >= 10


def test_a_flag_or_a_field_still_wins():
    spec = cli_spec("--lr", "0.01", "--iterations", "7")
    assert (spec.recover_lr, spec.recover_iterations) == (0.01, 7)
    cfg = experiments.tsgd_config(spec)
    assert cfg == replace(TSGDConfig(), lr=0.01, iterations=7)
    assert {f.name for f in fields(TSGDConfig)} >= set(RECOVERY)


def test_every_runspec_field_belongs_to_one_part():
    from tsgd_core.grid.spec import RUNSPEC_PARTS

    listed = [name for names in RUNSPEC_PARTS.values() for name in names]
    assert sorted(listed) == sorted(f.name for f in fields(RunSpec)), "each field once"
    # the docstring's table names the same fields per part
    table: dict[str, list[str]] = {}
    part = None
    for line in (RunSpec.__doc__ or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.strip().startswith("|") or len(cells) != 3 or set(cells[1]) <= {"-"}:
            continue
        part = cells[0] or part
        if part == "part":
            continue
        table.setdefault(part, []).extend(n.strip() for n in cells[1].split(",") if n.strip())
    assert table == {k: list(v) for k, v in RUNSPEC_PARTS.items()}


def test_the_full_data_row_has_as_many_students_as_a_main_row():
    """The upper bound has no draws: its n is its student seeds, 15 like a main-table row's."""
    default = get_profile("default")
    assert len(default.upper_bound_seeds) == len(default.seeds) * len(default.distill_seeds) == 15
    smoke = get_profile("smoke")
    assert smoke.full_seeds == () and smoke.upper_bound_seeds == smoke.seeds


def test_the_full_data_trains_one_student_per_upper_bound_seed(tmp_path, monkeypatch):
    smoke = get_profile("smoke")
    key = experiments.full_data_key("smoke", "t", 0.0, "", 1.0, "test")
    monkeypatch.setitem(experiments.PROFILES, "smoke", replace(smoke, full_seeds=(0, 1, 2, 3)))
    assert experiments.full_data_key("smoke", "t", 0.0, "", 1.0, "test") != key, (
        "new seeds, new key"
    )
    trained = []  # the students' seeds, per label mode (their training is tested elsewhere)

    def students(train, test, student, *, seeds, **_):
        trained.append((student.labels, tuple(seeds)))
        accs = [0.5 + s / 100 for s in seeds]
        return EvalResult(accs, [1.0] * len(seeds), [1.0] * len(seeds), student.labels, "base", 1)

    monkeypatch.setattr(experiments, "evaluate_set", students)
    results = experiments.full_data_results(
        "smoke", cache_dir=tmp_path, device="cpu", progress=False
    )
    assert trained == [("soft", (0, 1, 2, 3)), ("hard", (0, 1, 2, 3))]
    assert {labels: len(res.accs) for labels, res in results.items()} == {"soft": 4, "hard": 4}
    given = experiments.full_data_results(
        "smoke", cache_dir=tmp_path, device="cpu", progress=False, seeds=(7, 8)
    )
    assert trained[2:] == [("soft", (7, 8)), ("hard", (7, 8))]
    assert given["soft"].accs == pytest.approx([0.57, 0.58])


def test_an_upper_bound_made_with_other_seeds_is_not_taken_for_done(tmp_path):
    from tsgd_core.data.storage import save_json
    from tsgd_core.grid import planner

    steps = planner.plan("default", tmp_path, tmp_path / "cache", "cpu", ["main"], ipcs=[1])
    full = [s for s in steps if "full_data" in s.params]
    assert [s.params["seeds"] for s in full] == [list(range(15))] * 2
    for step in full:  # each upper bound as an earlier run of three seeds left it
        save_json({"soft": {"accs": [0.9] * 3}}, step.out_dir / "record.json")
        save_json(
            {k: v for k, v in step.params.items() if k != "seeds"}, step.out_dir / "step.json"
        )
    assert not any(planner.is_done(s) for s in full)
    save_json(full[0].params, full[0].out_dir / "step.json")
    assert planner.is_done(full[0])
    smoke = planner.plan("smoke", tmp_path / "s", tmp_path / "cache", "cpu", ["main"])
    assert not any("seeds" in s.params for s in smoke if "full_data" in s.params)


def test_an_upper_bound_made_with_another_teacher_is_not_taken_for_done(tmp_path):
    from tsgd_core.data.storage import save_json
    from tsgd_core.grid import planner

    steps = planner.plan("smoke", tmp_path, tmp_path / "cache", "cpu", ["main"])
    full = next(s for s in steps if "full_data" in s.params)
    teacher = tmp_path / "teacher" / "teacher.json"
    save_json({"key": "teacher-a", "test_acc": 0.9}, teacher)
    save_json({"soft": {"accs": [0.9] * 3}}, full.out_dir / "record.json")
    save_json(planner.direct_params(full), full.out_dir / "step.json")  # as run_direct writes it
    assert planner.direct_params(full)["teacher_key"] == "teacher-a"
    assert planner.is_done(full)
    save_json({"key": "teacher-b", "test_acc": 0.9}, teacher)  # the teacher was retrained
    assert not planner.is_done(full), "its students learnt from the old teacher's labels"
    cell = next(s for s in steps if s.direct and "spec" in s.params)
    assert planner.direct_params(cell) == planner.plain(cell.params), "cells keep their step.json"

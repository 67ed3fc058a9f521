"""One setting, one value. The default run's cells (`RunSpec(profile="default")`) and `tsgd
distill` without recovery flags recover as tuning chose for their method, recipe and IPC
(`tsgd_core/tuned.json`); the studies of recovery's parts recover as `Profile.study_recover`
says, which is `TSGDConfig()`'s; and the committed records say they ran with exactly these."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import pytest

from tsgd_core.grid import experiments
from tsgd_core.grid.cells import DEFAULT_GROUPS, build_grid
from tsgd_core.grid.profiles import get_profile, tuned_settings
from tsgd_core.grid.spec import RECIPES, RunSpec
from tsgd_core.methods.distill import TSGDConfig
from tsgd_core.report.records import spec_from_record
from tsgd_core.training.evaluate import EvalResult

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "reports" / "default" / "runs"
# the recovery settings every path must agree on
RECOVERY = ("lr", "iterations", "lr_schedule", "r_bn", "first_bn", "init", "augment", "filter")
# the groups whose cells recover at the study setting rather than the tuned one
STUDIES = ("controls", "ablation", "sensitivity", "convergence", "tsgfa", "shake", "recover")


def recovery_of(cfg: TSGDConfig) -> dict[str, object]:
    return {name: getattr(cfg, name) for name in RECOVERY}


def cli_spec(*flags: str) -> RunSpec:
    """The RunSpec `tsgd distill` resolves its flags to (nothing is distilled)."""
    from tsgd_core.cli.app import build_parser
    from tsgd_core.cli.commands import build_spec, spec_params

    return build_spec(spec_params(build_parser().parse_args(["distill", *flags])))


def tuned_recovery(spec: RunSpec) -> tuple[float, int]:
    """(lr, iterations) that tuned.json holds for the spec's own variant (no fallback)."""
    tuned = tuned_settings(spec.profile, spec.variant, spec.ipc)
    assert tuned, f"no tuned {spec.variant} at IPC {spec.ipc}"
    return tuned["lr"], tuned["iterations"]


@pytest.mark.parametrize("ipc", [1, 5, 10])
def test_python_cli_and_default_run_recover_alike(ipc):
    python = TSGDConfig(ipc=ipc)
    run = RunSpec(method="tsgd", profile="default", ipc=ipc)
    lr, iterations = tuned_recovery(run)
    # the whole config, saliency included: only what tuning chose differs from TSGDConfig's
    assert experiments.tsgd_config(run) == replace(python, lr=lr, iterations=iterations)
    assert (run.recover_lr, run.recover_iterations) == (lr, iterations)
    cli = cli_spec("--ipc", str(ipc))
    assert cli == run, "tsgd distill without flags is the default run"
    assert experiments.tsgd_config(cli) == experiments.tsgd_config(run)
    # SRe2L-style (the filter off) recovers with the same settings but its own tuned ones
    sre2l_spec = RunSpec(method="sre2l", profile="default", ipc=ipc)
    sre2l = experiments.tsgd_config(sre2l_spec)
    lr, iterations = tuned_recovery(sre2l_spec)
    expected = {**recovery_of(python), "filter": False, "lr": lr, "iterations": iterations}
    assert recovery_of(sre2l) == expected


@pytest.mark.parametrize("method", ["tsgd", "sre2l"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_each_recipe_recovers_as_tuned_for_it(method, recipe):
    """Every recovery variant was tuned under its own recipe at every tuned IPC, and a default
    cell reads its own variant's choice, not another recipe's."""
    for ipc in get_profile("default").ipcs:
        spec = RunSpec(method=method, profile="default", ipc=ipc, student_augment=recipe)
        assert spec.tuned_variant == spec.variant
        assert (spec.recover_lr, spec.recover_iterations) == tuned_recovery(spec)
    at_5 = [
        tuned_recovery(RunSpec(method=m, ipc=5, student_augment=r))
        for m in ("tsgd", "sre2l")
        for r in RECIPES
    ]
    assert len(set(at_5)) > 1, "the variants' choices differ: one shared value would hide that"


def test_the_studies_recover_as_the_python_defaults():
    """The studies of recovery's parts fix TSGDConfig()'s lr and iterations; other methods in
    them keep their own (Random has none, DM its tuned ones)."""
    python = TSGDConfig()
    assert get_profile("default").study_recover == (python.lr, python.iterations)
    grid = build_grid("default")
    checked = 0
    for group in STUDIES:
        for spec in getattr(grid, group):
            if spec.method in ("tsgd", "sre2l"):
                assert spec.recover_lr == python.lr, (group, spec.name())
                if group != "recover":  # the recover study varies the iterations
                    assert spec.recover_iterations == python.iterations, (group, spec.name())
                checked += 1
            else:
                assert (spec.lr, spec.iterations) == (None, None), (group, spec.name())
    assert checked >= 90
    dm = next(s for s in grid.dm)
    assert dm.recover_iterations == RunSpec(method="dm", ipc=dm.ipc).recover_iterations
    # the main table recovers as tuned: no main cell fixes a setting of its own
    assert all((s.lr, s.iterations) == (None, None) for s in grid.main)
    # a profile without a study setting studies what its main cells use
    quick = build_grid("quick")
    assert all((s.lr, s.iterations) == (None, None) for s in quick.controls + quick.ablation)


def test_the_committed_records_ran_with_the_defaults():
    """Each committed record of the default groups recovered as its spec resolves today."""
    python = TSGDConfig()
    records = [p for g in DEFAULT_GROUPS for p in sorted((RUNS / g).glob("*/record.json"))]
    assert records, "no committed reports/default/runs"
    checked = {"main": 0, "studies": 0}
    for path in records:
        record = json.loads(path.read_text())
        if record["method"] not in ("tsgd", "sre2l"):
            continue
        spec = spec_from_record(record)
        assert (spec.recover_lr, spec.recover_iterations) == (
            record["lr_used"],
            record["iterations_used"],
        ), path.parent.name
        assert record["first_bn_used"] == python.first_bn and record["r_bn"] == python.r_bn
        if path.parent.parent.name == "main":
            assert tuned_recovery(spec) == (record["lr_used"], record["iterations_used"])
            checked["main"] += 1
        else:
            assert (record["lr_used"], record["iterations_used"]) == (python.lr, python.iterations)
            checked["studies"] += 1
    # TSGD and SRe2L-style under both recipes at IPC 1, 5 and 10, over 5 draws; the studies
    assert checked["main"] == 2 * 2 * 3 * 5 and checked["studies"] >= 60, checked


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

"""A cache written when teacher keys named the CPU thread count keeps its results: the migration
moves the teacher, its sets and their evaluations to the keys that name the recipe alone, and
the grid then finds them without training anything, with the same numbers."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from tsgd_core.data.artifact import content_digest, load_distilled, save_cached_distilled
from tsgd_core.data.clips import DataError
from tsgd_core.data.storage import config_key, load_json, save_json_keyed
from tsgd_core.grid import experiments, migrate
from tsgd_core.grid.spec import RunSpec
from tsgd_core.training import teacher as teacher_module
from tsgd_core.training.teacher import (
    legacy_teacher_keys,
    load_teacher,
    save_teacher,
    teacher_key,
    teacher_path,
)

SPECS = (
    RunSpec(method="random", ipc=1, profile="smoke", labels=("soft",)),
    RunSpec(method="herding", ipc=1, profile="smoke", labels=("soft",)),
)


def smoke_teacher_keys() -> tuple[str, str]:
    """(the key the smoke teacher had with one CPU thread, its key now)."""
    splits = experiments.load_data("smoke")
    recipe = experiments.teacher_recipe("smoke", splits, "")
    return legacy_teacher_keys(splits, *recipe[:2], True, recipe[2])[1], teacher_key(
        splits, recipe[0], recipe[1], True, recipe[2]
    )


def write_old_layout(new: Path, old: Path, specs=SPECS) -> None:
    """`new`'s teacher, sets and evaluations as the old code cached them: every key that
    names the teacher names its one-thread key instead."""
    legacy, key = smoke_teacher_keys()
    model, info = load_teacher(teacher_path(new, key))
    save_teacher(model, replace(info, key=legacy, torch_threads=1), teacher_path(old, legacy))
    for spec in specs:
        ds = load_distilled(experiments.distilled_path(spec, key, new))
        eval_path, eval_key = experiments.eval_cache(spec, ds, new)
        ds.teacher_key = legacy
        save_cached_distilled(ds, experiments.distilled_path(spec, legacy, old))
        old_key = config_key(spec.eval_key(), content_digest(ds))
        value = load_json(eval_path)["value"]
        save_json_keyed(value, old / "evals" / f"{old_key}.json", old_key)


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """A smoke cache made now, its old-layout twin, and the records of the new one."""
    new, old = tmp_path_factory.mktemp("new"), tmp_path_factory.mktemp("old")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        records = [
            experiments.run(s, cache_dir=new, device="cpu", progress=False)[1] for s in SPECS
        ]
    finally:
        torch.set_num_threads(threads)
    write_old_layout(new, old)
    return new, old, records


def test_an_old_key_teacher_is_not_trained_again_but_named_with_the_migration(caches):
    _, old, _ = caches
    with pytest.raises(DataError, match="python -m tsgd_core.grid.migrate --cache"):
        experiments.get_teacher("smoke", cache_dir=old, device="cpu", progress=False)


def test_migrated_cache_gives_the_same_records_without_training(caches, monkeypatch, tmp_path):
    new, old, records = caches
    legacy, key = smoke_teacher_keys()
    counts = migrate.migrate_cache(old)
    assert counts.moved["teachers"] == 1 and counts.moved["sets"] == len(SPECS)
    assert counts.moved["evaluations"] == len(SPECS)
    _, info = load_teacher(teacher_path(old, key))
    assert (info.key, info.former_key, info.torch_threads) == (key, legacy, 1)
    assert teacher_path(old, legacy).is_file(), "nothing is deleted"

    def no_training(*args, **kwargs):
        raise AssertionError("the migrated teacher was trained again")

    monkeypatch.setattr(teacher_module, "train_teacher", no_training)
    for spec, expected in zip(SPECS, records, strict=True):
        got = experiments.cached_record(spec, cache_dir=old, device="cpu")
        assert got is not None, spec.name()
        assert got["acc_soft_seeds"] == expected["acc_soft_seeds"]
        assert got["acc_soft_mean"] == expected["acc_soft_mean"]
    again = migrate.migrate_cache(old)
    assert sum(again.moved.values()) == 0, "a second run moves nothing"


def test_dry_run_counts_and_writes_nothing(caches, tmp_path):
    new, _, _ = caches
    old = tmp_path / "old"
    write_old_layout(new, old, SPECS[:1])
    before = sorted(p.relative_to(old) for p in old.rglob("*"))
    counts = migrate.migrate_cache(old, dry_run=True)
    assert (counts.moved["teachers"], counts.moved["sets"], counts.moved["evaluations"]) == (
        1,
        1,
        1,
    )
    assert sorted(p.relative_to(old) for p in old.rglob("*")) == before


def test_main_refuses_a_folder_without_teachers(tmp_path, capsys):
    assert migrate.main(["--cache", str(tmp_path)]) == 2
    assert "holds no teachers/ folder" in capsys.readouterr().out


def test_the_teacher_key_names_the_recipe_and_not_the_thread_count():
    splits = experiments.load_data("smoke")
    model_cfg, fit_cfg, balanced = experiments.teacher_recipe("smoke", splits, "")
    keys = set()
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            keys.add(teacher_key(splits, model_cfg, fit_cfg, True, balanced))
    finally:
        torch.set_num_threads(threads)
    assert len(keys) == 1
    assert keys.isdisjoint(legacy_teacher_keys(splits, model_cfg, fit_cfg, True, balanced).values())
    assert asdict(model_cfg)  # the recipe is a plain dataclass (hashed as JSON)

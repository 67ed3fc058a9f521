"""Checks before the work: the grid's plan against the data of a small UCF101-layout folder."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tsgd_core.cli import run_grid
from tsgd_core.data.datasets import DataSpec, write_video_tree
from tsgd_core.data.synthetic import make_motion_benchmark
from tsgd_core.grid.planner import (
    check_ipcs_fit,
    plan,
    small_val_warning,
    smallest_class,
)

# the smallest class keeps this many training videos (train + val before the val split)
FEW = 2


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Three classes of encoded videos; 'translate_left' has FEW videos in its training list."""
    bench = make_motion_benchmark(3, 6, 1, 3, frames=8, height=16, width=16)
    keep = torch.cat(
        [bench.train.indices_of_class(0)[: FEW - 1]]
        + [bench.train.indices_of_class(c) for c in range(1, 3)]
    )
    bench = replace(bench, train=bench.train.subset(keep))
    root = tmp_path_factory.mktemp("tree")
    return write_video_tree(bench, root / "UCF101", "ucf101"), bench.train.class_names[0]


@pytest.fixture(scope="module")
def decoded(tree, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    spec = DataSpec("ucf101", str(tree[0]), frames=8, size=(16, 16))
    return spec.load(cache, progress=False), cache


def test_smallest_class_names_the_class_with_fewest_training_clips(tree, decoded):
    splits, _ = decoded
    name, count = smallest_class(splits.train)
    assert count == int(splits.train.class_counts().min()) and count < FEW + 1
    assert name == splits.train.class_names[int(splits.train.class_counts().argmin())]


def test_plan_leaves_out_an_ipc_the_smallest_class_cannot_fill_with_one_line(capsys, tmp_path):
    args = ("smoke", tmp_path / "r", tmp_path / "c", "cpu", ["main"])
    full = plan(*args)
    cut = plan(*args, smallest=("jump", 1))
    line = capsys.readouterr().out.splitlines()
    assert line == ["[plan] IPC 2 left out of the grid: class 'jump' has 1 training clip"]
    ipc2 = [s for s in full if s.stage == "cell" and "ipc2" in s.label]
    assert ipc2, "the smoke grid has IPC 2 cells"
    assert not [s for s in cut if s.stage == "cell" and "ipc2" in s.label]
    assert [s for s in cut if s.stage == "cell"] == [
        s for s in full if s not in ipc2 and s.stage == "cell"
    ]


def test_plan_keeps_every_ipc_when_the_smallest_class_fills_them(capsys, tmp_path):
    args = ("smoke", tmp_path / "r", tmp_path / "c", "cpu", ["main"])
    assert len(plan(*args, smallest=("jump", 2))) == len(plan(*args))
    assert "[plan]" not in capsys.readouterr().out


def test_ipcs_above_the_smallest_class_are_refused_naming_class_and_count():
    with pytest.raises(ValueError, match=r"--ipcs 5,7: class 'jump' has only 3 training clips"):
        check_ipcs_fit([1, 5, 7], ("jump", 3))
    check_ipcs_fit([1, 3], ("jump", 3))  # fits: no error


def test_run_grid_refuses_ipcs_the_folder_cannot_fill_before_any_training(tree, tmp_path, capsys):
    root, _ = tree
    code = run_grid.main(
        ["--profile", "smoke", "--dataset", "ucf101", "--root", str(root), "--frames", "8",
         "--size", "16", "--ipcs", "2", "--groups", "main", "--cache", str(tmp_path / "cache"),
         "--reports", str(tmp_path / "reports"), "--quiet"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "run_grid: error: --ipcs 2: class" in err and "has only 1 training clip" in err
    assert not (tmp_path / "cache" / "teachers").exists()  # nothing was trained
    assert "val accuracy cannot guide choices" in err  # the val split: 0 or 1 clip per class


def test_small_val_split_warns_that_val_accuracy_cannot_guide_choices(decoded):
    splits, _ = decoded
    text = small_val_warning(splits.val)
    assert text is not None and "val accuracy cannot guide choices" in text
    fewest = int(splits.val.class_counts().min())
    assert f"the val split has {fewest} clip" in text


def test_a_val_split_of_five_per_class_gets_no_warning():
    bench = make_motion_benchmark(2, 2, 5, 1, frames=4, height=8, width=8)
    assert small_val_warning(bench.val) is None
    assert "4 clips" in small_val_warning(bench.val.subset(torch.arange(len(bench.val))[1:]))

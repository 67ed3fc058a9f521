"""Progress of the long steps: a live bar on a terminal, one summary line in a notebook kernel
(papermill's executed notebooks in reports/), nothing in pipes and logs."""

from __future__ import annotations

import warnings

import pytest
import torch

from tsgd_core.runtime import progress as progress_module
from tsgd_core.runtime.progress import SummaryLine, progress_bar


@pytest.fixture
def kernel(monkeypatch):
    monkeypatch.setattr(progress_module, "in_kernel", lambda: True)
    monkeypatch.setattr(progress_module, "on_terminal", lambda: False)


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr(progress_module, "in_kernel", lambda: False)
    monkeypatch.setattr(progress_module, "on_terminal", lambda: True)


def test_a_kernel_gets_one_summary_line_and_no_warning(kernel, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm.auto's "IProgress not found" would raise here
        items = list(progress_bar(range(5), desc="teacher"))
    out, err = capsys.readouterr()
    assert items == [0, 1, 2, 3, 4] and err == ""
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("teacher: 5/5 steps in ")


def test_manual_updates_are_summed_once_at_close(kernel, capsys):
    bar = progress_bar(total=4, desc="decoding ucf101", unit="video")
    bar.update()
    bar.update(2)
    bar.close()
    bar.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("decoding ucf101: 3/4 videos in ")
    assert isinstance(bar, SummaryLine) and bar.n == 3


def test_sub_steps_and_disabled_bars_print_nothing_in_a_kernel(kernel, capsys):
    list(progress_bar(range(3), desc="relabel plan", summary=False))
    list(progress_bar(range(3), desc="dm", enabled=False))
    assert capsys.readouterr() == ("", "")


def test_a_terminal_gets_a_live_bar(terminal, capsys):
    bar = progress_bar(range(3), desc="distill")
    assert not isinstance(bar, SummaryLine) and not bar.disable
    list(bar)
    assert "distill" in capsys.readouterr().err


def test_pipes_and_logs_get_nothing(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "in_kernel", lambda: False)
    monkeypatch.setattr(progress_module, "on_terminal", lambda: False)
    assert list(progress_bar(range(3), desc="students")) == [0, 1, 2]
    assert capsys.readouterr() == ("", "")


def test_training_in_a_kernel_prints_one_line_per_fit(kernel, capsys):
    from tsgd_core.data.synthetic import make_motion_benchmark
    from tsgd_core.training.teacher import ModelConfig
    from tsgd_core.training.train import FitConfig, fit

    splits = make_motion_benchmark(2, 4, 1, 1, frames=4, height=8, width=8, seed=0)
    model = ModelConfig(width=4, depth=1).build(2, splits.clip_shape, seed=0)
    fit(
        model,
        splits.train,
        FitConfig(steps=3, batch_size=4),
        device=torch.device("cpu"),
        progress=True,
        desc="teacher",
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("teacher: 3/3 steps in ")

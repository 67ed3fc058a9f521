"""The one line every command prints about its teacher: which, and whether from the cache."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from tsgd_core.training.teacher import (
    FitConfig,
    ModelConfig,
    teacher_key,
    teacher_path,
    teacher_source_line,
)

SPLITS = SimpleNamespace(name="bench", config={"classes": 3})
RECIPE = (ModelConfig(), FitConfig(), True, False)
KEY = teacher_key(SPLITS, *RECIPE)


def put(cache, key=KEY, threads: int | None = 1):
    """A stand-in checkpoint: what the source line reads is the metadata's thread count."""
    path = teacher_path(cache, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"info": {"key": key, "torch_threads": threads}}, path)


def test_a_teacher_not_in_the_cache_is_announced_as_trained(tmp_path):
    line = teacher_source_line(SPLITS, *RECIPE, 2, tmp_path)
    assert line.startswith(f"training teacher {KEY} (not in the cache")
    assert "thread" not in line


def test_a_cached_teacher_is_announced_as_from_the_cache(tmp_path):
    put(tmp_path, threads=2)
    line = teacher_source_line(SPLITS, *RECIPE, 2, tmp_path)
    assert line == f"teacher {KEY} (cache, {teacher_path(tmp_path, KEY)})"


def test_a_teacher_trained_with_another_thread_count_is_used_and_said_so(tmp_path):
    put(tmp_path, threads=1)
    line = teacher_source_line(SPLITS, *RECIPE, 4, tmp_path)
    assert line.startswith(f"teacher {KEY} (cache, ")
    assert "trained with 1 CPU thread, this run uses 4" in line and "training" not in line
    assert "\n" not in line


def test_the_thread_count_does_not_change_the_key():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads % 4 + 1)
        assert teacher_key(SPLITS, *RECIPE) == KEY
    finally:
        torch.set_num_threads(threads)


def test_on_an_accelerator_the_thread_count_is_not_compared(tmp_path):
    put(tmp_path, threads=1)
    line = teacher_source_line(SPLITS, *RECIPE, None, tmp_path)
    assert line.startswith(f"teacher {KEY} (cache") and "thread" not in line

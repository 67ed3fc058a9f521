"""The one line every command prints about its teacher: which, and whether from the cache."""

from __future__ import annotations

from types import SimpleNamespace

from tsgd_core.training.teacher import (
    FitConfig,
    ModelConfig,
    teacher_key,
    teacher_path,
    teacher_source_line,
)

SPLITS = SimpleNamespace(name="bench", config={"classes": 3})
RECIPE = (ModelConfig(), FitConfig(), True, False)


def key(threads):
    return teacher_key(SPLITS, *RECIPE, threads)


def put(cache, threads):
    path = teacher_path(cache, key(threads))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_a_teacher_not_in_the_cache_is_announced_as_trained(tmp_path):
    line = teacher_source_line(SPLITS, *RECIPE, 2, tmp_path)
    assert line.startswith(f"training teacher {key(2)} (not in the cache")
    assert "thread count" not in line


def test_a_cached_teacher_is_announced_as_from_the_cache(tmp_path):
    put(tmp_path, 2)
    line = teacher_source_line(SPLITS, *RECIPE, 2, tmp_path)
    assert line.startswith(f"teacher {key(2)} (cache, ") and "training" not in line


def test_the_same_recipe_trained_with_other_thread_counts_is_named(tmp_path):
    put(tmp_path, 1)
    put(tmp_path, 4)
    line = teacher_source_line(SPLITS, *RECIPE, 2, tmp_path)
    assert line.startswith(f"training teacher {key(2)} (not in the cache")
    assert f"{key(1)} (1 thread), {key(4)} (4 threads)" in line
    assert "this run uses 2; set OMP_NUM_THREADS to reuse one" in line
    assert "\n" not in line


def test_on_an_accelerator_the_thread_count_is_not_searched(tmp_path):
    put(tmp_path, 1)
    line = teacher_source_line(SPLITS, *RECIPE, None, tmp_path)
    assert line.startswith(f"training teacher {key(None)}") and "thread" not in line

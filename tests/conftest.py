"""Shared fixtures: tiny clip sets whose classes are told apart by motion."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from tsgd_core.data.clips import ClipSet

TINY_SHAPE = (3, 8, 16, 16)
# what `run_grid.main` sets in os.environ for its kernels: called in-process by a test, it must
# not leak into the later tests' child processes (another thread count, another import path)
GRID_ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONPATH")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker, and every process it starts, uses one CPU thread: the
    workers already fill the cores, and two workers of two torch threads each on two cores
    spend much of their time waiting on each other (the suite took 1.4x as long)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def grid_environment_restored():
    saved = {name: os.environ.get(name) for name in GRID_ENVIRONMENT}
    threads = torch.get_num_threads()
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def global_rngs_seeded():
    """Each test starts from the same global random state, whatever ran before it on its worker
    (an unseeded draw would otherwise depend on the test order xdist picks)."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def moving_bar_clips(n_per_class: int, seed: int, shape=TINY_SHAPE) -> ClipSet:
    """Two classes: a vertical bar moving right (0) or left (1); frame 0 alone does not tell them apart."""
    g = torch.Generator().manual_seed(seed)
    c, t, h, w = shape
    videos = torch.rand(2 * n_per_class, c, t, h, w, generator=g) * 0.1
    labels = torch.arange(2).repeat_interleave(n_per_class)
    starts = torch.randint(0, w, (2 * n_per_class,), generator=g)
    for i in range(2 * n_per_class):
        step = 1 if labels[i] == 0 else -1
        for f in range(t):
            col = int(starts[i] + step * f) % w
            videos[i, :, f, :, col] = 1.0
    return ClipSet(videos, labels, ["right", "left"])


@pytest.fixture
def tiny_clips() -> ClipSet:
    return moving_bar_clips(12, seed=0)


@pytest.fixture
def tiny_test_clips() -> ClipSet:
    return moving_bar_clips(10, seed=1)

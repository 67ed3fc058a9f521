"""Shared fixtures: tiny clip sets whose classes are told apart by motion."""

from __future__ import annotations

import pytest
import torch

from tsgd_core.data.clips import ClipSet

TINY_SHAPE = (3, 8, 16, 16)


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

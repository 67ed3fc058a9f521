"""Exported sets carry each row's class name in a caption strip on the left."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import torch
from PIL import ImageDraw, ImageFont

from tsgd_core.data.artifact import (
    CAPTION_PAD,
    DistilledSet,
    clip_grid_frames,
    export_gif,
    row_names,
    with_row_captions,
)

NAMES = ["ApplyEyeMakeup", "Jump", "TaiChi"]


def make_set(ipc: int = 2, size: int = 6, t: int = 3) -> DistilledSet:
    labels = torch.arange(len(NAMES)).repeat_interleave(ipc)
    fade = torch.linspace(0.2, 0.8, t)[None, None, :, None, None]  # GIF merges equal frames
    videos = fade.expand(len(labels), 3, t, size, size).contiguous()
    return DistilledSet(videos, labels, NAMES, "random", ipc=ipc)


def strip_width() -> int:
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(__import__("PIL.Image", fromlist=["Image"]).new("RGB", (1, 1)))
    return max(int(draw.textlength(n, font=font)) for n in NAMES) + 2 * CAPTION_PAD


def test_exported_gif_is_the_grid_with_a_caption_strip_per_class_row(tmp_path):
    ds = make_set()
    frames = iio.imread(export_gif(ds, tmp_path / "set.gif", scale=4), index=None)
    grid = clip_grid_frames(ds.videos, ds.labels, len(NAMES), 4)
    width = strip_width()
    assert frames.shape == (grid.shape[0], grid.shape[1], grid.shape[2] + width, 3)
    assert np.array_equal(frames[:, :, width:], grid)  # the clips are untouched
    row_h = (grid.shape[1] - 2) // len(NAMES)
    strip = frames[0, :, :width]
    for row in range(len(NAMES)):  # black text in every class's band, nowhere else black
        band = strip[2 + row * row_h : 2 + (row + 1) * row_h]
        assert (band.max(axis=2) < 100).sum() > 10
    assert np.all(strip[:, width - 1] == 255)  # padding right of the text is white


def test_different_class_names_draw_different_captions():
    grid = np.full((2, 40, 20, 3), 255, np.uint8)
    a, b = with_row_captions(grid, ["Jump", "Run"]), with_row_captions(grid, ["Swim", "Run"])
    assert a.shape[:2] == b.shape[:2] == (2, 40) and a.shape[2] > 20 and b.shape[2] > 20
    assert np.array_equal(a[:, :, -20:], grid) and np.array_equal(b[:, :, -20:], grid)
    assert not np.array_equal(a[0, :20], b[0, :20]) and np.array_equal(a[0], a[1])


def test_rows_of_per_row_grids_name_the_classes_they_hold():
    labels = torch.tensor([2, 0, 1, 0, 2])
    assert row_names(labels, NAMES, None) == NAMES
    assert row_names(labels, NAMES, 2) == ["ApplyEyeMakeup", "Jump, TaiChi", "TaiChi"]

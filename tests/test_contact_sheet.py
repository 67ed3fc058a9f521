"""The contact sheet of a set: one row of frames per clip, with the clip's class name."""

from __future__ import annotations

import imageio.v3 as iio
import torch

from tsgd_core.data.clips import ClipSet
from tsgd_core.report.clip_figures import contact_sheet_figure, save_contact_sheet

NAMES = ["WalkingWithDog", "Juggling", "a class the benchmark lacks"]


def clips(per_class: int, frames: int = 4, size: int = 8) -> ClipSet:
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(len(NAMES)).repeat_interleave(per_class)
    return ClipSet(torch.rand(len(labels), 3, frames, size, size, generator=gen), labels, NAMES)


def test_every_row_carries_its_class_name():
    data = clips(2)
    fig = contact_sheet_figure(data.videos, data.labels, NAMES, title="tsgd, IPC 2")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == [name for name in NAMES for _ in range(2)], "one name per row, by class"
    assert "tsgd, IPC 2" in fig._suptitle.get_text()


def test_the_sheet_grows_with_rows_and_frames(tmp_path):
    small = iio.imread(save_contact_sheet(clips(1), tmp_path / "one.png", scale=2))
    tall = iio.imread(save_contact_sheet(clips(3), tmp_path / "three.png", scale=2))
    wide = iio.imread(save_contact_sheet(clips(1, frames=12), tmp_path / "wide.png", scale=2))
    assert small.shape[0] >= 3 * 16 and small.shape[1] >= 4 * 16
    assert tall.shape[0] > small.shape[0] + 2 * 3 * 16 * 0.9
    assert wide.shape[1] > small.shape[1] + 8 * 16 * 0.9
    assert tall.shape[1] == small.shape[1]

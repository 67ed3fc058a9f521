"""Salient windows: real clips chosen and cut by TSGF saliency (tsgd_core.methods.salient)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from helpers import small_benchmark
from torch import nn

from tsgd_core.data.clips import ClipSet, UInt8Clips, from_uint8, to_uint8
from tsgd_core.methods.salient import (
    SalientConfig,
    candidate_pool,
    frame_mass,
    select_salient_windows,
    sources_per_clip,
    window_masses,
    window_view,
)
from tsgd_core.runtime import derive_seed
from tsgd_core.training.models import build_model


@pytest.fixture(scope="module")
def bench() -> ClipSet:
    return small_benchmark(3, (8, 2, 2), frames=8, size=(16, 16)).train


@pytest.fixture(scope="module")
def teacher(bench: ClipSet) -> nn.Module:
    return build_model("convnet3d", 3, bench.clip_shape, width=8, depth=2, seed=0)


def square_clip(moving: range, col: int, seed: int, frames: int = 8) -> torch.Tensor:
    """A static textured clip (3, T, 16, 16) whose 4x4 square moves right only in `moving` frames."""
    g = torch.Generator().manual_seed(seed)
    clip = (torch.rand(3, 1, 16, 16, generator=g) * 0.2).repeat(1, frames, 1, 1)
    for f in range(frames):
        x = col + 2 * (min(max(f, moving.start), moving.stop - 1) - moving.start)
        clip[:, f, 6:10, x : x + 4] = 1.0
    return clip


class BrightnessTeacher(nn.Module):
    """Logits favour class k for clips whose mean brightness is near targets[k]."""

    def __init__(self, targets: list[float]) -> None:
        super().__init__()
        self.register_buffer("targets", torch.tensor(targets))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -5.0 * (x.mean(dim=(1, 2, 3, 4))[:, None] - self.targets[None]) ** 2


def brightness_clips() -> ClipSet:
    """Two classes of 8 flickering clips each, at brightness 0.2, 0.3, ..., 0.9 (shuffled)."""
    g = torch.Generator().manual_seed(3)
    levels = torch.linspace(0.2, 0.9, 8)
    levels = torch.cat([levels[torch.randperm(8, generator=g)] for _ in range(2)])
    noise = torch.rand(16, 3, 8, 8, 8, generator=g) * 0.05
    videos = levels.view(-1, 1, 1, 1, 1) + noise
    return ClipSet(videos, torch.arange(2).repeat_interleave(8), ["bright", "dark"])


@pytest.mark.parametrize("pack", ["none", "time", "tiles"])
@pytest.mark.parametrize("window", ["salient", "random"])
def test_shape_labels_order_and_range(bench, teacher, pack, window):
    cfg = SalientConfig(window=window, pack=pack, pool=2)
    ds = select_salient_windows(bench, 2, teacher=teacher, cfg=cfg, device="cpu")
    ds.validate()
    assert ds.videos.shape == (6, *bench.clip_shape) and ds.videos.dtype == torch.float32
    assert ds.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.method == "salient" and ds.ipc == 2 and ds.config["pack"] == pack
    assert json.loads(json.dumps(ds.config)) == ds.config  # plain values only
    assert 0.0 <= float(ds.videos.min()) and float(ds.videos.max()) <= 1.0
    records = ds.config["clips"]
    assert [r["class"] for r in records] == [0, 0, 1, 1, 2, 2]
    for r in records:  # every source is a distinct clip of the stored clip's class
        assert len(r["sources"]) == len(r["starts"]) == sources_per_clip(pack)
        assert all(int(bench.labels[i]) == r["class"] for i in r["sources"])
    per_class = [sum((r["sources"] for r in records if r["class"] == c), []) for c in range(3)]
    assert all(len(set(s)) == len(s) == 2 * sources_per_clip(pack) for s in per_class)
    if pack == "none":  # whole real clips, untouched
        for v, r in zip(ds.videos, records, strict=True):
            assert torch.equal(v, bench.videos[r["sources"][0]])


def test_same_seed_same_set_other_seed_differs(bench, teacher):
    cfg = SalientConfig(pack="time", seed=5)
    a = select_salient_windows(bench, 1, teacher=teacher, cfg=cfg, device="cpu")
    b = select_salient_windows(bench, 1, teacher=teacher, cfg=cfg, device="cpu")
    assert torch.equal(a.videos, b.videos) and a.config == b.config
    rnd = [
        select_salient_windows(bench, 2, teacher=None, cfg=SalientConfig(window="random", seed=s))
        for s in (0, 0, 1)
    ]
    assert torch.equal(rnd[0].videos, rnd[1].videos)
    assert not torch.equal(rnd[0].videos, rnd[2].videos)
    assert rnd[2].seed == 1 and rnd[2].config["seed"] == 1


def test_window_masses_find_the_late_motion():
    late = square_clip(range(4, 8), col=0, seed=0)[None]
    shares = window_masses(frame_mass(late), 4)
    assert shares.shape == (1, 5)
    assert int(shares.argmax()) == 4 and 0.9 < float(shares[0, 4]) <= 1.0
    still = torch.full((1, 3, 8, 16, 16), 0.5)
    assert torch.equal(window_masses(frame_mass(still), 4), torch.zeros(1, 5))


def test_salient_half_window_starts_where_the_motion_is():
    late = [square_clip(range(4, 8), col=c, seed=c) for c in (0, 2, 4)]
    early = [square_clip(range(0, 4), col=c, seed=10 + c) for c in (0, 2, 4)]
    spread = [square_clip(range(0, 8), col=0, seed=20 + i) for i in range(6)]  # moves throughout
    videos = torch.stack(late + spread[:3] + early + spread[3:])
    train = ClipSet(videos, torch.tensor([0] * 6 + [1] * 6), ["late", "early"])
    cfg = SalientConfig(pack="time", confidence=0.0)
    ds = select_salient_windows(train, 1, teacher=None, cfg=cfg, device="cpu")
    late_rec, early_rec = ds.config["clips"]
    # half windows concentrate more of the mass of the clips that move in half of their frames
    assert set(late_rec["sources"]) <= {0, 1, 2} and set(early_rec["sources"]) <= {6, 7, 8}
    assert late_rec["starts"] == [4, 4] and early_rec["starts"] == [0, 0]
    first = late_rec["sources"][0]
    assert torch.equal(ds.videos[0, :, :4], train.videos[first, :, 4:8])
    for r in (late_rec, early_rec):  # the recorded start is the argmax of the window mass
        for i, s in zip(r["sources"], r["starts"], strict=True):
            assert s == int(window_masses(frame_mass(train.videos[i : i + 1]), 4).argmax())


def test_time_packing_concatenates_the_recorded_windows(bench, teacher):
    ds = select_salient_windows(bench, 2, teacher=teacher, cfg=SalientConfig(), device="cpu")
    for v, r in zip(ds.videos, ds.config["clips"], strict=True):
        (a, b), (sa, sb) = r["sources"], r["starts"]
        assert torch.equal(v[:, :4], bench.videos[a, :, sa : sa + 4])
        assert torch.equal(v[:, 4:], bench.videos[b, :, sb : sb + 4])


def test_time_packing_with_odd_frames_keeps_t():
    videos = torch.rand(4, 3, 7, 8, 8, generator=torch.Generator().manual_seed(0))
    train = ClipSet(videos, torch.tensor([0, 0, 1, 1]), ["a", "b"])
    cfg = SalientConfig(pack="time", confidence=0.0)
    ds = select_salient_windows(train, 1, teacher=None, cfg=cfg, device="cpu")
    assert ds.videos.shape == (2, 3, 7, 8, 8)
    (a, b), (sa, sb) = ds.config["clips"][0]["sources"], ds.config["clips"][0]["starts"]
    assert torch.equal(ds.videos[0, :, :3], videos[a, :, sa : sa + 3])
    assert torch.equal(ds.videos[0, :, 3:], videos[b, :, sb : sb + 4])


def test_tiles_are_area_downsampled_sources(bench, teacher):
    cfg = SalientConfig(pack="tiles", pool=1)
    ds = select_salient_windows(bench, 1, teacher=teacher, cfg=cfg, device="cpu")
    for v, r in zip(ds.videos, ds.config["clips"], strict=True):
        halves = [
            bench.videos[i].unflatten(2, (8, 2)).unflatten(4, (8, 2)).mean((3, 5))
            for i in r["sources"]
        ]
        torch.testing.assert_close(v[:, :, :8, :8], halves[0])
        torch.testing.assert_close(v[:, :, :8, 8:], halves[1])
        torch.testing.assert_close(v[:, :, 8:, :8], halves[2])
        torch.testing.assert_close(v[:, :, 8:, 8:], halves[3])
        assert r["starts"] == [0, 0, 0, 0]


def test_window_view_holds_the_last_frame():
    clips = torch.arange(8.0).view(1, 1, 8, 1, 1).repeat(2, 2, 1, 3, 3)
    view = window_view(clips, torch.tensor([4, 1]), 3)
    assert view[0, 0, :, 0, 0].tolist() == [4, 5, 6, 6, 6, 6, 6, 6]
    assert view[1, 1, :, 2, 2].tolist() == [1, 2, 3, 3, 3, 3, 3, 3]


def test_teacher_preference_decides_salient_choice():
    train = brightness_clips()
    cfg = SalientConfig(pack="none", confidence=1.0)
    ds = select_salient_windows(train, 2, teacher=BrightnessTeacher([0.95, 0.05]), cfg=cfg)
    means = [float(train.videos[r["sources"][0]].mean()) for r in ds.config["clips"]]
    # class "bright" keeps its two brightest clips, best first; class "dark" its two darkest
    assert means[0] > means[1] > 0.75 and means[3] > means[2] and means[3] < 0.35
    assert float(ds.videos[:2].mean()) > float(ds.videos[2:].mean()) + 0.5


def test_random_window_follows_pool_order_and_ignores_teacher():
    train = brightness_clips()
    picky = BrightnessTeacher([0.95, 0.05])
    cfg = SalientConfig(window="random", pack="time", confidence=5.0, pool=2, seed=7)
    ds = select_salient_windows(train, 2, teacher=picky, cfg=cfg)
    plain = select_salient_windows(
        train, 2, teacher=None, cfg=SalientConfig(**{**vars(cfg), "confidence": 0.0})
    )
    assert torch.equal(ds.videos, plain.videos)
    for c in range(2):
        pool = candidate_pool(train, c, 8, torch.Generator().manual_seed(derive_seed(7, c)))
        chosen = sum((r["sources"] for r in ds.config["clips"] if r["class"] == c), [])
        assert chosen == pool[:4].tolist()


def test_uint8_clips_give_the_same_set(bench, teacher):
    raw = to_uint8(bench.videos)
    as_float = ClipSet(from_uint8(raw), bench.labels, bench.class_names)
    as_uint8 = ClipSet(
        UInt8Clips(raw.numpy(), tuple(raw.shape[1:])), bench.labels, bench.class_names
    )
    cfg = SalientConfig(pack="time", pool=2)
    a = select_salient_windows(as_float, 1, teacher=teacher, cfg=cfg, device="cpu")
    b = select_salient_windows(as_uint8, 1, teacher=teacher, cfg=cfg, device="cpu")
    assert torch.equal(a.videos, b.videos) and a.config == b.config


def test_errors_name_the_fix(bench, teacher):
    name = re.escape(f"class '{bench.class_names[0]}' has 8")
    with pytest.raises(
        ValueError, match=f"IPC 3 with pack 'tiles' needs 12 .*{name}.*lower the IPC"
    ):
        select_salient_windows(bench, 3, teacher=teacher, cfg=SalientConfig(pack="tiles"))
    with pytest.raises(ValueError, match="IPC must be >= 1"):
        select_salient_windows(bench, 0, teacher=teacher)
    odd = ClipSet(torch.rand(8, 3, 8, 15, 16), torch.arange(2).repeat_interleave(4), ["a", "b"])
    with pytest.raises(ValueError, match="even frame size, got 15x16 .*use pack 'none' or 'time'"):
        select_salient_windows(
            odd, 1, teacher=None, cfg=SalientConfig(pack="tiles", confidence=0.0)
        )
    with pytest.raises(ValueError, match="pass a teacher"):
        select_salient_windows(bench, 1, teacher=None)
    with pytest.raises(ValueError, match="unknown window 'best': use salient, random"):
        SalientConfig(window="best")
    with pytest.raises(ValueError, match="unknown pack 'grid': use none, time, tiles"):
        SalientConfig(pack="grid")

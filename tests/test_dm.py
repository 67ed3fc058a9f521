"""Distribution matching (DM) on video clips."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import shared_refusals

import tsgd_core.methods.dm as dm
from tsgd_core.data.clips import ClipSet
from tsgd_core.methods.dm import DMConfig, distill_dm, embedding_net, matching_loss, siamese_augment
from tsgd_core.training.augment import AugmentConfig

SHAPE = (3, 8, 16, 16)
K = 3


def motion_clips(per_class: int = 5, seed: int = 0) -> ClipSet:
    """Class c: a bright bar moving with speed c + 1 over noise, so the classes differ in motion."""
    g = torch.Generator().manual_seed(seed)
    c, t, h, w = SHAPE
    n = K * per_class
    labels = torch.arange(K).repeat_interleave(per_class)
    videos = torch.rand(n, c, t, h, w, generator=g) * 0.3
    start = torch.randint(0, w, (n,), generator=g)
    cols = (start[:, None] + (labels[:, None] + 1) * torch.arange(t)[None]) % w  # (n, t)
    videos[torch.arange(n)[:, None], :, torch.arange(t)[None], :, cols] = 1.0
    return ClipSet(videos, labels, ["slow", "medium", "fast"])


def quick(**kw) -> DMConfig:
    return replace(DMConfig(iterations=5, batch_real=4, width=8, depth=2), **kw)


def run(train: ClipSet, **kw):
    return distill_dm(train, quick(**kw), progress=False)


def heldout_loss(train: ClipSet, videos: torch.Tensor, cfg: DMConfig, nets: int = 4) -> float:
    """The DM objective under random nets never used during distillation, on all real clips."""
    total = 0.0
    unseen = replace(cfg, seed=cfg.seed + 1000)
    for i in range(nets):
        net = embedding_net(train, unseen, i, torch.device("cpu"))
        with torch.no_grad():
            for c in range(train.num_classes):
                syn = videos[c * cfg.ipc : (c + 1) * cfg.ipc]
                total += matching_loss(
                    net.embed(train.videos[train.labels == c]), net.embed(syn)
                ).item()
    return total


def test_dm_reduces_the_matching_loss_under_unseen_nets():
    train = motion_clips()
    cfg = quick(ipc=2, iterations=30, augment=False, batch_real=5)
    start = distill_dm(train, replace(cfg, iterations=0), progress=False)
    result = distill_dm(train, cfg, progress=False)
    assert heldout_loss(train, result.videos, cfg) < 0.75 * heldout_loss(train, start.videos, cfg)
    assert len(result.history["loss"]) == 30


def test_output_shapes_labels_and_metadata():
    result = run(motion_clips(), ipc=2)
    assert result.videos.shape == (K * 2, *SHAPE)
    assert result.videos.dtype == torch.float32 and result.videos.device.type == "cpu"
    assert 0.0 <= result.videos.min() and result.videos.max() <= 1.0
    assert result.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert result.method == "dm" and result.ipc == 2
    assert (
        result.config["norm"] == "instance" and result.config["augment_cfg"]["translate"] == 0.125
    )
    assert result.class_names == ["slow", "medium", "fast"]


def test_init_real_starts_from_real_clips_of_each_class():
    train = motion_clips()
    result = run(train, ipc=2, iterations=0)
    for clip, label in zip(result.videos, result.labels, strict=True):
        matches = (train.videos == clip).flatten(1).all(1).nonzero().flatten()
        assert len(matches) == 1 and train.labels[matches[0]] == label


def test_same_seed_same_output():
    train = motion_clips()
    a, b, c = run(train, seed=1), run(train, seed=1), run(train, seed=2)
    assert torch.equal(a.videos, b.videos) and a.history == b.history
    assert not torch.equal(a.videos, c.videos)


def test_each_iteration_draws_a_new_embedding_net():
    train, cfg = motion_clips(), quick()
    w0 = embedding_net(train, cfg, 0, torch.device("cpu")).features[0].weight
    w1 = embedding_net(train, cfg, 1, torch.device("cpu")).features[0].weight
    assert not torch.equal(w0, w1)
    assert torch.equal(w0, embedding_net(train, cfg, 0, torch.device("cpu")).features[0].weight)


def test_siamese_augment_gives_real_and_synthetic_the_same_transform():
    clip = torch.rand(1, *SHAPE)
    batch = clip.expand(5, -1, -1, -1, -1)
    cfg = AugmentConfig()
    one = siamese_augment(clip, seed=7, cfg=cfg)
    many = siamese_augment(batch, seed=7, cfg=cfg)
    assert not torch.allclose(one, clip)  # it did transform
    for view in many:  # every clip of a batch of another size got the same transform
        torch.testing.assert_close(view, one[0])
    assert not torch.allclose(siamese_augment(clip, seed=8, cfg=cfg), one)


def test_nan_loss_stops_with_the_step(monkeypatch):
    calls = {"n": 0}
    real_loss = dm.matching_loss

    def nan_from_third_iteration(a, b):
        calls["n"] += 1
        loss = real_loss(a, b)
        return loss * float("nan") if calls["n"] > 2 * K else loss

    monkeypatch.setattr(dm, "matching_loss", nan_from_third_iteration)
    with pytest.raises(
        FloatingPointError, match=r"DM loss is not finite at step 2 .*lower lr \(now 0.3\)"
    ):
        run(motion_clips())


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        *shared_refusals(6, "slow", 5),
        ({"model": "resnet"}, "unknown model 'resnet'"),
        ({"batch_real": 0}, "batch_real must be >= 1"),
    ],
)
def test_bad_config_is_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        run(motion_clips(), **kw)


def test_every_class_needs_real_clips():
    train = motion_clips()
    train = ClipSet(train.videos, train.labels, [*train.class_names, "empty"])
    with pytest.raises(ValueError, match="'empty' has none"):
        run(train, init="noise")

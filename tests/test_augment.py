"""Video augmentation: one transform per clip, differentiability, determinism, and TSGFA."""

from __future__ import annotations

import pytest
import torch

from tsgd_core.training.augment import (
    AugmentConfig,
    TSGFAConfig,
    diff_augment,
    random_resized_crop,
    saliency_crop,
    saliency_cutmix,
    student_augment,
    temporal_salient_crop,
    tsgfa_augment,
)
from tsgd_core.training.saliency import SaliencyConfig, frame_weights, saliency_map

T, H, W = 16, 32, 32


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def frozen_clips(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Clips whose T frames are all the same picture."""
    return torch.rand(n, 3, 1, H, W, generator=gen(seed)).expand(n, 3, T, H, W).contiguous()


def square_clip(
    positions: list[tuple[int, int]], side: int = 6, h: int = H, w: int = W, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, T, h, w) textured square at positions[t] on a flat background, and its mask."""
    g = gen(seed)
    texture = 0.5 + 0.5 * torch.rand(3, side, side, generator=g)
    clip = torch.full((1, 3, len(positions), h, w), 0.2)
    mask = torch.zeros(1, 1, len(positions), h, w)
    for t, (y, x) in enumerate(positions):
        clip[0, :, t, y : y + side, x : x + side] = texture
        mask[0, 0, t, y : y + side, x : x + side] = 1
    return clip, mask


def burst_positions() -> list[tuple[int, int]]:
    """Still except in frames 5-8, where the square jumps to a new place every frame."""
    jumps = {5: (20, 4), 6: (4, 22), 7: (22, 22), 8: (12, 12)}
    return [jumps.get(t, (2, 2)) for t in range(T)]


def frames_identical(x: torch.Tensor) -> bool:
    return torch.allclose(x, x[:, :, :1].expand_as(x), atol=1e-6)


def test_one_transform_per_clip_keeps_frozen_frames_identical():
    x = frozen_clips()
    sal = saliency_map(square_clip(burst_positions())[0]).expand(4, 1, T, H, W)
    cfg = AugmentConfig(flip=True)
    outputs = {
        "crop": random_resized_crop(x, (0.3, 0.9), gen()),
        "diff": diff_augment(x, gen(), cfg),
        "student": student_augment(x, gen(), cfg),
        "saliency_crop": saliency_crop(x, sal, gen()),
        "cutmix": saliency_cutmix(x, sal, gen())[0],
        "temporal": temporal_salient_crop(x, torch.rand(4, T, generator=gen()), gen()),
        "tsgfa": tsgfa_augment(x, gen(), TSGFAConfig(p_crop=1, p_mix=1, p_temporal=1))[0],
    }
    for name, out in outputs.items():
        assert out.shape == x.shape, name
        assert frames_identical(out), name
        if name != "temporal":  # re-timing identical frames cannot change them
            assert not torch.allclose(out, x, atol=1e-3), f"{name} did nothing"


def test_identity_settings_are_identity_and_flip_is_off_by_default():
    assert AugmentConfig().flip is False
    x = torch.rand(8, 3, 4, H, W, generator=gen())
    still = AugmentConfig(crop_scale=(1.0, 1.0), translate=0.0, brightness=0.0, contrast=0.0)
    torch.testing.assert_close(diff_augment(x, gen(), still), x)
    flipped = diff_augment(x, gen(), AugmentConfig(**{**still.__dict__, "flip": True}))
    is_flip = [torch.allclose(f, c.flip(-1)) for f, c in zip(flipped, x, strict=True)]
    is_same = [torch.allclose(f, c) for f, c in zip(flipped, x, strict=True)]
    assert all(a != b for a, b in zip(is_flip, is_same, strict=True))  # each clip one or other
    assert any(is_flip) and any(is_same)


def test_diff_augment_passes_gradients():
    x = torch.rand(2, 3, T, H, W, generator=gen(), requires_grad=True)
    diff_augment(x, gen()).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.isfinite(x.grad).all()


def test_seeded_generator_is_deterministic():
    x = torch.rand(3, 3, T, H, W, generator=gen())
    torch.testing.assert_close(diff_augment(x, gen(5)), diff_augment(x, gen(5)))
    assert not torch.allclose(diff_augment(x, gen(5)), diff_augment(x, gen(6)))
    a = tsgfa_augment(x, gen(7), TSGFAConfig(p_mix=1.0))
    b = tsgfa_augment(x, gen(7), TSGFAConfig(p_mix=1.0))
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)


def test_student_augment_stays_in_range():
    x = torch.rand(4, 3, T, H, W, generator=gen())
    out = student_augment(x, gen(), AugmentConfig(brightness=0.5, contrast=0.5))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_saliency_crop_keeps_the_moving_square_far_more_often_than_random_crop():
    # the square wanders inside a 12 x 12 patch of a 48 x 48 frame
    side, n = 6, 64
    path = [(30 + (t % 4) * 2, 6 + (t % 3) * 3) for t in range(T)]
    clip, mask = square_clip(path, side=side, h=48, w=48)
    sal = saliency_map(clip)
    both = torch.cat([clip, mask], 1).expand(n, -1, -1, -1, -1)
    scale = (0.2, 0.3)

    def kept(cropped: torch.Tensor) -> torch.Tensor:
        """Per clip: the square is (mostly) visible in every frame."""
        return (cropped[:, 3].amax(dim=(2, 3)) > 0.5).all(dim=1).float().mean()

    by_saliency = kept(saliency_crop(both, sal.expand(n, -1, -1, -1, -1), gen(1), scale))
    by_chance = kept(random_resized_crop(both, scale, gen(1)))
    assert by_saliency > 0.9
    assert by_chance < 0.5
    assert by_saliency - by_chance > 0.5


def test_saliency_cutmix_pastes_the_partners_salient_box():
    n = 6
    clips = []
    for i in range(n):
        clip, _ = square_clip([(4 + 3 * i, 2 + t) for t in range(T)], seed=i)
        clips.append(clip + 0.1 * i)  # every clip differs from every other everywhere
    x = torch.cat(clips)
    sal = saliency_map(x)
    mixed, partner, lam = saliency_cutmix(x, sal, gen(3), area_range=(0.3, 0.7))
    assert mixed.shape == x.shape and partner.shape == (n,) and lam.shape == (n,)
    assert torch.all(partner != torch.arange(n))  # nobody is mixed with itself
    assert sorted(partner.tolist()) == list(range(n))
    assert lam.min() >= 0 and lam.max() <= 1
    for i in range(n):
        j = partner[i].item()
        changed = (mixed[i] != x[i]).any(dim=0)  # (T, H, W)
        assert torch.equal(changed, changed[:1].expand_as(changed))  # same box in every frame
        box = changed[0]
        rows, cols = box.any(1).nonzero(), box.any(0).nonzero()
        assert box.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert torch.equal(mixed[i][:, :, box], x[j][:, :, box])  # pasted from the partner
        assert 0.25 <= 1 - box.float().mean() <= 0.75
        # the box holds the partner's motion: most of its saliency above the floor is inside
        excess = sal[j, 0] - 0.2
        inside = excess[:, box].sum() / excess.sum()
        assert inside > 0.7 and inside > 1.3 * box.float().mean()


def timecode_clips(n: int, t: int = T) -> torch.Tensor:
    """Clips whose frame f has every pixel equal to f / t: the output tells which frame it is."""
    return (torch.arange(t, dtype=torch.float32) / t).view(1, 1, t, 1, 1).expand(n, 1, t, 4, 4)


def test_temporal_salient_crop_keeps_the_burst_window_at_its_own_speed():
    n = 48
    clip, _ = square_clip(burst_positions())
    weights = frame_weights(clip).expand(n, T)
    out = temporal_salient_crop(timecode_clips(n), weights, gen(2), min_fraction=0.5)
    frames = out[:, 0, :, 0, 0] * T  # source frame index of every output frame, (n, T)
    assert torch.equal(out, out[:, :, :, :1, :1].expand_as(out))  # whole frames, no blending
    torch.testing.assert_close(frames, frames.round())  # every output frame is a source frame
    steps = (frames[:, 1:] - frames[:, :-1]).round()
    assert set(steps.unique().tolist()) <= {0.0, 1.0}  # original speed or held; never reversed
    # the moving steps are one run: a window of consecutive frames, held frames only around it
    for row in steps:
        moving = row.nonzero().flatten()
        assert torch.equal(moving, torch.arange(moving[0], moving[-1] + 1))
    lengths = steps.sum(dim=1) + 1
    assert torch.all(lengths >= T / 2)  # L >= min_fraction * T
    assert len(set(lengths.tolist())) > 1  # random lengths
    first, last = frames.amin(dim=1), frames.amax(dim=1)
    assert torch.all(first <= 5) and torch.all(last >= 8)  # the burst is kept
    offsets = (steps != 0).int().argmax(dim=1)  # output position where the window starts
    assert len(set(offsets.tolist())) > 1  # placed at random offsets
    full = temporal_salient_crop(timecode_clips(n), weights, gen(2), min_fraction=1.0)
    torch.testing.assert_close(full, timecode_clips(n))


def test_tsgfa_temporal_crop_keeps_speed_inside_the_whole_view():
    n = 16
    x = timecode_clips(n).expand(n, 3, T, 4, 4).contiguous()
    cfg = TSGFAConfig(p_crop=0.0, p_mix=0.0, p_temporal=1.0)
    still = AugmentConfig(crop_scale=(1.0, 1.0), translate=0.0, brightness=0.0, contrast=0.0)
    out, _, _ = tsgfa_augment(x, gen(4), cfg, still)
    steps = ((out[:, 0, 1:, 0, 0] - out[:, 0, :-1, 0, 0]) * T).round()
    assert set(steps.unique().tolist()) == {0.0, 1.0}


def test_tsgfa_augment_policy_outputs():
    x = torch.cat([square_clip(burst_positions(), seed=s)[0] for s in range(4)])
    out, partner, lam = tsgfa_augment(x, gen(), TSGFAConfig(p_mix=0.0))
    assert out.shape == x.shape and partner is None and lam is None
    assert out.min() >= 0 and out.max() <= 1
    cfg = TSGFAConfig(p_crop=1.0, p_mix=1.0, p_temporal=1.0, saliency=SaliencyConfig(k=2))
    out, partner, lam = tsgfa_augment(x, gen(), cfg)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.all(partner != torch.arange(4)) and torch.all((lam >= 0) & (lam <= 1))
    x.requires_grad_(True)
    assert not tsgfa_augment(x, gen())[0].requires_grad


@pytest.mark.parametrize(
    "base",
    [
        AugmentConfig(),
        AugmentConfig(flip=True, brightness=0.5),
        AugmentConfig(crop_scale=(1.0, 1.0), translate=0.0),
    ],
)
def test_tsgfa_with_every_op_off_is_exactly_the_base_augmentation(base):
    x = torch.rand(6, 3, 8, H, W, generator=gen())
    off = TSGFAConfig(p_crop=0.0, p_mix=0.0, p_temporal=0.0)
    out, partner, lam = tsgfa_augment(x, gen(9), off, base)
    assert torch.equal(out, student_augment(x, gen(9), base))
    assert partner is None and lam is None


def test_tsgfa_adds_to_the_base_augmentation_instead_of_replacing_it():
    # the temporal crop cannot change a clip of identical frames, so what is left is the base
    x = frozen_clips()
    only_time = TSGFAConfig(p_crop=0.0, p_mix=0.0, p_temporal=1.0)
    torch.testing.assert_close(tsgfa_augment(x, gen(3), only_time)[0], student_augment(x, gen(3)))
    # a saliency crop acts inside the base window: a static clip has a uniform centre and the
    # view still differs from both the clip and the base view alone
    only_crop = TSGFAConfig(p_crop=1.0, p_mix=0.0, p_temporal=0.0)
    cropped = tsgfa_augment(x, gen(3), only_crop)[0]
    assert frames_identical(cropped)
    assert not torch.allclose(cropped, student_augment(x, gen(3)), atol=1e-3)


def test_tsgfa_config_is_frozen_and_hashable():
    cfg = TSGFAConfig()
    assert hash(cfg) == hash(TSGFAConfig()) and cfg == TSGFAConfig()
    assert {cfg: 1}[TSGFAConfig()] == 1
    with pytest.raises(AttributeError):
        cfg.p_mix = 0.0  # type: ignore[misc]


def box_saliency(boxes: list[tuple[int, int, int, int]], floor: float = 0.2) -> torch.Tensor:
    """(N, 1, T, H, W) saliency at `floor`, rising to 1 inside each clip's (y0, y1, x0, x1) box."""
    sal = torch.full((len(boxes), 1, T, H, W), floor)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        sal[i, :, :, y0:y1, x0:x1] = 1.0
    return sal


def pasted_box(mixed: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
    """(H, W) mask of the pixels a cutmix replaced (the same in every frame and channel)."""
    return (mixed != clip).any(dim=0).any(dim=0)


def test_cutmix_lam_is_the_own_share_of_visible_saliency_mass():
    # two clips of distinct flat colours; each moves in its own known region
    x = torch.stack([torch.full((3, T, H, W), 0.1), torch.full((3, T, H, W), 0.9)])
    sal = box_saliency([(2, 10, 2, 10), (16, 28, 12, 30)])
    mixed, partner, lam = saliency_cutmix(x, sal, gen(5), area_range=(0.5, 0.5))
    assert partner.tolist() == [1, 0]
    excess = sal - 0.2  # above each clip's floor
    for i in range(2):
        box = pasted_box(mixed[i], x[i])
        own = excess[i][:, :, ~box].sum()
        other = excess[1 - i][:, :, box].sum()
        torch.testing.assert_close(lam[i], own / (own + other))
    # the saliency-drawn box covers much of the partner's motion, so the partner weighs more
    # than the area it covers (a half), and the label is not the area
    box0 = pasted_box(mixed[0], x[0])
    assert abs(lam[0] - (1 - box0.float().mean())) > 0.05


def test_cutmix_lam_without_own_motion_is_zero_and_without_any_motion_the_area():
    x = torch.stack([torch.full((3, T, H, W), 0.1), torch.full((3, T, H, W), 0.9)])
    moving_partner = box_saliency([(0, 0, 0, 0), (16, 20, 16, 20)])  # clip 0 static
    _, _, lam = saliency_cutmix(x, moving_partner, gen(1), area_range=(0.6, 0.6))
    assert lam[0] == 0.0  # all visible motion is the partner's
    still = box_saliency([(0, 0, 0, 0), (0, 0, 0, 0)])
    mixed, _, lam = saliency_cutmix(x, still, gen(1), area_range=(0.6, 0.6))
    for i in range(2):
        torch.testing.assert_close(lam[i], 1 - pasted_box(mixed[i], x[i]).float().mean())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: AugmentConfig(crop_scale=(0.0, 1.0)), "crop_scale"),
        (lambda: AugmentConfig(translate=-0.1), "translate"),
        (lambda: TSGFAConfig(p_mix=1.5), "p_mix"),
        (lambda: TSGFAConfig(min_fraction=0.0), "min_fraction"),
        (lambda: TSGFAConfig(mix_area=(0.8, 0.2)), "mix_area"),
        (lambda: diff_augment(torch.rand(3, T, H, W), gen()), "N, C, T, H, W"),
        (lambda: saliency_crop(frozen_clips(), torch.rand(4, T, H, W), gen()), "saliency"),
        (lambda: temporal_salient_crop(frozen_clips(), torch.rand(4, T - 1), gen()), "weights"),
        (lambda: random_resized_crop(frozen_clips(), (0.5, 1.2), gen()), "scale"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()

"""TSGF: frame differences, smoothing, normalisation, floor, and the two TSGFO operators."""

from __future__ import annotations

import pytest
import torch

from tsgd_core.training.saliency import (
    SaliencyConfig,
    frame_differences,
    frame_weights,
    lowpass_time,
    modulate_gradient,
    saliency_map,
    smooth_time,
    temporal_kernel,
    weights_per_frame,
    window_correlation,
)

T, H, W, SIDE = 16, 32, 32, 6


def textured_clip(
    positions: list[tuple[int, int]], shake: int = 0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured square at positions[t] over a textured still background, (1, 3, T, H, W).

    With shake > 0 the camera jitters: every frame sees the background shifted by a random
    offset in [-shake, shake] pixels. Also returns the square's mask (T, H, W).
    """
    g = torch.Generator().manual_seed(seed)
    pad = 4
    background = torch.rand(3, H + 2 * pad, W + 2 * pad, generator=g) * 0.5
    texture = 0.5 + 0.5 * torch.rand(3, SIDE, SIDE, generator=g)
    frames, masks = [], []
    for y, x in positions:
        dy, dx = (torch.randint(-shake, shake + 1, (2,), generator=g).tolist()) if shake else (0, 0)
        frame = background[:, pad + dy : pad + dy + H, pad + dx : pad + dx + W].clone()
        frame[:, y : y + SIDE, x : x + SIDE] = texture
        mask = torch.zeros(H, W)
        mask[y : y + SIDE, x : x + SIDE] = 1
        frames.append(frame)
        masks.append(mask)
    return torch.stack(frames, 1)[None], torch.stack(masks)


def sweep_positions() -> list[tuple[int, int]]:
    """The square crosses the frame left to right along a band of rows."""
    return [(12, 1 + round(t * (W - SIDE - 2) / (T - 1))) for t in range(T)]


def burst_positions() -> list[tuple[int, int]]:
    """The square sits still except in frames 5-8, where it jumps to a new place every frame."""
    home = (2, 2)
    jumps = {5: (20, 4), 6: (4, 22), 7: (22, 22), 8: (12, 12)}
    return [jumps.get(t, home) for t in range(T)]


def inside_outside_ratio(clip: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean W' on the square (where it is in each frame) over mean W' away from its path."""
    sal = saliency_map(clip)[0, 0]
    swept = mask.amax(0, keepdim=True).expand_as(mask)
    far = torch.nn.functional.max_pool2d(swept[:1][None], 7, 1, 3)[0].expand_as(mask) == 0
    return (sal[mask > 0].mean() / sal[far].mean()).item()


def test_frame_differences_values_and_symmetric_extension():
    values = torch.tensor([0.0, 0.1, 0.3, 0.3])  # diffs 0.1, 0.2, 0.0
    clip = values.view(1, 1, 4, 1, 1).expand(1, 2, 4, 3, 3)
    d = frame_differences(clip)
    assert d.shape == (1, 1, 4, 3, 3)
    torch.testing.assert_close(d[0, 0, :, 1, 1], torch.tensor([0.1, 0.15, 0.1, 0.0]))
    assert torch.equal(frame_differences(torch.rand(2, 3, 1, 4, 4)), torch.zeros(2, 1, 1, 4, 4))


def test_kernel_sums_to_one_symmetric_and_shaped():
    for alpha in ("uniform", "gaussian"):
        for k in (0, 1, 2, 4):
            kern = temporal_kernel(k, alpha)
            assert kern.shape == (2 * k + 1,)
            torch.testing.assert_close(kern.sum(), torch.tensor(1.0))
            torch.testing.assert_close(kern, kern.flip(0))
    gauss = temporal_kernel(3, "gaussian")
    assert gauss.argmax().item() == 3 and (gauss[3] > gauss[2] > gauss[1] > gauss[0])
    torch.testing.assert_close(temporal_kernel(3, "uniform"), torch.full((7,), 1 / 7))
    assert torch.equal(temporal_kernel(0, "gaussian"), torch.tensor([1.0]))
    # sigma: default max(k/2, 0.5); a wider sigma flattens the kernel
    assert temporal_kernel(2, "gaussian", sigma=10.0)[0] > temporal_kernel(2, "gaussian")[0]


def test_smooth_time_constant_impulse_and_identity():
    const = torch.full((2, 3, 9, 4, 5), 0.7)
    torch.testing.assert_close(smooth_time(const, temporal_kernel(2, "gaussian")), const)
    impulse = torch.zeros(1, 1, 9, 1, 1)
    impulse[0, 0, 4] = 1.0
    kern = temporal_kernel(2, "gaussian")
    torch.testing.assert_close(smooth_time(impulse, kern)[0, 0, 2:7, 0, 0], kern.flip(0))
    x = torch.rand(2, 3, 5, 4, 4)
    assert torch.equal(smooth_time(x, temporal_kernel(0, "uniform")), x)
    short = torch.rand(1, 1, 2, 3, 3)  # window wider than the clip: replicate padding copes
    assert smooth_time(short, temporal_kernel(3, "uniform")).shape == short.shape


def test_k0_means_no_smoothing():
    clip, _ = textured_clip(burst_positions())
    cfg = SaliencyConfig(k=0, spatial_pool=1, beta=0.0, eps=1e-3)
    d = frame_differences(clip)
    torch.testing.assert_close(saliency_map(clip, cfg), d / (d.max() + 1e-3))


def test_static_clip_gives_beta_everywhere_and_equal_frame_weights():
    frame = torch.rand(2, 3, 1, H, W)
    static = frame.expand(2, 3, T, H, W)
    cfg = SaliencyConfig(beta=0.25)
    sal = saliency_map(static, cfg)
    assert sal.shape == (2, 1, T, H, W)
    assert torch.equal(sal, torch.full_like(sal, 0.25))
    torch.testing.assert_close(frame_weights(static, cfg), torch.full((2, T), 0.25))


def test_range_and_no_gradient():
    clip, _ = textured_clip(sweep_positions())
    clip.requires_grad_(True)
    cfg = SaliencyConfig(beta=0.3)
    sal = saliency_map(clip, cfg)
    assert not sal.requires_grad
    assert sal.min() >= 0.3 - 1e-6 and sal.max() <= 1.0
    assert sal.max() > 0.95  # the peak reaches ~1 (eps is small next to real differences)


def test_moving_square_saliency_lies_on_its_path():
    clip, mask = textured_clip(sweep_positions())
    assert inside_outside_ratio(clip, mask) > 2.5  # measured 3.0; far from the path W' = beta


def test_motion_burst_gets_the_largest_frame_weights():
    clip, _ = textured_clip(burst_positions())
    for cfg in (SaliencyConfig(), SaliencyConfig(k=0), SaliencyConfig(k=2, alpha="uniform")):
        w = frame_weights(clip, cfg)[0]
        assert set(w.topk(4).indices.tolist()) == {5, 6, 7, 8}, cfg
    # Still frames sit exactly on the floor. A small object lifts its frames' spatial mean only a
    # little above it (here ~0.25 vs 0.2): per-frame weights are a mild contrast by nature.
    w = frame_weights(clip)[0]
    torch.testing.assert_close(w[:3], torch.full((3,), 0.2))
    assert w[5:9].min() - 0.2 > 0.04
    assert w[5:9].min() - 0.2 > 1.5 * (w[[4, 9]].max() - 0.2)


def test_camera_shake_spreads_saliency_over_the_background():
    """Known weakness, shown on purpose: a shaken camera makes frame differences fire on the
    whole textured background, so the moving square no longer stands out."""
    still_clip, mask = textured_clip(sweep_positions(), shake=0)
    shaken_clip, _ = textured_clip(sweep_positions(), shake=2)
    still = inside_outside_ratio(still_clip, mask)
    shaken = inside_outside_ratio(shaken_clip, mask)
    assert shaken < 0.5 * still
    assert shaken < 1.6  # the square is barely more salient than the background


def test_modulate_gradient_pixel_and_frame():
    grad = torch.randn(2, 3, T, H, W)
    clip = torch.cat([textured_clip(sweep_positions())[0], textured_clip(burst_positions())[0]])
    sal = saliency_map(clip)
    pixel = modulate_gradient(grad, sal, "pixel")
    torch.testing.assert_close(pixel, grad * sal.expand_as(grad))
    frame = modulate_gradient(grad, sal, "frame")
    w = sal.mean(dim=(1, 3, 4))
    torch.testing.assert_close(frame, grad * w[:, None, :, None, None])
    torch.testing.assert_close(modulate_gradient(grad, w, "frame"), frame)
    # per-frame scaling is constant within a frame; per-pixel scaling is not
    ratio = frame[:, 0, 0] / grad[:, 0, 0]
    torch.testing.assert_close(ratio, ratio[:, :1, :1].expand_as(ratio))
    with pytest.raises(ValueError, match="mode"):
        modulate_gradient(grad, sal, "region")
    with pytest.raises(ValueError, match="saliency"):
        modulate_gradient(grad, sal[:, :, :-1], "pixel")


def test_frame_norm_max_renormalises_the_frame_weights_across_frames():
    clip, _ = textured_clip(burst_positions())
    plain = frame_weights(clip)[0]
    renormalised = frame_weights(clip, SaliencyConfig(frame_norm="max"))[0]
    # the busiest frame gets 1, still frames keep the floor, the ranking is unchanged
    assert renormalised.max().item() == pytest.approx(1.0)
    torch.testing.assert_close(renormalised[:3], torch.full((3,), 0.2))
    assert torch.equal(renormalised.argsort(), plain.argsort())
    above_floor = (plain - 0.2) / (plain.max() - 0.2)
    torch.testing.assert_close(renormalised, 0.2 + 0.8 * above_floor)
    assert plain.max() < 0.3  # "clip": a small object barely lifts its frames' spatial mean
    # a still clip keeps the floor everywhere
    static = torch.rand(1, 3, 1, H, W).expand(1, 3, T, H, W)
    cfg = SaliencyConfig(frame_norm="max", beta=0.25)
    torch.testing.assert_close(frame_weights(static, cfg), torch.full((1, T), 0.25))
    assert (frame_weights(clip, SaliencyConfig(frame_norm="max", beta=1.0)) == 1.0).all()


def test_modulate_gradient_frame_mode_follows_frame_norm():
    grad = torch.randn(2, 3, T, H, W)
    clip = torch.cat([textured_clip(sweep_positions())[0], textured_clip(burst_positions())[0]])
    cfg = SaliencyConfig(frame_norm="max")
    sal = saliency_map(clip, cfg)
    w = frame_weights(clip, cfg)
    torch.testing.assert_close(weights_per_frame(sal, cfg), w)
    frame = modulate_gradient(grad, sal, "frame", cfg)
    torch.testing.assert_close(frame, grad * w[:, None, :, None, None])
    # pixel mode does not depend on frame_norm
    torch.testing.assert_close(modulate_gradient(grad, sal, "pixel", cfg), grad * sal)
    with pytest.raises(ValueError, match="frame_norm"):
        SaliencyConfig(frame_norm="peak")


def test_window_correlation_is_pearson_per_clip_and_nan_when_flat():
    mask = torch.tensor([[0, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1]]).float()
    weights = torch.tensor(
        [[0.2, 0.9, 0.8, 0.2], [0.1, 0.2, 0.9, 0.9], [0.3, 0.5, 0.4, 0.2], [0.5, 0.5, 0.5, 0.5]]
    )
    corr = window_correlation(weights, mask)
    expected = torch.corrcoef(torch.stack([weights[0], mask[0]]))[0, 1]
    torch.testing.assert_close(corr[0], expected)
    assert corr[1] < -0.9  # weights high where the mask is 0
    assert corr[2:].isnan().all()  # constant mask, constant weights: nothing to correlate
    torch.testing.assert_close(window_correlation(3 * weights + 1, mask)[:2], corr[:2])
    with pytest.raises(ValueError, match="N, T"):
        window_correlation(weights, mask[:, :3])


def test_lowpass_time_keeps_constants_and_damps_flicker():
    cfg = SaliencyConfig(k=1, alpha="uniform")
    spatial = torch.randn(2, 3, 1, 8, 8)
    constant = spatial.expand(2, 3, 10, 8, 8)
    torch.testing.assert_close(lowpass_time(constant, cfg), constant)
    flicker = spatial * (-1.0) ** torch.arange(10).view(1, 1, 10, 1, 1)
    smoothed = lowpass_time(flicker, cfg)
    assert smoothed.shape == flicker.shape
    assert smoothed[:, :, 1:-1].abs().mean() < 0.4 * flicker.abs().mean()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": -1}, "k must be"),
        ({"alpha": "box"}, "alpha must be"),
        ({"eps": 0.0}, "eps must be"),
        ({"beta": 1.5}, "beta must be"),
        ({"beta": -0.1}, "beta must be"),
        ({"spatial_pool": 2}, "spatial_pool"),
        ({"spatial_pool": 0}, "spatial_pool"),
        ({"sigma": 0.0}, "sigma"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SaliencyConfig(**kwargs)


def test_wrong_rank_raises():
    with pytest.raises(ValueError, match="N, C, T, H, W"):
        saliency_map(torch.rand(3, T, H, W))
    with pytest.raises(ValueError, match="kernel"):
        smooth_time(torch.rand(1, 1, 4, 2, 2), torch.ones(2) / 2)

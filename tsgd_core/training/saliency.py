"""Temporal Saliency-Guided Filter (TSGF): where and when a clip moves, as weights in [beta, 1].

For a batch of clips x (N, C, T, H, W) with frames x_1..x_T:

* inter-frame difference  D_t = mean_c |x_{t+1} - x_t|  (t = 1..T-1), extended to T frames
  symmetrically: each frame gets the average of its differences to both neighbours, the two
  end frames use their single neighbour;
* temporal smoothing      S_t = sum_{j=-k..k} alpha_j D_{t+j}  (weights sum to 1, replicate padding),
  then an optional small spatial average pool so saliency marks regions, not single pixels;
* normalisation           W = S / (max(S) + eps), per clip (max over T, H, W), in [0, 1];
* floor                   W' = beta + (1 - beta) W, so static content still gets some update.

Per-frame weights w_t (`frame_weights`, and `modulate_gradient` in "frame" mode), by `frame_norm`:
* "clip": w_t = spatial mean of W'. Normalised by the whole clip's peak and diluted by the many
  still pixels, it spans a narrow range (e.g. 0.36-0.39 on a clip that moves for 3 of 8 frames);
* "max":  w_t = beta + (1 - beta) m_t / max_t m_t, with m_t the spatial mean of W (before the
  floor): renormalised across frames, so the clip's busiest frame gets 1. (The same formula on
  the floored w_t would hardly widen the range: w_t / max_t w_t stays above beta.)
Both are affine in m_t per clip, so they rank frames alike (same `window_correlation`).

The saliency W' is used two ways: TSGFO multiplies the pixel gradient of a synthetic clip by it
(`modulate_gradient`, optionally followed by `lowpass_time`), and TSGFA places student-time
augmentations by it (see `tsgd_core.training.augment`).

Known weakness, on purpose not hidden: raw frame differences cannot tell object motion from camera
motion. A globally shaken camera makes D fire over the whole textured background, so W' spreads
out and loses the moving object (tests/test_saliency.py measures this).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

ALPHAS = ("uniform", "gaussian")
MODES = ("pixel", "frame")
FRAME_NORMS = ("clip", "max")


@dataclass(frozen=True)
class SaliencyConfig:
    """Parameters of the TSGF (see the module docstring for the formulas)."""

    k: int = 1  # temporal half-window; smoothing window 2k+1 (k=0: no smoothing)
    alpha: str = "gaussian"  # "uniform" | "gaussian" smoothing weights (sum to 1)
    sigma: float | None = None  # gaussian std in frames; None -> max(k / 2, 0.5)
    eps: float = 1e-3  # same scale as S: mean |diff| in [0, 1] pixel units
    beta: float = 0.2  # floor: W' = beta + (1 - beta) W
    spatial_pool: int = 3  # odd average-pool kernel over H, W (1 = off), stride 1, same size
    frame_norm: str = "clip"  # per-frame weights: "clip" (mean of W') | "max" (renormalised over T)

    def __post_init__(self) -> None:
        _check_kernel_args(self.k, self.alpha, self.sigma)
        if not self.eps > 0:
            raise ValueError(
                f"eps must be > 0 (it keeps W = S / (max S + eps) finite), got {self.eps}"
            )
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1] (the floor of W'), got {self.beta}")
        if self.spatial_pool < 1 or self.spatial_pool % 2 == 0:
            raise ValueError(
                f"spatial_pool must be an odd integer >= 1 (1 = off), got {self.spatial_pool}"
            )
        if self.frame_norm not in FRAME_NORMS:
            raise ValueError(f"frame_norm must be one of {FRAME_NORMS}, got {self.frame_norm!r}")


def _check_kernel_args(k: int, alpha: str, sigma: float | None) -> None:
    if k < 0:
        raise ValueError(f"k must be >= 0 (temporal half-window; 0 = no smoothing), got {k}")
    if alpha not in ALPHAS:
        raise ValueError(f"alpha must be one of {ALPHAS}, got {alpha!r}")
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be > 0 or None (None -> max(k / 2, 0.5)), got {sigma}")


def _check_clips(x: Tensor, name: str = "clips") -> None:
    if x.ndim != 5:
        raise ValueError(f"{name} must be (N, C, T, H, W), got shape {tuple(x.shape)}")


def frame_differences(clips: Tensor) -> Tensor:
    """D: (N, C, T, H, W) -> (N, 1, T, H, W) mean-over-channel |frame difference|, T frames long."""
    _check_clips(clips)
    n, _, t, h, w = clips.shape
    if t == 1:
        return clips.new_zeros(n, 1, 1, h, w)
    diffs = (clips[:, :, 1:] - clips[:, :, :-1]).abs().mean(dim=1, keepdim=True)  # T-1 diffs
    # Frame t touches diffs t-1 (to its predecessor) and t (to its successor); ends have one.
    before = torch.cat([diffs[:, :, :1], diffs], dim=2)
    after = torch.cat([diffs, diffs[:, :, -1:]], dim=2)
    return 0.5 * (before + after)


def temporal_kernel(k: int, alpha: str, sigma: float | None = None) -> Tensor:
    """Smoothing weights alpha_{-k..k}, shape (2k+1,), summing to 1."""
    _check_kernel_args(k, alpha, sigma)
    offsets = torch.arange(-k, k + 1, dtype=torch.float32)
    if alpha == "uniform":
        weights = torch.ones_like(offsets)
    else:
        s = sigma if sigma is not None else max(k / 2, 0.5)
        weights = torch.exp(-0.5 * (offsets / s) ** 2)
    return weights / weights.sum()


def smooth_time(x: Tensor, kernel: Tensor) -> Tensor:
    """Convolve every (N, C, T, H, W) series along T with `kernel` (odd length), replicate padding."""
    _check_clips(x, "x")
    if kernel.ndim != 1 or kernel.numel() % 2 == 0:
        raise ValueError(f"kernel must be 1-D with odd length, got shape {tuple(kernel.shape)}")
    k = kernel.numel() // 2
    t = x.shape[2]
    kernel = kernel.to(device=x.device, dtype=x.dtype)
    frames = torch.arange(t, device=x.device)
    out = torch.zeros_like(x)
    for j in range(-k, k + 1):  # 2k+1 shifted copies; clamping the index = replicate padding
        out = out + kernel[j + k] * x.index_select(2, (frames + j).clamp(0, t - 1))
    return out


def saliency_map(clips: Tensor, cfg: SaliencyConfig = SaliencyConfig()) -> Tensor:
    """W' (N, 1, T, H, W) in [beta, 1]; a constant clip gives beta everywhere. Carries no gradient."""
    _check_clips(clips)
    with torch.no_grad():
        d = frame_differences(clips.detach())
        s = smooth_time(d, temporal_kernel(cfg.k, cfg.alpha, cfg.sigma))
        if cfg.spatial_pool > 1:
            p = cfg.spatial_pool
            s = F.avg_pool3d(
                s, (1, p, p), stride=1, padding=(0, p // 2, p // 2), count_include_pad=False
            )
        peak = s.amax(dim=(1, 2, 3, 4), keepdim=True)
        w = s / (peak + cfg.eps)
        return cfg.beta + (1.0 - cfg.beta) * w


def frame_weights(clips: Tensor, cfg: SaliencyConfig = SaliencyConfig()) -> Tensor:
    """Per-frame weights w_t (N, T) in [beta, 1], normalised as `cfg.frame_norm` says."""
    return weights_per_frame(saliency_map(clips, cfg), cfg)


def weights_per_frame(saliency: Tensor, cfg: SaliencyConfig = SaliencyConfig()) -> Tensor:
    """w_t (N, T) from a W' map (N, 1, T, H, W) made with the same `cfg` (its beta)."""
    mean = saliency.mean(dim=(1, 3, 4))
    if cfg.frame_norm == "clip" or cfg.beta >= 1.0:
        return mean
    m = (mean - cfg.beta) / (1.0 - cfg.beta)  # spatial mean of W, before the floor
    peak = m.amax(dim=1, keepdim=True)
    # a still clip (m = 0 everywhere) keeps the floor, like W' itself
    relative = torch.where(peak > 0, m / peak.clamp(min=torch.finfo(m.dtype).tiny), 0.0)
    return cfg.beta + (1.0 - cfg.beta) * relative


def window_correlation(weights: Tensor, mask: Tensor) -> Tensor:
    """Pearson correlation (N,) over frames between per-frame weights (N, T) and an event mask (N, T).

    How well w_t finds when each clip moves. A clip whose weights or mask are constant over its
    frames (no contrast to correlate, e.g. a mask of all ones) gets nan; average with nanmean.
    """
    if weights.ndim != 2 or weights.shape != mask.shape:
        raise ValueError(
            f"weights and mask must both be (N, T), got {tuple(weights.shape)} "
            f"and {tuple(mask.shape)}"
        )
    flat = (weights == weights[:, :1]).all(1) | (mask == mask[:, :1]).all(1)
    w = weights.double() - weights.double().mean(dim=1, keepdim=True)
    m = mask.double() - mask.double().mean(dim=1, keepdim=True)
    denominator = (w.square().sum(1) * m.square().sum(1)).sqrt()
    corr = (w * m).sum(1) / denominator.masked_fill(flat, 1.0)
    return corr.masked_fill(flat, float("nan")).to(weights.dtype)


def modulate_gradient(
    grad: Tensor, saliency: Tensor, mode: str = "pixel", cfg: SaliencyConfig = SaliencyConfig()
) -> Tensor:
    """TSGFO: scale a clip gradient (N, C, T, H, W) by W' per pixel or by w_t per frame.

    `saliency` is the (N, 1, T, H, W) map of `saliency_map(..., cfg)`; in "frame" mode its
    per-frame weights follow `cfg.frame_norm` (see `weights_per_frame`), and a (N, T) tensor of
    frame weights is accepted as well (used as given).
    """
    _check_clips(grad, "grad")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    n, _, t, h, w = grad.shape
    if mode == "frame" and saliency.shape == (n, t):
        return grad * saliency.to(grad.dtype).view(n, 1, t, 1, 1)
    if saliency.shape != (n, 1, t, h, w):
        raise ValueError(
            f"saliency must be (N, 1, T, H, W) = {(n, 1, t, h, w)} to match grad, "
            f"got {tuple(saliency.shape)}"
        )
    if mode == "frame":
        saliency = weights_per_frame(saliency, cfg).view(n, 1, t, 1, 1)
    return grad * saliency.to(grad.dtype)


def lowpass_time(grad: Tensor, cfg: SaliencyConfig) -> Tensor:
    """Temporal low-pass of an update with the saliency smoothing kernel (keeps constants)."""
    return smooth_time(grad, temporal_kernel(cfg.k, cfg.alpha, cfg.sigma))


__all__ = [
    "SaliencyConfig",
    "frame_differences",
    "temporal_kernel",
    "smooth_time",
    "saliency_map",
    "frame_weights",
    "weights_per_frame",
    "window_correlation",
    "modulate_gradient",
    "lowpass_time",
]

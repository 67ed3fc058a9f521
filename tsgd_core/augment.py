"""Video augmentation that keeps temporal continuity, and its saliency-guided variant (TSGFA).

Every transform acts on float clips (N, C, T, H, W) and applies ONE spatial transform to all
frames of a clip: the (C, T) axes are folded into channels and sampled together with
`affine_grid` / `grid_sample` (batched and differentiable). Per-clip random parameters come
from the `torch.Generator` passed in, so the same seed gives the same views.

Domain warning: in motion-defined classes a horizontal flip turns "moves left" into "moves right"
and "clockwise" into "counter-clockwise", and time reversal does the same for every direction
class. Both change the label, so time is never reversed here and `AugmentConfig.flip` is off by
default; switch it on only for datasets whose classes are mirror-symmetric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from .saliency import SaliencyConfig, saliency_map


@dataclass(frozen=True)
class AugmentConfig:
    """Random spatial + photometric jitter, the same for every frame of a clip."""

    crop_scale: tuple[float, float] = (0.6, 1.0)  # area fraction of a random resized crop
    translate: float = 0.125  # max shift as a fraction of the size
    brightness: float = 0.2  # additive jitter in [-b, b]
    contrast: float = 0.2  # contrast factor in [1 - c, 1 + c] around the clip mean
    flip: bool = False  # horizontal flip: changes direction labels, see the module docstring

    def __post_init__(self) -> None:
        _check_range(self.crop_scale, "crop_scale", low_open=True)
        for name in ("translate", "brightness", "contrast"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class TSGFAConfig:
    """Student-time saliency-guided augmentation policy: probabilities are per clip."""

    p_crop: float = 0.5  # saliency-placed spatial crop
    p_mix: float = 0.3  # saliency cutmix with a partner clip
    p_temporal: float = 0.3  # temporal crop around the high-motion segment
    crop_scale: tuple[float, float] = (0.5, 0.9)
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)

    def __post_init__(self) -> None:
        for name in ("p_crop", "p_mix", "p_temporal"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"{name} must be a probability in [0, 1], got {getattr(self, name)}"
                )
        _check_range(self.crop_scale, "crop_scale", low_open=True)


def _check_range(r: tuple[float, float], name: str, low_open: bool = False) -> None:
    lo, hi = r
    ok_lo = lo > 0 if low_open else lo >= 0
    if not (ok_lo and lo <= hi <= 1):
        raise ValueError(f"{name} must be (low, high) with 0 < low <= high <= 1, got {r}")


def _check_clips(clips: Tensor) -> None:
    if clips.ndim != 5:
        raise ValueError(f"clips must be (N, C, T, H, W), got shape {tuple(clips.shape)}")


def _check_saliency(clips: Tensor, saliency: Tensor) -> None:
    n, _, t, h, w = clips.shape
    if saliency.shape != (n, 1, t, h, w):
        raise ValueError(
            f"saliency must be (N, 1, T, H, W) = {(n, 1, t, h, w)} (use saliency_map(clips)), "
            f"got {tuple(saliency.shape)}"
        )


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator, device=generator.device)


def _warp(clips: Tensor, theta: Tensor) -> Tensor:
    """Sample each clip through its (2, 3) affine `theta`, one transform for all (C, T) planes."""
    n, c, t, h, w = clips.shape
    theta = theta.to(device=clips.device, dtype=clips.dtype)
    grid = F.affine_grid(theta, [n, c * t, h, w], align_corners=False)
    planes = F.grid_sample(
        clips.reshape(n, c * t, h, w),
        grid,
        mode="bilinear",
        padding_mode="border",  # shifted-in borders repeat the edge instead of going black
        align_corners=False,
    )
    return planes.reshape(n, c, t, h, w)


def _theta(scale: Tensor, cx: Tensor, cy: Tensor, flip: Tensor | None = None) -> Tensor:
    """Affine maps output [-1, 1]^2 onto the window of side `scale` centred at (cx, cy)."""
    sx = scale if flip is None else scale * torch.where(flip, -1.0, 1.0)
    zero = torch.zeros_like(scale)
    return torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, scale, cy], 1)], 1)


def _random_window(
    n: int, scale: tuple[float, float], generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Side fraction sqrt(area) and a centre that keeps the window inside the frame."""
    side = _uniform(n, *scale, generator).sqrt()
    cx = (1 - side) * _uniform(n, -1.0, 1.0, generator)
    cy = (1 - side) * _uniform(n, -1.0, 1.0, generator)
    return side, cx, cy


def random_resized_crop(
    clips: Tensor, scale: tuple[float, float], generator: torch.Generator
) -> Tensor:
    """Crop a random window of area fraction in `scale` (same window for all frames), resize back."""
    _check_clips(clips)
    _check_range(scale, "scale", low_open=True)
    return _warp(clips, _theta(*_random_window(clips.shape[0], scale, generator)))


def _photometric(clips: Tensor, cfg: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Per-clip brightness offset and contrast factor around the clip mean."""
    n = clips.shape[0]
    b = _uniform(n, -cfg.brightness, cfg.brightness, generator).to(clips.device, clips.dtype)
    c = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, generator).to(clips.device, clips.dtype)
    b, c = b.view(n, 1, 1, 1, 1), c.view(n, 1, 1, 1, 1)
    mean = clips.mean(dim=(1, 2, 3, 4), keepdim=True)
    return (clips - mean) * c + mean + b


def _flip_draw(n: int, cfg: AugmentConfig, generator: torch.Generator) -> Tensor | None:
    return _uniform(n, 0.0, 1.0, generator) < 0.5 if cfg.flip else None


def diff_augment(
    clips: Tensor, generator: torch.Generator, cfg: AugmentConfig = AugmentConfig()
) -> Tensor:
    """Differentiable crop/translate (+ optional flip) and brightness/contrast; no clamping."""
    _check_clips(clips)
    n = clips.shape[0]
    side, cx, cy = _random_window(n, cfg.crop_scale, generator)
    shift = 2 * cfg.translate  # the frame spans 2 units in normalised coordinates
    cx = cx + _uniform(n, -shift, shift, generator)
    cy = cy + _uniform(n, -shift, shift, generator)
    out = _warp(clips, _theta(side, cx, cy, _flip_draw(n, cfg, generator)))
    return _photometric(out, cfg, generator)


def student_augment(
    clips: Tensor, generator: torch.Generator, cfg: AugmentConfig = AugmentConfig()
) -> Tensor:
    """The same ops as `diff_augment` for student training, clamped to [0, 1]."""
    return diff_augment(clips, generator, cfg).clamp(0.0, 1.0)


def _salient_centres(saliency: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Draw one (cx, cy) per clip, in normalised coordinates, from the time-averaged saliency.

    The floor beta is removed first (min over the frame subtracted): otherwise a small moving
    object would hold little of the probability mass next to a large static background. A
    static clip then has no preferred place and the centre is uniform.
    """
    n, _, _, h, w = saliency.shape
    avg = saliency.detach().mean(dim=(1, 2)).reshape(n, h * w).float().to(generator.device)
    mass = avg - avg.amin(dim=1, keepdim=True)
    flat = mass.sum(dim=1, keepdim=True) <= 1e-12
    mass = torch.where(flat, torch.ones_like(mass), mass)
    idx = torch.multinomial(mass, 1, generator=generator).squeeze(1)
    row, col = idx // w, idx % w
    cx = (2 * col.float() + 1) / w - 1  # pixel centre, align_corners=False convention
    cy = (2 * row.float() + 1) / h - 1
    return cx, cy


def saliency_crop(
    clips: Tensor,
    saliency: Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.5, 0.9),
) -> Tensor:
    """Crop (same window for all frames) centred on a salient pixel, resized back to (H, W).

    Clamping the centre to keep the window inside the frame moves the window towards the drawn
    pixel's side, so the drawn salient pixel always stays inside the crop.
    """
    _check_clips(clips)
    _check_saliency(clips, saliency)
    _check_range(scale, "scale", low_open=True)
    n = clips.shape[0]
    side = _uniform(n, *scale, generator).sqrt()
    cx, cy = _salient_centres(saliency, generator)
    cx = torch.maximum(torch.minimum(cx, 1 - side), side - 1)
    cy = torch.maximum(torch.minimum(cy, 1 - side), side - 1)
    return _warp(clips, _theta(side, cx, cy))


def _derangement(n: int, generator: torch.Generator) -> Tensor:
    """A random permutation without fixed points (n >= 2): a cycle through a shuffled order."""
    if n < 2:
        return torch.arange(n)
    order = torch.randperm(n, generator=generator, device=generator.device).cpu()
    partner = torch.empty(n, dtype=torch.long)
    partner[order] = order.roll(-1)
    return partner


def saliency_cutmix(
    clips: Tensor,
    saliency: Tensor,
    generator: torch.Generator,
    lam_range: tuple[float, float] = (0.3, 0.7),
) -> tuple[Tensor, Tensor, Tensor]:
    """Paste the salient box of a partner clip into each clip, at the same place, in all frames.

    The box has area (1 - lam) of the frame and is centred on a pixel drawn from the partner's
    time-averaged saliency, so what is pasted is the partner's moving region. Returns
    (mixed, partner_index (N,), lam (N,)); lam is the exact fraction of the original clip kept
    (after rounding the box to pixels), to mix labels as lam * y + (1 - lam) * y[partner].
    """
    _check_clips(clips)
    _check_saliency(clips, saliency)
    _check_range(lam_range, "lam_range")
    n, _, _, h, w = clips.shape
    dev = clips.device
    partner = _derangement(n, generator).to(dev)
    lam = _uniform(n, *lam_range, generator).to(dev)
    bh = (h * (1 - lam).sqrt()).round().long().clamp(0, h)
    bw = (w * (1 - lam).sqrt()).round().long().clamp(0, w)
    cx, cy = (v.to(dev) for v in _salient_centres(saliency[partner], generator))
    col = ((cx + 1) * w / 2).floor().long()  # pixel index of the drawn centre
    row = ((cy + 1) * h / 2).floor().long()
    x0 = (col - bw // 2).clamp(min=0)
    x0 = torch.minimum(x0, w - bw)
    y0 = (row - bh // 2).clamp(min=0)
    y0 = torch.minimum(y0, h - bh)
    rows, cols = torch.arange(h, device=dev), torch.arange(w, device=dev)
    in_rows = (rows[None] >= y0[:, None]) & (rows[None] < (y0 + bh)[:, None])
    in_cols = (cols[None] >= x0[:, None]) & (cols[None] < (x0 + bw)[:, None])
    box = in_rows[:, :, None] & in_cols[:, None, :]  # (N, H, W)
    mixed = torch.where(box[:, None, None], clips[partner], clips)
    kept = 1.0 - (bh * bw).float() / (h * w)
    return mixed, partner, kept.to(clips.dtype)


def temporal_salient_crop(
    clips: Tensor,
    weights: Tensor,
    generator: torch.Generator,
    min_fraction: float = 0.5,
    keep: float = 0.9,
) -> Tensor:
    """Keep a window of L consecutive frames around the highest motion, resampled back to T.

    L is drawn uniformly from [ceil(min_fraction * T), T]. Each window is scored by the sum of
    its frame weights above the clip's smallest weight; the start is drawn uniformly among the
    windows scoring at least `keep` times the best one (a static clip: any window). The window
    is stretched back to T frames by linear interpolation along time, never reversed.
    """
    _check_clips(clips)
    n, _, t, _, _ = clips.shape
    if weights.shape != (n, t):
        raise ValueError(f"weights must be (N, T) = {(n, t)}, got {tuple(weights.shape)}")
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    if not 0 <= keep <= 1:
        raise ValueError(f"keep must be in [0, 1], got {keep}")
    excess = weights.detach().float().cpu()
    excess = excess - excess.amin(dim=1, keepdim=True)
    csum = torch.cat([torch.zeros(n, 1), excess.cumsum(dim=1)], dim=1)
    l_min = max(1, math.ceil(min_fraction * t))
    lengths = torch.randint(l_min, t + 1, (n,), generator=generator, device=generator.device)
    starts = torch.empty(n)
    for i, length in enumerate(lengths.tolist()):  # one scalar choice per clip
        score = csum[i, length:] - csum[i, : t - length + 1]  # every start 0..T-L
        near_best = torch.nonzero(score >= keep * score.max() - 1e-12).flatten()
        pick = torch.randint(len(near_best), (1,), generator=generator, device=generator.device)
        starts[i] = near_best[pick.item()]
    step = (lengths.float().cpu() - 1) / max(t - 1, 1)
    pos = starts[:, None] + step[:, None] * torch.arange(t, dtype=torch.float32)[None]  # (N, T)
    lo = pos.floor().long().clamp(0, t - 1)
    hi = (lo + 1).clamp(max=t - 1)
    frac = (pos - lo.float()).to(device=clips.device, dtype=clips.dtype)
    frac = frac.view(n, 1, t, 1, 1)

    def take(index: Tensor) -> Tensor:
        return clips.gather(2, index.to(clips.device).view(n, 1, t, 1, 1).expand_as(clips))

    return take(lo) * (1 - frac) + take(hi) * frac


def tsgfa_augment(
    clips: Tensor,
    generator: torch.Generator,
    cfg: TSGFAConfig = TSGFAConfig(),
    base: AugmentConfig = AugmentConfig(),
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """TSGFA: saliency-placed temporal crop, spatial crop and cutmix, then photometric jitter.

    Each clip independently gets the temporal crop (p_temporal), the saliency crop (p_crop) and
    the cutmix (p_mix). The saliency map travels through the same temporal and spatial crops as
    the clip, so the cutmix box follows the partner's moving region as it is after cropping.
    Returns (augmented in [0, 1], partner_index, lam); the last two are None when no clip in the
    batch was mixed, else unmixed clips have partner = self and lam = 1.
    """
    _check_clips(clips)
    n, c = clips.shape[:2]
    with torch.no_grad():
        sal = saliency_map(clips, cfg.saliency)
        both = torch.cat([clips.detach(), sal.to(clips.dtype)], dim=1)

        chosen = _uniform(n, 0.0, 1.0, generator) < cfg.p_temporal
        if chosen.any():
            idx = chosen.nonzero().flatten().to(clips.device)
            w = sal[idx].mean(dim=(1, 3, 4))  # frame weights w_t of those clips
            both[idx] = temporal_salient_crop(both[idx], w, generator)

        chosen = _uniform(n, 0.0, 1.0, generator) < cfg.p_crop
        if chosen.any():
            idx = chosen.nonzero().flatten().to(clips.device)
            both[idx] = saliency_crop(both[idx], both[idx, c:], generator, cfg.crop_scale)

        out, sal = both[:, :c], both[:, c:]
        partner, lam = None, None
        chosen = (_uniform(n, 0.0, 1.0, generator) < cfg.p_mix).to(clips.device)
        if n > 1 and chosen.any():
            mixed, partner, lam = saliency_cutmix(out, sal, generator)
            out = torch.where(chosen.view(n, 1, 1, 1, 1), mixed, out)
            partner = torch.where(chosen, partner, torch.arange(n, device=clips.device))
            lam = torch.where(chosen, lam, torch.ones_like(lam))

        flip = _flip_draw(n, base, generator)
        if flip is not None:
            out = torch.where(flip.to(clips.device).view(n, 1, 1, 1, 1), out.flip(-1), out)
        out = _photometric(out, base, generator).clamp(0.0, 1.0)
    return out, partner, lam


__all__ = [
    "AugmentConfig",
    "TSGFAConfig",
    "random_resized_crop",
    "diff_augment",
    "student_augment",
    "saliency_crop",
    "saliency_cutmix",
    "temporal_salient_crop",
    "tsgfa_augment",
]

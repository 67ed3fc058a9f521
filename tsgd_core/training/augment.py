"""Video augmentation that keeps temporal continuity, and its saliency-guided variant (TSGFA).

Every transform acts on float clips (N, C, T, H, W) and applies ONE spatial transform to all
frames of a clip: the (C, T) axes are folded into channels and sampled together with
`affine_grid` / `grid_sample` (batched and differentiable). Per-clip random parameters come
from the `torch.Generator` passed in, so the same seed gives the same views.

Domain warning: in motion-defined classes a horizontal flip turns "moves left" into "moves right"
and "clockwise" into "counter-clockwise", and time reversal does the same for every direction
class. Both change the label, so time is never reversed here and `AugmentConfig.flip` is off by
default; switch it on only for datasets whose classes are mirror-symmetric.

TSGFA (`tsgfa_augment`) adds saliency-placed ops to the base augmentation, never replaces it:
a temporal crop that keeps the high-motion frames at their own speed, a spatial crop centred on
the motion, and a cutmix whose label weight is the share of visible motion each clip keeps.
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
    """Student-time saliency-guided augmentation (TSGFA), added on top of the base augmentation.

    Each probability is per clip and 0 switches that op off (all three at 0: exactly the base
    augmentation, for ablations). Defaults: a saliency crop for half the clips, a cutmix and a
    temporal crop for about a third each, so most views still show one whole clip at its own
    speed. The saliency window's area (0.6-1.0) multiplies the base window's (0.6-1.0 by
    default), so a combined view keeps at least about a third of the frame around the motion.
    """

    p_crop: float = 0.5  # saliency-placed spatial crop, composed with the base crop
    p_mix: float = 0.3  # saliency cutmix with a partner clip
    p_temporal: float = 0.3  # temporal crop around the high-motion segment (no stretching)
    crop_scale: tuple[float, float] = (0.6, 1.0)  # area fraction of the saliency window
    mix_area: tuple[float, float] = (0.3, 0.7)  # area fraction a mixed clip keeps of itself
    min_fraction: float = 0.5  # shortest kept temporal window, as a fraction of T
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)

    def __post_init__(self) -> None:
        for name in ("p_crop", "p_mix", "p_temporal"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"{name} must be a probability in [0, 1], got {getattr(self, name)}"
                )
        _check_range(self.crop_scale, "crop_scale", low_open=True)
        _check_range(self.mix_area, "mix_area")
        if not 0 < self.min_fraction <= 1:
            raise ValueError(f"min_fraction must be in (0, 1], got {self.min_fraction}")


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


@dataclass(frozen=True)
class _BaseDraw:
    """One clip batch's draws of the base augmentation: crop window + shift, flip, photometry."""

    theta: Tensor  # (N, 2, 3) affine of the crop/translate (and flip) window
    brightness: Tensor  # (N,) additive offset
    contrast: Tensor  # (N,) factor around the clip mean


def _draw_base(n: int, cfg: AugmentConfig, generator: torch.Generator) -> _BaseDraw:
    """All random draws of `diff_augment`, in its order, so sharing them reproduces it exactly."""
    side, cx, cy = _random_window(n, cfg.crop_scale, generator)
    shift = 2 * cfg.translate  # the frame spans 2 units in normalised coordinates
    cx = cx + _uniform(n, -shift, shift, generator)
    cy = cy + _uniform(n, -shift, shift, generator)
    theta = _theta(side, cx, cy, _flip_draw(n, cfg, generator))
    b = _uniform(n, -cfg.brightness, cfg.brightness, generator)
    c = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, generator)
    return _BaseDraw(theta, b, c)


def _photometric(clips: Tensor, brightness: Tensor, contrast: Tensor) -> Tensor:
    """Per-clip brightness offset and contrast factor around the clip mean."""
    n = clips.shape[0]
    b = brightness.to(clips.device, clips.dtype).view(n, 1, 1, 1, 1)
    c = contrast.to(clips.device, clips.dtype).view(n, 1, 1, 1, 1)
    mean = clips.mean(dim=(1, 2, 3, 4), keepdim=True)
    return (clips - mean) * c + mean + b


def _flip_draw(n: int, cfg: AugmentConfig, generator: torch.Generator) -> Tensor | None:
    return _uniform(n, 0.0, 1.0, generator) < 0.5 if cfg.flip else None


def diff_augment(
    clips: Tensor, generator: torch.Generator, cfg: AugmentConfig = AugmentConfig()
) -> Tensor:
    """Differentiable crop/translate (+ optional flip) and brightness/contrast; no clamping."""
    _check_clips(clips)
    draw = _draw_base(clips.shape[0], cfg, generator)
    return _photometric(_warp(clips, draw.theta), draw.brightness, draw.contrast)


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


def _saliency_theta(
    saliency: Tensor, generator: torch.Generator, scale: tuple[float, float]
) -> Tensor:
    """The (N, 2, 3) affine of a window of area fraction in `scale` centred on a salient pixel.

    Clamping the centre to keep the window inside the frame moves the window towards the drawn
    pixel's side, so the drawn salient pixel always stays inside the window.
    """
    side = _uniform(saliency.shape[0], *scale, generator).sqrt()
    cx, cy = _salient_centres(saliency, generator)
    cx = torch.maximum(torch.minimum(cx, 1 - side), side - 1)
    cy = torch.maximum(torch.minimum(cy, 1 - side), side - 1)
    return _theta(side, cx, cy)


def saliency_crop(
    clips: Tensor,
    saliency: Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.5, 0.9),
) -> Tensor:
    """Crop (same window for all frames) centred on a salient pixel, resized back to (H, W)."""
    _check_clips(clips)
    _check_saliency(clips, saliency)
    _check_range(scale, "scale", low_open=True)
    return _warp(clips, _saliency_theta(saliency, generator, scale))


def _compose(outer: Tensor, inner: Tensor) -> Tensor:
    """The affine of warping by `outer`, then warping that result by `inner`: outer o inner.

    `_warp(x, theta)` reads x at theta(u) for each output point u, so warping twice reads x at
    outer(inner(u)); one warp with the composition interpolates once instead of twice.
    """
    return torch.cat(
        [outer[:, :, :2] @ inner[:, :, :2], outer[:, :, :2] @ inner[:, :, 2:] + outer[:, :, 2:]], 2
    )


def _derangement(n: int, generator: torch.Generator) -> Tensor:
    """A random permutation without fixed points (n >= 2): a cycle through a shuffled order."""
    if n < 2:
        return torch.arange(n)
    order = torch.randperm(n, generator=generator, device=generator.device).cpu()
    partner = torch.empty(n, dtype=torch.long)
    partner[order] = order.roll(-1)
    return partner


def _excess(saliency: Tensor) -> Tensor:
    """Saliency above each clip's floor (its minimum): the part that marks motion."""
    return saliency - saliency.amin(dim=(1, 2, 3, 4), keepdim=True)


def saliency_cutmix(
    clips: Tensor,
    saliency: Tensor,
    generator: torch.Generator,
    area_range: tuple[float, float] = (0.3, 0.7),
) -> tuple[Tensor, Tensor, Tensor]:
    """Paste the salient box of a partner clip into each clip, at the same place, in all frames.

    The clip keeps an area fraction drawn from `area_range`; the pasted box is centred on a pixel
    drawn from the partner's time-averaged saliency, so what is pasted is the partner's moving
    region. Returns (mixed, partner_index (N,), lam (N,)), labels to be mixed as
    lam * y + (1 - lam) * y[partner] (`relabel.hard_label_loss`).

    lam follows the visible motion, not the pasted area: it is the clip's share of the saliency
    mass (saliency above each clip's floor) that is visible in the mixed clip, own outside the
    box against the partner's inside it. Pasting a partner's moving object over a mostly static
    clip thus gives the partner most of the label. Where neither part shows any motion, lam is
    the kept area.
    """
    _check_clips(clips)
    _check_saliency(clips, saliency)
    _check_range(area_range, "area_range")
    n, _, _, h, w = clips.shape
    dev = clips.device
    partner = _derangement(n, generator).to(dev)
    kept_area = _uniform(n, *area_range, generator).to(dev)
    bh = (h * (1 - kept_area).sqrt()).round().long().clamp(0, h)
    bw = (w * (1 - kept_area).sqrt()).round().long().clamp(0, w)
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
    box = (in_rows[:, :, None] & in_cols[:, None, :])[:, None, None]  # (N, 1, 1, H, W)
    mixed = torch.where(box, clips[partner], clips)
    excess = _excess(saliency.detach().float())
    own = torch.where(box, 0.0, excess).sum(dim=(1, 2, 3, 4))
    other = torch.where(box, excess[partner], 0.0).sum(dim=(1, 2, 3, 4))
    area = 1.0 - box.float().mean(dim=(1, 2, 3, 4))
    visible = own + other
    lam = torch.where(visible > 1e-12, own / visible.clamp_min(1e-12), area)
    return mixed, partner, lam.to(clips.dtype)


def temporal_salient_crop(
    clips: Tensor,
    weights: Tensor,
    generator: torch.Generator,
    min_fraction: float = 0.5,
    keep: float = 0.9,
) -> Tensor:
    """Keep L consecutive frames around the highest motion at their own speed; hold the edges.

    L is drawn uniformly from [ceil(min_fraction * T), T]. Each window is scored by the sum of
    its frame weights above the clip's smallest weight; the start is drawn uniformly among the
    windows scoring at least `keep` times the best one (a static clip: any window). The window
    is placed at a random offset in the T output frames, and the frames before and after it
    hold its first and last frame (stillness). Time is never resampled nor reversed: every
    output frame is a source frame, and inside the window consecutive output frames are
    consecutive source frames.
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
    lengths = torch.randint(l_min, t + 1, (n,), generator=generator, device=generator.device).cpu()
    starts = torch.empty(n, dtype=torch.long)
    for i, length in enumerate(lengths.tolist()):  # one scalar choice per clip
        score = csum[i, length:] - csum[i, : t - length + 1]  # every start 0..T-L
        near_best = torch.nonzero(score >= keep * score.max() - 1e-12).flatten()
        pick = torch.randint(len(near_best), (1,), generator=generator, device=generator.device)
        starts[i] = near_best[pick.item()]
    room = (t - lengths + 1).float()  # offsets 0..T-L where the window can sit
    offsets = (_uniform(n, 0.0, 1.0, generator).cpu() * room).floor().long()
    offsets = torch.minimum(offsets, t - lengths)
    frame = torch.arange(t)[None] - offsets[:, None]  # position inside the window, (N, T)
    source = starts[:, None] + torch.minimum(frame.clamp_min(0), lengths[:, None] - 1)
    index = source.to(clips.device).view(n, 1, t, 1, 1).expand_as(clips)
    return clips.gather(2, index)


def _chosen(n: int, p: float, generator: torch.Generator) -> Tensor | None:
    """Indices of the clips an op with probability p picks; p = 0 draws nothing (base stream)."""
    if p <= 0:
        return None
    picked = (_uniform(n, 0.0, 1.0, generator) < p).nonzero().flatten()
    return picked if len(picked) else None


def tsgfa_augment(
    clips: Tensor,
    generator: torch.Generator,
    cfg: TSGFAConfig = TSGFAConfig(),
    base: AugmentConfig = AugmentConfig(),
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """TSGFA: the base augmentation of `student_augment`, plus saliency-placed extras.

    Every clip gets the base crop/translate (one transform for all frames) and photometric
    jitter, drawn first and exactly as `student_augment` draws them. On top, per clip:
    * temporal crop (p_temporal): the high-motion window at its own speed, edges held;
    * saliency crop (p_crop): a window centred on a salient pixel, composed with the base
      window into one warp (the base crop then acts inside the salient window);
    * saliency cutmix (p_mix): a partner's moving region pasted in, after the geometry and
      before the photometric jitter; lam is the clip's share of the visible saliency mass.
    An op with probability 0 draws no random numbers, so all three at 0 give `student_augment`
    exactly. Returns (augmented in [0, 1], partner_index, lam); the last two are None when no
    clip in the batch was mixed, else unmixed clips have partner = self and lam = 1.
    """
    _check_clips(clips)
    n = clips.shape[0]
    with torch.no_grad():
        x = clips.detach()
        draw = _draw_base(n, base, generator)
        theta = draw.theta
        uses_saliency = max(cfg.p_temporal, cfg.p_crop, cfg.p_mix) > 0
        sal = saliency_map(x, cfg.saliency).to(x.dtype) if uses_saliency else None

        idx = _chosen(n, cfg.p_temporal, generator)
        if idx is not None:
            idx = idx.to(x.device)
            x = x.clone()
            weights = sal[idx].mean(dim=(1, 3, 4))  # frame weights w_t of those clips
            x[idx] = temporal_salient_crop(x[idx], weights, generator, cfg.min_fraction)
            sal[idx] = saliency_map(x[idx], cfg.saliency).to(x.dtype)  # motion as now shown

        idx = _chosen(n, cfg.p_crop, generator)
        if idx is not None:
            theta = theta.clone()
            salient = _saliency_theta(sal[idx.to(x.device)], generator, cfg.crop_scale)
            theta[idx] = _compose(salient, theta[idx])

        out = _warp(x, theta)
        partner, lam = None, None
        idx = _chosen(n, cfg.p_mix, generator) if n > 1 else None
        if idx is not None:
            chosen = torch.zeros(n, dtype=torch.bool, device=x.device)
            chosen[idx.to(x.device)] = True
            mixed, partner, lam = saliency_cutmix(out, _warp(sal, theta), generator, cfg.mix_area)
            out = torch.where(chosen.view(n, 1, 1, 1, 1), mixed, out)
            partner = torch.where(chosen, partner, torch.arange(n, device=x.device))
            lam = torch.where(chosen, lam, torch.ones_like(lam))
        out = _photometric(out, draw.brightness, draw.contrast).clamp(0.0, 1.0)
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

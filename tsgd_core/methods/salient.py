"""Salient windows: keep real footage, chosen and cut by the temporal saliency filter (TSGF).

Instead of changing pixels, each stored clip is made of real training clips: per class, a random
pool of candidate clips is scored by the saliency mass of a time window (share of the clip's
per-frame TSGF mass m_t that falls in the window) and the teacher's log-probability of the true
class on that window; the best clips are kept, one whole clip per stored clip (pack "none"), two
half-length windows one after the other in time ("time"), or four clips downsampled x2 as 2x2
spatial tiles ("tiles", RDED-style). Window "random" is the control: same storage and packing,
clips taken in random pool order and windows placed at random, without saliency or teacher.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.artifact import DistilledSet
from ..data.clips import ClipSet
from ..runtime import derive_seed, resolve_device
from ..training.saliency import SaliencyConfig, saliency_map
from .selection import check_ipc

WINDOW_CHOICES = ("salient", "random")
PACKINGS = ("none", "time", "tiles")
TEACHER_BATCH = 64  # candidate clips read, filtered and scored at a time
MASS_EPS = 1e-6


@dataclass(frozen=True)
class SalientConfig:
    """How salient windows are chosen and packed (see the module docstring)."""

    ipc: int = 1
    window: str = "salient"  # "salient" (by TSGF mass and teacher) | "random" (control)
    pack: str = "time"  # "none" | "time" (two half windows) | "tiles" (2x2 of four clips)
    pool: int = 8  # candidates drawn per source slot (capped at the class size)
    confidence: float = 1.0  # weight of log p_teacher(y | window) in the score (0: saliency alone)
    saliency: SaliencyConfig = SaliencyConfig()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.window not in WINDOW_CHOICES:
            raise ValueError(f"unknown window {self.window!r}: use {', '.join(WINDOW_CHOICES)}")
        if self.pack not in PACKINGS:
            raise ValueError(f"unknown pack {self.pack!r}: use {', '.join(PACKINGS)}")
        if self.pool < 1:
            raise ValueError(f"pool must be >= 1 (candidates per source slot), got {self.pool}")


def sources_per_clip(pack: str) -> int:
    """How many real clips one stored clip is made of."""
    if pack not in PACKINGS:
        raise ValueError(f"unknown pack {pack!r}: use {', '.join(PACKINGS)}")
    return {"none": 1, "time": 2, "tiles": 4}[pack]


def window_lengths(pack: str, frames: int) -> tuple[int, int]:
    """Window lengths of the first and second source (equal to T unless pack is "time")."""
    return (frames // 2, frames - frames // 2) if pack == "time" else (frames, frames)


def frame_mass(clips: Tensor, cfg: SaliencyConfig | None = None) -> Tensor:
    """m_t (N, T): spatial mean of the TSGF map W before the floor."""
    return saliency_map(clips, replace(cfg or SaliencyConfig(), beta=0.0)).mean(dim=(1, 3, 4))


def window_masses(mass: Tensor, length: int) -> Tensor:
    """Share of each clip's mass (N, T) in every window of `length` frames: (N, T - length + 1)."""
    total = mass.sum(dim=1, keepdim=True)
    windows = mass.unfold(1, length, 1).sum(dim=2)
    return torch.where(total > 0, windows / total.clamp(min=torch.finfo(mass.dtype).tiny), 0.0)


def window_view(clips: Tensor, starts: Tensor, length: int) -> Tensor:
    """T-frame views of windows: the window's frames, then its last frame held."""
    t = clips.shape[2]
    frames = starts.view(-1, 1) + torch.arange(t, device=clips.device).clamp(max=length - 1)
    index = frames.view(len(clips), 1, t, 1, 1).expand(-1, clips.shape[1], -1, *clips.shape[3:])
    return clips.gather(2, index.to(clips.device))


def candidate_pool(train: ClipSet, c: int, size: int, generator: torch.Generator) -> Tensor:
    """Train indices of up to `size` clips of class c, in random order."""
    idx = train.indices_of_class(c)
    return idx[torch.randperm(len(idx), generator=generator)[:size]]


@torch.no_grad()
def score_candidates(
    train: ClipSet, pool: Tensor, cfg: SalientConfig, teacher: nn.Module | None, dev: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    """Scores (P,) and best window starts for both window lengths (P,), (P,) of pool clips."""
    t = train.clip_shape[1]
    first, second = window_lengths(cfg.pack, t)
    scores, starts1, starts2 = [], [], []
    for i in range(0, len(pool), TEACHER_BATCH):
        index = pool[i : i + TEACHER_BATCH]
        clips = train.videos[index].to(dev)
        mass = frame_mass(clips, cfg.saliency)
        shares1 = window_masses(mass, first)
        best, start1 = shares1.max(dim=1)
        score = torch.log(best + MASS_EPS)
        if teacher is not None and cfg.confidence > 0:
            logits = teacher(window_view(clips, start1, first)).float()
            y = train.labels[index].to(dev)
            score = score + cfg.confidence * logits.log_softmax(1).gather(1, y[:, None])[:, 0]
        scores.append(score.cpu())
        starts1.append(start1.cpu())
        starts2.append(window_masses(mass, second).argmax(dim=1).cpu())
    return torch.cat(scores), torch.cat(starts1), torch.cat(starts2)


def choose_sources(
    train: ClipSet, c: int, cfg: SalientConfig, teacher: nn.Module | None, dev: torch.device
) -> tuple[list[int], list[int]]:
    """Train indices of the class's chosen clips (best first) and each one's window start."""
    t = train.clip_shape[1]
    need = cfg.ipc * sources_per_clip(cfg.pack)
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, c))
    pool = candidate_pool(train, c, cfg.pool * need, g)
    lengths = [window_lengths(cfg.pack, t)[j % 2] for j in range(need)]
    if cfg.window == "random":
        starts = [int(torch.randint(t - n + 1, (1,), generator=g)) for n in lengths]
        return pool[:need].tolist(), starts
    scores, starts1, starts2 = score_candidates(train, pool, cfg, teacher, dev)
    order = torch.sort(scores, descending=True, stable=True).indices[:need]
    starts = [int((starts1 if j % 2 == 0 else starts2)[k]) for j, k in enumerate(order.tolist())]
    return pool[order].tolist(), starts


def downsample_tile(clip: Tensor) -> Tensor:
    """A clip (C, T, H, W) at half height and width, per frame, by area averaging."""
    _, _, h, w = clip.shape
    frames = F.interpolate(clip.transpose(0, 1), size=(h // 2, w // 2), mode="area")
    return frames.transpose(0, 1)


def pack_clips(clips: Tensor, starts: list[int], pack: str) -> Tensor:
    """Stored clips (S, C, T, H, W) from source clips (S * sources, C, T, H, W), best first."""
    if pack == "none":
        return clips
    t = clips.shape[2]
    if pack == "time":
        first, second = window_lengths(pack, t)
        a = torch.stack(
            [x[:, s : s + first] for x, s in zip(clips[0::2], starts[0::2], strict=True)]
        )
        b = torch.stack(
            [x[:, s : s + second] for x, s in zip(clips[1::2], starts[1::2], strict=True)]
        )
        return torch.cat([a, b], dim=2)
    tiles = torch.stack([downsample_tile(x) for x in clips])
    tl, tr, bl, br = tiles[0::4], tiles[1::4], tiles[2::4], tiles[3::4]
    return torch.cat([torch.cat([tl, tr], dim=4), torch.cat([bl, br], dim=4)], dim=3)


def check_salient_args(train: ClipSet, cfg: SalientConfig, teacher: nn.Module | None) -> None:
    """Raise ValueError naming what to change when the set cannot be made."""
    check_ipc(train, cfg.ipc)
    spc = sources_per_clip(cfg.pack)
    counts = train.class_counts()
    smallest = int(counts.argmin())
    if cfg.ipc * spc > int(counts[smallest]):
        raise ValueError(
            f"IPC {cfg.ipc} with pack {cfg.pack!r} needs {cfg.ipc * spc} clips per class "
            f"({spc} per stored clip), but class '{train.class_names[smallest]}' has "
            f"{int(counts[smallest])}: lower the IPC or use a pack with fewer sources"
        )
    _, t, h, w = train.clip_shape
    if cfg.pack == "tiles" and (h % 2 or w % 2):
        raise ValueError(
            f"pack 'tiles' needs an even frame size, got {h}x{w} (HxW): use pack 'none' or 'time'"
        )
    if cfg.pack == "time" and t < 2:
        raise ValueError(f"pack 'time' needs clips of at least 2 frames, got {t}: use pack 'none'")
    if cfg.window == "salient" and cfg.confidence > 0 and teacher is None:
        raise ValueError(
            "window 'salient' with confidence > 0 scores windows with the teacher: pass a "
            "teacher, or set confidence=0 (saliency alone) or window='random'"
        )


def select_salient_windows(
    train: ClipSet,
    ipc: int,
    *,
    teacher: nn.Module | None,
    cfg: SalientConfig | None = None,
    device: str = "auto",
) -> DistilledSet:
    """IPC stored clips per class (class-major) made of the most salient real windows."""
    cfg = replace(cfg or SalientConfig(), ipc=ipc)
    check_salient_args(train, cfg, teacher)
    dev = resolve_device(device)
    use_teacher = cfg.window == "salient" and cfg.confidence > 0
    if use_teacher and teacher is not None:
        teacher.eval().to(dev)
    spc = sources_per_clip(cfg.pack)
    videos, records = [], []
    for c in range(train.num_classes):
        sources, starts = choose_sources(train, c, cfg, teacher if use_teacher else None, dev)
        clips = train.videos[torch.tensor(sources, dtype=torch.long)].float().cpu()
        videos.append(pack_clips(clips, starts, cfg.pack))
        records += [
            {"class": c, "sources": sources[i : i + spc], "starts": starts[i : i + spc]}
            for i in range(0, len(sources), spc)
        ]
    config: dict[str, Any] = {"method": "salient", **asdict(cfg), "clips": records}
    return DistilledSet(
        videos=torch.cat(videos).contiguous(),
        labels=torch.arange(train.num_classes).repeat_interleave(ipc),
        class_names=list(train.class_names),
        method="salient",
        ipc=ipc,
        config=config,
        seed=cfg.seed,
    )


__all__ = [
    "WINDOW_CHOICES",
    "PACKINGS",
    "SalientConfig",
    "sources_per_clip",
    "window_lengths",
    "frame_mass",
    "window_masses",
    "window_view",
    "candidate_pool",
    "select_salient_windows",
]

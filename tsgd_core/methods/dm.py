"""Distribution matching (DM, Zhao & Bilen 2023) for video: a baseline with no teacher.

Each iteration draws a NEW randomly initialised embedding network and, for every class c,
moves the synthetic clips so that their mean embedding matches that of a batch of real clips:

    L(S) = sum_c || mean_i embed(aug(real_c,i)) - mean_j embed(aug(syn_c,j)) ||^2

Real and synthetic clips of a class get the same augmentation, drawn once per class and
iteration from one seed (DSA's "Siamese" augmentation, `siamese_augment`).

Optimiser: SGD with momentum 0.5 on the [0, 1] pixels, as in DM. The loss sums squared
feature differences, so its gradient grows with the embedding size and the right lr depends on
the embedding net and the clip size: the experiment profiles choose lr and embedding net on the
validation split (the `dm` group of the grid records that choice). The default lr 0.3 was the
best of 0.1 / 0.3 / 1 on 16x16 8-frame moving-bar clips with a width-8 ConvNet3D (held-out
matching loss under unseen random nets; `tests/test_dm.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.artifact import DistilledSet
from ..data.clips import ClipSet
from ..runtime import derive_seed
from ..runtime.budget import check_distill_fits
from ..runtime.progress import progress_bar
from ..training.augment import AugmentConfig, diff_augment
from ..training.models import MODELS, build_model
from .distill import (
    INITS,
    check_finite,
    check_ipc_against_classes,
    config_dict,
    initial_clips,
)

Callback = Callable[[int, dict[str, float]], None]


@dataclass
class DMConfig:
    """How distribution matching optimises the synthetic clips."""

    ipc: int = 1
    iterations: int = 300
    lr: float = 0.3  # SGD (momentum 0.5) on [0, 1] pixels; see the module docstring
    batch_real: int = 64  # real clips per class per iteration (all of them if the class has fewer)
    model: str = "convnet3d"  # embedding network, re-initialised every iteration
    width: int = 32
    depth: int = 3
    norm: str = "instance"
    # DM's ConvNet (average pooling, flat head). The student's max pooling and global max head
    # is the other choice: its pixel gradients flow through the arg-max locations only, and on
    # moving-bar clips 12 steps at lr 0.01-1 did not lower the held-out matching loss at all
    pooling: str = "avg"
    head: str = "flatten"
    init: str = "real"  # "real": random real clips of the class (seeded) | "noise": N(0.5, 0.2)
    augment: bool = True
    augment_cfg: AugmentConfig = field(default_factory=AugmentConfig)
    clamp: bool = True  # keep pixels in [0, 1] after each step
    seed: int = 0


def validate_dm(train: ClipSet, cfg: DMConfig) -> None:
    if cfg.ipc < 1:
        raise ValueError(f"ipc must be >= 1, got {cfg.ipc}")
    if cfg.iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {cfg.iterations}")
    if cfg.batch_real < 1:
        raise ValueError(f"batch_real must be >= 1, got {cfg.batch_real}")
    if not cfg.lr > 0:
        raise ValueError(f"lr must be > 0, got {cfg.lr}")
    if cfg.init not in INITS:
        raise ValueError(f"unknown init {cfg.init!r}: choose one of {', '.join(INITS)}")
    if cfg.model not in MODELS:
        raise ValueError(f"unknown model {cfg.model!r}: choose one of {', '.join(MODELS)}")
    counts = train.class_counts()
    empty = [name for c, name in enumerate(train.class_names) if int(counts[c]) == 0]
    if empty:
        raise ValueError(
            f"distribution matching needs real clips of every class; {', '.join(map(repr, empty))} "
            "has none: drop the class or add clips"
        )
    if cfg.init == "real":
        check_ipc_against_classes(train, cfg.ipc)


def embedding_net(train: ClipSet, cfg: DMConfig, iteration: int, device: torch.device) -> nn.Module:
    """A fresh random network for this iteration, frozen, in train mode (batch statistics) as DM."""
    net = build_model(
        cfg.model,
        train.num_classes,
        train.clip_shape,
        width=cfg.width,
        depth=cfg.depth,
        norm=cfg.norm,
        pooling=cfg.pooling,
        seed=derive_seed(cfg.seed, 31, iteration),
        head=cfg.head,
    ).to(device)
    net.train()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def siamese_augment(clips: torch.Tensor, seed: int, cfg: AugmentConfig) -> torch.Tensor:
    """One augmentation, drawn from `seed`, applied to every clip of the batch (DSA's Siamese mode).

    The batch is folded into one long clip along time, so `diff_augment` draws a single set of
    parameters; the same seed then gives real and synthetic batches of any sizes the same
    transform. The contrast centre is the mean of the whole batch.
    """
    n, c, t, h, w = clips.shape
    folded = clips.transpose(0, 1).reshape(1, c, n * t, h, w)
    out = diff_augment(folded, torch.Generator().manual_seed(seed), cfg)
    return out.reshape(c, n, t, h, w).transpose(0, 1)


def matching_loss(real_features: torch.Tensor, syn_features: torch.Tensor) -> torch.Tensor:
    """||mean real embedding - mean synthetic embedding||^2."""
    return (real_features.mean(0) - syn_features.mean(0)).pow(2).sum()


def distill_dm(
    train: ClipSet,
    cfg: DMConfig,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    callback: Callback | None = None,
) -> DistilledSet:
    """Distill `train` into cfg.ipc clips per class by distribution matching.

    history["loss"] holds the per-iteration loss summed over classes (before the step);
    `callback(iteration, {"loss": ...})` is called after every step.
    """
    validate_dm(train, cfg)
    check_distill_fits("dm", cfg.ipc, train.num_classes, train.clip_shape, cfg.width)
    device = torch.device(device)
    k = train.num_classes
    start, _ = initial_clips(train, cfg.ipc, cfg.init, cfg.seed)  # (classes, ipc, C, T, H, W)
    syn = start.reshape(k * cfg.ipc, *train.clip_shape).to(device).requires_grad_(True)
    optimizer = torch.optim.SGD([syn], lr=cfg.lr, momentum=0.5)
    sample_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, 32))
    class_index = [train.indices_of_class(c) for c in range(k)]
    history: dict[str, list[float]] = {"loss": []}
    advice = f"lower lr (now {cfg.lr})"

    for it in progress_bar(range(cfg.iterations), desc="dm", enabled=progress, leave=False):
        net = embedding_net(train, cfg, it, device)
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        # Backward per class: gradients add up, memory stays that of one class.
        for c in range(k):
            idx = class_index[c]
            idx = idx[torch.randperm(len(idx), generator=sample_gen)[: cfg.batch_real]]
            real = train.videos[idx].to(device).float()
            fake = syn[c * cfg.ipc : (c + 1) * cfg.ipc]
            if cfg.augment:
                aug_seed = derive_seed(cfg.seed, 33, it, c)
                real = siamese_augment(real, aug_seed, cfg.augment_cfg)
                fake = siamese_augment(fake, aug_seed, cfg.augment_cfg)
            with torch.no_grad():
                real_features = net.embed(real)
            loss = matching_loss(real_features, net.embed(fake))
            loss.backward()
            total += loss.item()
        check_finite(it, {"loss": total}, "DM loss", advice)
        optimizer.step()
        if cfg.clamp:
            with torch.no_grad():
                syn.clamp_(0, 1)
        history["loss"].append(total)
        if callback is not None:
            callback(it, {"loss": total})

    return DistilledSet(
        videos=syn.detach().cpu().float().contiguous(),
        labels=torch.arange(k).repeat_interleave(cfg.ipc),
        class_names=list(train.class_names),
        method="dm",
        ipc=cfg.ipc,
        config=config_dict(cfg),
        seed=cfg.seed,
        history=history,
    )

"""Training and testing classifiers: the one loop used by the teacher and by every student.

`fit` owns the optimiser, the cosine schedule, the progress bar, mixed precision on CUDA,
model choice on a validation split and, when asked under torchrun, data-parallel training;
what a batch's loss is (augmentation, hard or soft labels) is the caller's `batch_loss`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.clips import ClipSet
from ..runtime import distributed, resolve_device
from ..runtime.progress import progress_bar

# Set to 1 to train in the channels_last_3d memory format on CUDA (often faster with cuDNN).
CHANNELS_LAST_ENV = "TSGD_CHANNELS_LAST"

BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]


def use_channels_last(device: torch.device) -> bool:
    """channels_last_3d memory format: asked for with TSGD_CHANNELS_LAST=1, and CUDA only."""
    return device.type == "cuda" and os.environ.get(CHANNELS_LAST_ENV, "0") == "1"


def to_device(videos: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of clips on `device`; on CUDA from pinned memory, without blocking the host."""
    if device.type != "cuda":
        return videos.to(device)
    if not videos.is_cuda:  # a relabel plan's views are made on the device already
        videos = videos.pin_memory().to(device, non_blocking=True)
    if use_channels_last(device):
        videos = videos.contiguous(memory_format=torch.channels_last_3d)
    return videos


# Student precision settings: "fp32" everywhere; "bf16" autocast everywhere; "auto" bf16 on CUDA
# and on CPUs with bfloat16 instructions (AVX512-BF16 or AMX), where it is faster
# (scripts/bench_students.py), else fp32. The accuracy check behind the default:
# scripts/precision_check.py, reports/bench/precision_check.md.
PRECISIONS = ("auto", "fp32", "bf16")


# CPU flags (Linux /proc/cpuinfo) whose bfloat16 matrix instructions make bf16 autocast fast
FAST_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU reports bfloat16 matrix instructions (False where it cannot be told)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(re.search(rf"\b{flag}\b", flags) for flag in FAST_BF16_FLAGS)


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
    return precision


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """ "fp32" or "bf16" for a setting on `device`; None: bf16 on CUDA only (teacher, recovery)."""
    if precision is None:
        return "bf16" if device.type == "cuda" else "fp32"
    if check_precision(precision) == "auto":
        return "bf16" if device.type == "cuda" or cpu_has_fast_bf16() else "fp32"
    return precision


def autocast(
    device: torch.device, precision: str | None = None
) -> contextlib.AbstractContextManager:
    """bfloat16 autocast where `precision` resolves to bf16 (see resolve_precision), else none."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


PREDICT_BATCH_BYTES = 128 * 2**20  # float input per prediction batch, at most


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    videos: torch.Tensor,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Logits of `model` (put in eval mode) for every clip, returned on the CPU as float32."""
    device = resolve_device(device)
    model.eval().to(device)
    # large clips in fewer per batch: 256 clips of 16x112x112 would be 2.4 GB of float input
    clip_bytes = 4 * math.prod(videos.shape[1:])
    batch_size = max(1, min(batch_size, PREDICT_BATCH_BYTES // clip_bytes))
    out = []
    for start in range(0, len(videos), batch_size):
        with autocast(device):
            out.append(model(videos[start : start + batch_size].to(device)).float().cpu())
    return torch.cat(out)


def accuracy(
    model: nn.Module, data: ClipSet, batch_size: int = 256, device: str | torch.device = "cpu"
) -> float:
    """Top-1 accuracy of `model` on `data`, in [0, 1]."""
    logits = predict_logits(model, data.videos, batch_size, device)
    return float((logits.argmax(1) == data.labels).float().mean())


def cross_entropy_loss(
    model: nn.Module, videos: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """The plain batch loss: cross-entropy on the clips as they are."""
    return F.cross_entropy(model(videos), labels)


@dataclass
class FitConfig:
    """How long and how hard to train; `steps` overrides `epochs` when given."""

    epochs: int = 30
    steps: int | None = None
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: str = "sgd"  # "sgd" | "adamw"
    eval_every: int | None = None  # steps between validation passes; default once per epoch
    seed: int = 0


@dataclass
class FitResult:
    history: dict[str, list[float]] = field(default_factory=dict)
    best_val_acc: float | None = None
    best_step: int | None = None
    steps: int = 0
    clips_seen: int = 0


def make_optimizer(model: nn.Module | list[torch.Tensor], cfg: FitConfig) -> torch.optim.Optimizer:
    """The recipe's optimiser over a model's parameters (or a list of tensors)."""
    params = list(model.parameters()) if isinstance(model, nn.Module) else model
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            nesterov=True,
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use sgd or adamw")


def total_steps(num_clips: int, cfg: FitConfig) -> int:
    if cfg.steps is not None:
        return cfg.steps
    return cfg.epochs * math.ceil(num_clips / min(cfg.batch_size, num_clips))


def endless_index_batches(
    num_clips: int, batch_size: int, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """Indices of shuffled mini-batches, epoch after epoch (a set smaller than a batch is one batch)."""
    batch_size = min(batch_size, num_clips)
    while True:
        order = torch.randperm(num_clips, generator=generator)
        for start in range(0, num_clips - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def endless_batches(data: ClipSet, batch_size: int, generator: torch.Generator):
    """Shuffled mini-batches (videos, labels) of `data`, epoch after epoch."""
    for idx in endless_index_batches(len(data), batch_size, generator):
        yield data.videos[idx], data.labels[idx]


def fit(
    model: nn.Module,
    train: ClipSet,
    cfg: FitConfig,
    *,
    batch_loss: BatchLoss = cross_entropy_loss,
    val: ClipSet | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "train",
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None,
    data_parallel: bool = False,
    precision: str | None = None,
) -> FitResult:
    """Train `model` in place; with `val`, keep the weights of the best validation accuracy.

    `batches` replaces the default shuffled mini-batches of `train` (`endless_batches`) with
    (inputs, targets) pairs that `batch_loss` understands, e.g. the prepared views of a
    relabel plan; `train` still sets the epoch length for `eval_every` and `epochs`.
    `data_parallel`: under torchrun, train with DDP, every rank on its share of each global
    batch of cfg.batch_size (see tsgd_core.runtime.distributed); in one process it changes nothing.
    `precision`: see `resolve_precision` (None: bf16 autocast on CUDA only).
    """
    device = resolve_device(device)
    model.to(device)
    if use_channels_last(device):
        model.to(memory_format=torch.channels_last_3d)
    generator = torch.Generator().manual_seed(cfg.seed)
    own_batches = batches is None
    if own_batches:
        batches = endless_batches(train, cfg.batch_size, generator)
    ctx = distributed.context() if data_parallel else distributed.SINGLE
    net = model
    if ctx.active:
        distributed.check_batch_splits(min(cfg.batch_size, len(train)), ctx)
        net = distributed.data_parallel(model, device)
        # one order of global batches on every rank; augmentation draws of each rank's own
        if own_batches:
            batches = endless_batches(
                train, cfg.batch_size, torch.Generator().manual_seed(cfg.seed)
            )
        generator = torch.Generator().manual_seed(distributed.rank_seed(cfg.seed, ctx))
    optimizer = make_optimizer(net, cfg)
    steps = total_steps(len(train), cfg)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    eval_every = cfg.eval_every or max(1, math.ceil(len(train) / cfg.batch_size))
    result = FitResult(history={"step": [], "loss": [], "val_acc": [], "val_step": []})
    best_state = None
    bar = progress_bar(range(steps), desc=desc, enabled=progress and ctx.is_main, leave=False)
    for step in bar:
        net.train()
        videos, labels = next(batches)
        global_batch = len(labels)
        if ctx.active:
            videos, labels = distributed.rank_share((videos, labels), ctx)
        videos, labels = to_device(videos, device), labels.to(device, non_blocking=True)
        with autocast(device, precision):
            loss = batch_loss(net, videos, labels, generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{desc}: loss became {loss.item()} at step {step}: lower lr (now {cfg.lr})"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        result.history["step"].append(step)
        result.history["loss"].append(loss.item())
        result.clips_seen += global_batch
        if val is not None and ((step + 1) % eval_every == 0 or step + 1 == steps):
            # every rank holds the same weights, so every rank picks the same best step
            distributed.sync_buffers(distributed.unwrap(net), ctx)
            acc = accuracy(distributed.unwrap(net), val, device=device)
            result.history["val_acc"].append(acc)
            result.history["val_step"].append(step + 1)
            if result.best_val_acc is None or acc > result.best_val_acc:
                result.best_val_acc, result.best_step = acc, step + 1
                best_state = copy.deepcopy(distributed.unwrap(net).state_dict())
            bar.set_postfix(loss=f"{loss.item():.3f}", val_acc=f"{acc:.3f}")
    result.steps = steps
    if best_state is None and net is not model:
        distributed.sync_buffers(distributed.unwrap(net), ctx)
        best_state = distributed.unwrap(net).state_dict()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result

"""The evaluation protocol: train fresh students from scratch on a (distilled) set, test on the
real test split, report mean +- std over seeds with wall time and peak memory.

A student sees augmented views of the set (one spatial transform per clip; TSGFA when asked)
labelled by the teacher's soft labels (relabel) or by the hard class labels.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from . import distributed
from .augment import AugmentConfig, TSGFAConfig, student_augment, tsgfa_augment
from .data import ClipSet
from .profiling import measure
from .relabel import hard_label_loss, soft_label_loss, teacher_soft_labels
from .teacher import ModelConfig
from .train import BatchLoss, FitConfig, accuracy, fit, resolve_device

LABEL_MODES = ("soft", "hard")
AUGMENT_MODES = ("none", "base", "tsgfa")


@dataclass
class StudentConfig:
    """How students are built and trained; the same for every method being compared."""

    model: ModelConfig = field(default_factory=lambda: ModelConfig(width=16, norm="instance"))
    fit: FitConfig = field(
        default_factory=lambda: FitConfig(steps=300, batch_size=32, lr=2e-3, weight_decay=1e-4, optimizer="adamw")
    )
    labels: str = "soft"  # "soft": teacher relabels every view; "hard": class labels
    tau: float = 4.0
    augment: str = "base"  # "none" | "base" | "tsgfa"
    augment_cfg: AugmentConfig = field(default_factory=AugmentConfig)
    tsgfa: TSGFAConfig = field(default_factory=TSGFAConfig)

    def __post_init__(self) -> None:
        if self.labels not in LABEL_MODES:
            raise ValueError(f"unknown labels {self.labels!r}: use soft or hard")
        if self.augment not in AUGMENT_MODES:
            raise ValueError(f"unknown augment {self.augment!r}: use {', '.join(AUGMENT_MODES)}")


@dataclass
class EvalResult:
    """Test accuracies of one student per seed, and what training them cost."""

    accs: list[float]
    wall_s: list[float]
    peak_mb: list[float]
    labels: str
    augment: str
    num_train: int

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accs)

    @property
    def std(self) -> float:
        return statistics.stdev(self.accs) if len(self.accs) > 1 else 0.0

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "mean": self.mean, "std": self.std}


def make_view(
    cfg: StudentConfig, videos: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The augmented view of a batch, and for mixed views the partner index and kept fraction."""
    if cfg.augment == "base":
        return student_augment(videos, generator, cfg.augment_cfg), None, None
    if cfg.augment == "tsgfa":
        return tsgfa_augment(videos, generator, cfg.tsgfa, cfg.augment_cfg)
    return videos, None, None


def student_batch_loss(cfg: StudentConfig, teacher: nn.Module | None) -> BatchLoss:
    """The student's loss on one batch: augment, then soft (teacher) or hard labels."""
    if cfg.labels == "soft" and teacher is None:
        raise ValueError("soft labels need the teacher: pass teacher=..., or use labels='hard'")

    def loss(model: nn.Module, videos: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
        with torch.no_grad():
            views, partner, lam = make_view(cfg, videos, generator)
        logits = model(views)
        if cfg.labels == "soft":
            return soft_label_loss(logits, teacher_soft_labels(teacher, views, cfg.tau), cfg.tau)
        return hard_label_loss(logits, labels, partner, lam)

    return loss


def train_student(
    data: ClipSet,
    cfg: StudentConfig,
    *,
    teacher: nn.Module | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
) -> nn.Module:
    """A fresh, randomly initialised student (seeded) trained on `data` only."""
    dev = resolve_device(device)
    if teacher is not None:
        teacher.to(dev).eval()
    student = cfg.model.build(data.num_classes, data.clip_shape, seed=seed)
    fit_cfg = FitConfig(**{**asdict(cfg.fit), "seed": seed})
    fit(student, data, fit_cfg, batch_loss=student_batch_loss(cfg, teacher), device=dev,
        progress=progress, desc=f"student seed {seed}")
    return student


def evaluate_set(
    data: ClipSet,
    test: ClipSet,
    cfg: StudentConfig,
    *,
    teacher: nn.Module | None = None,
    seeds: tuple[int, ...] | list[int] = (0, 1, 2),
    device: str = "auto",
    progress: bool = True,
) -> EvalResult:
    """Train one student per seed on `data`, test each on the real `test` split."""
    if len(seeds) == 0:
        raise ValueError("evaluation needs at least one seed (the protocol reports >= 3)")
    if data.class_names != test.class_names:
        raise ValueError("the set and the test split have different classes: evaluate on the same dataset")
    dev = resolve_device(device)
    done: dict[int, tuple[float, float, float]] = {}
    # under torchrun the seeds are spread over the ranks, one student per rank at a time
    for i in distributed.owned(len(seeds)):
        with measure(dev) as usage:
            student = train_student(data, cfg, teacher=teacher, seed=seeds[i], device=dev, progress=progress)
        done[i] = (accuracy(student, test, device=dev), usage.wall_s, usage.peak_mb)
    rows = distributed.gather_ordered(done, len(seeds))
    accs, walls, peaks = ([row[j] for row in rows] for j in range(3))
    return EvalResult(accs, walls, peaks, cfg.labels, cfg.augment, len(data))

"""The evaluation protocol: train fresh students from scratch on a (distilled) set, test on the
real test split, report mean +- std over seeds with wall time and peak memory.

A student sees augmented views of the set (one spatial transform per clip; TSGFA when asked)
labelled by the teacher's soft labels (relabel) or by the hard class labels.

The student seeds of one evaluation share a relabel plan (FKD-style, `build_relabel_plan`): a
fixed list of `steps` batches, each with its clip indices, the seed that regenerates its view
and, for soft labels, the teacher's labels of that view, computed once. Each seed trains on the
plan's batches in its own order (a seed-specific permutation of the steps) from its own
initialisation, so seeds differ in init and order and share the views and their labels; the
teacher runs once per evaluation instead of once per seed.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..data.clips import ClipSet
from ..runtime import distributed, resolve_device
from ..runtime.budget import check_training_fits, widest_conv
from ..runtime.profiling import measure
from ..runtime.progress import progress_bar
from .augment import AugmentConfig, TSGFAConfig, student_augment, tsgfa_augment
from .relabel import (
    hard_label_loss,
    mixed_label_targets,
    plan_target_loss,
    soft_label_loss,
    teacher_soft_labels,
)
from .stacked import train_students_stacked, use_stacking
from .teacher import ModelConfig
from .train import (
    BatchLoss,
    FitConfig,
    accuracy,
    autocast,
    endless_index_batches,
    fit,
    total_steps,
)

LABEL_MODES = ("soft", "hard")
AUGMENT_MODES = ("none", "base", "tsgfa")


@dataclass
class StudentConfig:
    """How students are built and trained; the same for every method being compared."""

    model: ModelConfig = field(default_factory=lambda: ModelConfig(width=16, norm="instance"))
    fit: FitConfig = field(
        default_factory=lambda: FitConfig(
            steps=300, batch_size=32, lr=2e-3, weight_decay=1e-4, optimizer="adamw"
        )
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
    """The augmented view of a batch; for mixed views the partner index and label weight lam."""
    if cfg.augment == "base":
        return student_augment(videos, generator, cfg.augment_cfg), None, None
    if cfg.augment == "tsgfa":
        return tsgfa_augment(videos, generator, cfg.tsgfa, cfg.augment_cfg)
    return videos, None, None


def student_batch_loss(cfg: StudentConfig, teacher: nn.Module | None) -> BatchLoss:
    """The student's loss on one batch: augment, then soft (teacher) or hard labels."""
    if cfg.labels == "soft" and teacher is None:
        raise ValueError("soft labels need the teacher: pass teacher=..., or use labels='hard'")

    def loss(
        model: nn.Module, videos: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ):
        with torch.no_grad():
            views, partner, lam = make_view(cfg, videos, generator)
        logits = model(views)
        if cfg.labels == "soft":
            return soft_label_loss(logits, teacher_soft_labels(teacher, views, cfg.tau), cfg.tau)
        return hard_label_loss(logits, labels, partner, lam)

    return loss


@dataclass
class RelabelPlan:
    """The batches every student seed of one evaluation trains on, with their soft labels.

    Views are not stored (steps x batch clips would be large): each is regenerated, bit for
    bit, by `make_view` from its seed. Soft labels are tiny (steps x batch x classes).
    """

    indices: torch.Tensor  # (steps, batch) clip indices into the set
    view_seeds: torch.Tensor  # (steps,) int64 seed of each batch's augmentation generator
    # (steps, batch, classes) teacher probabilities at tau; None for hard labels
    soft: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.view_seeds)


def plan_view(
    plan: RelabelPlan, step: int, data: ClipSet, cfg: StudentConfig, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The augmented view of plan step `step` (and partner, lam for mixed views), regenerated."""
    videos = data.videos[plan.indices[step]].to(device)
    generator = torch.Generator().manual_seed(int(plan.view_seeds[step]))
    with torch.no_grad():
        return make_view(cfg, videos, generator)


def build_relabel_plan(
    data: ClipSet,
    cfg: StudentConfig,
    *,
    teacher: nn.Module | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = False,
    label_data: ClipSet | None = None,
    precision: str | None = None,
) -> RelabelPlan:
    """`steps` shuffled batches of `data` with view seeds and, for soft labels, the teacher's labels.

    With `label_data` (the same number of clips, the same labels), the teacher labels the same
    views of those clips instead: the pixels-or-labels control trains on one set's pixels with
    another set's soft labels. `precision`: the teacher's, as when it relabels inside the
    student's `fit` (see train.resolve_precision).
    """
    if cfg.labels == "soft" and teacher is None:
        raise ValueError("soft labels need the teacher: pass teacher=..., or use labels='hard'")
    label_data = data if label_data is None else label_data
    if len(label_data) != len(data) or not torch.equal(label_data.labels, data.labels):
        raise ValueError(
            f"label_data must hold the same clips' classes as the set ({len(data)} clips in the "
            f"same class order), got {len(label_data)}: label with the set's own start clips"
        )
    dev = resolve_device(device)
    steps = total_steps(len(data), cfg.fit)
    generator = torch.Generator().manual_seed(seed)
    view_seeds = torch.randint(0, 2**62, (steps,), generator=generator)
    batches = endless_index_batches(len(data), cfg.fit.batch_size, generator)
    indices = torch.stack([next(batches) for _ in range(steps)])
    plan = RelabelPlan(indices, view_seeds, None)
    if cfg.labels == "soft":
        teacher.to(dev).eval()
        soft = []
        bar = progress_bar(
            range(steps), desc="relabel plan", enabled=progress, summary=False, leave=False
        )
        for step in bar:
            views, _, _ = plan_view(plan, step, label_data, cfg, dev)
            with autocast(dev, precision):  # as inside fit's autocast when relabelling live
                soft.append(teacher_soft_labels(teacher, views, cfg.tau).cpu())
        plan.soft = torch.stack(soft)
    return plan


def plan_order(steps: int, seed: int) -> torch.Tensor:
    """The seed's own order of the plan's steps."""
    return torch.randperm(steps, generator=torch.Generator().manual_seed(seed))


def plan_batches(
    plan: RelabelPlan,
    data: ClipSet,
    cfg: StudentConfig,
    order: torch.Tensor,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(view, targets) per step in `order`: the stored soft labels, or the (mixed) hard labels."""
    dev = resolve_device(device)
    for step in order.tolist():
        views, partner, lam = plan_view(plan, step, data, cfg, dev)
        if cfg.labels == "soft":
            yield views, plan.soft[step]
        else:
            labels = data.labels[plan.indices[step]].to(dev)
            yield views, mixed_label_targets(labels, data.num_classes, partner, lam)


def plan_batch_loss(cfg: StudentConfig) -> BatchLoss:
    """The student's loss on a plan batch: the view is ready, the targets are distributions."""

    def loss(
        model: nn.Module, views: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ):
        return plan_target_loss(cfg.labels, model(views), targets, cfg.tau)

    return loss


def train_student(
    data: ClipSet,
    cfg: StudentConfig,
    *,
    teacher: nn.Module | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    plan: RelabelPlan | None = None,
    precision: str | None = None,
) -> nn.Module:
    """A fresh, randomly initialised student (seeded) trained on `data` only.

    With a `plan`, it trains on the plan's batches in the seed's order (`plan_order`) and needs
    no teacher; without, it draws batches and views itself and relabels them live.
    """
    dev = resolve_device(device)
    relabels = plan is None and teacher is not None and cfg.labels == "soft"
    check_training_fits(
        "student training",
        cfg.fit.batch_size,
        len(data),
        data.clip_shape,
        cfg.model.width,
        widest_conv(teacher) if relabels else 0,
        device=dev,
    )
    student = cfg.model.build(data.num_classes, data.clip_shape, seed=seed)
    fit_cfg = FitConfig(**{**asdict(cfg.fit), "seed": seed})
    desc = f"student seed {seed}"
    if plan is not None:
        if len(plan) != total_steps(len(data), cfg.fit):
            raise ValueError(
                f"the plan has {len(plan)} steps, the student trains {total_steps(len(data), cfg.fit)}: build it for this set and config"
            )
        batches = plan_batches(plan, data, cfg, plan_order(len(plan), seed), dev)
        fit(
            student,
            data,
            fit_cfg,
            batch_loss=plan_batch_loss(cfg),
            device=dev,
            progress=progress,
            desc=desc,
            batches=batches,
            precision=precision,
        )
        return student
    if teacher is not None:
        teacher.to(dev).eval()
    fit(
        student,
        data,
        fit_cfg,
        batch_loss=student_batch_loss(cfg, teacher),
        device=dev,
        progress=progress,
        desc=desc,
        precision=precision,
    )
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
    shared_plan: bool = True,
    label_data: ClipSet | None = None,
    precision: str | None = None,
    stack: str = "auto",
) -> EvalResult:
    """Train one student per seed on `data`, test each on the real `test` split.

    With `shared_plan` (default) the seeds share one relabel plan, built with the first seed;
    its cost is split evenly over the seeds' wall times, its peak memory counts in each.
    Without, every seed augments and relabels its own batches live. `label_data`: see
    `build_relabel_plan` (it needs the shared plan). `precision`: the students' and the
    relabelling teacher's (train.resolve_precision). `stack`: "auto" trains the seeds as one
    stacked model (training.stacked) where that is faster, on CUDA; "on" / "off" force it.
    """
    if label_data is not None and not shared_plan:
        raise ValueError("label_data needs shared_plan=True (the plan holds the swapped labels)")
    if len(seeds) == 0:
        raise ValueError("evaluation needs at least one seed (the protocol reports >= 3)")
    if data.class_names != test.class_names:
        raise ValueError(
            "the set and the test split have different classes: evaluate on the same dataset"
        )
    dev = resolve_device(device)
    plan, plan_wall, plan_peak = None, 0.0, 0.0
    if shared_plan:
        with measure(dev) as usage:
            plan = build_relabel_plan(
                data,
                cfg,
                teacher=teacher,
                seed=seeds[0],
                device=dev,
                progress=progress,
                label_data=label_data,
                precision=precision,
            )
        plan_wall, plan_peak = usage.wall_s / len(seeds), usage.peak_mb
    if (
        plan is not None
        and not distributed.context().active
        and use_stacking(stack, dev, len(seeds))
    ):
        return evaluate_stacked(data, test, cfg, plan, seeds, dev, precision, progress, usage)
    done: dict[int, tuple[float, float, float]] = {}
    # under torchrun the seeds are spread over the ranks, one student per rank at a time
    distributed.announce_split("students", [f"seed {s}" for s in seeds])
    for i in distributed.owned(len(seeds)):
        with measure(dev) as usage:
            student = train_student(
                data,
                cfg,
                teacher=teacher,
                seed=seeds[i],
                device=dev,
                progress=progress,
                plan=plan,
                precision=precision,
            )
        done[i] = (
            accuracy(student, test, device=dev),
            usage.wall_s + plan_wall,
            max(usage.peak_mb, plan_peak),
        )
    rows = distributed.gather_ordered(done, len(seeds))
    accs, walls, peaks = ([row[j] for row in rows] for j in range(3))
    return EvalResult(accs, walls, peaks, cfg.labels, cfg.augment, len(data))


def evaluate_stacked(
    data: ClipSet,
    test: ClipSet,
    cfg: StudentConfig,
    plan: RelabelPlan,
    seeds: tuple[int, ...] | list[int],
    dev: torch.device,
    precision: str | None,
    progress: bool,
    plan_usage: Any,
) -> EvalResult:
    """`evaluate_set`'s students trained as one stacked model; time and memory are shared
    evenly by the seeds (they ran as one), the plan's included."""
    with measure(dev) as usage:
        students = train_stacked_students(
            data, cfg, plan, seeds, device=dev, precision=precision, progress=progress
        )
    accs = [accuracy(student, test, device=dev) for student in students]
    wall = (usage.wall_s + plan_usage.wall_s) / len(seeds)
    peak = max(usage.peak_mb, plan_usage.peak_mb)
    return EvalResult(
        accs, [wall] * len(seeds), [peak] * len(seeds), cfg.labels, cfg.augment, len(data)
    )


def train_stacked_students(
    data: ClipSet,
    cfg: StudentConfig,
    plan: RelabelPlan,
    seeds: tuple[int, ...] | list[int],
    *,
    device: str | torch.device = "auto",
    precision: str | None = None,
    progress: bool = False,
) -> list[nn.Module]:
    """The students `train_student` gives each seed on `plan`, trained as one stacked model."""
    dev = resolve_device(device)
    if len(plan) != total_steps(len(data), cfg.fit):
        raise ValueError(
            f"the plan has {len(plan)} steps, the students train {total_steps(len(data), cfg.fit)}"
        )
    streams = [plan_batches(plan, data, cfg, plan_order(len(plan), s), dev) for s in seeds]
    return train_students_stacked(
        data, cfg, streams, seeds, device=dev, precision=precision, progress=progress
    )

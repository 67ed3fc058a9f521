"""TSGD synthetic optimisation (the SRe2L "recover" stage, moved to video, with the saliency filter).

The pixels of the synthetic clips S are optimised against a FROZEN teacher:

    L(S) = CE(teacher(aug(S)), y) + r_bn * sum_l ( ||mu_l(S) - RM_l||_2 + ||var_l(S) - RV_l||_2 )

mu_l, var_l are the batch mean and (biased) variance of S at the input of BatchNorm layer l,
captured by forward hooks; RM_l, RV_l are that layer's running statistics learned on real data.

TSGFO (the filter, `filter=True`): every optimiser step is reweighted by the temporal saliency
W' in [beta, 1] of the clip (per pixel or per frame), so updates go to frames and regions that
move. `filter_target="update"` (default) reweights the step Adam takes; `"gradient"` reweights
the gradient Adam sees. Adam divides each pixel's first moment by its own second moment, so a
per-pixel factor that changes slowly cancels out of a gradient-side reweighting almost entirely.
Measured on clips with a static half (beta=0.01, 20 steps): the static half moved 2% as much as
without the filter when the update is reweighted, 97% when the gradient is (tests check both).
`filter=False` is plain SRe2L-style optimisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..data.artifact import DistilledSet
from ..data.clips import ClipSet
from ..runtime import derive_seed, distributed
from ..runtime.budget import check_distill_fits
from ..runtime.progress import progress_bar
from ..training.augment import AugmentConfig, diff_augment
from ..training.models import batchnorm_layers
from ..training.saliency import SaliencyConfig, lowpass_time, modulate_gradient, saliency_map
from .selection import random_indices

INITS = ("real", "noise")
MODULATIONS = ("pixel", "frame")
SALIENCY_SOURCES = ("synthetic", "real")
FILTER_TARGETS = ("update", "gradient")
LR_SCHEDULES = ("cosine", "constant")

# Noise initialisation: N(0.5, NOISE_STD) clipped to [0, 1], i.e. grey plus noise.
NOISE_STD = 0.2

Callback = Callable[[int, dict[str, float]], None]


@dataclass
class TSGDConfig:
    """How TSGD (or, with filter=False, SRe2L-style) optimises the synthetic clips."""

    ipc: int = 1
    # the recovery of the default report's studies of recovery's parts (controls, ablation,
    # sensitivity: `Profile.study_recover`), where recovery moves the pixels; the main table's
    # cells recover as tuning chose per recipe and IPC (`tsgd_core/tuned.json`, often less);
    # tests/test_defaults.py holds each equal
    iterations: int = 100
    lr: float = 3e-4  # Adam on pixels, betas (0.5, 0.9)
    lr_schedule: str = "cosine"  # "cosine": decay to 0 over the iterations (as SRe2L) | "constant"
    r_bn: float = 0.01  # weight of the BN statistics loss
    first_bn: float = 1.0  # extra weight of the first BN layer's term (SRe2L uses 10)
    init: str = "real"  # "real": random real clips of the class (seeded) | "noise": N(0.5, 0.2)
    filter: bool = True  # TSGFO on; False == plain SRe2L-style
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)
    modulation: str = "pixel"  # "pixel" (W') | "frame" (w_t, the spatial mean of W')
    # "update": reweight the step Adam takes | "gradient": reweight the gradient (see above)
    filter_target: str = "update"
    lowpass: bool = False  # with filter: also low-pass the update along time (saliency kernel)
    saliency_source: str = "synthetic"  # "synthetic" (current clip) | "real" (its init clip)
    saliency_every: int = 1  # recompute synthetic saliency every n steps
    augment: bool = True  # differentiable augmentation during optimisation
    augment_cfg: AugmentConfig = field(default_factory=AugmentConfig)
    # True: one batch per IPC slot, N = classes (as SRe2L); False: one batch of all clips
    batch_by_slot: bool = True
    clamp: bool = True  # keep pixels in [0, 1] after each step
    seed: int = 0


# ---------------------------------------------------------------------------------------------
# Loss terms


class BNStatisticsHook:
    """Forward hook on one BatchNorm layer: the batch mean / variance of its input, and the BN loss."""

    def __init__(self, layer: nn.modules.batchnorm._BatchNorm) -> None:
        if layer.running_mean is None or layer.running_var is None:
            raise ValueError(
                f"{layer} tracks no running statistics: build it with track_running_stats=True"
            )
        self.layer = layer
        self.mean: torch.Tensor | None = None
        self.var: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None
        self._handle = layer.register_forward_hook(self._capture)

    def _capture(self, layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: Any) -> None:
        x = inputs[0]
        dims = [0, *range(2, x.ndim)]  # every axis but channels
        self.var, self.mean = torch.var_mean(x, dim=dims, unbiased=False)
        self.loss = torch.linalg.vector_norm(
            self.mean - self.layer.running_mean
        ) + torch.linalg.vector_norm(self.var - self.layer.running_var)

    def remove(self) -> None:
        self._handle.remove()


def attach_bn_hooks(model: nn.Module) -> list[BNStatisticsHook]:
    """One BNStatisticsHook per BatchNorm layer of `model`, in forward order."""
    hooks: list[BNStatisticsHook] = []
    try:
        for layer in batchnorm_layers(model):
            hooks.append(BNStatisticsHook(layer))
    except Exception:
        remove_hooks(hooks)
        raise
    return hooks


def remove_hooks(hooks: list[BNStatisticsHook]) -> None:
    for hook in hooks:
        hook.remove()


def bn_statistics_loss(hooks: list[BNStatisticsHook], first_bn: float = 1.0) -> torch.Tensor:
    """sum_l c_l (||mu_l - RM_l||_2 + ||var_l - RV_l||_2), c_1 = first_bn, c_l = 1 after.

    SRe2L weights the first layer more: its statistics are those of (nearly) raw pixels, the
    ones a synthetic clip drifts from first.
    """
    losses = [hook.loss for hook in hooks if hook.loss is not None]
    if len(losses) != len(hooks):
        raise RuntimeError("a BatchNorm hook saw no forward pass: run the model before the BN loss")
    if not losses:
        return torch.zeros(())
    weights = torch.ones(len(losses), device=losses[0].device)
    weights[0] = first_bn
    return (torch.stack(losses) * weights).sum()


class LossTerms(NamedTuple):
    total: torch.Tensor
    ce: torch.Tensor
    bn: torch.Tensor
    logits: torch.Tensor


def tsgd_loss(
    teacher: nn.Module,
    clips: torch.Tensor,
    labels: torch.Tensor,
    hooks: list[BNStatisticsHook],
    r_bn: float,
    first_bn: float = 1.0,
) -> LossTerms:
    """CE(teacher(clips), labels) + r_bn * BN statistics loss; `hooks` must sit on `teacher`."""
    logits = teacher(clips)
    ce = F.cross_entropy(logits, labels)
    bn = bn_statistics_loss(hooks, first_bn).to(ce.device)
    return LossTerms(ce + r_bn * bn, ce, bn, logits)


# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by distribution matching)


def check_ipc_against_classes(train: ClipSet, ipc: int) -> None:
    """init='real' needs `ipc` real clips of every class."""
    counts = train.class_counts()
    for c, name in enumerate(train.class_names):
        if int(counts[c]) < ipc:
            raise ValueError(
                f"IPC {ipc} needs {ipc} real clips per class to initialise from; class {name!r} "
                f"has {int(counts[c])}: lower ipc or use init='noise'"
            )


def initial_clips(
    train: ClipSet, ipc: int, init: str, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Starting clips (classes, ipc, C, T, H, W) and the train indices they came from (-1: noise)."""
    k = train.num_classes
    if init == "noise":
        g = torch.Generator().manual_seed(derive_seed(seed, 11))
        clips = (0.5 + NOISE_STD * torch.randn(k, ipc, *train.clip_shape, generator=g)).clamp(0, 1)
        return clips, torch.full((k, ipc), -1, dtype=torch.long)
    # the random-selection baseline with the same seed: "method minus random" is exactly what
    # the optimisation added to its own start set
    index = random_indices(train.labels, k, ipc, seed).reshape(k, ipc)
    return train.videos[index.flatten()].reshape(k, ipc, *train.clip_shape).float().clone(), index


def class_major(slots: list[torch.Tensor]) -> torch.Tensor:
    """Per-slot batches [(classes, ...)] * ipc -> (classes * ipc, ...) with class 0's clips first."""
    stacked = torch.stack(slots, dim=1)  # (classes, ipc, ...)
    return stacked.reshape(-1, *stacked.shape[2:])


def check_finite(step: int, terms: dict[str, float], what: str, advice: str) -> None:
    if not all(math.isfinite(v) for v in terms.values()):
        values = ", ".join(f"{name}={value:.4g}" for name, value in terms.items())
        raise FloatingPointError(f"{what} is not finite at step {step} ({values}): {advice}")


def config_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-able dict of a (nested) config dataclass; tuples become lists."""

    def jsonable(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [jsonable(v) for v in value]
        return value

    return jsonable(asdict(cfg))


def widest_conv(model: nn.Module) -> int:
    """The most output channels of any convolution (sizes the activations of a batch)."""
    convs = [m.out_channels for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    return max(convs, default=1)


def last_linear_out_features(model: nn.Module) -> int | None:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


# ---------------------------------------------------------------------------------------------
# TSGD


def validate_tsgd(teacher: nn.Module, train: ClipSet, cfg: TSGDConfig) -> None:
    if cfg.ipc < 1:
        raise ValueError(f"ipc must be >= 1, got {cfg.ipc}")
    if cfg.iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {cfg.iterations}")
    if cfg.init not in INITS:
        raise ValueError(f"unknown init {cfg.init!r}: choose one of {', '.join(INITS)}")
    if cfg.modulation not in MODULATIONS:
        raise ValueError(
            f"unknown modulation {cfg.modulation!r}: choose one of {', '.join(MODULATIONS)}"
        )
    if cfg.saliency_source not in SALIENCY_SOURCES:
        raise ValueError(
            f"unknown saliency_source {cfg.saliency_source!r}: "
            f"choose one of {', '.join(SALIENCY_SOURCES)}"
        )
    if cfg.filter_target not in FILTER_TARGETS:
        raise ValueError(
            f"unknown filter_target {cfg.filter_target!r}: choose one of {', '.join(FILTER_TARGETS)}"
        )
    if cfg.saliency_source == "real" and cfg.init != "real":
        raise ValueError(
            "saliency_source='real' takes saliency from the real clip each synthetic clip was "
            "initialised from: it needs init='real' (or use saliency_source='synthetic')"
        )
    if cfg.saliency_every < 1:
        raise ValueError(f"saliency_every must be >= 1, got {cfg.saliency_every}")
    if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        raise ValueError(f"lr must be a finite number > 0, got {cfg.lr}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"unknown lr_schedule {cfg.lr_schedule!r}: choose one of {', '.join(LR_SCHEDULES)}"
        )
    if not cfg.r_bn >= 0 or not math.isfinite(cfg.r_bn):
        raise ValueError(f"r_bn must be a finite number >= 0, got {cfg.r_bn}")
    if not cfg.first_bn >= 0 or not math.isfinite(cfg.first_bn):
        raise ValueError(f"first_bn must be a finite number >= 0, got {cfg.first_bn}")
    if len(train) == 0:
        raise ValueError(
            "the training set is empty: TSGD needs real clips (or at least class names)"
        )
    out = last_linear_out_features(teacher)
    if out is not None and out != train.num_classes:
        raise ValueError(
            f"the teacher predicts {out} classes but the training set has {train.num_classes}: "
            "distill with the teacher trained on this dataset"
        )
    if cfg.r_bn > 0 and not batchnorm_layers(teacher):
        raise ValueError(
            "the teacher has no BatchNorm layers: train it with norm='batch' or set r_bn=0"
        )
    if cfg.init == "real":
        check_ipc_against_classes(train, cfg.ipc)


class _FrozenTeacher:
    """Context: teacher on `device`, eval mode, no parameter grads; restores mode and flags after."""

    def __init__(self, teacher: nn.Module, device: torch.device) -> None:
        self.teacher, self.device = teacher, device

    def __enter__(self) -> nn.Module:
        self.was_training = self.teacher.training
        self.requires_grad = [p.requires_grad for p in self.teacher.parameters()]
        self.teacher.to(self.device).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        return self.teacher

    def __exit__(self, *exc: object) -> None:
        for p, flag in zip(self.teacher.parameters(), self.requires_grad, strict=True):
            p.requires_grad_(flag)
        self.teacher.train(self.was_training)


def _filter_step(delta: torch.Tensor, saliency: torch.Tensor, cfg: TSGDConfig) -> torch.Tensor:
    """The saliency filter applied to a gradient or an update: modulation, then optional low-pass."""
    delta = modulate_gradient(delta, saliency, mode=cfg.modulation, cfg=cfg.saliency)
    if cfg.lowpass:
        delta = lowpass_time(delta, cfg.saliency)
    return delta


def _optimise_batch(
    teacher: nn.Module,
    hooks: list[BNStatisticsHook],
    start: torch.Tensor,
    labels: torch.Tensor,
    real_saliency: torch.Tensor | None,
    cfg: TSGDConfig,
    batch: int,
    progress: bool,
    callback: Callback | None,
    desc: str,
) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """Optimise one batch of synthetic clips; returns the final clips and per-step metrics."""
    syn = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([syn], lr=cfg.lr, betas=(0.5, 0.9))
    schedule = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, cfg.iterations))
        if cfg.lr_schedule == "cosine"
        else torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    )
    # CPU generator: the augmentation draws its parameters from it, whatever the clips' device.
    aug_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, 21, batch))
    history: dict[str, list[float]] = {"loss": [], "loss_ce": [], "loss_bn": [], "teacher_acc": []}
    saliency = real_saliency
    advice = f"lower lr (now {cfg.lr}) or r_bn (now {cfg.r_bn})"

    for step in progress_bar(range(cfg.iterations), desc=desc, enabled=progress, leave=False):
        if cfg.filter and cfg.saliency_source == "synthetic" and step % cfg.saliency_every == 0:
            saliency = saliency_map(syn.detach(), cfg.saliency)
        view = diff_augment(syn, aug_gen, cfg.augment_cfg) if cfg.augment else syn
        terms = tsgd_loss(teacher, view, labels, hooks, cfg.r_bn, cfg.first_bn)
        metrics = {
            "loss": terms.total.item(),
            "loss_ce": terms.ce.item(),
            "loss_bn": terms.bn.item(),
        }
        check_finite(step, metrics, f"TSGD loss (batch {batch})", advice)
        metrics["teacher_acc"] = (terms.logits.argmax(1) == labels).float().mean().item()

        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        before = None
        if cfg.filter and cfg.filter_target == "gradient":
            syn.grad = _filter_step(syn.grad, saliency, cfg)
        elif cfg.filter:
            before = syn.detach().clone()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            if before is not None:
                syn.copy_(before + _filter_step(syn - before, saliency, cfg))
            if cfg.clamp:
                syn.clamp_(0, 1)

        for name, value in metrics.items():
            history[name].append(value)
        if callback is not None:
            callback(step, {**metrics, "batch": float(batch)})
    return syn.detach(), history


def distill_tsgd(
    teacher: nn.Module,
    train: ClipSet,
    cfg: TSGDConfig,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    callback: Callback | None = None,
) -> DistilledSet:
    """Distill `train` into cfg.ipc clips per class by optimising pixels against `teacher`.

    With batch_by_slot, slot j holds the j-th clip of every class and is optimised as one
    batch (N = classes); otherwise all classes x ipc clips form one batch. history holds
    per-step "loss", "loss_ce", "loss_bn" and "teacher_acc" (the teacher's accuracy on the
    augmented synthetic batch), averaged over the batches (slots) at each step.
    The teacher is moved to `device`; its train/eval mode and requires_grad flags are restored.
    `callback(step, metrics)` gets the step within the batch and that batch's metrics.
    Under torchrun each rank optimises its share of the batches (slots) and every rank returns
    the whole set, gathered; each batch is seeded by its index, so the set is the same.
    """
    validate_tsgd(teacher, train, cfg)
    check_distill_fits("tsgd", cfg.ipc, train.num_classes, train.clip_shape, widest_conv(teacher))
    device = torch.device(device)
    start, _ = initial_clips(train, cfg.ipc, cfg.init, cfg.seed)  # (classes, ipc, C, T, H, W)
    k = train.num_classes
    if cfg.batch_by_slot:
        batches = [(start[:, j], torch.arange(k)) for j in range(cfg.ipc)]
    else:
        batches = [
            (
                start.reshape(k * cfg.ipc, *start.shape[2:]),
                torch.arange(k).repeat_interleave(cfg.ipc),
            )
        ]

    method = "tsgd" if cfg.filter else "sre2l"
    # under torchrun, rank 0 first says which rank optimises which slots
    slots = [f"IPC slot {j + 1}" for j in range(cfg.ipc)]
    items = slots if cfg.batch_by_slot else [f"IPC slots 1-{cfg.ipc} (one batch)"]
    what = (
        f"{method} recover of {k} classes x {cfg.ipc} IPC slots (slot j: every class's j-th clip)"
    )
    distributed.announce_split(what, items)
    done: dict[int, tuple[torch.Tensor, dict[str, list[float]]]] = {}
    with _FrozenTeacher(teacher, device) as frozen:
        hooks = attach_bn_hooks(frozen)
        try:
            # under torchrun each rank optimises its own slots (all of them in one process)
            for b in distributed.owned(len(batches)):
                clips, labels = (t.to(device) for t in batches[b])
                real_saliency = None
                if cfg.filter and cfg.saliency_source == "real":
                    real_saliency = saliency_map(clips, cfg.saliency)
                desc = f"{method} batch {b + 1}/{len(batches)}"
                final, history = _optimise_batch(
                    frozen, hooks, clips, labels, real_saliency, cfg, b, progress, callback, desc
                )
                done[b] = (final.cpu().float(), history)
        finally:
            remove_hooks(hooks)
    gathered = distributed.gather_ordered(done, len(batches))
    results, histories = [r for r, _ in gathered], [h for _, h in gathered]

    if cfg.batch_by_slot:
        videos = class_major(results)
    else:
        videos = results[0]  # already class-major: repeat_interleave labels
    labels = torch.arange(k).repeat_interleave(cfg.ipc)
    return DistilledSet(
        videos=videos.contiguous(),
        labels=labels,
        class_names=list(train.class_names),
        method=method,
        ipc=cfg.ipc,
        config=config_dict(cfg),
        seed=cfg.seed,
        history=average_histories(histories),
    )


def average_histories(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-step mean over batches of each metric."""
    if not histories:
        return {}
    return {
        name: torch.tensor([h[name] for h in histories], dtype=torch.float64).mean(0).tolist()
        if histories[0][name]
        else []
        for name in histories[0]
    }

"""Squeeze: train the teacher on the full real train split once, cache it, reuse it everywhere.

The checkpoint lives under `<cache_dir>/teachers/<key>.pt`, where the key hashes the data's
configuration, the model's and the training's: change any of them and a new teacher is trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import torch
import torch.nn.functional as F
from torch import nn

from ..data.clips import ClipSet, DataError, Splits
from ..data.datasets import class_weights, splits_identity
from ..data.storage import (
    config_key,
    discard_bad_entry,
    load_failure,
    load_torch,
    save_torch,
    tensor_digest,
)
from ..runtime import distributed, resolve_device
from ..runtime.budget import FLOAT_BYTES, check_disk_fits, check_training_fits
from ..runtime.profiling import measure
from .augment import student_augment
from .models import VideoClassifier, build_model
from .train import FitConfig, accuracy, cross_entropy_loss, fit, predict_logits


@dataclass
class ModelConfig:
    """Which network, and its size; the teacher needs norm='batch' for TSGD's BN matching.

    The defaults (max pooling, global max head) are what learns the motion benchmark: with
    average pooling or a flat head, a small ConvNet3D memorises the background instead.
    """

    name: str = "convnet3d"
    width: int = 32
    depth: int = 3
    norm: str = "batch"
    pooling: str = "max"
    head: str = "max"

    def build(
        self, num_classes: int, clip_shape: tuple[int, ...], seed: int | None = None
    ) -> VideoClassifier:
        return build_model(
            self.name,
            num_classes,
            tuple(clip_shape),
            self.width,
            self.depth,
            self.norm,
            self.pooling,
            seed,
            self.head,
        )


@dataclass
class TeacherInfo:
    """What a teacher is and how good it is (stored in its checkpoint)."""

    key: str
    class_names: list[str]
    clip_shape: list[int]
    model: dict[str, Any]
    fit: dict[str, Any]
    augment: bool
    test_acc: float
    val_acc: float | None
    train_wall_s: float
    train_peak_mb: float
    clips_per_s: float
    history: dict[str, list[float]] = field(default_factory=dict)
    # CPU training is bitwise reproducible for a given thread count only: which one made it
    # (None: a checkpoint from before this was recorded)
    torch_threads: int | None = None
    # the key it had when keys named the CPU thread count, in checkpoints a (since retired)
    # cache migration moved; kept so that such checkpoints still load
    former_key: str | None = None


def recipe_parts(
    splits: Splits, model_cfg: ModelConfig, fit_cfg: FitConfig, augment: bool, balanced: bool
) -> tuple[Any, ...]:
    """What a teacher's key hashes: its data, network, training, augmentation and balancing."""
    # a real dataset's identity, not its config: that holds paths (root, cache folder)
    parts = ("teacher", splits.name, splits_identity(splits), model_cfg, fit_cfg, augment)
    return parts + ("balanced",) if balanced else parts


def teacher_key(
    splits: Splits,
    model_cfg: ModelConfig,
    fit_cfg: FitConfig,
    augment: bool,
    balanced: bool = False,
) -> str:
    """The cache key of a teacher: its recipe alone. The CPU thread count it was trained with
    (its weights differ in the last bits from another count's) is in its metadata
    (TeacherInfo.torch_threads), so any run finds the teacher the grid trained."""
    return config_key(*recipe_parts(splits, model_cfg, fit_cfg, augment, balanced))


def training_threads(device: torch.device) -> int | None:
    """The thread count that decides a teacher's weights: torch's on the CPU, None elsewhere."""
    return torch.get_num_threads() if device.type == "cpu" else None


def recorded_threads(path: Path) -> int | None:
    """The CPU thread count a cached teacher records (None: unknown or an accelerator's)."""
    try:
        info = load_torch(path)["info"]
    except Exception:  # a damaged file is reported when it is loaded
        return None
    return info.get("torch_threads")


def threads_text(count: int | None) -> str:
    return f"{count} CPU thread{'s' if count != 1 else ''}"


def teacher_source_line(
    splits: Splits,
    model_cfg: ModelConfig,
    fit_cfg: FitConfig,
    augment: bool,
    balanced: bool,
    threads: int | None,
    cache_dir: str | Path,
) -> str:
    """One line: which teacher a command uses, whether it is in the cache, and the thread count
    it was trained with where this run's differs (its weights are used as they are)."""
    key = teacher_key(splits, model_cfg, fit_cfg, augment, balanced)
    path = teacher_path(cache_dir, key)
    if path.is_file():
        line = f"teacher {key} (cache, {path})"
        trained = recorded_threads(path)
        if threads is not None and trained is not None and trained != threads:
            line += (
                f"; trained with {threads_text(trained)}, this run uses {threads}: the cached "
                "weights are used as they are"
            )
        return line
    return f"training teacher {key} (not in the cache {Path(cache_dir) / 'teachers'})"


def augmented_cross_entropy(
    model: nn.Module, videos: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Cross-entropy on a clip-consistent random crop and photometric jitter of each clip."""
    return F.cross_entropy(model(student_augment(videos, generator)), labels)


def class_balanced(loss_weights: torch.Tensor, augment: bool):
    """The teacher's batch loss with per-class weights (unequal classes count equally)."""

    def batch_loss(
        model: nn.Module, videos: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ):
        views = student_augment(videos, generator) if augment else videos
        return F.cross_entropy(model(views), labels, weight=loss_weights.to(labels.device))

    return batch_loss


def train_teacher(
    splits: Splits,
    model_cfg: ModelConfig | None = None,
    fit_cfg: FitConfig | None = None,
    *,
    augment: bool = True,
    balanced: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> tuple[VideoClassifier, TeacherInfo]:
    """Train on the full train split, choose the weights by validation accuracy, test once.

    Under torchrun the training is data-parallel over the ranks (`fit(data_parallel=True)`).
    balanced: weight the loss by inverse class frequency where classes are unequal.
    """
    model_cfg = model_cfg or ModelConfig()
    fit_cfg = fit_cfg or FitConfig()
    dev = resolve_device(device)
    check_training_fits(
        "teacher training",
        fit_cfg.batch_size,
        len(splits.train),
        splits.clip_shape,
        model_cfg.width,
        device=dev,
    )
    model = model_cfg.build(splits.num_classes, splits.clip_shape, seed=fit_cfg.seed)
    batch_loss = augmented_cross_entropy if augment else cross_entropy_loss
    weights = class_weights(splits.train.labels, splits.num_classes) if balanced else None
    if weights is not None:
        batch_loss = class_balanced(weights, augment)
    with measure(dev) as usage:
        result = fit(
            model,
            splits.train,
            fit_cfg,
            val=splits.val if len(splits.val) else None,  # val_fraction 0: the last weights
            device=dev,
            progress=progress,
            desc="teacher",
            batch_loss=batch_loss,
            data_parallel=True,  # DDP under torchrun; one process trains as before
        )
    info = TeacherInfo(
        key=teacher_key(splits, model_cfg, fit_cfg, augment, balanced),
        class_names=list(splits.class_names),
        clip_shape=list(splits.clip_shape),
        model=asdict(model_cfg),
        fit=asdict(fit_cfg),
        augment=augment,
        test_acc=accuracy(model, splits.test, device=dev),
        val_acc=result.best_val_acc,
        train_wall_s=usage.wall_s,
        train_peak_mb=usage.peak_mb,
        clips_per_s=result.clips_seen / max(usage.wall_s, 1e-9),
        history=result.history,
        torch_threads=torch.get_num_threads(),
    )
    return model.cpu().eval(), info


def teacher_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / "teachers" / f"{key}.pt"


def state_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """A short hash of a model's weights and buffers (names included)."""
    return config_key(
        sorted(state_dict), tensor_digest(*(state_dict[k] for k in sorted(state_dict)))
    )


def save_teacher(model: nn.Module, info: TeacherInfo, path: str | Path) -> Path:
    state = model.state_dict()
    return save_torch(
        {"state_dict": state, "info": asdict(info), "digest": state_digest(state)}, path
    )


def load_teacher(path: str | Path) -> tuple[VideoClassifier, TeacherInfo]:
    """A teacher checkpoint written by save_teacher; DataError naming the file if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no teacher checkpoint at {path}: train one with load_or_train_teacher")
    try:
        blob = load_torch(path)
        info = TeacherInfo(**blob["info"])
        model = ModelConfig(**info.model).build(len(info.class_names), tuple(info.clip_shape))
        model.load_state_dict(blob["state_dict"])
        if "digest" in blob and blob["digest"] != state_digest(blob["state_dict"]):
            raise ValueError("its weights do not match the digest recorded when it was saved")
    except Exception as error:  # torch.load, pickle, zip and shape errors all mean "damaged"
        raise DataError(
            f"{path} is not a readable teacher checkpoint ({load_failure(error)}): delete it and "
            "train the teacher again"
        ) from error
    return model.eval(), info


def load_cached_teacher(path: Path, key: str) -> tuple[VideoClassifier, TeacherInfo] | None:
    """The teacher cached at `path` if it loads and records `key`; otherwise None (removed)."""
    if not path.is_file():
        return None
    try:
        model, info = load_teacher(path)
    except DataError as error:
        discard_bad_entry(path, load_failure(error.__cause__ or error))
        return None
    if info.key != key:
        discard_bad_entry(path, f"recorded key {info.key!r}, expected {key!r}")
        return None
    return model, info


class TrainOptions(TypedDict, total=False):
    """train_teacher's keyword options, which load_or_train_teacher passes on."""

    augment: bool
    balanced: bool
    device: str
    progress: bool


def load_or_train_teacher(
    splits: Splits,
    model_cfg: ModelConfig | None = None,
    fit_cfg: FitConfig | None = None,
    *,
    cache_dir: str | Path = "cache",
    **options: Unpack[TrainOptions],
) -> tuple[VideoClassifier, TeacherInfo]:
    """The cached teacher for this data and configuration, trained (and cached) on first use."""
    model_cfg = model_cfg or ModelConfig()
    fit_cfg = fit_cfg or FitConfig()
    recipe = (model_cfg, fit_cfg, options.get("augment", True), options.get("balanced", False))
    key = teacher_key(splits, *recipe)
    path = teacher_path(cache_dir, key)
    cached = load_cached_teacher(path, key)
    if distributed.agree(cached is not None):  # under torchrun all ranks load, or all train
        model, info = cached
    else:
        check_teacher_disk(path, model_cfg, splits)  # before training, not after it
        model, info = train_teacher(splits, model_cfg, fit_cfg, **options)
        if distributed.is_main():
            save_teacher(model, info, path)
        distributed.barrier()
    check_teacher_matches(info, splits.train)
    return model, info


def check_teacher_disk(path: Path, model_cfg: ModelConfig, splits: Splits) -> None:
    """Refuse to train a teacher whose checkpoint the cache's disk has no room for."""
    model = model_cfg.build(splits.num_classes, splits.clip_shape)
    size = sum(t.numel() for t in model.state_dict().values()) * FLOAT_BYTES
    check_disk_fits(path, size, f"the teacher checkpoint {path.name}")


def check_teacher_matches(info: TeacherInfo, data: ClipSet) -> None:
    """A teacher trained for other classes or another clip size cannot label this data."""
    if list(info.class_names) != list(data.class_names):
        raise DataError(
            f"the teacher was trained for {len(info.class_names)} classes "
            f"({', '.join(info.class_names[:4])}...), the data has {data.num_classes} "
            f"({', '.join(data.class_names[:4])}...): train a teacher on this dataset"
        )
    if list(info.clip_shape) != list(data.clip_shape):
        raise DataError(
            f"the teacher takes clips of shape {tuple(info.clip_shape)}, the data has "
            f"{tuple(data.clip_shape)}: train a teacher for this clip size"
        )


# ----------------------------------------------------------------------------- teacher checks

WEAK_VAL_ACC = 2.0  # warn below this multiple of chance
WEAK_RECALL = 0.25  # warn when a class is recalled less than this fraction of the time
FLAT_SOFT_LABELS = 1.5  # warn when the mean top soft probability is below this multiple of 1/K


@torch.no_grad()
def teacher_warnings(
    teacher: torch.nn.Module, data: Any, tau: float, *, profile: str = "", device: str = "cpu"
) -> list[str]:
    """Why distilling from this teacher would mislead, on held-out clips (empty when fine).

    Checks validation accuracy against chance, each class's recall, and how flat the soft
    labels are at temperature `tau`; each message names the setting to change.
    """
    if len(data) == 0:
        return []
    k = data.num_classes
    logits = predict_logits(teacher, data.videos, device=device)
    pred = logits.argmax(1)
    out = []
    acc = float((pred == data.labels).float().mean())
    where = f"profile {profile!r}" if profile else "the profile"
    if acc < WEAK_VAL_ACC / k:
        out.append(
            f"the teacher is weak: {100 * acc:.1f} % on held-out clips, chance is {100 / k:.1f} %; "
            f"give it more steps or a larger model ({where}: teacher_fit, teacher_model), or fewer classes (classes=[...])"
        )
    recall = [
        float((pred[data.labels == c] == c).float().mean())
        for c in range(k)
        if (data.labels == c).any()
    ]
    names = [data.class_names[c] for c in range(k) if (data.labels == c).any()]
    ignored = [
        f"{n} ({100 * r:.0f} %)" for n, r in zip(names, recall, strict=True) if r < WEAK_RECALL
    ]
    if ignored:
        out.append(
            f"the teacher barely recognises {len(ignored)} class(es): {', '.join(ignored[:5])}; "
            "add videos of those classes (max_per_class), train longer, or leave them out (classes=[...])"
        )
    top = float(torch.softmax(logits / tau, dim=1).max(1).values.mean())
    if top < FLAT_SOFT_LABELS / k:
        out.append(
            f"the teacher's soft labels are near uniform at tau {tau:g} (mean top probability "
            f"{top:.2f}, uniform is {1 / k:.2f}), and soft-label students can collapse to one "
            f"answer: lower the student's tau (StudentConfig.tau of {where}) or evaluate with "
            "hard labels (labels='hard')"
        )
    return out

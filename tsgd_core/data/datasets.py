"""Which data an experiment uses: the built-in motion benchmark, or a real dataset on disk.

A `DataSpec` names a real dataset (kind, root, split, classes, clip size, ...) and travels in a
`RunSpec` as its canonical text (`RunSpec.dataset`; empty means the built-in benchmark). Its
`identity()` is what the clips are (the files' content, the split files, the decode settings,
the validation carve-out), never where they are: every cache key of a run on real data holds
it, so two datasets never share a teacher, a distilled set or a result, and a dataset (or the
cache) moved elsewhere is still found.

Decoded clips live in `<cache_dir>/videos/` for the CLI, the notebooks and the API alike.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from .clips import DataError, Splits
from .video_base import SAMPLINGS
from .video_lists import check_group_pattern

# Mirrors tsgd_core.data.real_video.KINDS (tests check they agree); real_video is imported lazily.
DATASET_KINDS = ("ucf101", "hmdb51", "miniucf", "kinetics", "ssv2", "frames")
VIDEO_CACHE = "videos"  # decoded clips: <cache_dir>/videos/

# Clip geometry (frames, height, width) of the video distillation literature per dataset
# (MiniUCF and HMDB51 at 16 x 112 x 112, Kinetics and SSv2 at 8 x 64 x 64).
LITERATURE_CLIPS: dict[str, tuple[int, int, int]] = {
    "ucf101": (16, 112, 112),
    "miniucf": (16, 112, 112),
    "hmdb51": (16, 112, 112),
    "frames": (16, 112, 112),
    "kinetics": (8, 64, 64),
    "ssv2": (8, 64, 64),
}
# Clip geometry of real data per profile when no --frames / --size is given.
PROFILE_CLIPS: dict[str, tuple[int, int, int] | None] = {
    "smoke": (8, 16, 16),
    "quick": (8, 16, 16),
    "default": (8, 32, 32),
    "real-cpu": (8, 32, 32),
    "literature": None,  # per dataset: LITERATURE_CLIPS
}
DEFAULT_CLIPS = (8, 32, 32)


class WeakTeacherWarning(UserWarning):
    """The teacher is too weak (or its soft labels too flat) to distil from."""


@dataclass(frozen=True)
class DataSpec:
    """A real dataset on disk and how its clips are made (see `real_video.load_video_dataset`)."""

    kind: str
    root: str
    frames: int = DEFAULT_CLIPS[0]
    size: tuple[int, int] = DEFAULT_CLIPS[1:]
    split: int = 1
    classes: tuple[str, ...] = ()  # empty: every class
    max_per_class: int | None = None
    val_fraction: float = 0.1
    backend: str = "auto"
    annotations: str | None = None
    on_missing: str = "error"
    test_fraction: float = 0.2
    sampling: str = "spread"  # or "stride": frames at the clip's own speed (video_base.SAMPLINGS)
    group_pattern: str | None = None  # regex, one group: a video name's source (val by group)

    def __post_init__(self) -> None:
        if self.kind not in DATASET_KINDS:
            raise DataError(f"unknown dataset {self.kind!r}: use {', '.join(DATASET_KINDS)}")
        if not self.root:
            raise DataError(f"dataset {self.kind} needs a root folder (nothing is downloaded)")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "classes", tuple(self.classes or ()))
        if self.frames < 1 or len(self.size) != 2 or min(self.size) < 1:
            raise DataError(f"frames and size must be positive, got {self.frames} and {self.size}")
        if self.sampling not in SAMPLINGS:
            raise DataError(f"unknown sampling {self.sampling!r}: use {', '.join(SAMPLINGS)}")
        if self.group_pattern is not None:
            check_group_pattern(self.group_pattern)

    # -- text form (RunSpec.dataset, notebook parameters) --------------------------------------

    def to_text(self) -> str:
        """Canonical JSON: equal specs give equal text."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str) -> DataSpec:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(
                f"dataset must be DataSpec JSON ({error}): got {text[:80]!r}"
            ) from error
        if not isinstance(raw, dict):
            raise DataError(f"dataset must be a JSON object, got {text[:80]!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DataError(
                f"unknown dataset field(s) {', '.join(unknown)}: known are {', '.join(sorted(known))}"
            )
        return cls(**raw)

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        return (3, self.frames, *self.size)

    def label(self) -> str:
        """A short readable name: kind, classes kept, clip size."""
        classes = f", {len(self.classes)} classes" if self.classes else ""
        cap = f", <= {self.max_per_class} per class" if self.max_per_class else ""
        speed = ", stride sampling" if self.sampling == "stride" else ""
        geometry = f"{self.frames}x{self.size[0]}x{self.size[1]}"
        return f"{self.kind} split {self.split} ({geometry}{classes}{cap}{speed})"

    # -- identity and loading -----------------------------------------------------------------

    def loader_options(self) -> dict[str, Any]:
        return dict(
            frames=self.frames,
            size=self.size,
            split=self.split,
            classes=list(self.classes) or None,
            max_per_class=self.max_per_class,
            val_fraction=self.val_fraction,
            backend=self.backend,
            annotations=self.annotations,
            on_missing=self.on_missing,
            test_fraction=self.test_fraction,
            sampling=self.sampling,
            group_pattern=self.group_pattern,
        )

    def identity(self) -> str:
        """What the clips are: content fingerprint, split files, decode settings, val carve-out."""
        return _identity(self.to_text())

    def load(
        self, cache_dir: str | Path = "cache", *, progress: bool = True, workers: int | None = None
    ) -> Splits:
        """Train / val / test splits, decoded once into `<cache_dir>/videos/` and reused."""
        from .real_video import load_video_dataset

        return load_video_dataset(
            self.kind,
            self.root,
            **self.loader_options(),
            cache_dir=Path(cache_dir) / VIDEO_CACHE,
            progress=progress,
            workers=workers,
        )


# Remembered per process: a grid asks for it many times (every key of every run), and listing
# a large dataset takes about a second. Files changed while a process runs are seen by the
# decode cache (keyed afresh at every load), not by these keys: call forget_identities().
@functools.lru_cache(maxsize=64)
def _identity(text: str) -> str:
    from .real_video import list_video_dataset, sampled_key, splits_key
    from .video_lists import group_rule

    spec = DataSpec.from_text(text)
    opts = spec.loader_options()
    listing = list_video_dataset(
        spec.kind,
        spec.root,
        split=spec.split,
        classes=opts["classes"],
        max_per_class=spec.max_per_class,
        annotations=spec.annotations,
        on_missing=spec.on_missing,
        test_fraction=spec.test_fraction,
        group_pattern=spec.group_pattern,
    )
    key = sampled_key(listing, spec.frames, spec.size, spec.backend, spec.sampling)
    # the same value `load_video_dataset` stores as the splits' identity (seed 0)
    return splits_key(key, spec.val_fraction, 0, group_rule(spec.kind, spec.group_pattern))


def forget_identities() -> None:
    """Compute dataset identities afresh (after changing a dataset's files in this process)."""
    _identity.cache_clear()


def data_spec(text: str) -> DataSpec | None:
    """`RunSpec.dataset` to a DataSpec; None for the built-in benchmark (empty text)."""
    return DataSpec.from_text(text) if text else None


def as_text(dataset: str | dict[str, Any] | DataSpec | None) -> str:
    """A notebook's `dataset` parameter (DataSpec, its fields as a dict, its text, or empty)
    as `RunSpec.dataset` text; a relative root is made absolute."""
    if not dataset:
        return ""
    if isinstance(dataset, str):
        dataset = DataSpec.from_text(dataset)
    if isinstance(dataset, dict):
        dataset = DataSpec(**dataset)
    return replace(dataset, root=str(Path(dataset.root).expanduser().resolve())).to_text()


def describe(dataset: str, splits: Splits) -> str:
    """One line naming the data and its sizes (for reports)."""
    spec = data_spec(dataset)
    sizes = f"{len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test clips"
    c, t, h, w = splits.clip_shape
    if spec is None:
        return f"the built-in motion benchmark ({splits.name}), {splits.num_classes} classes, {sizes} of {t}x{h}x{w}"
    return (
        f"{spec.label()} from {spec.root}: {splits.num_classes} classes "
        f"({class_list(splits.class_names)}), {sizes} "
        f"({splits.config.get('val_carving') or f'val: {spec.val_fraction:g} of each class'})"
    )


def class_list(names: Sequence[str], most: int = 12) -> str:
    """'A, B, C' or, past `most` names, the first ones and how many more."""
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


def clip_geometry(profile: str, kind: str) -> tuple[int, int, int]:
    """(frames, height, width) of real clips for a profile when none are given."""
    return PROFILE_CLIPS.get(profile) or LITERATURE_CLIPS.get(kind, DEFAULT_CLIPS)


def splits_identity(splits: Splits) -> Any:
    """What a teacher key records about the data: a real dataset's identity (no paths), else its config."""
    return splits.config.get("identity", splits.config)


# ----------------------------------------------------------------------------- budgets


# A teacher on real data trains at least this many steps per epoch of its profile, whatever
# the folder's size gives: on a small folder 20 epochs x batch 32 were 40 steps, and the
# teacher ignored the smallest classes.
MIN_STEPS_PER_EPOCH = 15


# How a teacher on real data differs from the profile's (it enters the keys of runs on real data)
REAL_TEACHER_RECIPE = {"min_steps_per_epoch": MIN_STEPS_PER_EPOCH, "balanced": True}


def teacher_steps(num_train: int, epochs: int, batch_size: int) -> int:
    """Steps for the teacher from the dataset's size: the profile's epochs over the train split,
    and at least MIN_STEPS_PER_EPOCH per epoch."""
    per_epoch = math.ceil(num_train / max(1, min(batch_size, num_train)))
    return epochs * max(MIN_STEPS_PER_EPOCH, per_epoch)


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    """Inverse-frequency loss weights (mean 1) when classes are unequal; None when they are equal."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    if counts.min() == counts.max():
        return None
    weights = counts.sum() / (num_classes * counts.clamp(min=1))
    return weights / weights.mean()


# ----------------------------------------------------------------------------- teacher checks


def warn_about_teacher(messages: list[str]) -> None:
    for message in messages:
        warnings.warn(message, WeakTeacherWarning, stacklevel=3)


# ----------------------------------------------------------------------------- data checks
# What the numbers of a dataset can and cannot say; each check returns its warning or None.

TEST_BELOW_VAL = 15.0  # points: a teacher this much worse on test than on val did not generalise
ONE_FRAME_MARGIN = 10.0  # points: a one-frame model this close to the teacher leaves time little
MIN_TEST_CLIPS = 50  # below this, one test clip is worth more than 2 points
NEAR_CHANCE = 20.0  # points above chance: a teacher below it has learned little


def _points(fraction: float) -> float:
    """A fraction as points, rounded so that 0.85 against 1.0 is 15 points, not 15.000000000000002."""
    return round(100.0 * fraction, 6)


def val_test_gap_warning(test_acc: float, val_acc: float | None, num_val: int = 0) -> str | None:
    """Warning text when the teacher's test accuracy is more than TEST_BELOW_VAL points below
    its validation accuracy (the weights were chosen on val: val overstates them), else None."""
    if val_acc is None:
        return None
    gap = _points(val_acc) - _points(test_acc)
    if gap <= TEST_BELOW_VAL:
        return None
    few = f" on {num_val} validation clips" if num_val else ""
    return (
        f"the teacher's test accuracy ({100 * test_acc:.1f} %) is {gap:.1f} points below its "
        f"validation accuracy ({100 * val_acc:.1f} %{few}): the weights were chosen on a "
        "validation split that overstates them, so choices made on it may not carry to test; "
        "give the validation split more clips (val_fraction) or check that the test videos "
        "resemble the training ones"
    )


def one_frame_warning(
    single_acc: float, teacher_acc: float, num_classes: int | None = None
) -> str | None:
    """Warning text when the one-frame control is within ONE_FRAME_MARGIN points of the teacher
    (or above it): the classes are told apart without time, else None."""
    gap = _points(teacher_acc) - _points(single_acc)
    if gap > ONE_FRAME_MARGIN:
        return None
    where = (
        f"{gap:.1f} points below the teacher's {100 * teacher_acc:.1f} %"
        if gap > 0
        else f"{-gap:.1f} points above the teacher's {100 * teacher_acc:.1f} %"
        if gap < 0
        else f"level with the teacher's {100 * teacher_acc:.1f} %"
    )
    message = (
        f"the one-frame control reaches {100 * single_acc:.1f} %, {where}: these classes can "
        "be told apart from a single frame, so temporal methods have little to find here"
    )
    if num_classes and _points(teacher_acc) < _points(1 / num_classes) + NEAR_CHANCE:
        message += (
            f" (the teacher itself is within {NEAR_CHANCE:.0f} points of chance, "
            f"{100 / num_classes:.1f} %: the two may only agree that neither learned)"
        )
    return message


def small_test_warning(num_test: int) -> str | None:
    """Warning text when the test split has fewer than MIN_TEST_CLIPS clips (one clip is then
    worth more than 2 points of accuracy), else None."""
    if num_test >= MIN_TEST_CLIPS:
        return None
    return (
        f"the test split has {num_test} clips: one clip is worth {100 / max(1, num_test):.2f} "
        "points of accuracy, so differences of a few points are a clip or two; add test videos "
        "or read only large differences"
    )


def one_frame_sentence(teacher_acc: float, single_acc: float) -> str:
    """The comparison of notebook 01, read the right way round: how far the teacher on whole
    clips is above (or below) the one-frame control."""
    gap = _points(teacher_acc) - _points(single_acc)
    shown = f"{abs(gap):.1f}"
    accs = f"({100 * teacher_acc:.1f} % against {100 * single_acc:.1f} %)"
    if shown == "0.0":
        return f"The teacher on whole clips is level with the one-frame control {accs}."
    side = "above" if gap > 0 else "below"
    return f"The teacher on whole clips is {shown} points {side} the one-frame control {accs}."


def data_warnings(
    *,
    test_acc: float,
    val_acc: float | None = None,
    num_val: int = 0,
    num_test: int,
    num_classes: int | None = None,
    single_acc: float | None = None,
) -> list[str]:
    """Every data check that fires (test far below val, one frame as good as the clip, a small
    test split), in that order."""
    found = [
        val_test_gap_warning(test_acc, val_acc, num_val),
        None if single_acc is None else one_frame_warning(single_acc, test_acc, num_classes),
        small_test_warning(num_test),
    ]
    return [message for message in found if message]


def warn_about_data(messages: list[str], file: Any = None) -> None:
    """One `tsgd: warning: ...` line on stderr per message (the CLI's form of a warning)."""
    import sys

    for message in messages:
        print(f"tsgd: warning: {' '.join(message.split())}", file=file or sys.stderr, flush=True)


def with_budget(fit_cfg: Any, num_train: int) -> Any:
    """The profile's teacher fit with steps derived from the dataset's size."""
    steps = teacher_steps(num_train, fit_cfg.epochs, fit_cfg.batch_size)
    return replace(fit_cfg, steps=steps)


# ----------------------------------------------------------------------------- writing a dataset folder

TREE_LAYOUTS = ("ucf101", "hmdb51", "frames")
# encoded files alternate between these (extension, FFmpeg encoder)
TREE_CODECS = ((".mp4", "libx264"), (".avi", "mpeg4"))


def write_video_tree(
    splits: Splits, root: str | Path, layout: str = "ucf101", *, scale: int = 2, fps: int = 8
) -> Path:
    """Write clips as a dataset folder of the given layout, as a real copy would look.

    Train and val clips become the training videos, test clips the test videos. Videos are
    encoded (H.264 .mp4 and MPEG-4 .avi in turn, upscaled `scale` times) for the ucf101 and
    hmdb51 layouts, PNG frame folders for `frames`; split files are written as the datasets
    ship them (UCF101's with CRLF line ends). Used by the tests and to try the real-data
    pipeline on the built-in benchmark.
    """
    if layout not in TREE_LAYOUTS:
        raise DataError(f"unknown layout {layout!r}: use {', '.join(TREE_LAYOUTS)}")
    root = Path(root)
    names = [folder_name(name) for name in splits.class_names]
    videos: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    n = 0
    for part, clips in (("train", splits.train), ("train", splits.val), ("test", splits.test)):
        for clip, label in zip(clips.videos, clips.labels.tolist(), strict=True):
            name = names[label]
            pixels = _to_frames(clip, scale)
            if layout == "frames":
                rel = f"{name}/{name}_{n:04d}"
                _write_frames(root / rel, pixels)
            else:
                ext, codec = TREE_CODECS[n % len(TREE_CODECS)]
                rel = f"{name}/v_{name}_g{n // 4 + 1:02d}_c{n % 4 + 1:02d}{ext}"
                _encode(root / rel, pixels, codec, fps)
            videos[part].append((rel, label))
            n += 1
    _write_split_files(root, layout, names, videos)
    return root


def folder_name(class_name: str) -> str:
    """A class's folder in a written dataset: UCF101's CamelCase (translate_left -> TranslateLeft)."""
    return class_name.replace("_", " ").title().replace(" ", "")


def _to_frames(clip: torch.Tensor, scale: int) -> Any:
    """(C, T, H, W) float in [0, 1] to uint8 (T, H*scale, W*scale, 3)."""
    pixels = (clip.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0)
    return pixels.repeat_interleave(scale, 1).repeat_interleave(scale, 2).numpy()


def _encode(path: Path, frames: Any, codec: str, fps: int) -> None:
    import av

    from .storage import atomic_path

    with atomic_path(path) as tmp, av.open(str(tmp), "w", format=path.suffix[1:]) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "12"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_frames(folder: Path, frames: Any) -> None:
    import imageio.v3 as iio

    folder.mkdir(parents=True, exist_ok=True)
    for t, image in enumerate(frames):
        iio.imwrite(folder / f"frame_{t + 1:04d}.png", image)


def _write_split_files(
    root: Path, layout: str, names: list[str], videos: dict[str, list[tuple[str, int]]]
) -> None:
    if layout == "ucf101":
        notes = root / "ucfTrainTestlist"
        notes.mkdir(parents=True, exist_ok=True)
        crlf = "\r\n"
        (notes / "classInd.txt").write_bytes(
            crlf.join(f"{i + 1} {n}" for i, n in enumerate(names)).encode() + crlf.encode()
        )
        train = crlf.join(f"{rel} {label + 1}" for rel, label in videos["train"]) + crlf
        test = crlf.join(rel for rel, _ in videos["test"]) + crlf
        (notes / "trainlist01.txt").write_bytes(train.encode())
        (notes / "testlist01.txt").write_bytes(test.encode())
    elif layout == "hmdb51":
        notes = root / "testTrainMulti_7030_splits"
        notes.mkdir(parents=True, exist_ok=True)
        for c, name in enumerate(names):
            lines = [
                f"{Path(rel).name} {1 if part == 'train' else 2}"
                for part in ("train", "test")
                for rel, label in videos[part]
                if label == c
            ]
            (notes / f"{name}_test_split1.txt").write_text("\n".join(lines) + "\n")
    else:
        for part, file in (("train", "trainlist.txt"), ("test", "testlist.txt")):
            (root / file).write_text("\n".join(rel for rel, _ in videos[part]) + "\n")


def example_video_tree(
    root: str | Path, classes: int = 5, per_class: tuple[int, int, int] = (12, 2, 5)
) -> Path:
    """A UCF101-layout folder of `classes` benchmark classes (8 frames of 16x16, upscaled when
    written), the last renamed playing_dhol, a class the benchmark lacks: to try the real-data
    path end to end and see that every step took the folder's class names."""
    from .synthetic import make_motion_benchmark

    train, val, test = per_class
    bench = make_motion_benchmark(classes, train, val, test, frames=8, height=16, width=16, seed=0)
    names = [*bench.class_names[: classes - 1], "playing_dhol"]
    parts = {p: replace(getattr(bench, p), class_names=names) for p in ("train", "val", "test")}
    return write_video_tree(replace(bench, **parts), root, "ucf101")

"""Names, record types and argument checks that every real-video module shares: the dataset
kinds, decode backends, file extensions, MiniUCF's classes, one-line checks of user input."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .clips import DataError

KINDS: tuple[str, ...] = ("ucf101", "hmdb51", "miniucf", "kinetics", "ssv2", "frames")


BACKENDS: tuple[str, ...] = ("auto", "decord", "pyav")


# How a clip's frames are taken from its video (the decode cache's key records it):
# "spread": `frames` frames spread over the whole video, so their speed follows its length;
# "stride": `frames` frames STRIDE source frames apart at REFERENCE_FPS (the stride scales with
# the file's frame rate), from a window centred in the video: the clip's own speed.
SAMPLINGS: tuple[str, ...] = ("spread", "stride")
REFERENCE_FPS = 25.0  # UCF101's and HMDB51's frame rate
STRIDE = 4  # source frames between taken frames at REFERENCE_FPS: 8 frames span 1.16 s


VIDEO_EXTENSIONS: tuple[str, ...] = (".avi", ".mp4", ".webm", ".mkv", ".mov", ".m4v", ".mpg")


IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")


# MiniUCF, the 50-class UCF101 subset of the video distillation benchmark ("Dancing with Still
# Images", CVPR 2024): the class list of that paper's released split file ucf50_splits1.csv,
# whose train/test videos are UCF101 split 1.
# Sorted, as that code sorts them, so labels are the same as there.
MINIUCF_CLASSES: tuple[str, ...] = (
    "ApplyEyeMakeup",
    "BalanceBeam",
    "BandMarching",
    "BaseballPitch",
    "Basketball",
    "BasketballDunk",
    "Biking",
    "Billiards",
    "BlowingCandles",
    "Bowling",
    "BreastStroke",
    "CleanAndJerk",
    "CliffDiving",
    "CricketShot",
    "Diving",
    "FloorGymnastics",
    "FrisbeeCatch",
    "GolfSwing",
    "HammerThrow",
    "HighJump",
    "HorseRace",
    "HorseRiding",
    "HulaHoop",
    "IceDancing",
    "JumpingJack",
    "Knitting",
    "MilitaryParade",
    "Mixing",
    "ParallelBars",
    "PlayingPiano",
    "PlayingViolin",
    "PoleVault",
    "PommelHorse",
    "Punch",
    "Rafting",
    "Rowing",
    "SkateBoarding",
    "Skiing",
    "Skijet",
    "SkyDiving",
    "SoccerPenalty",
    "StillRings",
    "SumoWrestling",
    "Surfing",
    "Swing",
    "TennisSwing",
    "TrampolineJumping",
    "UnevenBars",
    "VolleyballSpiking",
    "WritingOnBoard",
)


CACHE_VERSION = 2


FRAMES_TEST_SEED = 0  # the frames kind's test part is a property of the dataset, not of a run


_SHOW_AT_MOST = 5  # file names quoted in one message


class VideoDecodeError(DataError):
    """One video (file or frame folder) could not be decoded."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"could not decode {self.path}: {reason}")


class SkippedVideoWarning(UserWarning):
    """A video was left out because it could not be decoded."""


@dataclass(frozen=True)
class VideoEntry:
    """One labelled video: a file or a folder of frames."""

    path: Path
    label: int


@dataclass
class VideoListing:
    """What a dataset holds before decoding: class names and the train / test videos."""

    name: str
    root: Path
    class_names: list[str]
    train: list[VideoEntry]
    test: list[VideoEntry]
    sources: dict[str, str] = field(default_factory=dict)  # part -> the file that listed it

    def counts(self, part: str) -> list[int]:
        per_class = Counter(e.label for e in getattr(self, part))
        return [per_class.get(c, 0) for c in range(len(self.class_names))]


def natural_key(name: str) -> list[Any]:
    """frame_2.jpg before frame_10.jpg."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def message_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def _whole_number(value: Any) -> int | None:
    """`value` as an int if it is a whole number (3, 3.0, numpy ints), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def check_geometry(frames: int, size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    try:
        h, w = (_whole_number(s) for s in size)
    except (TypeError, ValueError) as error:
        raise DataError(f"size must be (height, width), got {size!r}") from error
    t = _whole_number(frames)
    if t is None or h is None or w is None:
        raise DataError(
            f"frames and size must be whole numbers, got frames={frames!r}, size={size!r}"
        )
    if t < 1 or h < 1 or w < 1:
        raise DataError(f"frames and size must be positive, got frames={frames}, size={size}")
    return t, (h, w)


def as_class_names(classes: str | Sequence[str] | None) -> list[str] | None:
    """One class name as a str means that class (not its letters)."""
    if classes is None:
        return None
    return [classes] if isinstance(classes, str) else list(classes)


def require_training_clips(
    labels: np.ndarray, train_idx: torch.Tensor, class_names: list[str], val_fraction: float
) -> None:
    counts = np.bincount(labels[train_idx.numpy()], minlength=len(class_names))
    empty = [class_names[c] for c in np.flatnonzero(counts == 0).tolist()]
    if empty:
        raise DataError(
            f"val_fraction={val_fraction:g} leaves class(es) {shorten(empty)} without a training "
            "clip: lower val_fraction"
        )


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise DataError(f"unknown {name} {value!r}: choose one of {', '.join(map(str, choices))}")


def existing_dir(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(
            f"{what} {path} does not exist or is not a folder; nothing is downloaded, so point "
            "it at a copy of the dataset you already have"
        )
    return path


def shorten(items: Sequence[str]) -> str:
    shown = ", ".join(str(i) for i in items[:_SHOW_AT_MOST])
    more = len(items) - _SHOW_AT_MOST
    return f"{shown}, ... ({more} more)" if more > 0 else shown

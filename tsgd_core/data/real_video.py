"""Real video datasets on disk as `Splits`: UCF101, MiniUCF, HMDB51, Kinetics, SSv2, frame folders.

Nothing is downloaded: point `root` at a copy you already have. Every clip becomes T frames
sampled uniformly over the whole video and resized to (H, W); a ClipSet's videos are
`UInt8Clips` that read (N, 3, T, H, W) uint8 and give float in [0, 1] per batch. Validation clips are carved from the
training split per class; the test split is the dataset's own (UCF101/HMDB51 test lists,
Kinetics and SSv2 validation sets).

Decoding uses decord where it imports (Linux, x86 macOS) and PyAV otherwise; both resize with
FFmpeg's bilinear scaler, so their pixels agree. A video that cannot be decoded is
skipped with a warning; a missing file named by a split list, a missing root, or a class with
no readable video is a `DataError` that says what to fix. Decoded clips are kept as uint8 in
a folder of `cache_dir`, keyed by the decode settings and the files' content (not their path:
a copy of the dataset elsewhere finds the same cache), and read back per batch.

Expected layouts (`annotations` overrides where the split files are looked for):

* ucf101 / miniucf: root/<Class>/<video>.avi, with classInd.txt, trainlist0{1,2,3}.txt and
  testlist0{1,2,3}.txt in root/ucfTrainTestlist/ or in root.
* hmdb51: root/<class>/<video>.avi, with <class>_test_split{1,2,3}.txt (lines "<video> <flag>",
  1 = train, 2 = test, 0 = unused) in root/testTrainMulti_7030_splits/, root/splits/ or root.
* kinetics: CSV files (label, youtube_id, time_start, time_end, split; or label, path, split)
  in root/annotations/ or root; videos <youtube_id>_<start:06d>_<end:06d>.<ext> up to three
  folders below root (root/<split>/<label>/, root/<split>/, ...). Train rows are the train
  split; validation rows the test split (Kinetics test rows only when there are none).
* ssv2: labels.json, train.json and validation.json (or their something-something-v2-*.json
  names) in root/labels/ or root; videos root/<id>.webm. Validation is the test split.
* frames: root/<class>/<video_folder>/*.jpg|png; the test split is given by
  trainlist.txt/testlist.txt (lines "<class>/<video_folder>") or, without them, a fixed
  per-class fraction (`test_fraction`, seed 0, so it does not move with `seed`).

Every video layout also accepts a folder of extracted frames in place of a video file
(root/<Class>/<video>/ for root/<Class>/<video>.avi).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..runtime.budget import check_decode_fits
from .clips import ClipSet, DataError, Splits, UInt8Clips, stratified_split
from .storage import atomic_path, config_key, save_json

KINDS: tuple[str, ...] = ("ucf101", "hmdb51", "miniucf", "kinetics", "ssv2", "frames")
BACKENDS: tuple[str, ...] = ("auto", "decord", "pyav")
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

_CACHE_VERSION = 2
_FRAMES_TEST_SEED = 0  # the frames kind's test part is a property of the dataset, not of a run
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


# ----------------------------------------------------------------------------- decoding


def sample_indices(num_available: int, frames: int) -> np.ndarray:
    """`frames` indices spread uniformly over [0, num_available); short videos repeat frames."""
    return np.linspace(0, num_available - 1, frames).round().astype(np.int64)


def read_clip(
    path: str | Path, frames: int, size: tuple[int, int], backend: str = "auto"
) -> np.ndarray:
    """Decode `frames` frames sampled over the whole video, resized to size=(H, W).

    Returns uint8 (T, H, W, 3) RGB. `path` is a video file or a folder of jpg/png frames.
    backend: "decord", "pyav", or "auto" (decord where it imports, PyAV when decord is missing
    or fails on the file). Raises VideoDecodeError when the video cannot be read.
    """
    frames, size = _check_geometry(frames, size)
    _check_choice("backend", backend, BACKENDS)
    path = Path(path)
    if path.is_dir():
        clip = _read_frame_folder(path, frames, size)
    elif not path.is_file():
        raise VideoDecodeError(path, "no such file or folder")
    elif backend == "pyav" or (backend == "auto" and not _decord_available()):
        clip = _read_with_pyav(path, frames, size)
    elif backend == "decord":
        clip = _read_with_decord(path, frames, size)
    else:
        clip = _read_with_decord_then_pyav(path, frames, size)
    if clip.shape != (frames, *size, 3) or clip.dtype != np.uint8:
        raise VideoDecodeError(
            path, f"decoded to {clip.dtype} {clip.shape}, not uint8 (T, H, W, 3)"
        )
    return np.ascontiguousarray(clip)


@functools.lru_cache(maxsize=1)
def _decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except Exception:  # ImportError, or a broken native library
        return False
    return True


def _read_with_decord_then_pyav(path: Path, frames: int, size: tuple[int, int]) -> np.ndarray:
    try:
        return _read_with_decord(path, frames, size)
    except VideoDecodeError as first:
        try:
            return _read_with_pyav(path, frames, size)
        except VideoDecodeError as second:
            raise VideoDecodeError(path, f"{first.reason}; {second.reason}") from second


def _read_with_decord(path: Path, frames: int, size: tuple[int, int]) -> np.ndarray:
    if not _decord_available():
        raise DataError(
            "backend='decord' needs the decord package: pip install decord, or use 'pyav'"
        )
    import decord

    failure: Exception | None = None
    # decord's C++ side logs straight to the stderr file descriptor: keep those lines out of the
    # terminal and put their gist into the one error (or warning) that names the file
    with _native_stderr_captured() as native:
        try:
            reader = decord.VideoReader(str(path), width=size[1], height=size[0])
            count = len(reader)
            batch = reader.get_batch(sample_indices(count, frames).tolist()) if count else None
        except Exception as error:  # decord raises its own DECORDError / RuntimeError
            failure = error
    if failure is not None:
        detail = _native_detail(native, path)
        raise VideoDecodeError(path, f"decord: {_first_line(failure)}{detail}") from failure
    if batch is None:
        raise VideoDecodeError(path, "decord: no frames")
    # A torch bridge set elsewhere returns a tensor instead of a decord NDArray.
    return np.asarray(batch.asnumpy() if hasattr(batch, "asnumpy") else batch)


class _Fd2Redirect:
    """File descriptor 2 sent to one sink while any decoding thread needs it (reference-counted).

    The first thread in saves the real descriptor and points fd 2 at a temporary file; the last
    one out puts the real descriptor back. Swapping fd 2 per thread without this loses stderr for
    the rest of the process: two overlapping threads restore each other's saved descriptors out
    of order, and the last restore points fd 2 at a closed sink.
    """

    # re-entrant: taking it, this thread flushes sys.stderr, which may be _VisibleStderr and
    # take it again (a plain Lock deadlocked the first decode of every grid run)
    lock = threading.RLock()
    users = 0
    saved: int | None = None  # the real fd 2 while redirected
    sink: Any = None  # the temporary file fd 2 points at while redirected


@contextmanager
def _native_stderr_captured() -> Iterator[list[str]]:
    """Send what native code writes to file descriptor 2 into a list (filled on exit).

    Safe from several threads at once (see `_Fd2Redirect`). Lines are those written to fd 2
    while this block ran; where threads overlap they may include another decoder's lines.
    """
    lines: list[str] = []
    state = _Fd2Redirect
    with state.lock:
        if state.users == 0:
            try:
                sys.stderr.flush()
                saved = os.dup(2)
            except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded, notebook)
                saved = None
            if saved is not None:
                sink = tempfile.TemporaryFile()
                os.dup2(sink.fileno(), 2)
                state.saved, state.sink = saved, sink
        redirected = state.saved is not None
        if redirected:
            state.users += 1
            start = os.lseek(state.sink.fileno(), 0, os.SEEK_END)
    if not redirected:
        yield lines
        return
    try:
        yield lines
    finally:
        with state.lock:
            sink = state.sink
            end = os.lseek(sink.fileno(), 0, os.SEEK_END)
            text = os.pread(sink.fileno(), max(end - start, 0), start) if end > start else b""
            state.users -= 1
            if state.users == 0:
                os.dup2(state.saved, 2)
                os.close(state.saved)
                sink.close()
                state.saved, state.sink = None, None
        lines += text.decode(errors="replace").splitlines()


class _VisibleStderr:
    """sys.stderr for Python-level messages (progress bar, warnings) while decoders run: what it
    is given reaches the real stderr even while fd 2 points at the decoders' sink."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        state = _Fd2Redirect
        with state.lock:
            if state.saved is None:
                return self._inner.write(text)
            self._inner.flush()
            os.write(
                state.saved,
                text.encode(getattr(self._inner, "encoding", None) or "utf-8", errors="replace"),
            )
            return len(text)

    def flush(self) -> None:
        with _Fd2Redirect.lock:
            if _Fd2Redirect.saved is None:
                self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def _python_stderr_visible() -> Iterator[None]:
    """While decoding threads redirect fd 2, keep sys.stderr's writes on the real stderr."""
    inner = sys.stderr
    try:
        real_fd2 = inner.fileno() == 2
    except (OSError, ValueError, AttributeError):  # a notebook's stream, a test's capture
        real_fd2 = False
    if not real_fd2:
        yield
        return
    sys.stderr = _VisibleStderr(inner)
    try:
        yield
    finally:
        if isinstance(sys.stderr, _VisibleStderr):
            sys.stderr = inner


def _native_detail(lines: list[str], path: Path | None = None) -> str:
    """The last native log line without its time stamp and source location, as ' (...)';
    the last one naming `path` where there is one (other decoding threads write there too)."""
    text = [re.sub(r"^\[[^\]]*\]\s*(\S+:\d+:\s*)?", "", line).strip() for line in lines]
    text = [t for t in text if t]
    if path is not None:
        text = [t for t in text if path.name in t] or text
    return f" ({text[-1]})" if text else ""


def _read_with_pyav(path: Path, frames: int, size: tuple[int, int]) -> np.ndarray:
    try:
        import av
    except ImportError as error:
        raise DataError("reading video needs PyAV: pip install av") from error
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "PyAV: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if stream.frames > 0:
                clip = _pyav_sampled_frames(container, stream, stream.frames, frames, size)
                if clip is not None:
                    return clip
                container.seek(0)
            decoded = _pyav_every_frame(container, stream, size)
    except VideoDecodeError:
        raise
    except Exception as error:  # av.FFmpegError and friends
        raise VideoDecodeError(path, f"PyAV: {_first_line(error)}") from error
    if not decoded:
        raise VideoDecodeError(path, "PyAV: no frames")
    return np.stack([decoded[i] for i in sample_indices(len(decoded), frames)])


def _pyav_frame(frame: Any, size: tuple[int, int]) -> np.ndarray:
    # FFmpeg's bilinear scaler, as decord uses, so both backends give the same pixels
    return frame.to_ndarray(format="rgb24", width=size[1], height=size[0])


def _pyav_every_frame(container: Any, stream: Any, size: tuple[int, int]) -> list[np.ndarray]:
    """Every frame, shrunk as it is decoded: for containers that do not give their frame count."""
    return [_pyav_frame(frame, size) for frame in container.decode(stream)]


def _pyav_sampled_frames(
    container: Any, stream: Any, count: int, frames: int, size: tuple[int, int]
) -> np.ndarray | None:
    """Only the sampled frames: seek to a keyframe when one lies between the decoder and the
    next sampled frame, decode on otherwise, and convert nothing else.

    A frame's index comes from its timestamp (constant frame rate); keyframes come from a pass
    over the packets (no decoding). Returns None where that does not hold (no timestamps, a
    sampled frame not found), and the caller decodes everything.
    """
    rate, base = stream.average_rate or stream.guessed_rate, stream.time_base
    if not rate or not base:
        return None
    start = stream.start_time or 0

    def index_of(pts: int) -> int:
        return round(float((pts - start) * base * rate))

    keyframes = [
        index_of(p.pts) for p in container.demux(stream) if p.is_keyframe and p.pts is not None
    ]
    container.seek(start, stream=stream, backward=True)
    targets = sorted(set(sample_indices(count, frames).tolist()))
    found: dict[int, np.ndarray] = {}
    position = -1  # index of the last decoded frame

    def worth_seeking(target: int) -> bool:
        """A keyframe after the decoder's position and at or before the target."""
        before = [k for k in keyframes if k <= target]
        return bool(before) and before[-1] > position + 1

    while len(found) < len(targets):
        target = targets[len(found)]
        if worth_seeking(target):
            container.seek(start + int(target / rate / base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.pts is None:
                return None
            position = index_of(frame.pts)
            if position > target:  # the sampled frame is not there (variable frame rate)
                return None
            if position == target:
                found[target] = _pyav_frame(frame, size)
                if len(found) == len(targets):
                    break
                target = targets[len(found)]
                if worth_seeking(target):
                    break
        else:
            break  # end of stream
    if len(found) < len(targets):
        return None
    return np.stack([found[i] for i in sample_indices(count, frames).tolist()])


def _read_frame_folder(path: Path, frames: int, size: tuple[int, int]) -> np.ndarray:
    import imageio.v3 as iio

    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise VideoDecodeError(path, f"no {'/'.join(IMAGE_EXTENSIONS)} frames in the folder")
    chosen = sample_indices(len(files), frames)
    images: dict[int, np.ndarray] = {}
    for i in np.unique(chosen).tolist():
        try:
            images[i] = _resize_frames(_as_rgb_uint8(iio.imread(files[i]))[None], size)[0]
        except Exception as error:
            raise VideoDecodeError(files[i], f"imageio: {_first_line(error)}") from error
    return np.stack([images[i] for i in chosen.tolist()])


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image[..., :3]


def _resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (T, h, w, 3) to (T, H, W, 3), bilinear with antialiasing when shrinking."""
    if frames.shape[1:3] == tuple(size):
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    y = torch.nn.functional.interpolate(
        x, size=size, mode="bilinear", antialias=True, align_corners=False
    )
    return y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _natural_key(name: str) -> list[Any]:
    """frame_2.jpg before frame_10.jpg."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


# ----------------------------------------------------------------------------- public entry


def load_video_dataset(
    kind: str,
    root: str | Path,
    *,
    frames: int,
    size: tuple[int, int],
    split: int = 1,
    classes: Sequence[str] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    backend: str = "auto",
    max_per_class: int | None = None,
    progress: bool = True,
    annotations: str | Path | None = None,
    on_missing: str = "error",
    test_fraction: float = 0.2,
    workers: int | None = None,
) -> Splits:
    """Decode a real video dataset into train / val / test ClipSets.

    kind: one of KINDS (see the module docstring for each layout). frames, size=(H, W): the
    clip shape. split: the official split (1-3) of UCF101 / MiniUCF / HMDB51. classes: keep
    only these classes, labelled 0..K-1 in the order given (for MiniUCF a subset of
    MINIUCF_CLASSES). val_fraction of each training class (at least one clip where a class
    has two or more) becomes the validation set, drawn with `seed`. cache_dir: keep decoded
    uint8 clips there and reuse them while the files are unchanged. max_per_class: keep at
    most this many videos per class and split, evenly spread over the listing (so UCF groups
    stay mixed). annotations: where the split files are when not in the usual places.
    on_missing: "error" (default) or "skip" for videos a split file names that are not on disk
    (Kinetics copies usually miss some). test_fraction: the frames kind's test share when no
    list files are given. workers: decoding threads (default: one per CPU core, at most 8).

    The clips stay uint8 (`UInt8Clips`, read from the cache file when there is one) and
    become float per batch, so a dataset larger than memory in float32 can be trained on.
    """
    frames, size = _check_geometry(frames, size)
    _check_choice("backend", backend, BACKENDS)
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    classes = _class_list(classes)
    listing = list_video_dataset(
        kind,
        root,
        split=split,
        classes=classes,
        max_per_class=max_per_class,
        annotations=annotations,
        on_missing=on_missing,
        test_fraction=test_fraction,
    )
    check_decode_fits(len(listing.train) + len(listing.test), frames, size)
    key = decode_key(listing, frames, size, backend)
    store = _store_folder(cache_dir, listing.name, frames, size, key)
    clips, labels, decoded = decode_listing(
        listing, frames, size, backend, progress=progress, workers=workers, store=store
    )
    skipped = [e.path for e, ok in zip(_entries(listing), decoded, strict=True) if not ok]
    total = len(listing.train) + len(listing.test)
    if skipped:
        _warn_skipped_summary(skipped, total)
    rows = np.arange(total)
    is_train = rows < len(listing.train)
    train_rows, test_rows = rows[is_train & decoded], rows[~is_train & decoded]
    _require_readable_classes(listing, {"train": labels[train_rows], "test": labels[test_rows]})
    train_idx, val_idx = _carve_validation(torch.from_numpy(labels[train_rows]), val_fraction, seed)
    _require_training_clips(labels[train_rows], train_idx, listing.class_names, val_fraction)
    train, val, test = (
        ClipSet(clips.take(part), torch.from_numpy(labels[part]), list(listing.class_names))
        for part in (train_rows[train_idx.numpy()], train_rows[val_idx.numpy()], test_rows)
    )
    config = {
        # what the clips are, without any path: moving the dataset or the cache keeps it
        "identity": config_key("splits", key, val_fraction, seed, length=16),
        "kind": kind.lower(),
        "root": str(listing.root),
        "frames": frames,
        "size": list(size),
        "split": split,
        "classes": list(listing.class_names),
        "val_fraction": val_fraction,
        "seed": seed,
        "backend": backend,
        "max_per_class": max_per_class,
        "sources": dict(listing.sources),
        "skipped": [str(p) for p in skipped],
        "cache_file": str(store / CLIPS_FILE) if store else None,
    }
    return Splits(train=train, val=val, test=test, name=listing.name, config=config)


def list_video_dataset(
    kind: str,
    root: str | Path,
    *,
    split: int = 1,
    classes: Sequence[str] | None = None,
    max_per_class: int | None = None,
    annotations: str | Path | None = None,
    on_missing: str = "error",
    test_fraction: float = 0.2,
) -> VideoListing:
    """The videos `load_video_dataset` would decode (same arguments), without decoding them."""
    kind = kind.lower() if isinstance(kind, str) else kind
    _check_choice("kind", kind, KINDS)
    classes = _class_list(classes)
    _check_choice("on_missing", on_missing, ("error", "skip"))
    root = _existing_dir(root, f"the {kind} root folder")
    notes = Path(annotations) if annotations is not None else None
    if notes is not None and not notes.exists():
        raise DataError(f"annotations path {notes} does not exist")
    if kind in ("ucf101", "miniucf"):
        listing = list_ucf101(root, split=split, annotations=notes, on_missing=on_missing)
        if kind == "miniucf":
            listing = _restrict_to_miniucf(listing, classes, split)
            classes = None
    elif kind == "hmdb51":
        listing = list_hmdb51(root, split=split, annotations=notes, on_missing=on_missing)
    elif kind == "kinetics":
        listing = list_kinetics(root, annotations=notes, on_missing=on_missing)
    elif kind == "ssv2":
        listing = list_ssv2(root, annotations=notes, on_missing=on_missing)
    else:
        listing = list_frame_folders(root, annotations=notes, test_fraction=test_fraction)
    if classes is not None:
        listing = _restrict_classes(listing, classes)
    listing = _cap_per_class(listing, max_per_class)
    _require_listed_classes(listing)
    return listing


# ----------------------------------------------------------------------------- UCF101 / HMDB51


def list_ucf101(
    root: str | Path,
    *,
    split: int = 1,
    annotations: str | Path | None = None,
    on_missing: str = "error",
) -> VideoListing:
    """UCF101 from classInd.txt and the official trainlist0k / testlist0k files."""
    root = _existing_dir(root, "the UCF101 root folder")
    _check_choice("split", split, (1, 2, 3))
    folder = _find_notes_folder(
        root, annotations, ("ucfTrainTestlist", "annotations"), "classInd.txt"
    )
    class_file = folder / "classInd.txt"
    class_names = [line.split(None, 1)[1] for line in _lines(class_file) if len(line.split()) >= 2]
    if not class_names:
        raise DataError(f"{class_file} lists no classes (expected lines like '1 ApplyEyeMakeup')")
    index = {name: i for i, name in enumerate(class_names)}
    resolver = _PathResolver(root)
    parts: dict[str, list[VideoEntry]] = {}
    sources = {}
    for part, stem in (("train", "trainlist"), ("test", "testlist")):
        list_file = folder / f"{stem}{split:02d}.txt"
        if not list_file.is_file():
            raise DataError(f"UCF101 split file {list_file} is missing (official ucfTrainTestlist)")
        named = []
        for line in _lines(list_file):
            rel = _listed_path(line)
            class_name = rel.split("/")[0]
            if class_name not in index:
                raise DataError(
                    f"{list_file} names {rel!r}, whose class {class_name!r} is not in {class_file}"
                )
            named.append((rel, index[class_name]))
        parts[part] = _resolve_all(named, resolver, list_file, on_missing)
        sources[part] = str(list_file)
    return VideoListing(
        f"ucf101-split{split}", root, class_names, parts["train"], parts["test"], sources
    )


def list_hmdb51(
    root: str | Path,
    *,
    split: int = 1,
    annotations: str | Path | None = None,
    on_missing: str = "error",
) -> VideoListing:
    """HMDB51 from the official <class>_test_split<k>.txt files (1 = train, 2 = test, 0 = unused)."""
    root = _existing_dir(root, "the HMDB51 root folder")
    _check_choice("split", split, (1, 2, 3))
    suffix = f"_test_split{split}.txt"
    folder = _find_notes_folder(
        root,
        annotations,
        ("testTrainMulti_7030_splits", "splits", "test_train_splits", "annotations"),
        f"*{suffix}",
    )
    split_files = sorted(folder.glob(f"*{suffix}"))
    class_names = [f.name[: -len(suffix)] for f in split_files]
    resolver = _PathResolver(root)
    train: list[VideoEntry] = []
    test: list[VideoEntry] = []
    for label, (class_name, split_file) in enumerate(zip(class_names, split_files, strict=True)):
        named: dict[str, list[tuple[str, int]]] = {"1": [], "2": []}
        for line in _lines(split_file):
            words = line.rsplit(None, 1)
            if len(words) != 2 or words[1] not in ("0", "1", "2"):
                raise DataError(f"{split_file}: expected '<video> <0|1|2>', got {line!r}")
            if words[1] in named:
                named[words[1]].append((f"{class_name}/{words[0]}", label))
        train += _resolve_all(named["1"], resolver, split_file, on_missing)
        test += _resolve_all(named["2"], resolver, split_file, on_missing)
    sources = {"train": str(folder / f"*{suffix}"), "test": str(folder / f"*{suffix}")}
    return VideoListing(f"hmdb51-split{split}", root, class_names, train, test, sources)


def _restrict_to_miniucf(
    listing: VideoListing, classes: Sequence[str] | None, split: int
) -> VideoListing:
    wanted = list(MINIUCF_CLASSES if classes is None else classes)
    outside = [c for c in wanted if c not in MINIUCF_CLASSES]
    if outside:
        raise DataError(f"not MiniUCF classes: {outside}; see MINIUCF_CLASSES")
    absent = [c for c in wanted if c not in listing.class_names]
    if absent:
        raise DataError(
            f"MiniUCF needs UCF101 classes that {listing.sources.get('train', 'the split files')} "
            f"and classInd.txt do not list: {_shorten(absent)}. Use the full UCF101 annotations, "
            "or pass classes=[...] to load only some MiniUCF classes."
        )
    restricted = _restrict_classes(listing, wanted)
    return replace(restricted, name=f"miniucf-split{split}")


# ----------------------------------------------------------------------------- Kinetics


def list_kinetics(
    root: str | Path, *, annotations: str | Path | None = None, on_missing: str = "error"
) -> VideoListing:
    """Kinetics-style CSV annotations; train rows are train, validation rows the test split."""
    root = _existing_dir(root, "the Kinetics root folder")
    csv_files = _kinetics_csv_files(root, annotations)
    rows = [row for csv_file in csv_files for row in _kinetics_rows(csv_file)]
    train_rows = [r for r in rows if r["part"] == "train"]
    test_rows = [r for r in rows if r["part"] == "val"] or [r for r in rows if r["part"] == "test"]
    if not train_rows or not test_rows:
        raise DataError(
            f"{', '.join(map(str, csv_files))}: need rows whose split is 'train' and rows whose "
            "split is 'val'/'validate' (or 'test'), got "
            f"{dict(Counter(r['part'] for r in rows))}"
        )
    class_names = sorted({r["label"] for r in train_rows + test_rows})
    index = {name: i for i, name in enumerate(class_names)}
    needs_search = [r for r in train_rows + test_rows if r["path"] is None]
    stems = _index_by_stem(root, {r["stem"] for r in needs_search}) if needs_search else {}
    resolver = _PathResolver(root)
    parts = {}
    for part, part_rows in (("train", train_rows), ("test", test_rows)):
        found, missing = [], []
        for r in part_rows:
            path = resolver.resolve(r["path"]) if r["path"] is not None else stems.get(r["stem"])
            if path is None:
                missing.append(r["path"] or r["stem"])
            else:
                found.append(VideoEntry(path, index[r["label"]]))
        _report_missing(
            missing, " / ".join(sorted({r["source"] for r in part_rows})), root, on_missing
        )
        parts[part] = found
    sources = {
        part: ", ".join(sorted({r["source"] for r in part_rows}))
        for part, part_rows in (("train", train_rows), ("test", test_rows))
    }
    return VideoListing("kinetics", root, class_names, parts["train"], parts["test"], sources)


def _kinetics_csv_files(root: Path, annotations: Path | str | None) -> list[Path]:
    if annotations is not None and Path(annotations).is_file():
        return [Path(annotations)]
    folders = [Path(annotations)] if annotations is not None else [root / "annotations", root]
    for folder in folders:
        found = sorted(folder.glob("*.csv")) if folder.is_dir() else []
        if found:
            return found
    raise DataError(
        f"no Kinetics CSV annotations in {' or '.join(map(str, folders))}: put train.csv / "
        "validate.csv (columns label, youtube_id, time_start, time_end, split) there, "
        "or pass annotations=<file or folder>"
    )


def _kinetics_rows(csv_file: Path) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(_read_text(csv_file), newline=""))
    columns = {c.strip() for c in reader.fieldnames or []}
    has_id = {"youtube_id", "time_start", "time_end"} <= columns
    if "label" not in columns or not (has_id or "path" in columns):
        raise DataError(
            f"{csv_file}: needs a 'label' column and either 'path' or 'youtube_id', "
            f"'time_start', 'time_end'; found columns {sorted(columns)}"
        )
    rows = []
    for line_no, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        part = _kinetics_part(row.get("split") or csv_file.stem)
        if part is None:
            raise DataError(f"{csv_file}:{line_no}: unknown split {row.get('split')!r}")
        path = row.get("path") or None
        stem = None
        if path is None:
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (KeyError, ValueError) as error:
                raise DataError(
                    f"{csv_file}:{line_no}: needs a path or youtube_id with numeric "
                    "time_start / time_end"
                ) from error
            stem = f"{row['youtube_id']}_{start:06d}_{end:06d}"
        source = str(csv_file)
        rows.append(dict(label=row["label"], part=part, path=path, stem=stem, source=source))
    return rows


def _kinetics_part(split_name: str) -> str | None:
    """'train' / 'val' / 'test' from a split column value or a CSV file name."""
    name = split_name.lower()
    for part, marker in (("train", "train"), ("val", "val"), ("test", "test")):
        if marker in name:
            return part
    return None


# ----------------------------------------------------------------------------- SSv2


def list_ssv2(
    root: str | Path, *, annotations: str | Path | None = None, on_missing: str = "error"
) -> VideoListing:
    """Something-Something v2 from labels / train / validation JSON; validation is the test split."""
    root = _existing_dir(root, "the Something-Something v2 root folder")
    folder = _find_notes_folder(root, annotations, ("labels", "annotations"), "*labels.json")
    labels_file = _first_existing(folder, ("labels.json", "something-something-v2-labels.json"))
    label_of = {str(k): int(v) for k, v in _read_json(labels_file).items()}
    class_names = [name for name, _ in sorted(label_of.items(), key=lambda kv: kv[1])]
    if sorted(label_of.values()) != list(range(len(class_names))):
        raise DataError(f"{labels_file}: class indices must be 0..{len(class_names) - 1}")
    named: dict[str, list[tuple[str, int]]] = {}
    sources = {}
    for part, names in (
        ("train", ("train.json", "something-something-v2-train.json")),
        ("test", ("validation.json", "something-something-v2-validation.json")),
    ):
        list_file = _first_existing(folder, names)
        sources[part] = str(list_file)
        named[part] = []
        for item in _read_json(list_file):
            template = item.get("template")
            if template is None or "id" not in item:
                raise DataError(f"{list_file}: every item needs 'id' and 'template', got {item}")
            # "[something]" -> "something", "[number of]" -> "number of": the labels.json key
            key = re.sub(r"\[(.*?)\]", r"\1", template)
            if key not in label_of:
                raise DataError(
                    f"{list_file}: template {template!r} matches no class in {labels_file}"
                )
            named[part].append((str(item["id"]), label_of[key]))
    stems = _index_by_stem(root, {vid for pairs in named.values() for vid, _ in pairs})
    parts = {}
    for part, pairs in named.items():
        missing = [vid for vid, _ in pairs if vid not in stems]
        _report_missing(missing, sources[part], root, on_missing)
        parts[part] = [VideoEntry(stems[vid], label) for vid, label in pairs if vid in stems]
    return VideoListing("ssv2", root, class_names, parts["train"], parts["test"], sources)


# ----------------------------------------------------------------------------- frame folders


def list_frame_folders(
    root: str | Path, *, annotations: str | Path | None = None, test_fraction: float = 0.2
) -> VideoListing:
    """root/<class>/<video_folder>/ frames; test split from testlist.txt or a fixed per-class share."""
    root = _existing_dir(root, "the frame-folder root")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root} holds no class folders (expected root/<class>/<video_folder>/)")
    class_names = [p.name for p in class_dirs]
    entries: list[VideoEntry] = []
    for label, class_dir in enumerate(class_dirs):
        videos = sorted(
            (p for p in class_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: _natural_key(p.name),
        )
        if not videos:
            raise DataError(
                f"class folder {class_dir} holds no video folders; remove it or fill it"
            )
        entries += [VideoEntry(v, label) for v in videos]
    folder = Path(annotations) if annotations is not None else root
    test_list, train_list = folder / "testlist.txt", folder / "trainlist.txt"
    if test_list.is_file():
        by_name = {f"{e.path.parent.name}/{e.path.name}": e for e in entries}
        named_test = _listed_names(test_list, by_name)
        named_train = _listed_names(train_list, by_name) if train_list.is_file() else None
        test = [e for name, e in by_name.items() if name in named_test]
        train = [
            e
            for name, e in by_name.items()
            if name not in named_test and (named_train is None or name in named_train)
        ]
        sources = {"train": str(train_list if named_train else root), "test": str(test_list)}
    else:
        if not 0.0 < test_fraction < 1.0:
            raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
        labels = torch.tensor([e.label for e in entries])
        train_idx, test_idx = stratified_split(labels, test_fraction, _FRAMES_TEST_SEED)
        train = [entries[i] for i in train_idx.tolist()]
        test = [entries[i] for i in test_idx.tolist()]
        sources = {"train": str(root), "test": f"{test_fraction:g} of each class of {root}"}
    return VideoListing("frames", root, class_names, train, test, sources)


def _listed_names(list_file: Path, known: dict[str, VideoEntry]) -> set[str]:
    names = {_listed_path(line).rstrip("/") for line in _lines(list_file)}
    unknown = sorted(names - set(known))
    if unknown:
        raise DataError(
            f"{list_file} names {len(unknown)} video folder(s) that do not exist under "
            f"{list_file.parent}: {_shorten(unknown)}; lines must read '<class>/<video_folder>'"
        )
    return names


# ----------------------------------------------------------------------------- listing helpers


class _PathResolver:
    """root-relative names to paths; tolerates frame folders and letter-case differences."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[Path, dict[str, str]] = {}

    def resolve(self, rel: str) -> Path | None:
        path = self.root / rel
        if path.exists():
            return path
        if path.suffix and path.with_suffix("").is_dir():  # extracted frames instead of a file
            return path.with_suffix("")
        return self._resolve_ignoring_case(Path(rel))

    def _resolve_ignoring_case(self, rel: Path) -> Path | None:
        current = self.root
        for i, part in enumerate(rel.parts):
            children = self._children(current)
            name = children.get(part.lower())
            if name is None and i == len(rel.parts) - 1 and Path(part).suffix:
                name = children.get(Path(part).stem.lower())  # frame folder
            if name is None:
                return None
            current = current / name
        return current

    def _children(self, folder: Path) -> dict[str, str]:
        if folder not in self._listings:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            self._listings[folder] = {n.lower(): n for n in reversed(names)}
        return self._listings[folder]


def _index_by_stem(root: Path, wanted: set[str], max_depth: int = 4) -> dict[str, Path]:
    """Find videos named <stem>.<ext> (or frame folders named <stem>) anywhere under root."""
    files: dict[str, Path] = {}
    folders: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames.sort()
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS and stem in wanted and stem not in files:
                files[stem] = Path(dirpath) / name
        for name in dirnames:
            if name in wanted and name not in folders:
                folders[name] = Path(dirpath) / name
        # never walk into frame folders (thousands of images) nor deeper than needed
        dirnames[:] = [] if depth + 1 >= max_depth else [d for d in dirnames if d not in wanted]
    return {**folders, **files}  # a video file wins over a frame folder of the same name


def _resolve_all(
    named: Iterable[tuple[str, int]], resolver: _PathResolver, source: Path, on_missing: str
) -> list[VideoEntry]:
    found, missing = [], []
    for rel, label in named:
        path = resolver.resolve(rel)
        if path is None:
            missing.append(rel)
        else:
            found.append(VideoEntry(path, label))
    _report_missing(missing, str(source), resolver.root, on_missing)
    return found


def _report_missing(missing: list[str], source: str, root: Path, on_missing: str) -> None:
    if not missing:
        return
    what = (
        f"{len(missing)} video(s) named in {source} do not exist under {root}: {_shorten(missing)}"
    )
    if on_missing == "skip":
        warnings.warn(f"left out {what}", SkippedVideoWarning, stacklevel=3)
        return
    raise DataError(
        f"{what}. Point root at the folder that holds them (and annotations at the split files "
        "of the same copy), restore the files, or pass on_missing='skip' to leave them out."
    )


def _find_notes_folder(
    root: Path, annotations: Path | str | None, subfolders: Sequence[str], pattern: str
) -> Path:
    """The folder holding split files matching `pattern`: `annotations`, a usual subfolder, or root."""
    candidates = (
        [Path(annotations)] if annotations is not None else [root / s for s in subfolders] + [root]
    )
    for folder in candidates:
        if folder.is_dir() and any(folder.glob(pattern)):
            return folder
    raise DataError(
        f"no {pattern} found in {' or '.join(map(str, candidates))}: put the dataset's split "
        "files there or pass annotations=<folder>"
    )


def _first_existing(folder: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"none of {', '.join(names)} in {folder}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON: {error}") from error


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}): save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from error


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in _read_text(path).splitlines() if line.strip()]


def _listed_path(line: str) -> str:
    """The video of a split-file line '<path>' or '<file.ext> <class index>'.

    Paths may hold spaces: a trailing number is a class index only after a file name with an
    extension ('Punch/v_Punch 1.avi 5'); 'Punch/clip 0' is a folder named 'clip 0'.
    """
    words = line.rsplit(None, 1)
    numbered = len(words) == 2 and words[1].isdigit() and Path(words[0]).suffix != ""
    return (words[0] if numbered else line).strip().replace("\\", "/")


def _restrict_classes(listing: VideoListing, classes: Sequence[str]) -> VideoListing:
    wanted = list(classes)
    if not wanted or len(set(wanted)) != len(wanted):
        raise DataError(f"classes must be distinct class names, got {wanted}")
    unknown = [c for c in wanted if c not in listing.class_names]
    if unknown:
        raise DataError(
            f"classes {unknown} are not in {listing.name}; its classes include "
            f"{_shorten(listing.class_names)}"
        )
    new_label = {listing.class_names.index(c): i for i, c in enumerate(wanted)}

    def keep(entries: list[VideoEntry]) -> list[VideoEntry]:
        return [VideoEntry(e.path, new_label[e.label]) for e in entries if e.label in new_label]

    return replace(listing, class_names=wanted, train=keep(listing.train), test=keep(listing.test))


def _cap_per_class(listing: VideoListing, max_per_class: int | None) -> VideoListing:
    if max_per_class is None:
        return listing
    if int(max_per_class) < 1:
        raise DataError(f"max_per_class must be >= 1 or None, got {max_per_class}")

    def cap(entries: list[VideoEntry]) -> list[VideoEntry]:
        positions: dict[int, list[int]] = {}
        for i, e in enumerate(entries):
            positions.setdefault(e.label, []).append(i)
        keep = set()
        for idx in positions.values():
            k = min(int(max_per_class), len(idx))
            keep.update(idx[j] for j in np.linspace(0, len(idx) - 1, k).round().astype(int))
        return [e for i, e in enumerate(entries) if i in keep]

    return replace(listing, train=cap(listing.train), test=cap(listing.test))


def _require_listed_classes(listing: VideoListing) -> None:
    for part in ("train", "test"):
        empty = [listing.class_names[c] for c, n in enumerate(listing.counts(part)) if n == 0]
        if empty:
            raise DataError(
                f"{listing.name}: class(es) {_shorten(empty)} have no video in the {part} split "
                f"({listing.sources.get(part, listing.root)}). Add their videos, or leave the "
                "classes out with classes=[...]."
            )


# ----------------------------------------------------------------------------- decoding a listing


def _entries(listing: VideoListing) -> list[VideoEntry]:
    """Train then test videos: the row order of the decoded clips."""
    return [*listing.train, *listing.test]


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def decode_listing(
    listing: VideoListing,
    frames: int,
    size: tuple[int, int],
    backend: str = "auto",
    *,
    progress: bool = True,
    workers: int | None = None,
    store: Path | None = None,
) -> tuple[UInt8Clips, np.ndarray, np.ndarray]:
    """Decode every listed video (train, then test) to uint8 (C, T, H, W) rows.

    Returns the clips, their labels and which rows decoded. With `store`, rows go to a file in
    that folder as they are decoded, with a checkpoint every few seconds: an interrupted
    decode resumes where it stopped, and a finished one is read back without decoding.
    Videos are decoded by `workers` threads (FFmpeg and decord release the GIL).
    """
    entries = _entries(listing)
    labels = np.array([e.label for e in entries], dtype=np.int64)
    clip_shape = (3, frames, *size)
    clip_bytes = int(np.prod(clip_shape))
    if store is None:
        target: Any = np.empty((len(entries), clip_bytes), dtype=np.uint8)
        status = np.zeros(len(entries), dtype=np.int8)
    else:
        target, status = _open_store(store, len(entries), clip_bytes)
    todo = np.flatnonzero(status == 0)
    try:
        if len(todo):
            _decode_rows(
                entries,
                todo,
                target,
                status,
                frames,
                size,
                backend,
                progress,
                workers,
                store,
                listing.name,
            )
    finally:
        if store is not None:
            target.close()
    if store is not None:
        _finish_store(store, listing, labels, status)
        clips = UInt8Clips(store / CLIPS_FILE, clip_shape)
    else:
        clips = UInt8Clips(target, clip_shape)
    return clips, labels, status == 1


def _decode_rows(
    entries: list[VideoEntry],
    todo: np.ndarray,
    target: Any,
    status: np.ndarray,
    frames: int,
    size: tuple[int, int],
    backend: str,
    progress: bool,
    workers: int | None,
    store: Path | None,
    name: str,
) -> None:
    def decode(i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            clip = read_clip(entries[i].path, frames, size, backend)
        except VideoDecodeError as error:
            return i, None, error.reason
        return i, clip.transpose(3, 0, 1, 2).reshape(-1), None  # (C, T, H, W) rows

    workers = default_workers() if workers is None else max(1, int(workers))
    with _python_stderr_visible():  # the bar and warnings, while decoders silence fd 2
        _decode_rows_with_bar(decode, entries, todo, target, status, progress, workers, store, name)


def _decode_rows_with_bar(
    decode: Any,
    entries: list[VideoEntry],
    todo: np.ndarray,
    target: Any,
    status: np.ndarray,
    progress: bool,
    workers: int,
    store: Path | None,
    name: str,
) -> None:
    bar = tqdm(
        total=len(entries),
        initial=len(entries) - len(todo),
        desc=f"decoding {name}",
        unit="video",
        disable=not progress,
    )
    last_checkpoint = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # a bounded window of videos in flight: results are written as they arrive
            for chunk in np.array_split(todo, max(1, len(todo) // (4 * workers))):
                for i, clip, reason in pool.map(decode, chunk.tolist()):
                    if clip is None:
                        message = (
                            f"skipping {entries[i].path}, which could not be decoded: {reason}"
                        )
                        warnings.warn(message, SkippedVideoWarning, stacklevel=5)
                        status[i] = -1
                    else:
                        target[i] = clip
                        status[i] = 1
                    bar.update()
                if store is not None and time.monotonic() - last_checkpoint > CHECKPOINT_S:
                    _checkpoint(store, target, status)
                    last_checkpoint = time.monotonic()
    finally:
        bar.close()
        if store is not None:
            _checkpoint(store, target, status)


def _warn_skipped_summary(skipped: list[Path], total: int) -> None:
    warnings.warn(
        f"skipped {len(skipped)} of {total} videos that could not be decoded: "
        f"{_shorten([str(p) for p in skipped])}",
        SkippedVideoWarning,
        stacklevel=3,
    )


def _require_readable_classes(listing: VideoListing, labels: dict[str, np.ndarray]) -> None:
    for part in ("train", "test"):
        counts = np.bincount(labels[part], minlength=len(listing.class_names))
        for c in np.flatnonzero(counts == 0).tolist():
            tried = [str(e.path) for e in getattr(listing, part) if e.label == c]
            raise DataError(
                f"{listing.name}: class {listing.class_names[c]!r} has no readable video in the "
                f"{part} split; none of {_shorten(tried)} could be decoded. Replace those files "
                "(re-download or re-extract them) or leave the class out with classes=[...]."
            )


def _carve_validation(
    labels: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    if val_fraction == 0.0:
        return torch.arange(len(labels)), torch.zeros(0, dtype=torch.long)
    return stratified_split(labels, val_fraction, seed)


# ----------------------------------------------------------------------------- cache


CLIPS_FILE = "clips.u8"  # raw uint8 rows of (C, T, H, W)
STATUS_FILE = "status.npy"  # per row: 0 to decode, 1 decoded, -1 could not be decoded
META_FILE = "meta.json"  # written last: the folder is complete
CHECKPOINT_S = 5.0
_FINGERPRINT_BYTES = 1 << 16  # hashed at each end of every video file


def content_stamp(path: Path) -> list[Any] | None:
    """What a video holds, cheaply: its size and a hash of its first and last 64 KiB.

    For a frame folder: every image's name and size. Paths and dates are left out, so a
    copy of the same files elsewhere has the same stamp.
    """
    try:
        st = path.stat()
    except OSError:
        return None
    # remembered per (path, size, mtime): listing a dataset again re-reads only changed files
    memo = (str(path), st.st_size, st.st_mtime_ns)
    if memo not in _STAMPS:
        _STAMPS[memo] = _read_stamp(path)
    return _STAMPS[memo]


_STAMPS: dict[tuple[str, int, int], list[Any] | None] = {}


def _read_stamp(path: Path) -> list[Any] | None:
    try:
        if path.is_dir():
            return sorted(
                [p.name, p.stat().st_size]
                for p in path.iterdir()
                if p.suffix.lower() in IMAGE_EXTENSIONS
            )
        size = path.stat().st_size
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            digest.update(handle.read(_FINGERPRINT_BYTES))
            if size > _FINGERPRINT_BYTES:
                handle.seek(max(_FINGERPRINT_BYTES, size - _FINGERPRINT_BYTES))
                digest.update(handle.read(_FINGERPRINT_BYTES))
        return [size, digest.hexdigest()[:16]]
    except OSError:
        return None


def listing_fingerprint(listing: VideoListing) -> str:
    """The dataset's content: class names, and per video its place under root, label and stamp."""

    def rel(path: Path) -> str:
        try:
            return path.relative_to(listing.root).as_posix()
        except ValueError:
            return path.name

    def part(entries: list[VideoEntry]) -> list[Any]:
        return [[rel(e.path), e.label, content_stamp(e.path)] for e in entries]

    return config_key(
        listing.name, listing.class_names, part(listing.train), part(listing.test), length=16
    )


def decode_key(listing: VideoListing, frames: int, size: tuple[int, int], backend: str) -> str:
    """Content and decode settings (not where the files are): the key of the decode cache."""
    return config_key(
        _CACHE_VERSION, listing_fingerprint(listing), frames, list(size), backend, length=16
    )


def _store_folder(
    cache_dir: str | Path | None, name: str, frames: int, size: tuple[int, int], key: str
) -> Path | None:
    if cache_dir is None:
        return None
    return Path(cache_dir) / f"{name}-{frames}x{size[0]}x{size[1]}-{key}"


def _open_store(store: Path, rows: int, clip_bytes: int) -> tuple[_RowFile, np.ndarray]:
    """The rows file (created, or reopened to resume) and each row's status."""
    store.mkdir(parents=True, exist_ok=True)
    data, status_file = store / CLIPS_FILE, store / STATUS_FILE
    status = _read_status(status_file, rows) if data.is_file() else None
    if status is None or data.stat().st_size != rows * clip_bytes:
        status = np.zeros(rows, dtype=np.int8)
        with open(data, "wb") as handle:
            handle.truncate(rows * clip_bytes)  # sparse until written
        (store / META_FILE).unlink(missing_ok=True)
    if (store / META_FILE).is_file() and (status == 0).any():
        (store / META_FILE).unlink()  # a finished store cannot have rows to do
    return _RowFile(data, clip_bytes), status


class _RowFile:
    """Rows written straight to the file (not a memory map: mapped pages would count in RSS)."""

    def __init__(self, path: Path, row_bytes: int) -> None:
        self.fd = os.open(path, os.O_RDWR)
        self.row_bytes = row_bytes

    def __setitem__(self, row: int, data: np.ndarray) -> None:
        view, offset = memoryview(np.ascontiguousarray(data)).cast("B"), row * self.row_bytes
        while len(view):
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written

    def flush(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def _read_status(path: Path, rows: int) -> np.ndarray | None:
    try:
        status = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        if path.exists():
            warnings.warn(
                f"ignoring unreadable {path} ({_first_line(error)}); decoding again", stacklevel=4
            )
        return None
    return status.astype(np.int8) if status.shape == (rows,) else None


def _checkpoint(store: Path, target: Any, status: np.ndarray) -> None:
    """Rows reach the disk before the status that says they are there."""
    if isinstance(target, _RowFile):
        target.flush()
    with atomic_path(store / STATUS_FILE) as tmp:
        np.save(tmp, status)


def _finish_store(
    store: Path, listing: VideoListing, labels: np.ndarray, status: np.ndarray
) -> None:
    if (store / META_FILE).is_file():
        return
    meta = {
        "version": _CACHE_VERSION,
        "name": listing.name,
        "class_names": list(listing.class_names),
        "labels": labels.tolist(),
        "decoded": int((status == 1).sum()),
        "skipped": [str(e.path) for e, s in zip(_entries(listing), status, strict=True) if s != 1],
    }
    save_json(meta, store / META_FILE)


# ----------------------------------------------------------------------------- argument checks


def _whole_number(value: Any) -> int | None:
    """`value` as an int if it is a whole number (3, 3.0, numpy ints), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _check_geometry(frames: int, size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
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


def _class_list(classes: str | Sequence[str] | None) -> list[str] | None:
    """One class name as a str means that class (not its letters)."""
    if classes is None:
        return None
    return [classes] if isinstance(classes, str) else list(classes)


def _require_training_clips(
    labels: np.ndarray, train_idx: torch.Tensor, class_names: list[str], val_fraction: float
) -> None:
    counts = np.bincount(labels[train_idx.numpy()], minlength=len(class_names))
    empty = [class_names[c] for c in np.flatnonzero(counts == 0).tolist()]
    if empty:
        raise DataError(
            f"val_fraction={val_fraction:g} leaves class(es) {_shorten(empty)} without a training "
            "clip: lower val_fraction"
        )


def _check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise DataError(f"unknown {name} {value!r}: choose one of {', '.join(map(str, choices))}")


def _existing_dir(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(
            f"{what} {path} does not exist or is not a folder; nothing is downloaded, so point "
            "it at a copy of the dataset you already have"
        )
    return path


def _shorten(items: Sequence[str]) -> str:
    shown = ", ".join(str(i) for i in items[:_SHOW_AT_MOST])
    more = len(items) - _SHOW_AT_MOST
    return f"{shown}, ... ({more} more)" if more > 0 else shown

"""What a video's header says (length, frame rate, frame size, an audio track), kept in the
decode cache beside the clips, and the shortcut check: does one of these properties alone give
the class away on the training split?

A model can learn such a property instead of the action: with frames spread over the whole
clip, a class of short clips moves faster than a class of long ones, and a class recorded at
another frame rate, size or with sound is told apart by its pixels' statistics.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .storage import save_json
from .video_base import IMAGE_EXTENSIONS, VideoEntry
from .video_cache import META_FILE, default_workers

# property -> how the warning names it
SHORTCUT_PROPERTIES: dict[str, str] = {
    "frames": "clip length in frames",
    "seconds": "clip length in seconds",
    "fps": "frame rate",
    "frame_size": "frame size",
    "audio": "the presence of an audio track",
}
MAX_FOLDS = 5
SHORTCUT_SEED = 0  # the folds are a property of the data, not of a run


class ShortcutWarning(UserWarning):
    """A property of the video files (not of the action) predicts the class."""


def video_properties(path: Path) -> dict[str, Any] | None:
    """A video's properties from its header (PyAV; nothing is decoded), None where it cannot
    be read. A frame folder has its image count as length and no frame rate or audio."""
    if path.is_dir():
        count = sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        return {"frames": count, "seconds": None, "fps": None, "frame_size": None, "audio": 0}
    try:
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            return _stream_properties(container)
    except Exception:  # av.FFmpegError, OSError: the decoder reports the file, not this
        return None


def _stream_properties(container: Any) -> dict[str, Any]:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000  # AV_TIME_BASE
    else:
        seconds = None
    frames = stream.frames or (round(seconds * fps) if seconds and fps else None)
    if seconds is None and frames and fps:
        seconds = frames / fps
    width, height = stream.codec_context.width, stream.codec_context.height
    return {
        "frames": frames,
        "seconds": seconds,
        "fps": fps,
        "frame_size": f"{width}x{height}" if width and height else None,
        "audio": int(bool(container.streams.audio)),
    }


def listing_properties(
    entries: Sequence[VideoEntry], store: Path | None, workers: int | None = None
) -> list[dict[str, Any] | None]:
    """Each video's properties, kept in the decode cache's index (`store`'s meta.json, under
    "properties"; the store's key fixes the files' content): read from there when it holds
    them, else read from the headers (by `workers` threads) and added to it."""
    meta_file = store / META_FILE if store is not None else None
    meta = _read_meta(meta_file)
    known = meta.get("properties") if meta is not None else None
    if isinstance(known, list) and len(known) == len(entries):
        return known
    threads = default_workers() if workers is None else max(1, int(workers))
    with ThreadPoolExecutor(max_workers=threads) as pool:  # FFmpeg releases the GIL
        found = list(pool.map(video_properties, [e.path for e in entries]))
    if meta is not None and meta_file is not None:
        try:
            save_json({**meta, "properties": found}, meta_file)
        except OSError:  # a read-only cache: the check still runs, the next one reads again
            pass
    return found


def _read_meta(meta_file: Path | None) -> dict[str, Any] | None:
    """A finished store's index, None where there is none (no store, or still decoding)."""
    if meta_file is None or not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's fold (0..folds-1): every class dealt over the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        fold[rows] = np.arange(len(rows)) % folds
    return fold


def _bins(train_values: np.ndarray, values: np.ndarray, num_bins: int) -> np.ndarray:
    """Values as bins: each distinct value when there are few, else quantiles of the fold."""
    distinct = np.unique(train_values)
    if len(distinct) <= num_bins:  # even bins: values the fold has; odd: values it lacks
        return np.searchsorted(distinct, values) * 2 + (~np.isin(values, distinct)).astype(int)
    edges = np.unique(np.quantile(train_values, np.linspace(0, 1, num_bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right") * 2


def one_feature_accuracy(values: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """Balanced accuracy, cross-validated over stratified folds (seeded), of a classifier that
    sees one number per clip: the values are binned (2 bins a class, by quantile, or each
    distinct value) and a bin predicts the most frequent class among the fold's training clips
    in it (the fold's most frequent class for a bin it has not seen). Chance is 1 / classes."""
    counts = np.bincount(labels, minlength=num_classes)
    present = counts[counts > 0]
    folds = int(min(MAX_FOLDS, present.min())) if len(present) else 0
    if folds < 2:
        return float("nan")
    fold = stratified_folds(labels, folds, SHORTCUT_SEED)
    predicted = np.empty_like(labels)
    for k in range(folds):
        fit, held = fold != k, fold == k
        bins = _bins(values[fit], values, 2 * num_classes)
        fallback = np.bincount(labels[fit], minlength=num_classes).argmax()
        table: dict[int, int] = {}
        for b in np.unique(bins[fit]):
            table[int(b)] = int(
                np.bincount(labels[fit][bins[fit] == b], minlength=num_classes).argmax()
            )
        predicted[held] = [table.get(int(b), fallback) for b in bins[held]]
    recalls = [np.mean(predicted[labels == c] == c) for c in range(num_classes) if counts[c]]
    return float(np.mean(recalls))


def shortcut_threshold(num_classes: int) -> float:
    """Accuracy above which a property gives the class away: twice chance (for two classes,
    where that is 100 %, halfway from chance to 100 %)."""
    chance = 1.0 / num_classes
    return min(2 * chance, (1 + chance) / 2)


def _feature(properties: list[dict[str, Any] | None], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows that have the property, its values as numbers)."""
    raw = [p.get(name) if isinstance(p, dict) else None for p in properties]
    rows = np.array([i for i, v in enumerate(raw) if v is not None], dtype=np.int64)
    if name == "frame_size":  # categorical: each size a number
        sizes = sorted({raw[i] for i in rows})
        values = np.array([sizes.index(raw[i]) for i in rows], dtype=np.float64)
    else:
        values = np.array([float(raw[i]) for i in rows], dtype=np.float64)
    return rows, values


def shortcut_scores(
    properties: list[dict[str, Any] | None], labels: np.ndarray, num_classes: int
) -> dict[str, float]:
    """`one_feature_accuracy` of each property of SHORTCUT_PROPERTIES that is known for enough
    clips and differs between them (one the same for every clip tells nothing apart)."""
    scores = {}
    for name in SHORTCUT_PROPERTIES:
        rows, values = _feature(properties, name)
        if num_classes < 2 or len(rows) < 2 * num_classes or len(np.unique(values)) < 2:
            continue
        accuracy = one_feature_accuracy(values, labels[rows], num_classes)
        if np.isfinite(accuracy):
            scores[name] = accuracy
    return scores


def shortcut_line(scores: dict[str, float], num_classes: int) -> str:
    """The data summary's line: each property's score against chance and the warning level."""
    chance, level = 100 / num_classes, 100 * shortcut_threshold(num_classes)
    if not scores:
        return "shortcut check: no header property differs between the training clips"
    shown = ", ".join(f"{SHORTCUT_PROPERTIES[n]} {100 * a:.0f} %" for n, a in scores.items())
    return (
        f"shortcut check (one property, balanced, cross-validated): {shown}; chance "
        f"{chance:.0f} %, warned above {level:.0f} %"
    )


def shortcut_warnings(scores: dict[str, float], num_classes: int, sampling: str) -> list[str]:
    """One warning per property whose score is above `shortcut_threshold`."""
    found = []
    for name, accuracy in scores.items():
        if not accuracy > shortcut_threshold(num_classes):
            continue
        speed = (
            " (frames spread over whole clips then move at a class-dependent speed: "
            "try --sampling stride)"
            if name in ("frames", "seconds") and sampling == "spread"
            else ""
        )
        found.append(
            f"{SHORTCUT_PROPERTIES[name]} predicts the class on the training split: a "
            f"one-feature classifier reaches {100 * accuracy:.0f} % (balanced, cross-validated) "
            f"against {100 / num_classes:.0f} % chance; a model can learn it instead of the "
            f"action{speed}"
        )
    return found


def warn_about_shortcuts(messages: list[str]) -> None:
    for message in messages:
        warnings.warn(message, ShortcutWarning, stacklevel=3)

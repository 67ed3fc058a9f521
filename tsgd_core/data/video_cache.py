"""Decoding a listing once into a uint8 cache folder (parallel, resumable, keyed by the decode
settings and the files' content) and reading it back."""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .clips import DataError, UInt8Clips, stratified_split
from .storage import atomic_path, config_key, save_json
from .video_base import (
    _CACHE_VERSION,
    IMAGE_EXTENSIONS,
    SkippedVideoWarning,
    VideoDecodeError,
    VideoEntry,
    VideoListing,
    _first_line,
    _shorten,
)
from .video_decode import _python_stderr_visible, read_clip


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

"""Decoding a listing once into a uint8 cache folder (parallel, resumable, keyed by the decode
settings and the files' content) and reading it back."""

from __future__ import annotations

import errno
import hashlib
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..runtime.budget import check_disk_fits
from ..runtime.progress import progress_bar
from .clips import DataError, UInt8Clips, stratified_split
from .storage import CacheRepairWarning, atomic_path, config_key, save_json
from .video_base import (
    CACHE_VERSION,
    IMAGE_EXTENSIONS,
    SkippedVideoWarning,
    VideoDecodeError,
    VideoEntry,
    VideoListing,
    message_line,
    shorten,
)
from .video_decode import python_stderr_visible, read_clip, refuse_special_file


def listing_entries(listing: VideoListing) -> list[VideoEntry]:
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
    sampling: str = "spread",
) -> tuple[UInt8Clips, np.ndarray, np.ndarray]:
    """Decode every listed video (train, then test) to uint8 (C, T, H, W) rows.

    Returns the clips, their labels and which rows decoded. With `store`, rows go to a file in
    that folder as they are decoded, with a checkpoint every few seconds: an interrupted
    decode resumes where it stopped, and a finished one is read back without decoding.
    Videos are decoded by `workers` threads (FFmpeg and decord release the GIL).
    """
    entries = listing_entries(listing)
    labels = np.array([e.label for e in entries], dtype=np.int64)
    clip_shape = (3, frames, *size)
    clip_bytes = int(np.prod(clip_shape))
    if store is None:
        target: Any = np.empty((len(entries), clip_bytes), dtype=np.uint8)
        status = np.zeros(len(entries), dtype=np.int8)
    else:
        if not (store / CLIPS_FILE).is_file():  # a new store: refused before anything is made
            _check_room(store, len(entries), clip_bytes)
        target, status = _open_store(store, len(entries), clip_bytes)
    todo = np.flatnonzero(status == 0)
    if store is not None:  # the rows file is sparse: the rows to do take their room as decoded
        try:
            _check_room(store, len(todo), clip_bytes)
        except OSError:
            target.close()
            raise
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
                sampling,
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


def _check_room(store: Path, rows: int, clip_bytes: int) -> None:
    check_disk_fits(store / CLIPS_FILE, rows * clip_bytes, f"decoding {rows} videos into the cache")


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
    sampling: str = "spread",
) -> None:
    def decode(i: int) -> tuple[int, np.ndarray | None, VideoDecodeError | None]:
        try:
            clip = read_clip(entries[i].path, frames, size, backend, sampling)
        except VideoDecodeError as error:
            return i, None, error
        return i, clip.transpose(3, 0, 1, 2).reshape(-1), None  # (C, T, H, W) rows

    workers = default_workers() if workers is None else max(1, int(workers))
    with python_stderr_visible():  # the bar and warnings, while decoders silence fd 2
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
    bar = progress_bar(
        total=len(entries),
        initial=len(entries) - len(todo),
        desc=f"decoding {name}",
        unit="video",
        enabled=progress,
    )
    last_checkpoint = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # a bounded window of videos in flight: results are written as they arrive
            for chunk in np.array_split(todo, max(1, len(todo) // (4 * workers))):
                passing: BaseException | None = None  # a failure of the moment, not the file
                for i, clip, failure in pool.map(decode, chunk.tolist()):
                    if failure is not None and passing_cause(failure) is not None:
                        passing = passing or passing_cause(failure)  # the row stays to do
                    elif failure is not None:
                        message = (
                            f"skipping {entries[i].path}, which could not be decoded: "
                            f"{failure.reason}"
                        )
                        warnings.warn(message, SkippedVideoWarning, stacklevel=5)
                        status[i] = UNREADABLE
                    else:
                        target[i] = clip
                        status[i] = 1
                    bar.update()
                if passing is not None:  # what decoded is kept (checkpointed below)
                    raise passing
                if store is not None and time.monotonic() - last_checkpoint > CHECKPOINT_S:
                    _checkpoint(store, target, status)
                    last_checkpoint = time.monotonic()
    finally:
        bar.close()
        if store is not None:
            _checkpoint(store, target, status)


# errno values of a decode that failed for a passing cause (a limit of the moment, a signal):
# such a failure is never remembered, so the next run decodes the video again
PASSING_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EINTR, errno.EAGAIN)
_OUT_OF_MEMORY = ("out of memory", "bad_alloc", "can't allocate memory")


def passing_cause(error: VideoDecodeError) -> BaseException | None:
    """The error to raise when a decode failed for a passing cause (open files, memory, a
    signal), naming the video; None when the failure is the file's own (a corrupt stream).

    The native decoders keep only the text of their errors, so their message is read too.
    """
    path = str(error.path)
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, MemoryError):
            return MemoryError(f"decoding {path}: {error.reason}")
        if isinstance(cause, OSError) and cause.errno in PASSING_ERRNOS:
            return OSError(cause.errno, os.strerror(cause.errno), path)
        cause = cause.__cause__ or cause.__context__
    reason = error.reason.lower()
    for code in PASSING_ERRNOS:
        if os.strerror(code).lower() in reason:
            return OSError(code, os.strerror(code), path)
    if any(text in reason for text in _OUT_OF_MEMORY):
        return MemoryError(f"decoding {path}: {error.reason}")
    return None


def warn_skipped_summary(skipped: list[Path], total: int) -> None:
    warnings.warn(
        f"skipped {len(skipped)} of {total} videos that could not be decoded: "
        f"{shorten([str(p) for p in skipped])}",
        SkippedVideoWarning,
        stacklevel=3,
    )


def require_readable_classes(listing: VideoListing, labels: dict[str, np.ndarray]) -> None:
    for part in ("train", "test"):
        counts = np.bincount(labels[part], minlength=len(listing.class_names))
        for c in np.flatnonzero(counts == 0).tolist():
            tried = [str(e.path) for e in getattr(listing, part) if e.label == c]
            raise DataError(
                f"{listing.name}: class {listing.class_names[c]!r} has no readable video in the "
                f"{part} split; none of {shorten(tried)} could be decoded. Replace those files "
                "(re-download or re-extract them) or leave the class out with classes=[...]."
            )


def _carve_validation(
    labels: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    if val_fraction == 0.0:
        return torch.arange(len(labels)), torch.zeros(0, dtype=torch.long)
    return stratified_split(labels, val_fraction, seed)


CLIPS_FILE = "clips.u8"  # raw uint8 rows of (C, T, H, W)


STATUS_FILE = "status.npy"  # per row: 0 to decode, 1 decoded, UNREADABLE, or FAILED_BEFORE
# a row whose file could not be decoded for a reason of its own (a corrupt stream)
UNREADABLE = -2
# a row an older tsgd marked as failed without telling why (a limit of the moment could have
# been the cause): decoded again once, then remembered as UNREADABLE if it fails again
FAILED_BEFORE = -1


META_FILE = "meta.json"  # written last: the folder is complete


FINGERPRINT_FILE = "rows.npy"  # per row: row_fingerprint of its pixels (0: none yet)


CHECKPOINT_S = 5.0


_FINGERPRINT_BYTES = 1 << 16  # hashed at each end of every video file


def content_stamp(path: Path) -> list[Any] | None:
    """What a video holds, cheaply: its size and a hash of its first and last 64 KiB.

    For a frame folder: every image's name and size. Paths and dates are left out, so a
    copy of the same files elsewhere has the same stamp. None for a missing file; a named
    pipe, device or socket in a video's place is refused (reading one would block or never
    end), and a passing failure (too many open files) is raised, never taken as the content.
    """
    try:
        st = path.stat()
    except OSError as error:
        _raise_if_passing(error)
        return None
    refuse_special_file(path, st.st_mode)
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
    except OSError as error:
        _raise_if_passing(error)
        return None


def _raise_if_passing(error: OSError) -> None:
    if error.errno in PASSING_ERRNOS:
        raise error


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
        CACHE_VERSION, listing_fingerprint(listing), frames, list(size), backend, length=16
    )


def store_folder(
    cache_dir: str | Path | None, name: str, frames: int, size: tuple[int, int], key: str
) -> Path | None:
    if cache_dir is None:
        return None
    return Path(cache_dir) / f"{name}-{frames}x{size[0]}x{size[1]}-{key}"


def _open_store(store: Path, rows: int, clip_bytes: int) -> tuple[_RowFile, np.ndarray]:
    """The rows file (created, or reopened to resume) and each row's status.

    A reopened store is checked before use: anything in the place of its files that is not a
    file is moved aside, a file of the wrong size is resized (rows past the old end are decoded
    again), and every decoded row must match its fingerprint, or it is decoded again.
    """
    _make_room(store)
    data, status_file = store / CLIPS_FILE, store / STATUS_FILE
    status = _read_status(status_file, rows) if data.is_file() else None
    if status is not None:
        status[status == FAILED_BEFORE] = 0
    if status is None:
        status = np.zeros(rows, dtype=np.int8)
        with open(data, "wb") as handle:
            handle.truncate(rows * clip_bytes)  # sparse until written
        (store / META_FILE).unlink(missing_ok=True)
    elif data.stat().st_size != rows * clip_bytes:
        _warn_repair(data, f"{data.stat().st_size} bytes instead of {rows * clip_bytes}")
        os.truncate(data, rows * clip_bytes)  # lost rows read as zeros: their fingerprints fail
    target = _RowFile(data, clip_bytes, _read_fingerprints(store / FINGERPRINT_FILE, rows))
    _heal_rows(store, target, status)
    if (store / META_FILE).is_file() and (status == 0).any():
        (store / META_FILE).unlink()  # a finished store cannot have rows to do
    return target, status


def _make_room(store: Path) -> None:
    """The store is a folder and each of its files a file or absent: anything else moves aside."""
    if store.exists() and not store.is_dir():
        _move_aside(store)
    store.mkdir(parents=True, exist_ok=True)
    for name in (CLIPS_FILE, STATUS_FILE, FINGERPRINT_FILE, META_FILE):
        path = store / name
        if (path.exists() or path.is_symlink()) and not (path.is_file() and not path.is_symlink()):
            _move_aside(path)


def _move_aside(path: Path) -> None:
    """Keep what was there under a new name (never deleted: it may be someone's work)."""
    n = 0
    while (aside := path.with_name(f"{path.name}.damaged{n or ''}")).exists():
        n += 1
    path.rename(aside)
    _warn_repair(path, f"not a regular file; moved to {aside.name}")


def _warn_repair(path: Path, reason: str) -> None:
    warnings.warn(
        f"damaged decode cache entry {path} ({reason}); decoding what it lost again",
        CacheRepairWarning,
        stacklevel=4,
    )


def _heal_rows(store: Path, target: _RowFile, status: np.ndarray) -> None:
    """Rows marked decoded whose pixels do not match their fingerprint are decoded again.

    A row without a fingerprint (a store written before they were kept) is trusted unless its
    sampled pixels are all zero (a zero-filled or truncated file); its fingerprint is kept then.
    """
    decoded = np.flatnonzero(status == 1)
    if not len(decoded):
        return
    seen = np.array([target.fingerprint_on_disk(int(i)) for i in decoded], dtype=np.uint64)
    known = target.fingerprints[decoded]
    unknown = known == 0
    zero = np.array([target.samples_are_zero(int(i)) for i in decoded[unknown]], dtype=bool)
    bad = np.zeros(len(decoded), dtype=bool)
    bad[~unknown] = seen[~unknown] != known[~unknown]
    bad[np.flatnonzero(unknown)[zero]] = True
    if bad.any():
        _warn_repair(store / CLIPS_FILE, f"{int(bad.sum())} of {len(decoded)} rows do not match")
        status[decoded[bad]] = 0
    adopt = unknown & ~bad
    target.fingerprints[decoded[adopt]] = seen[adopt]
    if bad.any() or adopt.any():
        _checkpoint(store, target, status)


def _read_fingerprints(path: Path, rows: int) -> np.ndarray:
    """Each row's fingerprint (0: none yet)."""
    try:
        prints = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return np.zeros(rows, dtype=np.uint64)
    if prints.shape != (rows,) or prints.dtype != np.uint64:
        return np.zeros(rows, dtype=np.uint64)
    return prints


def row_fingerprint(row: bytes | memoryview) -> int:
    """A row's fingerprint: a hash of its first, middle and last 4 KiB (never 0)."""
    digest = hashlib.blake2b(digest_size=8)
    for start, stop in _sample_spans(len(row)):
        digest.update(row[start:stop])
    return int.from_bytes(digest.digest(), "little") | 1


def _sample_spans(row_bytes: int) -> list[tuple[int, int]]:
    if row_bytes <= 3 * _SAMPLE_BYTES:
        return [(0, row_bytes)]
    middle = (row_bytes - _SAMPLE_BYTES) // 2
    starts = (0, middle, row_bytes - _SAMPLE_BYTES)
    return [(start, start + _SAMPLE_BYTES) for start in starts]


_SAMPLE_BYTES = 4096


class _RowFile:
    """Rows written straight to the file (not a memory map: mapped pages would count in RSS)."""

    def __init__(self, path: Path, row_bytes: int, fingerprints: np.ndarray) -> None:
        self.fd = os.open(path, os.O_RDWR)
        self.row_bytes = row_bytes
        self.fingerprints = fingerprints  # per row, saved with the status at each checkpoint

    def __setitem__(self, row: int, data: np.ndarray) -> None:
        view, offset = memoryview(np.ascontiguousarray(data)).cast("B"), row * self.row_bytes
        self.fingerprints[row] = row_fingerprint(view)
        while len(view):
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written

    def _samples(self, row: int) -> list[bytes]:
        base = row * self.row_bytes
        spans = _sample_spans(self.row_bytes)
        return [os.pread(self.fd, stop - start, base + start) for start, stop in spans]

    def fingerprint_on_disk(self, row: int) -> int:
        return row_fingerprint(b"".join(self._samples(row)))

    def samples_are_zero(self, row: int) -> bool:
        return not any(any(block) for block in self._samples(row))

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
                f"ignoring unreadable {path} ({message_line(error)}); decoding again", stacklevel=4
            )
        return None
    if status.shape != (rows,) or not np.isin(status, (UNREADABLE, FAILED_BEFORE, 0, 1)).all():
        return None
    return status.astype(np.int8)


def _checkpoint(store: Path, target: Any, status: np.ndarray) -> None:
    """Rows reach the disk before the status that says they are there."""
    if isinstance(target, _RowFile):
        target.flush()
        with atomic_path(store / FINGERPRINT_FILE) as tmp:
            np.save(tmp, target.fingerprints)
    with atomic_path(store / STATUS_FILE) as tmp:
        np.save(tmp, status)


def _finish_store(
    store: Path, listing: VideoListing, labels: np.ndarray, status: np.ndarray
) -> None:
    if (store / META_FILE).is_file():
        return
    meta = {
        "version": CACHE_VERSION,
        "name": listing.name,
        "class_names": list(listing.class_names),
        "labels": labels.tolist(),
        "decoded": int((status == 1).sum()),
        "skipped": [
            str(e.path) for e, s in zip(listing_entries(listing), status, strict=True) if s != 1
        ],
    }
    save_json(meta, store / META_FILE)

"""Clip containers shared by every stage: a labelled set of clips and its train/val/test splits.

Convention used everywhere in tsgd_core: a clip tensor is float32 of shape (C, T, H, W) with
values in [0, 1]; a batch is (N, C, T, H, W). Models take that range directly (their first
normalisation layer handles scale), so distilled clips stay watchable pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


class DataError(ValueError):
    """Bad dataset input: the message names the problem and what to do."""


class UInt8Clips:
    """Clips kept as uint8 (N, C, T, H, W), in a raw file or an array; indexing gives float in [0, 1].

    Real datasets are larger than memory in float32 (4x their uint8 size): this holds only
    the row numbers, and every `videos[idx]` reads those clips (from the page cache when the
    rows live in a file) and converts them, so a training step holds one float batch.
    Supports what the library does with `ClipSet.videos`: len, shape, ndim, integer / slice /
    index-tensor rows (with further indices applied to the float result) and iteration.
    """

    dtype = torch.float32
    ndim = 5

    def __init__(
        self,
        source: str | Path | np.ndarray,
        clip_shape: tuple[int, int, int, int],
        rows: np.ndarray | None = None,
        offset: int = 0,
        time: slice | None = None,
    ) -> None:
        self.source = source if isinstance(source, np.ndarray) else Path(source)
        self.clip_shape = tuple(int(s) for s in clip_shape)
        self.clip_bytes = int(np.prod(self.clip_shape))
        self.offset = int(offset)
        self.time = time  # frames kept of every clip (None: all)
        if isinstance(source, np.ndarray):
            total = len(source)
        else:
            total = (self.source.stat().st_size - self.offset) // self.clip_bytes
        self.rows = np.arange(total, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)

    @property
    def shape(self) -> torch.Size:
        c, t, h, w = self.clip_shape
        kept = len(range(t)[self.time]) if self.time is not None else t
        return torch.Size((len(self.rows), c, kept, h, w))

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, index: Any) -> UInt8Clips:
        """The same storage restricted to some rows (no pixels are read)."""
        rows = self.rows[_as_numpy_index(index)]
        return UInt8Clips(self.source, self.clip_shape, rows, self.offset, self.time)

    def select_time(self, frames: slice) -> UInt8Clips:
        """The same clips with only some frames (read whole, cut per batch)."""
        return UInt8Clips(self.source, self.clip_shape, self.rows, self.offset, frames)

    def __getitem__(self, key: Any) -> torch.Tensor:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        rows = self.rows[_as_numpy_index(key)]
        raw = self.read_uint8(np.atleast_1d(rows))
        if self.time is not None:
            raw = np.ascontiguousarray(raw[:, :, self.time])
        out = from_uint8(torch.from_numpy(raw))
        if rows.ndim == 0:  # one clip: (C, T, H, W)
            return out[0][rest] if rest else out[0]
        return out[(slice(None), *rest)] if rest else out

    def __iter__(self) -> Iterator[torch.Tensor]:
        for i in range(len(self)):
            yield self[i]

    def float(self) -> torch.Tensor:
        """Every clip as one float tensor (only for sets known to be small)."""
        return self[:]

    def read_uint8(self, rows: np.ndarray) -> np.ndarray:
        """uint8 (len(rows), C, T, H, W); consecutive rows are read in one go."""
        if isinstance(self.source, np.ndarray):
            return np.ascontiguousarray(self.source[rows]).reshape(len(rows), *self.clip_shape)
        out = np.empty((len(rows), self.clip_bytes), dtype=np.uint8)
        with open(self.source, "rb", buffering=0) as handle:
            start = 0
            while start < len(rows):
                stop = start + 1
                while stop < len(rows) and rows[stop] == rows[stop - 1] + 1:
                    stop += 1
                _read_exactly(
                    handle, self.offset + int(rows[start]) * self.clip_bytes, out[start:stop]
                )
                start = stop
        return out.reshape(len(rows), *self.clip_shape)


def _as_numpy_index(key: Any) -> Any:
    if isinstance(key, torch.Tensor):
        return key.numpy() if key.ndim else int(key)
    if isinstance(key, list):
        return (
            np.asarray(key, dtype=np.int64)
            if key and not isinstance(key[0], bool)
            else np.asarray(key)
        )
    return key


def _read_exactly(handle: Any, position: int, out: np.ndarray) -> None:
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        handle.seek(position + done)
        read = handle.readinto(view[done:])
        if not read:
            raise DataError(
                f"{handle.name} ends early: the clip cache is damaged; delete it to decode again"
            )
        done += read


@dataclass
class ClipSet:
    """Labelled clips: videos (N, C, T, H, W) float in [0, 1], labels (N,) int64.

    `videos` is a float tensor, or `UInt8Clips` for real datasets (converted per batch).
    """

    videos: torch.Tensor | UInt8Clips
    labels: torch.Tensor
    class_names: list[str]

    def __post_init__(self) -> None:
        if self.videos.ndim != 5:
            raise DataError(f"videos must be (N, C, T, H, W), got shape {tuple(self.videos.shape)}")
        if self.labels.shape != (self.videos.shape[0],):
            raise DataError(
                f"labels must be ({self.videos.shape[0]},), got {tuple(self.labels.shape)}"
            )
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return int(self.videos.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of one clip."""
        return tuple(self.videos.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor | list[int]) -> ClipSet:
        index = torch.as_tensor(index, dtype=torch.long)
        return ClipSet(self.videos[index], self.labels[index], list(self.class_names))

    def indices_of_class(self, c: int) -> torch.Tensor:
        return torch.nonzero(self.labels == c, as_tuple=False).flatten()

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=self.num_classes)

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (videos, labels) mini-batches; shuffled with `generator` when asked."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield self.videos[idx], self.labels[idx]


@dataclass
class Splits:
    """Train / validation / test clip sets of one dataset, with how they were made."""

    train: ClipSet
    val: ClipSet
    test: ClipSet
    name: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return self.train.class_names

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        return self.train.clip_shape


def to_uint8(videos: torch.Tensor) -> torch.Tensor:
    """[0, 1] float clips to uint8 of the same layout (for caches and export)."""
    return (videos.clamp(0, 1) * 255).round().to(torch.uint8)


def from_uint8(videos: torch.Tensor) -> torch.Tensor:
    return videos.float().div_(255.0)


def stratified_split(
    labels: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices per class: `fraction` of each class goes to the second part (at least one)."""
    g = torch.Generator().manual_seed(seed)
    first, second = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        second.append(idx[:k])
        first.append(idx[k:])
    return torch.cat(first).sort().values, torch.cat(second).sort().values


def single_frame(splits: Splits, frame: int | None = None) -> Splits:
    """The same splits with one frame per clip (the middle one by default): the appearance-only control."""
    t = splits.clip_shape[1]
    frame = t // 2 if frame is None else frame
    if not -t <= frame < t:
        raise DataError(f"frame {frame} is outside clips of {t} frames")

    def one(c: ClipSet) -> ClipSet:
        if isinstance(c.videos, UInt8Clips):  # real data: cut each batch, never hold all clips
            time = slice(frame, frame + 1 if frame != -1 else None)
            return ClipSet(c.videos.select_time(time), c.labels, c.class_names)
        return ClipSet(
            c.videos[:, :, frame : frame + 1 if frame != -1 else None].contiguous(),
            c.labels,
            c.class_names,
        )

    return Splits(
        one(splits.train),
        one(splits.val),
        one(splits.test),
        f"{splits.name}-frame{frame}",
        {**splits.config, "single_frame": frame},
    )

"""Clip containers shared by every stage: a labelled set of clips and its train/val/test splits.

Convention used everywhere in tsgd_core: a clip tensor is float32 of shape (C, T, H, W) with
values in [0, 1]; a batch is (N, C, T, H, W). Models take that range directly (their first
normalisation layer handles scale), so distilled clips stay watchable pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch


class DataError(ValueError):
    """Bad dataset input: the message names the problem and what to do."""


@dataclass
class ClipSet:
    """Labelled clips: videos (N, C, T, H, W) float in [0, 1], labels (N,) int64."""

    videos: torch.Tensor
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
        return ClipSet(c.videos[:, :, frame : frame + 1 if frame != -1 else None].contiguous(), c.labels, c.class_names)

    return Splits(one(splits.train), one(splits.val), one(splits.test), f"{splits.name}-frame{frame}",
                  {**splits.config, "single_frame": frame})

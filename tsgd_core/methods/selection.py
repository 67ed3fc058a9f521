"""Selection baselines: keep IPC real clips per class, chosen at random, by herding, or by
k-center (greedy farthest-point) in the teacher's feature space.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.artifact import DistilledSet
from ..data.clips import ClipSet
from ..runtime import resolve_device

SELECTION_METHODS = ("random", "herding", "kcenter")


def check_ipc(data: ClipSet, ipc: int) -> None:
    """IPC must be at least 1 and at most the smallest class's number of clips."""
    if ipc < 1:
        raise ValueError(f"IPC must be >= 1, got {ipc}")
    counts = data.class_counts()
    smallest = int(counts.argmin())
    if ipc > int(counts[smallest]):
        raise ValueError(
            f"IPC {ipc} is more than class '{data.class_names[smallest]}' has "
            f"({int(counts[smallest])} clips): lower the IPC"
        )


@torch.no_grad()
def teacher_features(
    teacher: nn.Module, videos: torch.Tensor, batch_size: int = 256, device: str = "auto"
) -> torch.Tensor:
    """Penultimate features of the teacher for every clip, on the CPU."""
    dev = resolve_device(device)
    teacher.eval().to(dev)
    return torch.cat(
        [
            teacher.embed(videos[i : i + batch_size].to(dev)).float().cpu()
            for i in range(0, len(videos), batch_size)
        ]
    )


def random_indices(labels: torch.Tensor, num_classes: int, ipc: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:ipc]])
    return torch.cat(picks)


def herding_order(features: torch.Tensor, count: int) -> torch.Tensor:
    """Greedy herding (Welling 2009): each pick brings the running mean closest to the class mean."""
    mean = features.mean(0)
    chosen: list[int] = []
    running = torch.zeros_like(mean)
    available = torch.ones(len(features), dtype=torch.bool)
    for k in range(count):
        candidate_means = (running * k + features) / (k + 1)
        dist = (candidate_means - mean).norm(dim=1)
        dist[~available] = float("inf")
        pick = int(dist.argmin())
        chosen.append(pick)
        available[pick] = False
        running = candidate_means[pick]
    return torch.tensor(chosen, dtype=torch.long)


def kcenter_order(features: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Greedy k-center: start from the clip nearest the class mean, then the farthest from all picks."""
    first = int((features - features.mean(0)).norm(dim=1).argmin())
    if seed:  # other seeds start from a random clip, so k-center has seed variation like random
        first = int(
            torch.randint(len(features), (1,), generator=torch.Generator().manual_seed(seed))
        )
    chosen = [first]
    nearest = (features - features[first]).norm(dim=1)
    for _ in range(count - 1):
        pick = int(nearest.argmax())
        chosen.append(pick)
        nearest = torch.minimum(nearest, (features - features[pick]).norm(dim=1))
    return torch.tensor(chosen, dtype=torch.long)


def select_indices(
    method: str,
    labels: torch.Tensor,
    num_classes: int,
    ipc: int,
    features: torch.Tensor | None,
    seed: int,
) -> torch.Tensor:
    if method == "random":
        return random_indices(labels, num_classes, ipc, seed)
    if features is None:
        raise ValueError(f"{method} selects in the teacher's feature space: pass a teacher")
    picks = []
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        if method == "herding" and seed:
            # herding is deterministic: other seeds herd within a random half of the class, so
            # herding has draw-to-draw variation like random and k-center (seed 0: all clips)
            g = torch.Generator().manual_seed(seed * num_classes + c)
            idx = idx[torch.randperm(len(idx), generator=g)[: max(ipc, len(idx) // 2)]]
        order = (
            herding_order(features[idx], ipc)
            if method == "herding"
            else kcenter_order(features[idx], ipc, seed)
        )
        picks.append(idx[order])
    return torch.cat(picks)


def select_subset(
    method: str,
    train: ClipSet,
    ipc: int,
    *,
    teacher: nn.Module | None = None,
    seed: int = 0,
    device: str = "auto",
) -> DistilledSet:
    """IPC real clips per class (class-major order) as a DistilledSet."""
    if method not in SELECTION_METHODS:
        raise ValueError(f"unknown selection method {method!r}: use {', '.join(SELECTION_METHODS)}")
    check_ipc(train, ipc)
    features = (
        teacher_features(teacher, train.videos, device=device)
        if method != "random" and teacher
        else None
    )
    index = select_indices(method, train.labels, train.num_classes, ipc, features, seed)
    chosen = train.subset(index)
    return DistilledSet(
        videos=chosen.videos.clone(),
        labels=chosen.labels.clone(),
        class_names=list(train.class_names),
        method=method,
        ipc=ipc,
        config={
            "method": method,
            "ipc": ipc,
            "seed": seed,
            "feature_space": "teacher" if features is not None else None,
        },
        seed=seed,
    )

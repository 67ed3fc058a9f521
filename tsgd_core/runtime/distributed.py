"""Scale-out on torch.distributed: which rank does what, and how the parts come back together.

Every helper here is a no-op in a single process (no process group, or a group of one), so the
library behaves exactly as without it. Under `torchrun` (which sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT), `process_group()` joins the job and then:

* recover (TSGD / SRe2L-style) splits the IPC slots of one set over the ranks: rank r optimises
  slots r, r + world, ... against its own copy of the frozen teacher; every slot is seeded by its
  index, so the gathered set equals the single-process one;
* the teacher trains data-parallel (DDP): each rank takes its share of every global batch, the
  gradients are averaged, BatchNorm statistics are synchronised (SyncBatchNorm on CUDA; on the
  CPU, where SyncBatchNorm does not run, DDP broadcasts rank 0's running statistics);
* evaluation spreads its student seeds over the ranks, one student per rank at a time;
* files (teacher checkpoint, distilled set, results) are written by rank 0 alone, atomically.

Nothing here opens a socket or starts a process: torchrun and torch.distributed do both.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from . import derive_seed
from .paths import env_int

T = TypeVar("T")

# How long a rank waits for the others at a collective before it gives up with an error.
DEFAULT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job: its rank, the number of ranks, its local GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """More than one rank: work is split and results are gathered."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0


SINGLE = DistContext()


def context() -> DistContext:
    """The context of the process group this process belongs to; SINGLE outside of one."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return DistContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def is_main() -> bool:
    return context().is_main


# what to do about a torchrun variable in bad shape
TORCHRUN_ADVICE = (
    "torchrun sets it for each rank: unset it to run in one process, or start the command "
    "with torchrun"
)
MAX_RANKS = 1 << 20


def launched_by_torchrun() -> bool:
    """torchrun (or a scheduler that mimics it) started this process as one of several ranks.
    Its variables are checked here, before any work: one in bad shape is an InputError naming it."""
    world = env_int("WORLD_SIZE", 1, 1, MAX_RANKS, TORCHRUN_ADVICE)
    if world == 1:
        return False
    for name in ("RANK", "LOCAL_RANK"):  # where set (torch.distributed names a missing one)
        env_int(name, 0, 0, world - 1, TORCHRUN_ADVICE)
    return True


def backend_for(device: str | torch.device) -> str:
    """nccl for CUDA ranks, gloo for CPU ranks."""
    kind = device.type if isinstance(device, torch.device) else str(device)
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    return "nccl" if kind.startswith("cuda") else "gloo"


def own_gpu(local_rank: int) -> int:
    """The GPU of a rank: one GPU per rank on each machine."""
    visible = torch.cuda.device_count()
    if local_rank >= visible:
        raise ValueError(
            f"local rank {local_rank} has no GPU of its own ({visible} visible): start at most "
            f"{visible} processes per machine (--nproc_per_node {visible}) or use device='cpu'"
        )
    return local_rank


@contextmanager
def process_group(
    device: str | torch.device = "auto", timeout_s: float = DEFAULT_TIMEOUT_S
) -> Iterator[DistContext]:
    """Join torchrun's job for the duration of the block (env:// rendezvous), then leave it.

    Outside torchrun, or when a group already exists (the caller owns it), this only yields
    the current context. On CUDA every rank takes the GPU of its LOCAL_RANK, so 'cuda' means
    that rank's own device.
    """
    if not launched_by_torchrun() or dist.is_initialized():
        yield context()
        return
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(own_gpu(int(os.environ.get("LOCAL_RANK", "0"))))
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    try:
        yield context()
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------
# Splitting work and gathering it back


def owned(count: int, ctx: DistContext | None = None) -> list[int]:
    """The indices 0..count-1 this rank works on: r, r + world, ... (all of them when single)."""
    ctx = ctx or context()
    return list(range(ctx.rank, count, ctx.world_size))


def split_summary(what: str, items: Sequence[str], world_size: int) -> str:
    """One line: how the work items (in order, e.g. 'slot 1') are dealt over `world_size` ranks
    by `owned`, e.g. 'recover over 2 ranks: rank 0 owns slot 1, slot 3; rank 1 owns slot 2'."""
    shares = []
    for rank in range(world_size):
        mine = owned(len(items), DistContext(rank=rank, world_size=world_size))
        shares.append(f"rank {rank} owns {', '.join(items[i] for i in mine) or 'nothing'}")
    return f"{what} over {world_size} ranks: {'; '.join(shares)}"


def announce_split(what: str, items: Sequence[str], ctx: DistContext | None = None) -> None:
    """Print `split_summary` once, on rank 0, when the work is split over several ranks."""
    ctx = ctx or context()
    if ctx.active and ctx.is_main:
        print(split_summary(what, items, ctx.world_size), flush=True)


def gather_ordered(local: dict[int, T], count: int, ctx: DistContext | None = None) -> list[T]:
    """Every rank's {index: item} merged into one list in index order, on every rank."""
    ctx = ctx or context()
    merged = dict(local)
    if ctx.active:
        parts: list[Any] = [None] * ctx.world_size
        dist.all_gather_object(parts, local)
        merged = {i: item for part in parts for i, item in part.items()}
    missing = [i for i in range(count) if i not in merged]
    if missing:
        raise RuntimeError(
            f"items {missing} were computed by no rank: every rank must call with the same count"
        )
    return [merged[i] for i in range(count)]


def agree(value: T, ctx: DistContext | None = None) -> T:
    """Rank 0's `value` on every rank (e.g. whether a cache file exists, so all take one path)."""
    ctx = ctx or context()
    if not ctx.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext | None = None) -> None:
    """Wait for every rank (no-op when single)."""
    if (ctx or context()).active:
        dist.barrier()


# ---------------------------------------------------------------------------------------------
# Data-parallel training (used by train.fit)


def data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """A DDP copy of `model` for training; `model` itself is left as it is.

    On CUDA its BatchNorm layers become SyncBatchNorm (statistics over the global batch);
    SyncBatchNorm does not run on the CPU, where DDP's buffer broadcast keeps every rank's
    running statistics equal to rank 0's instead. The copy has the same state_dict keys.
    """
    from torch.nn.parallel import DistributedDataParallel

    net = copy.deepcopy(model).to(device)
    if device.type == "cuda":
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        # plain 'cuda' is the rank's own GPU: process_group() made it the current device
        index = torch.cuda.current_device() if device.index is None else device.index
        return DistributedDataParallel(net, device_ids=[index])
    return DistributedDataParallel(net)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (the module itself otherwise)."""
    return model.module if hasattr(model, "module") else model


def sync_buffers(model: nn.Module, ctx: DistContext | None = None) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank.

    DDP broadcasts them at the start of each forward pass, but the last pass updates every
    rank's own copy from its own share of the batch: without this the ranks would validate,
    and later distil, against slightly different teachers.
    """
    if (ctx or context()).active:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def check_batch_splits(batch_size: int, ctx: DistContext) -> None:
    if batch_size < ctx.world_size:
        raise ValueError(
            f"a batch of {batch_size} clips cannot be split over {ctx.world_size} ranks: "
            "raise batch_size or run fewer processes"
        )


def rank_share(batch: Sequence[torch.Tensor], ctx: DistContext) -> list[torch.Tensor]:
    """This rank's share of a global batch: every world-th clip from its rank on (as a
    DistributedSampler deals indices), so the ranks together see exactly the global batch."""
    return [t[ctx.rank :: ctx.world_size] for t in batch]


def rank_seed(seed: int, ctx: DistContext) -> int:
    """A seed of its own for each rank (augmentation draws), derived from the base seed."""
    return derive_seed(seed, 41, ctx.rank)

"""Memory and disk estimates before the work: refuse, with one line, a run that cannot fit.

Every size a user controls (IPC, frames, frame size, batch, the scale of an export) multiplies
into tensors; a request that does not fit in memory would otherwise grow until the operating
system kills the process, or fail deep inside torch. `check_fits` compares an estimate with the
memory available now (the smallest of MemAvailable of /proc/meminfo, the room under a cgroup
limit and under `ulimit -v`; psutil where there is no /proc) and raises `MemoryBudgetError` before anything is allocated.

The estimates are upper-bound sketches (the largest tensors times the copies made of them),
not measurements: they are meant to catch requests that are orders of magnitude too large.
`TSGD_MEMORY_LIMIT_MB` overrides the detected limit (for tests, or to leave room for others).

One estimate covers a whole run (`estimate_run_bytes`): teacher training, distillation and
student training, each checked where it starts and all of them together by `check_run_fits`
before a command trains anything. On a GPU the activations are compared with the GPU's free
memory. `check_disk_fits` compares the size of a large write (a set, the decode cache, a
teacher) with the free space of its disk (`shutil.disk_usage`) before it is written.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

FLOAT_BYTES = 4
# copies of the synthetic set alive at once in distillation: the start, the optimised clips,
# their gradient and two Adam moments (TSGD) or momentum (DM), the result, the saved record
DISTILL_SET_COPIES = 6
# per-clip activations of a ConvNet3D, relative to one clip's pixels times the width: conv
# output, norm, activation and pooling of the first block dominate, and backward keeps them
ACTIVATION_COPIES = 4
# an export holds the upscaled clips, the grid cells, the grid and the encoder's copy
EXPORT_COPIES = 4
# a training step holds the batch, its augmented view (and a mixed partner) and their gradient
TRAIN_BATCH_COPIES = 4
# a relabelling teacher runs without gradients: about two activations of a clip alive at once
INFERENCE_COPIES = 2


class MemoryBudgetError(ValueError):
    """A request whose memory estimate exceeds what is available."""


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


CGROUP_FILES = (  # (limit, usage): cgroup v2, then v1
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _cgroup_room() -> int | None:
    """Memory left under a cgroup limit (containers; v2 or v1), if there is one."""
    for limit_file, used_file in CGROUP_FILES:
        try:
            limit = Path(limit_file).read_text().strip()
            if limit == "max" or int(limit) >= 2**60:  # v1 writes a huge number for none
                return None
            used = int(Path(used_file).read_text().strip())
            return max(int(limit) - used, 0)
        except (OSError, ValueError):
            continue
    return None


def _address_space_room() -> int | None:
    """Address space left under `ulimit -v` (RLIMIT_AS), if one is set."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY or soft < 0:
            return None
        used = 0
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
        return max(soft - used, 0)
    except (ImportError, OSError, ValueError):
        return None


LIMIT_ENV = "TSGD_MEMORY_LIMIT_MB"


def memory_limit_override() -> int | None:
    """Bytes of TSGD_MEMORY_LIMIT_MB (None when unset or empty); MemoryBudgetError, one line,
    for a value that is not a positive number of MiB."""
    text = os.environ.get(LIMIT_ENV, "").strip()
    if not text:
        return None
    try:
        mib = float(text)
    except ValueError:
        mib = math.nan
    if not math.isfinite(mib) or mib <= 0 or mib * 2**20 > 2**63:
        raise MemoryBudgetError(
            f"{LIMIT_ENV}={text!r} must be a positive number of MiB (e.g. {LIMIT_ENV}=4096): "
            "fix it, or unset it to use the memory this machine has"
        )
    return int(mib * 2**20)


def _gpu_free_bytes(device: object) -> int | None:
    """Free memory of a CUDA device (None for the CPU or when it cannot be told)."""
    if device is None or not str(device).startswith("cuda"):
        return None
    try:
        import torch

        return int(torch.cuda.mem_get_info(torch.device(str(device)))[0])
    except (ImportError, RuntimeError, ValueError, AssertionError):
        return None


def available_memory_bytes(device: object = None) -> int | None:
    """Memory this process may still allocate (on a CUDA `device`: that GPU's free memory), or
    None when it cannot be told."""
    override = memory_limit_override()
    if override is not None:
        return override
    gpu = _gpu_free_bytes(device)
    if gpu is not None:
        return gpu
    found = [
        n for n in (_meminfo_available(), _cgroup_room(), _address_space_room()) if n is not None
    ]
    if not found:
        try:
            import psutil  # optional: only where /proc/meminfo does not exist

            found = [int(psutil.virtual_memory().available)]
        except ImportError:
            return None
    return min(found)


def check_fits(estimate: float, what: str, advice: str, device: object = None) -> None:
    """Raise MemoryBudgetError when `estimate` bytes exceed the available memory."""
    limit = available_memory_bytes(device)
    if limit is None or estimate <= limit:
        return
    where = f" on {device}" if _gpu_free_bytes(device) is not None else ""
    raise MemoryBudgetError(
        f"{what} needs about {human_bytes(estimate)} of memory, more than the "
        f"{human_bytes(limit)} available{where}: {advice}"
    )


def clips_bytes(
    num_clips: int, clip_shape: Sequence[int], bytes_per_value: int = FLOAT_BYTES
) -> int:
    """Bytes of `num_clips` clips of shape (C, T, H, W)."""
    return int(num_clips) * math.prod(int(s) for s in clip_shape) * bytes_per_value


def activation_bytes(clip_shape: Sequence[int], width: int, copies: int = ACTIVATION_COPIES) -> int:
    """Activations of one clip in a ConvNet3D of `width` channels (its first block dominates)."""
    _, t, h, w = (int(s) for s in clip_shape)
    return copies * t * h * w * int(width) * FLOAT_BYTES


def estimate_training_bytes(
    batch_size: int,
    num_clips: int,
    clip_shape: Sequence[int],
    width: int,
    teacher_width: int = 0,
) -> int:
    """Peak memory of one training step of a teacher or student: the batch's copies, the
    model's activations and, for soft labels, those of the relabelling teacher."""
    batch = min(int(batch_size), max(int(num_clips), 1))
    total = TRAIN_BATCH_COPIES * clips_bytes(batch, clip_shape)
    total += batch * activation_bytes(clip_shape, width)
    if teacher_width:
        total += batch * activation_bytes(clip_shape, teacher_width, INFERENCE_COPIES)
    return total


def estimate_distill_bytes(
    method: str, ipc: int, num_classes: int, clip_shape: Sequence[int], width: int
) -> int:
    """Peak memory of distilling ipc x num_classes clips (TSGD / SRe2L-style / DM / selection)."""
    n = int(ipc) * int(num_classes)
    total = DISTILL_SET_COPIES * clips_bytes(n, clip_shape)
    per_clip_activations = activation_bytes(clip_shape, width)
    # TSGD / SRe2L optimise one slot (num_classes clips) at a time; DM embeds one class's ipc
    # clips with gradients (twice: augmented copies)
    batch = int(num_classes) if method in ("tsgd", "sre2l") else 2 * int(ipc)
    if method in ("tsgd", "sre2l", "dm"):
        total += batch * per_clip_activations
    return total


def estimate_export_bytes(
    rows: int, cols: int, frames: int, height: int, width: int, scale: int
) -> int:
    """Peak memory of an animated grid of rows x cols cells of clips upscaled `scale` times."""
    cell = (int(height) * int(scale) + 2) * (int(width) * int(scale) + 2) * 3
    return EXPORT_COPIES * int(rows) * int(cols) * int(frames) * cell


def check_distill_fits(
    method: str, ipc: int, num_classes: int, clip_shape: Sequence[int], width: int
) -> None:
    """Refuse a distillation whose synthetic set and optimiser state cannot fit in memory."""
    estimate = estimate_distill_bytes(method, ipc, num_classes, clip_shape, width)
    check_fits(
        estimate,
        f"{method} with IPC {ipc} ({num_classes} classes of clips {tuple(clip_shape)})",
        "lower the IPC (or the frames / frame size)",
    )


def check_export_fits(
    rows: int, cols: int, frames: int, height: int, width: int, scale: int
) -> None:
    """Refuse an animation too large to build in memory."""
    estimate = estimate_export_bytes(rows, cols, frames, height, width, scale)
    check_fits(
        estimate,
        f"an animation of {rows}x{cols} clips of {height}x{width} at scale {scale}",
        "lower the scale (or export fewer clips)",
    )


def check_decode_fits(num_videos: int, frames: int, size: Sequence[int]) -> None:
    """Refuse decoding a dataset whose clips (uint8 and float32 copies) cannot fit in memory."""
    estimate = clips_bytes(num_videos, (3, frames, *size), 1 + FLOAT_BYTES)
    check_fits(
        estimate,
        f"{num_videos} videos of {frames} frames at {size[0]}x{size[1]}",
        "lower the frames or the frame size, or load fewer videos (max per class, classes)",
    )


def widest_conv(model: object) -> int:
    """The most output channels of any convolution of a torch module (sizes its activations)."""
    return max((getattr(m, "out_channels", 0) for m in model.modules()), default=0) or 1


def check_training_fits(
    stage: str,
    batch_size: int,
    num_clips: int,
    clip_shape: Sequence[int],
    width: int,
    teacher_width: int = 0,
    device: object = None,
) -> None:
    """Refuse a teacher or student training whose batch cannot fit (on `device`)."""
    estimate = estimate_training_bytes(batch_size, num_clips, clip_shape, width, teacher_width)
    batch = min(int(batch_size), max(int(num_clips), 1))
    check_fits(
        estimate,
        f"{stage} (batches of {batch} clips {tuple(clip_shape)}, width {width})",
        "lower the frames or the frame size, or use a smaller profile (smaller batches and "
        "networks)",
        device,
    )


def estimate_run_bytes(stages: dict[str, int]) -> tuple[str, int]:
    """The stage of a run that needs the most memory, and how much: the stages run one after
    another, so the run's peak is theirs."""
    stage = max(stages, key=lambda name: stages[name])
    return stage, stages[stage]


def check_run_fits(stages: dict[str, int], advice: str, device: object = None) -> None:
    """Before anything is trained: refuse a run whose largest stage (teacher training,
    distillation, student training) cannot fit."""
    stage, estimate = estimate_run_bytes(stages)
    check_fits(estimate, stage, advice, device)


# ----------------------------------------------------------------------------- disk


class DiskSpaceError(OSError):
    """A write larger than the free space of its disk (an OSError with errno ENOSPC)."""


def free_disk_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the disk that holds `path` (or its nearest existing parent)."""
    folder = os.path.abspath(os.fspath(path))
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return None


# room left beside a write: file-system metadata, the temporary copy's rename, the JSON beside it
DISK_MARGIN_BYTES = 1 << 20


def check_disk_fits(path: str | os.PathLike[str], estimate: float, what: str) -> None:
    """Raise DiskSpaceError (exit code 1 in the CLI: a limit of the machine) before writing
    `estimate` bytes to `path` when its disk has less free space."""
    free = free_disk_bytes(path)
    if free is None or estimate + DISK_MARGIN_BYTES <= free:
        return
    raise DiskSpaceError(
        errno.ENOSPC,
        f"{what} needs about {human_bytes(estimate)} and {human_bytes(DISK_MARGIN_BYTES)} to "
        f"spare, the disk has {human_bytes(free)} free",
        os.fspath(path),
    )

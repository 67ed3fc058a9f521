"""Memory estimates before allocation: refuse, with one line, a run that cannot fit.

Every size a user controls (IPC, frames, frame size, batch, the scale of an export) multiplies
into tensors; a request that does not fit in memory would otherwise grow until the operating
system kills the process, or fail deep inside torch. `check_fits` compares an estimate with the
memory available now (the smallest of MemAvailable of /proc/meminfo, the room under a cgroup
limit and under `ulimit -v`; psutil where there is no /proc) and raises `MemoryBudgetError` before anything is allocated.

The estimates are upper-bound sketches (the largest tensors times the copies made of them),
not measurements: they are meant to catch requests that are orders of magnitude too large.
`TSGD_MEMORY_LIMIT_MB` overrides the detected limit (for tests, or to leave room for others).
"""

from __future__ import annotations

import math
import os
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


def available_memory_bytes() -> int | None:
    """Memory this process may still allocate, or None when it cannot be told."""
    override = memory_limit_override()
    if override is not None:
        return override
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


def check_fits(estimate: float, what: str, advice: str) -> None:
    """Raise MemoryBudgetError when `estimate` bytes exceed the available memory."""
    limit = available_memory_bytes()
    if limit is None or estimate <= limit:
        return
    raise MemoryBudgetError(
        f"{what} needs about {human_bytes(estimate)} of memory, more than the "
        f"{human_bytes(limit)} available: {advice}"
    )


def clips_bytes(
    num_clips: int, clip_shape: Sequence[int], bytes_per_value: int = FLOAT_BYTES
) -> int:
    """Bytes of `num_clips` clips of shape (C, T, H, W)."""
    return int(num_clips) * math.prod(int(s) for s in clip_shape) * bytes_per_value


def estimate_distill_bytes(
    method: str, ipc: int, num_classes: int, clip_shape: Sequence[int], width: int
) -> int:
    """Peak memory of distilling ipc x num_classes clips (TSGD / SRe2L-style / DM / selection)."""
    n = int(ipc) * int(num_classes)
    total = DISTILL_SET_COPIES * clips_bytes(n, clip_shape)
    c, t, h, w = (int(s) for s in clip_shape)
    per_clip_activations = ACTIVATION_COPIES * t * h * w * int(width) * FLOAT_BYTES
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

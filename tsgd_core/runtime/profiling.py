"""Wall time and peak memory of a block of work, measured the same way for every method.

On CUDA the peak is torch's own allocator peak. On the CPU torch has no allocator counter, so a
background thread samples the process's resident memory every few milliseconds and reports
the peak above the level at entry: what the work added, not what the process already held.
Freed heap memory that the C allocator still holds would hide new allocations from that
count, so it is handed back to the OS (glibc's malloc_trim) before the baseline is read.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def release_free_heap() -> None:
    """Return freed heap pages to the OS where glibc allows it (a no-op elsewhere)."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def resident_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


@dataclass
class Usage:
    wall_s: float = 0.0
    peak_mb: float = 0.0
    device: str = "cpu"


class _RssSampler(threading.Thread):
    def __init__(self, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak = resident_bytes()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, resident_bytes())
            self._stop_event.wait(self.interval_s)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, resident_bytes())


@contextmanager
def measure(device: str | torch.device = "cpu", interval_s: float = 0.005) -> Iterator[Usage]:
    """`with measure(dev) as u: ...` fills u.wall_s and u.peak_mb (peak added memory, MiB)."""
    device = torch.device(device)
    usage = Usage(device=str(device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        release_free_heap()
        base = resident_bytes()
        sampler = _RssSampler(interval_s)
        sampler.start()
    start = time.perf_counter()
    try:
        yield usage
    finally:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - base
        else:
            peak = sampler.stop() - base
        usage.wall_s = time.perf_counter() - start
        usage.peak_mb = max(0.0, peak / 2**20)

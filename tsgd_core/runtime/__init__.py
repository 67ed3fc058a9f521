"""The bottom floor: seeds and devices, which every layer needs. Imports nothing from tsgd_core.

The room also holds what every stage shares about the machine: `distributed` (ranks of a
torchrun job), `budget` (memory checks before the work) and `profiling` (time and memory);
they import only this module.

* `derive_seed` mixes integer parts (base seed, stage tag, slot, step...) into one seed, so each
  stage and slot draws from a stream of its own and a run is reproducible piece by piece;
* `resolve_device` turns "auto", "cpu" or "cuda[:N]" into a torch device this machine has.
"""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integer parts (base seed, stage tag, slot, step...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def available_devices() -> list[str]:
    """The devices this machine offers torch: cpu, then cuda:0, cuda:1, ... where visible."""
    return ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' takes CUDA when present, else CPU; a device this machine lacks is a clear error
    (ValueError) naming the ones it has."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    have = f"this machine has {', '.join(available_devices())}"
    if device == "cpu":
        return torch.device("cpu")
    kind, _, index = str(device).partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda[:N] ({have})")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} was asked for but no CUDA GPU is visible ({have}): use "
            "device='cpu' or 'auto'"
        )
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} does not exist ({have}): pick one of those")
    return torch.device(device)

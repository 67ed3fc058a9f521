#!/usr/bin/env python
"""Where CPU bfloat16 autocast gets conv3d's weight gradient wrong: the probe behind models.Conv3d.

    python scripts/bf16_conv3d_check.py

For each input shape (batch, channels, frames, height, width) of a 3x3x3 conv with padding 1,
the relative error of the bf16 weight gradient against float32's, and whether models.Conv3d
therefore runs that layer in float32. On torch 2.13.0+cpu (oneDNN 3.12, an AMD EPYC with
AVX512-BF16) 2-frame inputs give errors of 1 to 1e35; bf16 rounding alone gives about 0.004.
The last column counts, of 20 probes, those that passed: a wrong gradient reads uninitialised
memory, so a probe of a failing shape can pass by chance. models.Conv3d therefore never trusts a
shape whose input is shorter than the kernel along some axis, and probes the others 3 times.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tsgd_core.training.models import (  # noqa: E402
    BF16_GRAD_TOLERANCE,
    Conv3d,
    bf16_conv3d_grads_agree,
)
from tsgd_core.training.models import _probe_bf16_conv3d as probe  # noqa: E402

# the default ConvNet3D's three blocks at IPC 1 (10 clips) and at the batch of 32, and others
SHAPES = [
    (10, 3, 8, 16, 16),
    (10, 16, 4, 8, 8),
    (10, 16, 2, 4, 4),
    (32, 16, 2, 4, 4),
    (8, 8, 2, 4, 4),
    (10, 16, 1, 4, 4),
    (10, 16, 3, 4, 4),
    (10, 16, 2, 16, 16),
]


def relative_error(shape: tuple[int, ...]) -> float:
    conv = Conv3d(shape[1], 16, 3, padding=1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    w = conv.weight.detach().clone().requires_grad_(True)
    out = torch.nn.functional.conv3d(x, w, padding=1)
    up = torch.randn(out.shape, generator=g)
    (exact,) = torch.autograd.grad(out, w, up)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = torch.nn.functional.conv3d(x, w, padding=1)
    (approx,) = torch.autograd.grad(low, w, up.bfloat16())
    return float((approx.float() - exact).abs().max() / exact.abs().max())


def main() -> None:
    print(f"torch {torch.__version__}; trusted below a relative error of {BF16_GRAD_TOLERANCE}")
    print("| input shape | bf16 weight-gradient error | models.Conv3d runs it in | probes passed |")
    print("|---|---|---|---|")
    for shape in SHAPES:
        geometry = (shape[1], 16, (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 1)
        where = "bf16" if bf16_conv3d_grads_agree(geometry, shape) else "float32"
        passed = sum(probe(geometry, shape, seed) for seed in range(20))
        print(f"| {shape} | {relative_error(shape):.3g} | {where} | {passed} / 20 |")


if __name__ == "__main__":
    main()

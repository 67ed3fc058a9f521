"""Many students per kernel: the student seeds of one evaluation trained as one stacked model.

`torch.func.stack_module_state` stacks the seeds' weights (and BatchNorm buffers) along a new
first axis and `vmap` runs them as one model, so a step launches each layer's kernel once for
every seed instead of once per seed. Each seed keeps what separate training gives it: its own
initialisation, its own order of the shared relabel plan's batches (so its own views and
labels), its own BatchNorm statistics. AdamW and SGD act element by element and the cosine
schedule is the same for every seed, so one optimiser over the stacked tensors takes each
seed's own step: the seeds end with the weights of separate training, to float tolerance
(tests/test_stacked.py).

It pays where one student's step is too small to fill the device (a GPU: launch-bound). On a
CPU one student already keeps oneDNN's kernels busy, and stacking was slower per student
(`python scripts/bench_students.py`), so `stack="auto"` stacks on CUDA only.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ..data.clips import ClipSet
from ..runtime import resolve_device
from ..runtime.progress import progress_bar
from .relabel import plan_target_loss
from .train import autocast, make_optimizer, resolve_precision, total_steps

STACK_CHOICES = ("auto", "on", "off")


def use_stacking(stack: str, device: torch.device, n_seeds: int) -> bool:
    """Whether to train `n_seeds` students stacked: "on", or "auto" on CUDA with 2+ seeds."""
    if stack not in STACK_CHOICES:
        raise ValueError(f"unknown stack {stack!r}: use {', '.join(STACK_CHOICES)}")
    return n_seeds > 1 and (stack == "on" or (stack == "auto" and device.type == "cuda"))


def stacked_forward(students: Sequence[nn.Module]):
    """(params, buffers, forward) of `students` as one model: forward(params, buffers, x)
    maps x of shape (seeds, batch, ...) to logits (seeds, batch, classes)."""
    params, buffers = torch.func.stack_module_state(list(students))
    skeleton = copy.deepcopy(students[0]).to("meta")

    def one(p: dict, b: dict, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(skeleton, (p, b), (x,))

    return params, buffers, torch.func.vmap(one)


def warm_bf16_probes(model: nn.Module, batch_shape: tuple[int, ...], dev: torch.device) -> None:
    """Run models.Conv3d's bf16 probes for these inputs outside vmap, where nothing random may
    run, on a copy (a training-mode forward would move the model's BatchNorm statistics)."""
    with autocast(dev, "bf16"):
        copy.deepcopy(model).train()(torch.zeros(batch_shape, device=dev))


def unstack_into(students: Sequence[nn.Module], params: dict, buffers: dict) -> None:
    """Copy seed i's slice of the stacked weights and buffers back into students[i]."""
    with torch.no_grad():
        for i, student in enumerate(students):
            state = {name: t[i] for name, t in (params | buffers).items()}
            student.load_state_dict(state)


def train_students_stacked(
    data: ClipSet,
    cfg,
    streams: Sequence[Iterator[tuple[torch.Tensor, torch.Tensor]]],
    seeds: Sequence[int],
    *,
    device: str | torch.device = "auto",
    precision: str | None = None,
    progress: bool = False,
) -> list[nn.Module]:
    """One student per seed (cfg: evaluate.StudentConfig), seed i trained on the (view,
    targets) batches of streams[i], all seeds as one stacked model; see
    evaluate.train_stacked_students for the streams of a relabel plan."""
    dev = resolve_device(device)
    steps = total_steps(len(data), cfg.fit)
    students = [cfg.model.build(data.num_classes, data.clip_shape, seed=s).to(dev) for s in seeds]
    if resolve_precision(precision, dev) == "bf16":
        warm_bf16_probes(students[0], (min(cfg.fit.batch_size, len(data)), *data.clip_shape), dev)
    params, buffers, forward = stacked_forward(students)
    optimizer = make_optimizer(list(params.values()), cfg.fit)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
    bar = progress_bar(range(steps), desc=f"{len(seeds)} stacked students", enabled=progress)
    for step in bar:
        views, targets = zip(*(next(stream) for stream in streams), strict=True)
        with autocast(dev, precision):
            logits = forward(params, buffers, torch.stack(views))
            # the sum of the seeds' own losses: each seed's weights get its own gradient
            loss = sum(
                plan_target_loss(cfg.labels, logits[i], targets[i], cfg.tau)
                for i in range(len(seeds))
            )
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"stacked students: loss became {loss.item()} at step {step}: lower lr"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    unstack_into(students, params, buffers)
    return [student.eval() for student in students]

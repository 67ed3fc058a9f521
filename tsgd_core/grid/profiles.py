"""Profiles: the size of every stage (data, teacher, students, recovery) per named profile,
the resolution ladder's rungs, the tuned settings (`tuned.json`) and the data of a profile."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..data.clips import Splits
from ..data.datasets import (
    data_spec,
)
from ..data.synthetic import make_motion_benchmark
from ..methods.selection import SELECTION_METHODS
from ..training.evaluate import StudentConfig
from ..training.teacher import (
    ModelConfig,
)
from ..training.train import FitConfig

DISTILL_METHODS = ("dm", "sre2l", "tsgd")


METHODS = (*SELECTION_METHODS, "salient", *DISTILL_METHODS)


# Labels shown in tables and figures; "tsgd" runs the whole method (TSGFO + TSGFA).
METHOD_LABELS = {
    "random": "Random",
    "herding": "Herding",
    "kcenter": "K-Center",
    "salient": "Salient windows",
    "dm": "DM",
    "sre2l": "SRe2L-style",
    "tsgd": "TSGD",
}


@dataclass(frozen=True)
class Profile:
    """Sizes of everything: data, teacher, students, distillation budgets."""

    name: str
    data: dict[str, Any]
    teacher_model: ModelConfig
    teacher_fit: FitConfig
    student: StudentConfig
    distill_iterations: int  # recover iterations, the same for SRe2L-style and TSGD
    dm_iterations: int
    dm_batch_real: int  # real clips per class per DM iteration
    distill_lr: float = 0.05  # recover's pixel lr (Adam) where no tuned value exists
    dm_lr: float = 0.3  # DM's pixel lr, chosen on the validation split (the `dm` group)
    dm_net: str = "literature"  # DM's embedding net: "literature" (avg pool, flat head) | "student"
    first_bn: float = 1.0  # weight of the first BN layer in the BN loss (SRe2L: 10)
    full_steps: int = 600  # upper bound: student steps on the whole train split
    seeds: tuple[int, ...] = (0, 1, 2)  # student seeds of every evaluation
    # student seeds of the full-data upper bound, which has no draws: empty means `seeds`
    full_seeds: tuple[int, ...] = ()
    distill_seeds: tuple[int, ...] = (0,)  # draw / distillation seeds of the grid's main cells
    ipcs: tuple[int, ...] = (1, 5, 10)
    # (pixel lr, iterations) of the studies of what recovery does (controls, ablation,
    # sensitivity, convergence, tsgfa, shake); None: what the main table's cells use (tuned)
    study_recover: tuple[float, int] | None = None

    @property
    def upper_bound_seeds(self) -> tuple[int, ...]:
        """The student seeds of the full-data upper bound."""
        return self.full_seeds or self.seeds

    def __hash__(self) -> int:
        # `data` is a dict; a profile's name is unique, so it stands for the profile in caches
        return hash(self.name)


def _student(
    width: int, depth: int, steps: int, batch: int, norm: str = "instance", lr: float = 2e-3
) -> StudentConfig:
    return StudentConfig(
        model=ModelConfig(width=width, depth=depth, norm=norm),
        fit=FitConfig(steps=steps, batch_size=batch, lr=lr, weight_decay=1e-4, optimizer="adamw"),
    )


def teacher_fit_config(epochs: int, batch: int) -> FitConfig:
    return FitConfig(epochs=epochs, batch_size=batch, lr=2e-3, weight_decay=1e-4, optimizer="adamw")


def _data(classes: int, splits: tuple[int, int, int], frames: int, size: int) -> dict[str, Any]:
    """A benchmark's sizes: classes, (train, val, test) clips per class, frames of size x size."""
    train, val, test = splits
    return dict(
        num_classes=classes,
        clips_per_class=train,
        val_per_class=val,
        test_per_class=test,
        frames=frames,
        height=size,
        width=size,
    )


def _profile(
    name: str,
    data: dict[str, Any],
    teacher: tuple[int, int, int, int],
    student: StudentConfig,
    budgets: tuple[int, int, int],
    **rest: Any,
) -> Profile:
    """A profile from its data, teacher (width, depth, epochs, batch), student and
    (recover iterations, DM iterations, DM real clips per class); `rest` sets the other fields."""
    width, depth, epochs, batch = teacher
    distill_iterations, dm_iterations, dm_batch_real = budgets
    return Profile(
        name=name,
        data=data,
        teacher_model=ModelConfig(width=width, depth=depth),
        teacher_fit=teacher_fit_config(epochs=epochs, batch=batch),
        student=student,
        distill_iterations=distill_iterations,
        dm_iterations=dm_iterations,
        dm_batch_real=dm_batch_real,
        **rest,
    )


# One row a profile: name, data (classes, (train, val, test) per class, frames, size), teacher
# (width, depth, epochs, batch), student, (recover iterations, DM iterations, DM real clips).
# fmt: off
PROFILES: dict[str, Profile] = {
    # Unit-test size: seconds for the whole pipeline.
    "smoke": _profile(
        "smoke", _data(4, (10, 3, 4), 8, 16), (8, 2, 4, 16), _student(8, 2, 10, 8), (4, 4, 4),
        full_steps=10, seeds=(0, 1, 2), distill_seeds=(0, 1), ipcs=(1, 2),
    ),
    # `run_all.sh --quick`: the whole grid at pipeline-check sizes, a few minutes on 2 CPU cores.
    "quick": _profile(
        "quick", _data(10, (40, 5, 10), 8, 16), (16, 2, 15, 32), _student(8, 2, 20, 16),
        (10, 10, 8), full_steps=40, seeds=(0, 1), distill_seeds=(0,), ipcs=(1, 5),
    ),
    # The tutorials' own size: 4 motion classes, a teacher that trains in seconds on one CPU
    # core and is well above chance, students that learn within a minute.
    "tutorial": _profile(
        "tutorial", _data(4, (60, 10, 25), 8, 16), (16, 3, 20, 32), _student(16, 3, 150, 16),
        (100, 50, 16), full_steps=300, seeds=(0, 1, 2), distill_seeds=(0,), ipcs=(1, 5),
    ),
    # The reported CPU profile: 10 motion classes, 8 frames of 16x16, budgets chosen on the
    # validation split (the `recover`, `convergence` and `dm` groups of the grid record why).
    # BatchNorm students at lr 5e-3 learn fastest per step on validation, and 600 steps is
    # what the 120-minute budget affords; the whole train split gets 2,400 steps
    # (scripts/recipe_sweep.py; reports/default/budgets/README.md). Every comparison with a
    # start set pairs 5 draws x 3 students (n = 15 per row); the full data, which has no draws,
    # gets 15 student seeds, so that its row has n = 15 too.
    "default": _profile(
        "default", {**_data(10, (300, 50, 250), 8, 16), "event_fraction": (0.5, 0.875)},
        (32, 3, 80, 32), _student(16, 3, 600, 32, norm="batch", lr=5e-3), (400, 200, 32),
        full_steps=2400, seeds=(0, 1, 2), distill_seeds=(0, 1, 2, 3, 4),
        full_seeds=tuple(range(15)),
        # the tuning chose no recovery or lr 3e-5 for the main table (tuned.json), where
        # recovery barely moves a pixel and the studies could not tell their arms apart: they
        # recover as the earlier tuning chose, lr 3e-4 for 100 iterations (= TSGDConfig())
        study_recover=(3e-4, 100),
    ),
}

# Profiles for real datasets (`--dataset`; they also run the benchmark at the same sizes). Real
# clips take their geometry from datasets.PROFILE_CLIPS unless --frames / --size are given; the
# teacher's steps follow the dataset's size (datasets.teacher_steps). Time and memory to expect
# are in README.md ("Real datasets").
# On this machine's CPU: 8 frames of 32x32, a small ConvNet3D, IPC 1 and 5.
PROFILES["real-cpu"] = _profile(
    "real-cpu", _data(10, (100, 20, 40), 8, 32), (32, 3, 20, 32), _student(16, 3, 200, 16),
    (200, 200, 16), ipcs=(1, 5), distill_seeds=(0, 1, 2, 3, 4),
)

# fmt: on


# The resolution ladder (`./run_all.sh --ladder`, tsgd_core/grid/ladder.py): the default benchmark
# and recipe at larger frames or more of them, each rung with a teacher of its own.
LADDER_RUNGS = ((8, 16), (8, 32), (16, 16), (8, 64))  # (frames, pixels); the first is default


def ladder_profile(frames: int, size: int) -> str:
    """The profile name of a rung of the ladder (the default profile at 8 x 16 x 16)."""
    return "default" if (frames, size) == LADDER_RUNGS[0] else f"ladder-{frames}x{size}"


for _frames, _size in LADDER_RUNGS[1:]:
    PROFILES[ladder_profile(_frames, _size)] = replace(
        PROFILES["default"],
        name=ladder_profile(_frames, _size),
        data={**PROFILES["default"].data, "frames": _frames, "height": _size, "width": _size},
    )


# fmt: off
# The literature's sizes, for a GPU: ConvNet3D (width 128, depth 4) on 16x112x112 (MiniUCF,
# HMDB51) or 8x64x64 (Kinetics, SSv2) clips, IPC 1 and 5.
PROFILES["literature"] = _profile(
    "literature", _data(10, (100, 20, 40), 16, 112), (128, 4, 30, 64),
    _student(128, 4, 1000, 64), (1000, 1000, 64), ipcs=(1, 5),
)
# fmt: on


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: use {', '.join(PROFILES)}")
    return PROFILES[name]


# The settings that the tuning stage (`./run_all.sh --tune`, tsgd_core/grid/tuning.py) chose on the
# validation split, per profile, method variant and IPC: the defaults of every spec that leaves
# them unset. Committed, so the default run reads what the last tuning chose.
TUNED_PATH = Path(__file__).parents[1] / "tuned.json"  # package data, next to the rooms


# RunSpec fields that tuning chooses (a spec that sets one explicitly keeps its own value)
TUNED_FIELDS = ("lr", "iterations", "dm_lr", "window", "pack")


@functools.lru_cache(maxsize=1)
def tuned_table(path: Path = TUNED_PATH) -> dict[str, Any]:
    """The committed tuning choices ({} when there are none yet)."""
    try:
        return json.loads(path.read_text()).get("profiles", {})
    except FileNotFoundError:
        return {}


def tuned_settings(profile: str, variant: str, ipc: int) -> dict[str, Any]:
    """What tuning chose for `variant` at `ipc` (an untuned IPC takes the nearest tuned one
    below it, else the smallest); {} where nothing was tuned."""
    by_ipc = tuned_table().get(profile, {}).get(variant, {})
    if not by_ipc:
        return {}
    ipcs = sorted(int(i) for i in by_ipc)
    below = [i for i in ipcs if i <= ipc]
    return dict(by_ipc[str(below[-1] if below else ipcs[0])])


def setting_text(lr: Any, iterations: Any) -> str:
    """A recovery setting as records state it: 'lr 0.0003, 100 iterations' (either part left
    out where it is None); '0 iterations (the start set)' where no step was taken."""
    if iterations is not None and int(iterations) == 0:
        return "0 iterations (the start set)"
    used = [f"lr {float(lr):g}"] if lr is not None else []
    return ", ".join(used + ([f"{int(iterations)} iterations"] if iterations is not None else []))


def per_ipc_text(by_ipc: dict[int, str]) -> str:
    """One text where every IPC has the same, else 'A at IPC 1 and B at IPC 5' (IPCs in order)."""
    if len(set(by_ipc.values())) == 1:
        return next(iter(by_ipc.values()))
    return " and ".join(f"{by_ipc[ipc]} at IPC {ipc}" for ipc in sorted(by_ipc))


def load_data(
    profile: str,
    camera_shake: float = 0.0,
    seed: int = 0,
    *,
    dataset: str = "",
    cache_dir: str | Path = "cache",
) -> Splits:
    """The data of the profile named `profile`: `profile_data` of its Profile."""
    prof = get_profile(profile)
    return profile_data(prof, camera_shake, seed, dataset=dataset, cache_dir=cache_dir)


@functools.lru_cache(maxsize=4)
def profile_data(
    prof: Profile,
    camera_shake: float = 0.0,
    seed: int = 0,
    *,
    dataset: str = "",
    cache_dir: str | Path = "cache",
) -> Splits:
    """The built-in motion benchmark at the profile's size (generated; cached in memory), or the
    real `dataset` (DataSpec text), decoded once into `<cache_dir>/videos/` and read per batch."""
    spec = data_spec(dataset)
    if spec is not None:
        return spec.load(cache_dir, progress=True)
    return make_motion_benchmark(**prof.data, camera_shake=camera_shake, seed=seed)


def scaled_fit(fit_cfg: FitConfig, scale: float) -> FitConfig:
    """The same recipe with `scale` times the steps (at least one)."""
    return replace(fit_cfg, steps=max(1, round(fit_cfg.steps * scale)))

"""Experiments: one `RunSpec` names a cell of the ablation grid; `run` distils (or selects) the
set, evaluates it with the protocol, and returns a flat record for the report.

Everything is cached on disk under `cache_dir`, keyed by the configuration that produced it:
the data (regenerated from its seed, cheap), the teacher, each distilled set and each
evaluation. Rerunning the grid reuses what matches and computes only what is missing, and an
interrupted run loses only the step in flight.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from ..data.artifact import DistilledSet
from ..data.clips import ClipSet, Splits
from ..data.datasets import (
    REAL_TEACHER_RECIPE,
    data_spec,
    warn_about_teacher,
    with_budget,
)
from ..data.storage import config_key, load_json_keyed, save_json_keyed
from ..data.synthetic import make_motion_benchmark
from ..methods.distill import LR_SCHEDULES, TSGDConfig, distill_tsgd, initial_clips
from ..methods.dm import DMConfig, distill_dm
from ..methods.salient import PACKINGS, WINDOW_CHOICES, SalientConfig, select_salient_windows
from ..methods.selection import SELECTION_METHODS, select_subset
from ..runtime import distributed, resolve_device
from ..runtime.profiling import measure
from ..training.augment import TSGFAConfig
from ..training.evaluate import EvalResult, StudentConfig, evaluate_set
from ..training.saliency import SaliencyConfig
from ..training.teacher import (
    ModelConfig,
    TeacherInfo,
    check_teacher_matches,
    load_or_train_teacher,
    teacher_key,
    teacher_warnings,
    training_threads,
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
    distill_seeds: tuple[int, ...] = (0,)  # draw / distillation seeds of the grid's main cells
    ipcs: tuple[int, ...] = (1, 5, 10)


def _student(
    width: int, depth: int, steps: int, batch: int, norm: str = "instance", lr: float = 2e-3
) -> StudentConfig:
    return StudentConfig(
        model=ModelConfig(width=width, depth=depth, norm=norm),
        fit=FitConfig(steps=steps, batch_size=batch, lr=lr, weight_decay=1e-4, optimizer="adamw"),
    )


def _teacher_fit(epochs: int, batch: int) -> FitConfig:
    return FitConfig(epochs=epochs, batch_size=batch, lr=2e-3, weight_decay=1e-4, optimizer="adamw")


PROFILES: dict[str, Profile] = {
    # Unit-test size: seconds for the whole pipeline.
    "smoke": Profile(
        name="smoke",
        data=dict(
            num_classes=4,
            clips_per_class=10,
            val_per_class=3,
            test_per_class=4,
            frames=8,
            height=16,
            width=16,
        ),
        teacher_model=ModelConfig(width=8, depth=2),
        teacher_fit=_teacher_fit(epochs=4, batch=16),
        student=_student(width=8, depth=2, steps=10, batch=8),
        distill_iterations=4,
        dm_iterations=4,
        dm_batch_real=4,
        full_steps=10,
        seeds=(0, 1, 2),
        distill_seeds=(0, 1),
        ipcs=(1, 2),
    ),
    # `run_all.sh --quick`: the whole grid at pipeline-check sizes, a few minutes on 2 CPU cores.
    "quick": Profile(
        name="quick",
        data=dict(
            num_classes=10,
            clips_per_class=40,
            val_per_class=5,
            test_per_class=10,
            frames=8,
            height=16,
            width=16,
        ),
        teacher_model=ModelConfig(width=16, depth=2),
        teacher_fit=_teacher_fit(epochs=15, batch=32),
        student=_student(width=8, depth=2, steps=20, batch=16),
        distill_iterations=10,
        dm_iterations=10,
        dm_batch_real=8,
        full_steps=40,
        seeds=(0, 1),
        distill_seeds=(0,),
        ipcs=(1, 5),
    ),
    # The tutorials' own size: 4 motion classes, a teacher that trains in seconds on one CPU
    # core and is well above chance, students that learn within a minute.
    "tutorial": Profile(
        name="tutorial",
        data=dict(
            num_classes=4,
            clips_per_class=60,
            val_per_class=10,
            test_per_class=25,
            frames=8,
            height=16,
            width=16,
        ),
        teacher_model=ModelConfig(width=16, depth=3),
        teacher_fit=_teacher_fit(epochs=20, batch=32),
        student=_student(width=16, depth=3, steps=150, batch=16),
        distill_iterations=100,
        dm_iterations=50,
        dm_batch_real=16,
        full_steps=300,
        seeds=(0, 1, 2),
        distill_seeds=(0,),
        ipcs=(1, 5),
    ),
    # The reported CPU profile: 10 motion classes, 8 frames of 16x16, budgets chosen on the
    # validation split (the `recover`, `convergence` and `dm` groups of the grid record why).
    "default": Profile(
        name="default",
        data=dict(
            num_classes=10,
            clips_per_class=300,
            val_per_class=50,
            test_per_class=250,
            frames=8,
            height=16,
            width=16,
            event_fraction=(0.5, 0.875),
        ),
        teacher_model=ModelConfig(width=32, depth=3),
        teacher_fit=_teacher_fit(epochs=80, batch=32),
        # BatchNorm students at lr 5e-3 learn fastest per step on validation, and 600 steps is
        # what the 120-minute budget affords; the whole train split gets 2,400 steps
        # (scripts/recipe_sweep.py; reports/default/budgets/README.md)
        student=_student(width=16, depth=3, steps=600, batch=32, norm="batch", lr=5e-3),
        distill_iterations=400,
        dm_iterations=200,
        dm_batch_real=32,
        full_steps=2400,
        # every comparison with a start set pairs 5 draws x 3 students (n = 15 per row)
        seeds=(0, 1, 2),
        distill_seeds=(0, 1, 2, 3, 4),
    ),
}


# Profiles for real datasets (`--dataset`; they also run the benchmark at the same sizes). Real
# clips take their geometry from datasets.PROFILE_CLIPS unless --frames / --size are given; the
# teacher's steps follow the dataset's size (datasets.teacher_steps). Time and memory to expect
# are in README.md ("Real datasets").
# On this machine's CPU: 8 frames of 32x32, a small ConvNet3D, IPC 1 and 5.
PROFILES["real-cpu"] = Profile(
    name="real-cpu",
    data=dict(
        num_classes=10,
        clips_per_class=100,
        val_per_class=20,
        test_per_class=40,
        frames=8,
        height=32,
        width=32,
    ),
    teacher_model=ModelConfig(width=32, depth=3),
    teacher_fit=_teacher_fit(epochs=20, batch=32),
    student=_student(width=16, depth=3, steps=200, batch=16),
    distill_iterations=200,
    dm_iterations=200,
    dm_batch_real=16,
    ipcs=(1, 5),
)
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
# The literature's sizes, for a GPU: ConvNet3D (width 128, depth 4) on 16x112x112 (MiniUCF,
# HMDB51) or 8x64x64 (Kinetics, SSv2) clips, IPC 1 and 5.
PROFILES["literature"] = Profile(
    name="literature",
    data=dict(
        num_classes=10,
        clips_per_class=100,
        val_per_class=20,
        test_per_class=40,
        frames=16,
        height=112,
        width=112,
    ),
    teacher_model=ModelConfig(width=128, depth=4),
    teacher_fit=_teacher_fit(epochs=30, batch=64),
    student=_student(width=128, depth=4, steps=1000, batch=64),
    distill_iterations=1000,
    dm_iterations=1000,
    dm_batch_real=64,
    ipcs=(1, 5),
)


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


# RunSpec fields that change how TSGD / SRe2L-style distil (CLI flags, report variant labels)
DISTILL_SWITCHES = (
    "tsgfo",
    "init",
    "modulation",
    "lowpass",
    "saliency_source",
    "k",
    "alpha",
    "eps",
    "beta",
    "spatial_pool",
    "r_bn",
    "first_bn",
    "iterations",
    "dm_lr",
    "dm_net",
    "lr",
    "lr_schedule",
    "recover_augment",
    "window",
    "pack",
    "train_pixels",
    "label_pixels",
    "distill_seed",
)
# DM's embedding network: DM's ConvNet (average pooling, flat head) or the student's network
DM_NETS = ("literature", "student")
# the parts of TSGFA (student-time saliency-guided augmentation) that a spec can switch on
TSGFA_PARTS = ("crop", "mix", "temporal")
# which clips a student sees, and which the teacher labels: the set's or its start set's
PIXEL_SOURCES = ("set", "start")


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid. Fields that do not apply to a method are ignored by its key."""

    method: str = "tsgd"
    ipc: int = 1
    profile: str = "default"
    camera_shake: float = 0.0
    dataset: str = ""  # a real dataset (DataSpec.to_text()); empty: the built-in benchmark
    # TSGD / SRe2L-style switches (sre2l is tsgd with the filter off and base augmentation)
    tsgfo: bool = True
    tsgfa: bool = True
    init: str = "real"
    modulation: str = "pixel"
    lowpass: bool = False
    saliency_source: str = "synthetic"
    k: int = 1
    alpha: str = "gaussian"
    eps: float = 1e-3
    beta: float = 0.2
    spatial_pool: int = 3
    r_bn: float = 0.01
    first_bn: float | None = None  # None: the profile's
    iterations: int | None = None  # recover / DM iterations; None: the profile's
    dm_lr: float | None = None  # None: tuned, else the profile's
    dm_net: str | None = None  # None: the profile's; see DM_NETS
    # recovery (TSGD / SRe2L-style): None means what tuning chose, else the profile's
    lr: float | None = None  # Adam's pixel lr
    lr_schedule: str = "cosine"  # "cosine" | "constant"
    recover_augment: bool = True  # differentiable augmentation while recovering
    # Salient windows: None means what tuning chose, else "salient" / "none"
    window: str | None = None  # see salient.WINDOW_CHOICES
    pack: str | None = None  # see salient.PACKINGS
    # evaluation
    labels: tuple[str, ...] = ("soft", "hard")
    eval_split: str = "test"  # "val" for hyperparameter search: the test split stays untouched
    distill_seed: int = 0
    student_scale: float = 1.0  # student steps relative to the profile's (convergence study)
    tsgfa_parts: tuple[str, ...] = TSGFA_PARTS
    n_students: int | None = None  # the first n of the profile's student seeds; None: all
    # pixels-or-labels control: the students train on the set's pixels or on its start set's,
    # with soft labels that the teacher gives the set's pixels or the start set's
    train_pixels: str = "set"  # see PIXEL_SOURCES
    label_pixels: str = "set"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: use {', '.join(METHODS)}")
        if self.ipc < 1:
            raise ValueError(f"IPC must be >= 1, got {self.ipc}")
        if self.eval_split not in ("val", "test"):
            raise ValueError(f"eval_split must be val or test, got {self.eval_split!r}")
        if self.iterations is not None and self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        for name in ("first_bn", "dm_lr"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}: use {', '.join(LR_SCHEDULES)}"
            )
        if self.n_students is not None and not 1 <= self.n_students <= len(
            get_profile(self.profile).seeds
        ):
            raise ValueError(
                f"n_students must be 1 to {len(get_profile(self.profile).seeds)} (the profile's "
                f"student seeds), got {self.n_students}"
            )
        for name in ("train_pixels", "label_pixels"):
            if getattr(self, name) not in PIXEL_SOURCES:
                raise ValueError(
                    f"unknown {name} {getattr(self, name)!r}: use {', '.join(PIXEL_SOURCES)}"
                )
        if self.window is not None and self.window not in WINDOW_CHOICES:
            raise ValueError(f"unknown window {self.window!r}: use {', '.join(WINDOW_CHOICES)}")
        if self.pack is not None and self.pack not in PACKINGS:
            raise ValueError(f"unknown pack {self.pack!r}: use {', '.join(PACKINGS)}")
        if not (math.isfinite(self.student_scale) and self.student_scale > 0):
            raise ValueError(f"student_scale must be a finite number > 0, got {self.student_scale}")
        if self.dm_net is not None and self.dm_net not in DM_NETS:
            raise ValueError(f"unknown dm_net {self.dm_net!r}: use {', '.join(DM_NETS)}")
        unknown = sorted(set(self.tsgfa_parts) - set(TSGFA_PARTS))
        if unknown:
            raise ValueError(
                f"unknown TSGFA part(s) {', '.join(unknown)}: use {', '.join(TSGFA_PARTS)}"
            )
        get_profile(self.profile)
        if data_spec(self.dataset) is not None and self.camera_shake:
            raise ValueError(
                "camera_shake applies to the built-in benchmark, not to a real dataset"
            )

    @property
    def variant(self) -> str:
        """The method as tuned and tabled: TSGD's set without the filter is SRe2L-style's."""
        if self.method == "tsgd" and not self.tsgfo:
            return "sre2l"
        if self.method == "tsgd" and not self.tsgfa:
            return "tsgd-notsgfa"
        return self.method

    def tuned(self, name: str) -> Any:
        """This spec's `name` (one of TUNED_FIELDS): its own value, else what tuning chose."""
        own = getattr(self, name)
        if own is not None:
            return own
        return tuned_settings(self.profile, self.variant, self.ipc).get(name)

    @property
    def recover_iterations(self) -> int:
        prof = get_profile(self.profile)
        iterations = self.tuned("iterations")
        if iterations is not None:
            return int(iterations)
        return prof.dm_iterations if self.method == "dm" else prof.distill_iterations

    @property
    def recover_lr(self) -> float:
        lr = self.tuned("lr")
        return get_profile(self.profile).distill_lr if lr is None else float(lr)

    @property
    def salient_window(self) -> str:
        return self.tuned("window") or "salient"

    @property
    def salient_pack(self) -> str:
        # untuned: one whole clip per stored clip; packing in time or tiles lost 15-30 points
        # at IPC 5 in the default profile's tuning (reports/tuning/tuning.csv)
        return self.tuned("pack") or "none"

    @property
    def student_seeds(self) -> tuple[int, ...]:
        seeds = get_profile(self.profile).seeds
        return seeds if self.n_students is None else seeds[: self.n_students]

    @property
    def first_bn_weight(self) -> float:
        return get_profile(self.profile).first_bn if self.first_bn is None else self.first_bn

    @property
    def dm_pixel_lr(self) -> float:
        lr = self.tuned("dm_lr")
        return get_profile(self.profile).dm_lr if lr is None else float(lr)

    @property
    def dm_embedding(self) -> str:
        return get_profile(self.profile).dm_net if self.dm_net is None else self.dm_net

    @property
    def uses_filter(self) -> bool:
        return self.method == "tsgd" and self.tsgfo

    @property
    def eval_augment(self) -> str:
        return "tsgfa" if self.method == "tsgd" and self.tsgfa else "base"

    def data_fields(self) -> dict[str, Any]:
        # the profile's data and teacher, not only its name: resized profiles must not reuse old
        # results; budgets enter the distill and eval keys as resolved values, so changing a
        # profile's default budget keeps the cells that name their budget explicitly
        prof = get_profile(self.profile)
        out = {
            "profile": self.profile,
            "data_key": config_key(prof.data, prof.teacher_model, prof.teacher_fit),
            "camera_shake": self.camera_shake,
        }
        if self.dataset:  # only for real data: the benchmark's keys stay as they were
            out.update(
                dataset=data_spec(self.dataset).identity(), teacher_recipe=REAL_TEACHER_RECIPE
            )
        return out

    def distill_fields(self) -> dict[str, Any]:
        """What changes the distilled set (evaluation-only switches excluded, so sets are shared)."""
        # TSGD with its filter off optimises exactly what SRe2L-style does: share that set
        method = "sre2l" if self.method == "tsgd" and not self.tsgfo else self.method
        out: dict[str, Any] = {
            **self.data_fields(),
            "method": method,
            "ipc": self.ipc,
            "seed": self.distill_seed,
        }
        if self.method in ("sre2l", "tsgd"):
            out.update(
                init=self.init,
                r_bn=self.r_bn,
                filter=self.uses_filter,
                first_bn=self.first_bn_weight,
                iterations=self.recover_iterations,
                lr=self.recover_lr,
            )
            # added only where they differ from what every earlier set used
            if self.lr_schedule != "cosine":
                out["lr_schedule"] = self.lr_schedule
            if not self.recover_augment:
                out["augment"] = False
        if self.method == "salient":
            out.update(window=self.salient_window, pack=self.salient_pack)
        if self.uses_filter:
            out.update(
                modulation=self.modulation,
                lowpass=self.lowpass,
                saliency_source=self.saliency_source,
                k=self.k,
                alpha=self.alpha,
                eps=self.eps,
                beta=self.beta,
                spatial_pool=self.spatial_pool,
            )
        if self.method == "dm":
            out.update(
                init=self.init,
                iterations=self.recover_iterations,
                lr=self.dm_pixel_lr,
                net=self.dm_embedding,
                batch_real=get_profile(self.profile).dm_batch_real,
            )
            if self.dm_embedding == "student":  # DM's own net is always instance-normalised
                out["norm"] = get_profile(self.profile).student.model.norm
        return out

    def eval_fields(self) -> dict[str, Any]:
        out = {
            **self.distill_fields(),
            "augment": self.eval_augment,
            "labels": list(self.labels),
            "split": self.eval_split,
            "seeds": list(self.student_seeds),
            # 2: TSGFA on top of the base augmentation; seeds share one relabel plan
            "protocol": 2,
            # the resolved recipe: a scaled study cell shares its key with the profile's own
            # cell when the steps agree
            "student": asdict(self.student_recipe()),
        }
        if self.eval_augment == "tsgfa":
            out["tsgfa_saliency"] = asdict(self.saliency())
            out["tsgfa_parts"] = sorted(self.tsgfa_parts)
        if (self.train_pixels, self.label_pixels) != ("set", "set"):
            out["pixels"] = [self.train_pixels, self.label_pixels]
        return out

    def distill_key(self) -> str:
        return config_key("distill", self.distill_fields())

    def eval_key(self) -> str:
        return config_key("eval", self.eval_fields())

    def name(self) -> str:
        """A readable, unique-enough name for folders and figure titles."""
        parts = [self.method, f"ipc{self.ipc}"]
        if self.camera_shake:
            parts.append(f"shake{self.camera_shake:g}")
        if self.method == "tsgd":
            parts += [] if self.tsgfo else ["noTSGFO"]
            parts += [] if self.tsgfa else ["noTSGFA"]
        if self.method in ("tsgd", "sre2l", "dm") and self.init != "real":
            parts.append(f"init-{self.init}")
        defaults = RunSpec()
        for f in (
            "modulation",
            "lowpass",
            "saliency_source",
            "k",
            "alpha",
            "eps",
            "beta",
            "spatial_pool",
            "r_bn",
        ):
            if self.uses_filter and getattr(self, f) != getattr(defaults, f):
                parts.append(f"{f}-{getattr(self, f)}")
        for f in ("first_bn", "iterations", "dm_lr", "dm_net", "lr", "window", "pack"):
            if getattr(self, f) is not None:
                parts.append(f"{f}-{getattr(self, f)}")
        if self.lr_schedule != "cosine":
            parts.append(f"schedule-{self.lr_schedule}")
        if not self.recover_augment:
            parts.append("noaug")
        if (self.train_pixels, self.label_pixels) != ("set", "set"):
            parts.append(f"pixels-{self.train_pixels}-labels-{self.label_pixels}")
        if self.n_students is not None:
            parts.append(f"students{self.n_students}")
        if self.eval_augment == "tsgfa" and tuple(self.tsgfa_parts) != TSGFA_PARTS:
            parts.append("tsgfa-" + ("+".join(self.tsgfa_parts) or "none"))
        if self.student_scale != 1.0:
            parts.append(f"steps-x{self.student_scale:g}")
        if self.eval_split != "test":
            parts.append(self.eval_split)
        if self.distill_seed:
            parts.append(f"dseed{self.distill_seed}")
        return "_".join(parts) + f"_{self.eval_key()[:6]}"

    def student_recipe(self) -> StudentConfig:
        """The profile's student recipe with this spec's steps (labels and augmentation aside)."""
        base = get_profile(self.profile).student
        return replace(base, fit=scaled_fit(base.fit, self.student_scale))

    def saliency(self) -> SaliencyConfig:
        return SaliencyConfig(
            k=self.k, alpha=self.alpha, eps=self.eps, beta=self.beta, spatial_pool=self.spatial_pool
        )


def spec_from_params(**params: Any) -> RunSpec:
    """A RunSpec from notebook/CLI parameters: unknown names are a clear error, lists become tuples."""
    known = {f.name for f in fields(RunSpec)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"unknown run parameter(s) {', '.join(unknown)}: known are {', '.join(sorted(known))}"
        )
    return RunSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


# ----------------------------------------------------------------------------- data and teacher


@functools.lru_cache(maxsize=4)
def load_data(
    profile: str,
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
    return make_motion_benchmark(**get_profile(profile).data, camera_shake=camera_shake, seed=seed)


_CHECKED_TEACHERS: set[str] = set()


def teacher_recipe(
    profile: str, splits: Splits, dataset: str
) -> tuple[ModelConfig, FitConfig, bool]:
    """The profile's teacher model, fit and class balancing for these splits: on real data the
    budget follows the dataset's size and the loss is class-balanced."""
    prof = get_profile(profile)
    if not dataset:
        return prof.teacher_model, prof.teacher_fit, False
    return prof.teacher_model, with_budget(prof.teacher_fit, len(splits.train)), True


def expected_teacher_key(
    profile: str,
    camera_shake: float = 0.0,
    *,
    dataset: str = "",
    cache_dir: str | Path = "cache",
    device: str = "auto",
) -> str:
    """The key of the teacher `get_teacher` would load (or train) here, without training it."""
    splits = load_data(profile, camera_shake, dataset=dataset, cache_dir=cache_dir)
    model_cfg, fit_cfg, balanced = teacher_recipe(profile, splits, dataset)
    threads = training_threads(resolve_device(device))
    return teacher_key(splits, model_cfg, fit_cfg, True, balanced, threads)


def get_teacher(
    profile: str,
    camera_shake: float = 0.0,
    *,
    dataset: str = "",
    cache_dir: str | Path = "cache",
    device: str = "auto",
    progress: bool = True,
) -> tuple[torch.nn.Module, TeacherInfo]:
    """The profile's teacher for the benchmark or a real dataset (trained once, then cached).

    On real data the budget follows the dataset's size (steps, not epochs), the loss is
    class-balanced, and a weak teacher or flat soft labels are warned about.
    """
    prof = get_profile(profile)
    splits = load_data(profile, camera_shake, dataset=dataset, cache_dir=cache_dir)
    model_cfg, fit_cfg, balanced = teacher_recipe(profile, splits, dataset)
    teacher, info = load_or_train_teacher(
        splits,
        model_cfg,
        fit_cfg,
        balanced=balanced,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
    )
    if not dataset:
        return teacher, info
    if info.key not in _CHECKED_TEACHERS:  # once per process: it costs a pass over held-out clips
        _CHECKED_TEACHERS.add(info.key)
        held_out = splits.val if len(splits.val) else splits.test
        warn_about_teacher(
            teacher_warnings(teacher, held_out, prof.student.tau, profile=profile, device=device)
        )
    return teacher, info


# ----------------------------------------------------------------------------- distill and evaluate


def distilled_path(spec: RunSpec, teacher_key: str, cache_dir: str | Path) -> Path:
    """Where the set of `spec` made with (or relabeled by) teacher `teacher_key` is cached: the
    teacher's key, not its recipe, since one recipe trained with another CPU thread count is
    another teacher."""
    key = config_key(spec.distill_key(), teacher_key)
    return Path(cache_dir) / "distilled" / f"{key}.tsgd.pt"


def tsgd_config(spec: RunSpec, prof: Profile) -> TSGDConfig:
    return TSGDConfig(
        ipc=spec.ipc,
        iterations=spec.recover_iterations,
        lr=spec.recover_lr,
        lr_schedule=spec.lr_schedule,
        augment=spec.recover_augment,
        r_bn=spec.r_bn,
        first_bn=spec.first_bn_weight,
        init=spec.init,
        filter=spec.uses_filter,
        saliency=spec.saliency(),
        modulation=spec.modulation,
        lowpass=spec.lowpass,
        saliency_source=spec.saliency_source,
        seed=spec.distill_seed,
    )


def make_distilled(
    spec: RunSpec, *, cache_dir: str | Path = "cache", device: str = "auto", progress: bool = True
) -> DistilledSet:
    """The distilled (or selected) set of `spec`, made once and then loaded from the cache."""
    from ..data.artifact import load_cached_distilled, save_cached_distilled

    splits = load_data(spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir)
    teacher, info = get_teacher(
        spec.profile,
        spec.camera_shake,
        dataset=spec.dataset,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
    )
    path = distilled_path(spec, info.key, cache_dir)
    cached = load_cached_distilled(path)  # None when missing or damaged (then rebuilt)
    if distributed.agree(cached is not None):  # under torchrun: all ranks load, or all make it
        return cached
    prof = get_profile(spec.profile)
    dev = resolve_device(device)
    with measure(dev) as usage:
        if spec.method in SELECTION_METHODS:
            ds = select_subset(
                spec.method,
                splits.train,
                spec.ipc,
                teacher=teacher,
                seed=spec.distill_seed,
                device=device,
            )
        elif spec.method == "salient":
            cfg = SalientConfig(
                ipc=spec.ipc,
                window=spec.salient_window,
                pack=spec.salient_pack,
                saliency=spec.saliency(),
                seed=spec.distill_seed,
            )
            ds = select_salient_windows(
                splits.train, spec.ipc, teacher=teacher, cfg=cfg, device=device
            )
        elif spec.method == "dm":
            student = prof.student.model
            # DM's ConvNet (instance norm, as in DM) or the student's network as it is
            net = (
                {"pooling": student.pooling, "head": student.head, "norm": student.norm}
                if spec.dm_embedding == "student"
                else {"norm": "instance"}
            )
            cfg = DMConfig(
                ipc=spec.ipc,
                iterations=spec.recover_iterations,
                lr=spec.dm_pixel_lr,
                batch_real=prof.dm_batch_real,
                model=student.name,
                width=student.width,
                depth=student.depth,
                init=spec.init,
                seed=spec.distill_seed,
                **net,
            )
            ds = distill_dm(splits.train, cfg, device=dev, progress=progress)
        else:
            ds = distill_tsgd(
                teacher, splits.train, tsgd_config(spec, prof), device=dev, progress=progress
            )
    ds.teacher_key = info.key
    ds.config = {
        **ds.config,
        "spec": asdict(spec),
        "distill_wall_s": usage.wall_s,
        "distill_peak_mb": usage.peak_mb,
        **pixel_change(ds.videos, start_set(spec, splits.train)),
    }
    if distributed.is_main():  # rank 0 writes the one artifact
        save_cached_distilled(ds, path)
    return ds


def start_set(spec: RunSpec, train: ClipSet) -> torch.Tensor | None:
    """The real clips an optimised set starts from (class-major, as the set); None for a
    selection (it is its own start) or a set started from noise."""
    if spec.method in (*SELECTION_METHODS, "salient") or spec.init != "real":
        return None
    start, _ = initial_clips(train, spec.ipc, "real", spec.distill_seed)
    return start.reshape(-1, *train.clip_shape)


def pixel_change(videos: torch.Tensor, start: torch.Tensor | None) -> dict[str, float | None]:
    """How far the optimisation moved the pixels, against the clips' own motion signal:
    mean |set - start| and mean |x_{t+1} - x_t| of the start clips (their ratio: > 1 means
    the update is larger than the motion the classes are made of)."""
    if start is None:
        return {"pixel_change": None, "motion_signal": None, "change_over_motion": None}
    change = float((videos.float() - start.float()).abs().mean())
    motion = float((start[:, :, 1:] - start[:, :, :-1]).float().abs().mean())
    return {
        "pixel_change": change,
        "motion_signal": motion,
        "change_over_motion": change / motion if motion > 0 else None,
    }


def scaled_fit(fit_cfg: FitConfig, scale: float) -> FitConfig:
    """The same recipe with `scale` times the steps (at least one)."""
    return replace(fit_cfg, steps=max(1, round(fit_cfg.steps * scale)))


def student_config(spec: RunSpec, labels: str) -> StudentConfig:
    default = TSGFAConfig()
    tsgfa = TSGFAConfig(
        saliency=spec.saliency(),
        **{
            f"p_{part}": getattr(default, f"p_{part}") if part in spec.tsgfa_parts else 0.0
            for part in TSGFA_PARTS
        },
    )
    return replace(spec.student_recipe(), labels=labels, augment=spec.eval_augment, tsgfa=tsgfa)


def evaluate_distilled(
    spec: RunSpec,
    ds: DistilledSet,
    *,
    cache_dir: str | Path = "cache",
    device: str = "auto",
    progress: bool = True,
) -> dict[str, EvalResult]:
    """Protocol evaluation of `ds` under each label mode of `spec`, relabeled by the teacher that made it."""
    splits = load_data(spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir)
    teacher, info = get_teacher(
        spec.profile,
        spec.camera_shake,
        dataset=spec.dataset,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
    )
    if ds.teacher_key is not None and ds.teacher_key != info.key:
        raise ValueError(
            f"the set was distilled with teacher {ds.teacher_key}, the cached teacher for profile "
            f"{spec.profile!r} is {info.key}: evaluate it with the cache dir that holds teacher "
            f"{ds.teacher_key}, or distil the set again"
        )
    check_teacher_matches(info, ds.to_clipset())
    target = splits.val if spec.eval_split == "val" else splits.test
    clips = {"set": ds.to_clipset()}
    if "start" in (spec.train_pixels, spec.label_pixels):
        start = start_set(spec, splits.train)
        if start is None:
            raise ValueError(
                f"{spec.method} with init {spec.init!r} has no real start set to swap pixels "
                "or labels with: use train_pixels='set' and label_pixels='set'"
            )
        clips["start"] = ClipSet(start, ds.labels.clone(), list(ds.class_names))
    return {
        labels: evaluate_set(
            clips[spec.train_pixels],
            target,
            student_config(spec, labels),
            teacher=teacher,
            seeds=spec.student_seeds,
            device=device,
            progress=progress,
            label_data=None if spec.label_pixels == spec.train_pixels else clips[spec.label_pixels],
        )
        for labels in spec.labels
    }


def evaluate_spec(
    spec: RunSpec,
    ds: DistilledSet,
    *,
    cache_dir: str | Path = "cache",
    device: str = "auto",
    progress: bool = True,
) -> dict[str, EvalResult]:
    """`evaluate_distilled`, cached under the spec's evaluation key and the contents of `ds`."""
    path, key = eval_cache(spec, ds, cache_dir)
    cached = load_json_keyed(path, key, eval_results_from_json)
    if distributed.agree(cached is not None):
        return cached
    results = evaluate_distilled(spec, ds, cache_dir=cache_dir, device=device, progress=progress)
    if distributed.is_main():
        save_json_keyed({k: asdict(v) for k, v in results.items()}, path, key)
    return results


def eval_cache(spec: RunSpec, ds: DistilledSet, cache_dir: str | Path) -> tuple[Path, str]:
    """Where the evaluation of `ds` under `spec` is cached, and its key (a rebuilt set, with
    other contents, is evaluated again)."""
    from ..data.artifact import content_digest

    key = config_key(spec.eval_key(), content_digest(ds))
    return Path(cache_dir) / "evals" / f"{key}.json", key


def cached_record(
    spec: RunSpec, *, cache_dir: str | Path = "cache", device: str = "auto"
) -> dict[str, Any] | None:
    """The record of `spec` when its set and its evaluation are both in the cache, else None
    (nothing is trained or distilled)."""
    from ..data.artifact import load_cached_distilled

    key = expected_teacher_key(
        spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir, device=device
    )
    ds = load_cached_distilled(distilled_path(spec, key, cache_dir))
    if ds is None:
        return None
    path, key = eval_cache(spec, ds, cache_dir)
    results = load_json_keyed(path, key, eval_results_from_json)
    return None if results is None else record(spec, ds, results)


def eval_results_from_json(value: Any) -> dict[str, EvalResult]:
    """Cached evaluation results; TypeError / ValueError / AttributeError when malformed."""
    results = {str(k): EvalResult(**v) for k, v in value.items()}
    for res in results.values():
        _ = res.mean, sum(res.wall_s), max(res.peak_mb)  # fail now on malformed values
    return results


def full_data_results(
    profile: str,
    camera_shake: float = 0.0,
    *,
    dataset: str = "",
    student_scale: float = 1.0,
    split: str = "test",
    cache_dir: str | Path = "cache",
    device: str = "auto",
    progress: bool = True,
) -> dict[str, EvalResult]:
    """Upper bound: students trained on the whole real train split (profile's full_steps)."""
    prof = get_profile(profile)
    splits = load_data(profile, camera_shake, dataset=dataset, cache_dir=cache_dir)
    teacher, info = get_teacher(
        profile,
        camera_shake,
        dataset=dataset,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
    )
    # the data, the teacher (its key: one recipe on another CPU thread count is another
    # teacher) and the student recipe; 2: the evaluation protocol's version
    what = (
        prof.data,
        info.key,
        prof.student,
        prof.full_steps,
        prof.seeds,
        camera_shake,
        student_scale,
        split,
        2,
    )
    what += (data_spec(dataset).identity(),) if dataset else ()
    key = "full_" + config_key(*what)
    path = Path(cache_dir) / "evals" / f"{key}.json"
    cached = load_json_keyed(path, key, eval_results_from_json)
    if distributed.agree(cached is not None):
        return cached
    target = splits.val if split == "val" else splits.test
    results = {}
    for labels in ("soft", "hard"):
        fit_cfg = replace(prof.student.fit, steps=prof.full_steps)
        cfg = replace(prof.student, labels=labels, fit=scaled_fit(fit_cfg, student_scale))
        results[labels] = evaluate_set(
            splits.train,
            target,
            cfg,
            teacher=teacher,
            seeds=prof.seeds,
            device=device,
            progress=progress,
        )
    if distributed.is_main():
        save_json_keyed({k: asdict(v) for k, v in results.items()}, path, key)
    return results


def record(spec: RunSpec, ds: DistilledSet, results: dict[str, EvalResult]) -> dict[str, Any]:
    """One flat row for the report: the spec, accuracy per label mode, time and memory."""
    row: dict[str, Any] = {
        **asdict(spec),
        "labels": ",".join(spec.labels),
        "name": spec.name(),
        "method_label": METHOD_LABELS[spec.method]
        + ("" if spec.method != "tsgd" or spec.tsgfa else " w/o TSGFA"),
        "distill_wall_s": ds.config.get("distill_wall_s"),
        "distill_peak_mb": ds.config.get("distill_peak_mb"),
        "student_seeds": list(spec.student_seeds),
        "distill_final_loss": (ds.history.get("loss") or [None])[-1],
        # what the run used where the spec left it to tuning or the profile
        **resolved_settings(spec),
        **{k: ds.config.get(k) for k in ("pixel_change", "motion_signal", "change_over_motion")},
    }
    for labels, res in results.items():
        row[f"acc_{labels}_mean"] = res.mean
        row[f"acc_{labels}_std"] = res.std
        row[f"acc_{labels}_seeds"] = res.accs
        row[f"eval_{labels}_wall_s"] = sum(res.wall_s)
        row[f"eval_{labels}_peak_mb"] = max(res.peak_mb)
    return row


def resolved_settings(spec: RunSpec) -> dict[str, Any]:
    """The recovery settings a run used (None where they do not apply to its method)."""
    recovers = spec.method in ("sre2l", "tsgd")
    optimises = recovers or spec.method == "dm"
    return {
        "lr_used": spec.recover_lr if recovers else spec.dm_pixel_lr if optimises else None,
        "iterations_used": spec.recover_iterations if optimises else None,
        "r_bn_used": spec.r_bn if recovers else None,
        "first_bn_used": spec.first_bn_weight if recovers else None,
        "window_used": spec.salient_window if spec.method == "salient" else None,
        "pack_used": spec.salient_pack if spec.method == "salient" else None,
    }


def run(
    spec: RunSpec, *, cache_dir: str | Path = "cache", device: str = "auto", progress: bool = True
) -> tuple[DistilledSet, dict[str, Any]]:
    """Distil (or select) and evaluate one cell of the grid; both steps cached."""
    ds = make_distilled(spec, cache_dir=cache_dir, device=device, progress=progress)
    results = evaluate_spec(spec, ds, cache_dir=cache_dir, device=device, progress=progress)
    return ds, record(spec, ds, results)


# ----------------------------------------------------------------------------- the grid


GROUPS = (
    "main",
    "controls",
    "ablation",
    "sensitivity",
    "shake",
    "recover",
    "convergence",
    "tsgfa",
    "dm",
)
# what `./run_all.sh` runs unless --groups says otherwise: camera shake needs a teacher of its
# own (a quarter of the budget), so it is asked for by name (--groups shake); the recover
# budget and DM's lr are chosen by the tuning stage (./run_all.sh --tune), whose report
# supersedes the old `recover` and `dm` studies (still there by name)
DEFAULT_GROUPS = tuple(g for g in GROUPS if g not in ("shake", "recover", "dm"))


@dataclass
class Grid:
    """Groups of specs that make the report.

    Test split: `main` (every method at every IPC, over the profile's distillation seeds),
    `controls` (pixels or labels: where a recovered set's accuracy comes from), `ablation`
    (TSGD's parts) and `shake` (camera motion). Validation split, where budgets and
    settings are chosen: `recover` (iterations to the plateau), `convergence` (student steps),
    `dm` (DM's pixel lr), `tsgfa` (TSGFA's parts) and `sensitivity` (the filter's parameters).
    """

    main: list[RunSpec] = field(default_factory=list)
    controls: list[RunSpec] = field(default_factory=list)
    ablation: list[RunSpec] = field(default_factory=list)
    sensitivity: list[RunSpec] = field(default_factory=list)
    shake: list[RunSpec] = field(default_factory=list)
    recover: list[RunSpec] = field(default_factory=list)
    convergence: list[RunSpec] = field(default_factory=list)
    tsgfa: list[RunSpec] = field(default_factory=list)
    dm: list[RunSpec] = field(default_factory=list)

    def groups(self) -> dict[str, list[RunSpec]]:
        return {name: getattr(self, name) for name in GROUPS}


# Camera shake of the shake group (std of the per-frame offset, px of a 32-px frame): at 0.5
# the saliency maps barely change; at 2 raw frame differences fire over the whole background.
DEFAULT_SHAKE = 2.0
# Settings tried on the validation split (multiples of the profile's budget where a budget)
RECOVER_SCALES = (0.0, 0.25, 0.5, 1.0, 2.0)  # 0: the start set itself, the curve's origin
STUDENT_SCALES = (1.0, 2.0)  # does doubling the student's steps still move the numbers?
DM_LRS = (0.1, 1.0)


def _per_seed(spec: RunSpec, seeds: tuple[int, ...]) -> list[RunSpec]:
    return [replace(spec, distill_seed=s) for s in seeds]


# Selections that need the teacher's features for every clip, and DM, skip the largest IPC when
# a profile has more than two: it costs the most and their ranking is settled below it.
SKIP_LARGEST = ("herding", "kcenter", "dm")
# Where a recovered set's accuracy comes from (`controls`): its pixels with the soft labels of
# its start pixels, the reverse, and recovery without augmentation.
CONTROLS = (
    {"train_pixels": "set", "label_pixels": "start"},
    {"train_pixels": "start", "label_pixels": "set"},
    {"recover_augment": False},
)


def build_grid(profile: str = "default", shake: float = DEFAULT_SHAKE) -> Grid:
    """The experiments of the report, as specs (what run_all.sh executes).

    Every main-table method runs over every draw of the profile with both label modes, so
    each row pools draws x student seeds and every method pairs with its own start set
    (Random, the same draw)."""
    prof = get_profile(profile)
    seeds = prof.distill_seeds
    mid = prof.ipcs[min(1, len(prof.ipcs) - 1)]  # ablations and studies at the middle IPC
    grid = Grid()
    for ipc in prof.ipcs:
        for method in METHODS:
            if method in SKIP_LARGEST and ipc == max(prof.ipcs) and len(prof.ipcs) > 2:
                continue
            grid.main += _per_seed(RunSpec(method=method, ipc=ipc, profile=profile), seeds)
        grid.main += _per_seed(RunSpec(method="tsgd", ipc=ipc, profile=profile, tsgfa=False), seeds)
    soft = RunSpec(method="tsgd", ipc=mid, profile=profile, labels=("soft",))
    for method in (replace(soft, method="sre2l"), replace(soft, tsgfa=False)):
        for control in CONTROLS:
            grid.controls += _per_seed(replace(method, **control), seeds)
    # TSGD's parts and the open choices of docs/METHOD.md, on the test split like the main table
    base = RunSpec(method="tsgd", ipc=mid, profile=profile)
    for variant in (
        replace(base, tsgfo=False),  # SRe2L-style set + TSGFA
        replace(base, init="noise", tsgfa=False),
        replace(base, init="noise", tsgfo=False, tsgfa=False),
        replace(base, modulation="frame", tsgfa=False),
        replace(base, lowpass=True, tsgfa=False),
        replace(base, saliency_source="real", tsgfa=False),
    ):
        grid.ablation += _per_seed(replace(variant, labels=("soft",)), seeds[:1])
    # validation split from here on: the test split stays for the reported numbers
    val = replace(base, eval_split="val", tsgfa=False)
    grid.sensitivity += [replace(val, labels=("soft",), k=k) for k in (0, 2)]
    grid.sensitivity += [replace(val, labels=("soft",), beta=b) for b in (0.0, 1.0)]
    grid.sensitivity += [replace(val, labels=("soft",), alpha="uniform")]
    grid.sensitivity += [replace(val, labels=("soft",))]  # the defaults, for reference
    # recover's plateau, with the protocol's soft labels (at IPC 1 every set is near chance)
    study = replace(val, labels=("soft",))
    for method in ("sre2l", "tsgd"):
        for init, scales in (("real", RECOVER_SCALES), ("noise", RECOVER_SCALES[-2:])):
            for scale in scales:
                iterations = max(1, round(prof.distill_iterations * scale)) if scale else 0
                grid.recover.append(replace(study, method=method, init=init, iterations=iterations))
        grid.recover.append(replace(study, method=method, first_bn=10.0))
    for scale in STUDENT_SCALES:
        grid.convergence += [
            replace(val, method=m, student_scale=scale) for m in ("random", "tsgd")
        ]
    parts = [(), ("crop",), ("mix",), ("temporal",), TSGFA_PARTS]
    grid.tsgfa += [replace(val, tsgfa=True, tsgfa_parts=p, labels=("soft",)) for p in parts]
    grid.dm += [
        replace(val, method="dm", dm_lr=lr, dm_net=net, labels=("hard",))
        for net in DM_NETS
        for lr in DM_LRS
    ]
    # camera shake: TSGD vs SRe2L-style when raw frame differences fire everywhere
    for ipc in prof.ipcs[:2]:
        for spec in (
            RunSpec(method="sre2l", ipc=ipc, profile=profile, camera_shake=shake),
            RunSpec(method="tsgd", ipc=ipc, profile=profile, camera_shake=shake, tsgfa=False),
        ):
            grid.shake += _per_seed(spec, seeds[:1])
    return grid


def single_frame_control(
    profile: str,
    camera_shake: float = 0.0,
    *,
    dataset: str = "",
    cache_dir: str | Path = "cache",
    device: str = "auto",
    progress: bool = True,
) -> TeacherInfo:
    """The teacher's recipe on one (middle) frame per clip: near chance if classes live in motion."""
    from ..data.clips import single_frame

    prof = get_profile(profile)
    splits = single_frame(load_data(profile, camera_shake, dataset=dataset, cache_dir=cache_dir))
    fit_cfg = with_budget(prof.teacher_fit, len(splits.train)) if dataset else prof.teacher_fit
    _, info = load_or_train_teacher(
        splits,
        prof.teacher_model,
        fit_cfg,
        balanced=bool(dataset),
        cache_dir=cache_dir,
        device=device,
        progress=progress,
    )
    return info


def build_dataset_grid(profile: str, dataset: str, shake: float = DEFAULT_SHAKE) -> Grid:
    """The report's grid on a real dataset (`RunSpec.dataset` text): every spec of `build_grid`
    with the dataset, without the camera-shake group (a knob of the built-in benchmark)."""
    if not dataset:
        return build_grid(profile, shake)
    out = Grid()
    for name, specs in build_grid(profile, shake).groups().items():
        setattr(
            out,
            name,
            []
            if name == "shake"
            else [replace(s, dataset=dataset, camera_shake=0.0) for s in specs],
        )
    return out

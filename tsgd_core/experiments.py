"""Experiments: one `RunSpec` names a cell of the ablation grid; `run` distils (or selects) the
set, evaluates it with the protocol, and returns a flat record for the report.

Everything is cached on disk under `cache_dir`, keyed by the configuration that produced it:
the data (regenerated from its seed, cheap), the teacher, each distilled set and each
evaluation. Rerunning the grid reuses what matches and computes only what is missing, and an
interrupted run loses only the step in flight.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from .artifact import DistilledSet
from .augment import TSGFAConfig
from .data import Splits
from .datasets import (
    REAL_TEACHER_RECIPE,
    data_spec,
    teacher_warnings,
    warn_about_teacher,
    with_budget,
)
from .distill import TSGDConfig, distill_tsgd
from .dm import DMConfig, distill_dm
from .evaluate import EvalResult, StudentConfig, evaluate_set
from .profiling import measure
from .saliency import SaliencyConfig
from .selection import SELECTION_METHODS, select_subset
from .storage import config_key, load_json, save_json
from .synthetic import make_motion_benchmark
from .teacher import ModelConfig, TeacherInfo, check_teacher_matches, load_or_train_teacher
from .train import FitConfig, resolve_device

DISTILL_METHODS = ("dm", "sre2l", "tsgd")
METHODS = (*SELECTION_METHODS, *DISTILL_METHODS)
# Labels shown in tables and figures; "tsgd" runs the whole method (TSGFO + TSGFA).
METHOD_LABELS = {
    "random": "Random",
    "herding": "Herding",
    "kcenter": "K-Center",
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
    distill_iterations: int
    dm_iterations: int
    dm_batch_real: int
    full_epochs: int = 6  # upper bound: student epochs over the whole train split
    seeds: tuple[int, ...] = (0, 1, 2)
    ipcs: tuple[int, ...] = (1, 5, 10)


def _student(width: int, depth: int, steps: int, batch: int) -> StudentConfig:
    return StudentConfig(
        model=ModelConfig(width=width, depth=depth, norm="instance"),
        fit=FitConfig(steps=steps, batch_size=batch, lr=2e-3, weight_decay=1e-4, optimizer="adamw"),
    )


def _teacher_fit(epochs: int, batch: int) -> FitConfig:
    return FitConfig(epochs=epochs, batch_size=batch, lr=2e-3, weight_decay=1e-4, optimizer="adamw")


PROFILES: dict[str, Profile] = {
    # Unit-test size: seconds for the whole pipeline.
    "smoke": Profile(
        name="smoke",
        data=dict(num_classes=4, clips_per_class=10, val_per_class=3, test_per_class=4, frames=8, height=16, width=16),
        teacher_model=ModelConfig(width=8, depth=2),
        teacher_fit=_teacher_fit(epochs=4, batch=16),
        student=_student(width=8, depth=2, steps=10, batch=8),
        distill_iterations=4,
        dm_iterations=4,
        dm_batch_real=4,
        ipcs=(1, 2),
    ),
    # `run_all.sh --quick`: the full grid, small enough for a few minutes on 2 CPU cores.
    "quick": Profile(
        name="quick",
        data=dict(num_classes=10, clips_per_class=60, val_per_class=5, test_per_class=10, frames=8, height=16, width=16),
        teacher_model=ModelConfig(width=16, depth=2),
        teacher_fit=_teacher_fit(epochs=20, batch=32),
        student=_student(width=8, depth=2, steps=20, batch=16),
        distill_iterations=10,
        dm_iterations=10,
        dm_batch_real=8,
    ),
    # The reported CPU profile: 10 motion classes, 8 frames of 32x32.
    "default": Profile(
        name="default",
        data=dict(num_classes=10, clips_per_class=100, val_per_class=20, test_per_class=40, frames=8, height=32, width=32),
        teacher_model=ModelConfig(width=32, depth=3),
        teacher_fit=_teacher_fit(epochs=20, batch=32),
        student=_student(width=16, depth=3, steps=100, batch=16),
        distill_iterations=100,
        dm_iterations=100,
        dm_batch_real=16,
    ),
}


# Profiles for real datasets (`--dataset`; they also run the benchmark at the same sizes). Real
# clips take their geometry from datasets.PROFILE_CLIPS unless --frames / --size are given; the
# teacher's steps follow the dataset's size (datasets.teacher_steps). Time and memory to expect
# are in README.md ("Real datasets").
# On this machine's CPU: 8 frames of 32x32, a small ConvNet3D, IPC 1 and 5.
PROFILES["real-cpu"] = Profile(
    name="real-cpu",
    data=dict(num_classes=10, clips_per_class=100, val_per_class=20, test_per_class=40, frames=8, height=32, width=32),
    teacher_model=ModelConfig(width=32, depth=3),
    teacher_fit=_teacher_fit(epochs=20, batch=32),
    student=_student(width=16, depth=3, steps=200, batch=16),
    distill_iterations=200,
    dm_iterations=200,
    dm_batch_real=16,
    ipcs=(1, 5),
)
# The literature's sizes, for a GPU: ConvNet3D (width 128, depth 4) on 16x112x112 (MiniUCF,
# HMDB51) or 8x64x64 (Kinetics, SSv2) clips, IPC 1 and 5.
PROFILES["literature"] = Profile(
    name="literature",
    data=dict(num_classes=10, clips_per_class=100, val_per_class=20, test_per_class=40, frames=16, height=112, width=112),
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


# RunSpec fields that change how TSGD / SRe2L-style distil (CLI flags, report variant labels)
DISTILL_SWITCHES = (
    "tsgfo", "init", "modulation", "lowpass", "saliency_source", "k", "alpha", "eps", "beta",
    "spatial_pool", "r_bn", "distill_seed",
)


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
    # evaluation
    labels: tuple[str, ...] = ("soft", "hard")
    eval_split: str = "test"  # "val" for hyperparameter search: the test split stays untouched
    distill_seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: use {', '.join(METHODS)}")
        if self.ipc < 1:
            raise ValueError(f"IPC must be >= 1, got {self.ipc}")
        if self.eval_split not in ("val", "test"):
            raise ValueError(f"eval_split must be val or test, got {self.eval_split!r}")
        get_profile(self.profile)
        if data_spec(self.dataset) is not None and self.camera_shake:
            raise ValueError("camera_shake applies to the built-in benchmark, not to a real dataset")

    @property
    def uses_filter(self) -> bool:
        return self.method == "tsgd" and self.tsgfo

    @property
    def eval_augment(self) -> str:
        return "tsgfa" if self.method == "tsgd" and self.tsgfa else "base"

    def data_fields(self) -> dict[str, Any]:
        # the profile's content, not only its name: resized profiles must not reuse old results
        out = {"profile": self.profile, "profile_key": config_key(get_profile(self.profile)),
               "camera_shake": self.camera_shake}
        if self.dataset:  # only for real data: the benchmark's keys stay as they were
            out.update(dataset=data_spec(self.dataset).identity(), teacher_recipe=REAL_TEACHER_RECIPE)
        return out

    def distill_fields(self) -> dict[str, Any]:
        """What changes the distilled set (evaluation-only switches excluded, so sets are shared)."""
        # TSGD with its filter off optimises exactly what SRe2L-style does: share that set
        method = "sre2l" if self.method == "tsgd" and not self.tsgfo else self.method
        out: dict[str, Any] = {**self.data_fields(), "method": method, "ipc": self.ipc, "seed": self.distill_seed}
        if self.method in ("sre2l", "tsgd"):
            out.update(init=self.init, r_bn=self.r_bn, filter=self.uses_filter)
        if self.uses_filter:
            out.update(
                modulation=self.modulation, lowpass=self.lowpass, saliency_source=self.saliency_source,
                k=self.k, alpha=self.alpha, eps=self.eps, beta=self.beta, spatial_pool=self.spatial_pool,
            )
        if self.method == "dm":
            out.update(init=self.init)
        return out

    def eval_fields(self) -> dict[str, Any]:
        out = {**self.distill_fields(), "augment": self.eval_augment, "labels": list(self.labels),
               "split": self.eval_split}
        if self.eval_augment == "tsgfa":
            out["tsgfa_saliency"] = asdict(self.saliency())
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
        for f in ("modulation", "lowpass", "saliency_source", "k", "alpha", "eps", "beta", "spatial_pool", "r_bn"):
            if self.uses_filter and getattr(self, f) != getattr(defaults, f):
                parts.append(f"{f}-{getattr(self, f)}")
        if self.eval_split != "test":
            parts.append(self.eval_split)
        if self.distill_seed:
            parts.append(f"dseed{self.distill_seed}")
        return "_".join(parts) + f"_{self.eval_key()[:6]}"

    def saliency(self) -> SaliencyConfig:
        return SaliencyConfig(k=self.k, alpha=self.alpha, eps=self.eps, beta=self.beta, spatial_pool=self.spatial_pool)


def spec_from_params(**params: Any) -> RunSpec:
    """A RunSpec from notebook/CLI parameters: unknown names are a clear error, lists become tuples."""
    known = {f.name for f in fields(RunSpec)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown run parameter(s) {', '.join(unknown)}: known are {', '.join(sorted(known))}")
    return RunSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


# ----------------------------------------------------------------------------- data and teacher


@functools.lru_cache(maxsize=4)
def load_data(
    profile: str, camera_shake: float = 0.0, seed: int = 0, *, dataset: str = "", cache_dir: str | Path = "cache",
) -> Splits:
    """The built-in motion benchmark at the profile's size (generated; cached in memory), or the
    real `dataset` (DataSpec text), decoded once into `<cache_dir>/videos/` and read per batch."""
    spec = data_spec(dataset)
    if spec is not None:
        return spec.load(cache_dir, progress=True)
    return make_motion_benchmark(**get_profile(profile).data, camera_shake=camera_shake, seed=seed)


_CHECKED_TEACHERS: set[str] = set()


def get_teacher(
    profile: str, camera_shake: float = 0.0, *, dataset: str = "", cache_dir: str | Path = "cache",
    device: str = "auto", progress: bool = True,
) -> tuple[torch.nn.Module, TeacherInfo]:
    """The profile's teacher for the benchmark or a real dataset (trained once, then cached).

    On real data the budget follows the dataset's size (steps, not epochs), the loss is
    class-balanced, and a weak teacher or flat soft labels are warned about.
    """
    prof = get_profile(profile)
    splits = load_data(profile, camera_shake, dataset=dataset, cache_dir=cache_dir)
    if not dataset:
        return load_or_train_teacher(
            splits, prof.teacher_model, prof.teacher_fit, cache_dir=cache_dir, device=device, progress=progress,
        )
    teacher, info = load_or_train_teacher(
        splits, prof.teacher_model, with_budget(prof.teacher_fit, len(splits.train)), balanced=True,
        cache_dir=cache_dir, device=device, progress=progress,
    )
    if info.key not in _CHECKED_TEACHERS:  # once per process: it costs a pass over held-out clips
        _CHECKED_TEACHERS.add(info.key)
        held_out = splits.val if len(splits.val) else splits.test
        warn_about_teacher(teacher_warnings(teacher, held_out, prof.student.tau, profile=profile, device=device))
    return teacher, info


# ----------------------------------------------------------------------------- distill and evaluate


def distilled_path(spec: RunSpec, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / "distilled" / f"{spec.distill_key()}.tsgd.pt"


def tsgd_config(spec: RunSpec, prof: Profile) -> TSGDConfig:
    return TSGDConfig(
        ipc=spec.ipc, iterations=prof.distill_iterations, r_bn=spec.r_bn, init=spec.init,
        filter=spec.uses_filter, saliency=spec.saliency(), modulation=spec.modulation,
        lowpass=spec.lowpass, saliency_source=spec.saliency_source, seed=spec.distill_seed,
    )


def make_distilled(
    spec: RunSpec, *, cache_dir: str | Path = "cache", device: str = "auto", progress: bool = True
) -> DistilledSet:
    """The distilled (or selected) set of `spec`, made once and then loaded from the cache."""
    from .artifact import load_distilled, save_distilled

    path = distilled_path(spec, cache_dir)
    if path.is_file():
        return load_distilled(path)
    prof = get_profile(spec.profile)
    splits = load_data(spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir)
    teacher, info = get_teacher(spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir,
                                device=device, progress=progress)
    dev = resolve_device(device)
    with measure(dev) as usage:
        if spec.method in SELECTION_METHODS:
            ds = select_subset(spec.method, splits.train, spec.ipc, teacher=teacher, seed=spec.distill_seed, device=device)
        elif spec.method == "dm":
            cfg = DMConfig(ipc=spec.ipc, iterations=prof.dm_iterations, batch_real=prof.dm_batch_real,
                           width=prof.student.model.width, depth=prof.student.model.depth,
                           init=spec.init, seed=spec.distill_seed)
            ds = distill_dm(splits.train, cfg, device=dev, progress=progress)
        else:
            ds = distill_tsgd(teacher, splits.train, tsgd_config(spec, prof), device=dev, progress=progress)
    ds.teacher_key = info.key
    ds.config = {**ds.config, "spec": asdict(spec), "distill_wall_s": usage.wall_s, "distill_peak_mb": usage.peak_mb}
    save_distilled(ds, path)
    return ds


def student_config(spec: RunSpec, labels: str) -> StudentConfig:
    base = get_profile(spec.profile).student
    return replace(base, labels=labels, augment=spec.eval_augment, tsgfa=TSGFAConfig(saliency=spec.saliency()))


def evaluate_distilled(
    spec: RunSpec, ds: DistilledSet, *, cache_dir: str | Path = "cache", device: str = "auto", progress: bool = True
) -> dict[str, EvalResult]:
    """Protocol evaluation of `ds` under each label mode of `spec`, relabeled by the teacher that made it."""
    splits = load_data(spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir)
    teacher, info = get_teacher(spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir,
                                device=device, progress=progress)
    if ds.teacher_key is not None and ds.teacher_key != info.key:
        raise ValueError(
            f"the set was distilled with teacher {ds.teacher_key}, the cached teacher for profile "
            f"{spec.profile!r} is {info.key}: evaluate it with the cache dir that holds teacher "
            f"{ds.teacher_key}, or distil the set again"
        )
    check_teacher_matches(info, ds.to_clipset())
    target = splits.val if spec.eval_split == "val" else splits.test
    return {
        labels: evaluate_set(
            ds.to_clipset(), target, student_config(spec, labels), teacher=teacher,
            seeds=get_profile(spec.profile).seeds, device=device, progress=progress,
        )
        for labels in spec.labels
    }


def evaluate_spec(
    spec: RunSpec, ds: DistilledSet, *, cache_dir: str | Path = "cache", device: str = "auto", progress: bool = True
) -> dict[str, EvalResult]:
    """`evaluate_distilled`, cached under the spec's evaluation key (ds must be the spec's own set)."""
    path = Path(cache_dir) / "evals" / f"{spec.eval_key()}.json"
    if path.is_file():
        return {k: EvalResult(**v) for k, v in load_json(path).items()}
    results = evaluate_distilled(spec, ds, cache_dir=cache_dir, device=device, progress=progress)
    save_json({k: asdict(v) for k, v in results.items()}, path)
    return results


def full_data_results(
    profile: str, camera_shake: float = 0.0, *, dataset: str = "", cache_dir: str | Path = "cache",
    device: str = "auto", progress: bool = True,
) -> dict[str, EvalResult]:
    """Upper bound: students trained on the whole real train split with the same recipe (epochs scaled)."""
    what = (get_profile(profile), camera_shake) + ((data_spec(dataset).identity(),) if dataset else ())
    path = Path(cache_dir) / "evals" / f"full_{config_key(*what)}.json"
    if path.is_file():
        return {k: EvalResult(**v) for k, v in load_json(path).items()}
    prof = get_profile(profile)
    splits = load_data(profile, camera_shake, dataset=dataset, cache_dir=cache_dir)
    teacher, _ = get_teacher(profile, camera_shake, dataset=dataset, cache_dir=cache_dir, device=device,
                             progress=progress)
    results = {}
    for labels in ("soft", "hard"):
        cfg = replace(prof.student, labels=labels)
        cfg = replace(cfg, fit=replace(cfg.fit, steps=None, epochs=prof.full_epochs, batch_size=prof.teacher_fit.batch_size))
        results[labels] = evaluate_set(splits.train, splits.test, cfg, teacher=teacher, seeds=prof.seeds,
                                       device=device, progress=progress)
    save_json({k: asdict(v) for k, v in results.items()}, path)
    return results


def record(spec: RunSpec, ds: DistilledSet, results: dict[str, EvalResult]) -> dict[str, Any]:
    """One flat row for the report: the spec, accuracy per label mode, time and memory."""
    row: dict[str, Any] = {**asdict(spec), "labels": ",".join(spec.labels), "name": spec.name(),
                           "method_label": METHOD_LABELS[spec.method] + ("" if spec.method != "tsgd" or spec.tsgfa else " w/o TSGFA"),
                           "distill_wall_s": ds.config.get("distill_wall_s"),
                           "distill_peak_mb": ds.config.get("distill_peak_mb")}
    for labels, res in results.items():
        row[f"acc_{labels}_mean"] = res.mean
        row[f"acc_{labels}_std"] = res.std
        row[f"acc_{labels}_seeds"] = res.accs
        row[f"eval_{labels}_wall_s"] = sum(res.wall_s)
        row[f"eval_{labels}_peak_mb"] = max(res.peak_mb)
    return row


def run(
    spec: RunSpec, *, cache_dir: str | Path = "cache", device: str = "auto", progress: bool = True
) -> tuple[DistilledSet, dict[str, Any]]:
    """Distil (or select) and evaluate one cell of the grid; both steps cached."""
    ds = make_distilled(spec, cache_dir=cache_dir, device=device, progress=progress)
    results = evaluate_spec(spec, ds, cache_dir=cache_dir, device=device, progress=progress)
    return ds, record(spec, ds, results)


# ----------------------------------------------------------------------------- the grid


@dataclass
class Grid:
    """Groups of specs that make the report: main table, ablations, sensitivity, camera shake."""

    main: list[RunSpec] = field(default_factory=list)
    ablation: list[RunSpec] = field(default_factory=list)
    sensitivity: list[RunSpec] = field(default_factory=list)
    shake: list[RunSpec] = field(default_factory=list)

    def groups(self) -> dict[str, list[RunSpec]]:
        return {"main": self.main, "ablation": self.ablation, "sensitivity": self.sensitivity, "shake": self.shake}


# Camera shake of the shake group (std of the per-frame offset, px at 32x32): at 0.5 the
# saliency maps barely change; at 2 raw frame differences fire over the whole background.
DEFAULT_SHAKE = 2.0


def build_grid(profile: str = "default", shake: float = DEFAULT_SHAKE) -> Grid:
    """The experiments of the report, as specs (what run_all.sh executes)."""
    prof = get_profile(profile)
    # ablations and sensitivity at the middle IPC: at IPC 1 every method of the default profile
    # sits near chance (measured on the validation split), which would hide any difference
    ablation_ipc = prof.ipcs[min(1, len(prof.ipcs) - 1)]
    grid = Grid()
    for ipc in prof.ipcs:
        for method in METHODS:
            grid.main.append(RunSpec(method=method, ipc=ipc, profile=profile))
        grid.main.append(RunSpec(method="tsgd", ipc=ipc, profile=profile, tsgfa=False))
    # ablations of TSGD's parts: filter x augmentation, init, open choices of METHOD.md
    base = RunSpec(method="tsgd", ipc=ablation_ipc, profile=profile)
    grid.ablation += [
        replace(base, tsgfo=False),
        replace(base, tsgfo=False, tsgfa=False),
        replace(base, init="noise"),
        replace(base, init="noise", tsgfo=False, tsgfa=False),
        replace(base, modulation="frame"),
        replace(base, lowpass=True),
        replace(base, saliency_source="real"),
    ]
    # sensitivity on the validation split (soft labels): k, eps, beta one at a time
    val = replace(base, eval_split="val", labels=("soft",), tsgfa=False)
    grid.sensitivity += [replace(val, k=k) for k in (0, 1, 2)]
    grid.sensitivity += [replace(val, eps=1e-1)]
    grid.sensitivity += [replace(val, beta=b) for b in (0.0, 1.0)]
    grid.sensitivity += [replace(val, alpha="uniform")]
    # camera shake: TSGD vs SRe2L-style when raw frame differences fire everywhere
    for ipc in prof.ipcs[:2]:
        grid.shake += [RunSpec(method=m, ipc=ipc, profile=profile, camera_shake=shake) for m in ("sre2l", "tsgd")]
    return grid


def single_frame_control(
    profile: str, camera_shake: float = 0.0, *, dataset: str = "", cache_dir: str | Path = "cache",
    device: str = "auto", progress: bool = True,
) -> TeacherInfo:
    """The teacher's recipe on one (middle) frame per clip: near chance if classes live in motion."""
    from .data import single_frame

    prof = get_profile(profile)
    splits = single_frame(load_data(profile, camera_shake, dataset=dataset, cache_dir=cache_dir))
    fit_cfg = with_budget(prof.teacher_fit, len(splits.train)) if dataset else prof.teacher_fit
    _, info = load_or_train_teacher(
        splits, prof.teacher_model, fit_cfg, balanced=bool(dataset),
        cache_dir=cache_dir, device=device, progress=progress,
    )
    return info


def build_dataset_grid(profile: str, dataset: str, shake: float = DEFAULT_SHAKE) -> Grid:
    """The report's grid on a real dataset (`RunSpec.dataset` text): every spec of `build_grid`
    with the dataset, without the camera-shake group (a knob of the built-in benchmark)."""
    if not dataset:
        return build_grid(profile, shake)
    out = Grid()
    for name, specs in build_grid(profile, shake).groups().items():
        setattr(out, name, [] if name == "shake" else [replace(s, dataset=dataset, camera_shake=0.0) for s in specs])
    return out

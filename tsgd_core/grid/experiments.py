"""Experiments: one `RunSpec` names a cell of the ablation grid; `run` distils (or selects) the
set, evaluates it with the protocol, and returns a flat record for the report.

Everything is cached on disk under `cache_dir`, keyed by the configuration that produced it:
the data (regenerated from its seed, cheap), the teacher, each distilled set and each
evaluation. Rerunning the grid reuses what matches and computes only what is missing, and an
interrupted run loses only the step in flight.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..data.artifact import DistilledSet
from ..data.clips import ClipSet, Splits
from ..data.datasets import (
    data_spec,
    warn_about_teacher,
    with_budget,
)
from ..data.storage import config_key, load_json_keyed, save_json_keyed
from ..methods.distill import TSGDConfig, distill_tsgd, initial_clips
from ..methods.dm import DMConfig, distill_dm
from ..methods.salient import SalientConfig, select_salient_windows
from ..methods.selection import SELECTION_METHODS, select_subset
from ..runtime import distributed, resolve_device
from ..runtime.profiling import measure
from ..training.augment import TSGFAConfig
from ..training.evaluate import EvalResult, StudentConfig, evaluate_set
from ..training.teacher import (
    ModelConfig,
    TeacherInfo,
    check_teacher_matches,
    load_or_train_teacher,
    teacher_key,
    teacher_warnings,
)
from ..training.train import FitConfig

# names of the grid's other modules, for `from tsgd_core.grid import experiments` then
# `experiments.<name>` (the notebooks' one name space)
from .cells import DEFAULT_GROUPS as DEFAULT_GROUPS
from .cells import GROUPS as GROUPS
from .cells import build_dataset_grid as build_dataset_grid
from .cells import build_grid as build_grid
from .profiles import LADDER_RUNGS as LADDER_RUNGS
from .profiles import METHOD_LABELS, get_profile, profile_data, scaled_fit
from .profiles import METHODS as METHODS
from .profiles import PROFILES as PROFILES
from .profiles import Profile as Profile
from .profiles import ladder_profile as ladder_profile
from .profiles import load_data as load_data
from .spec import DEFAULT_PRECISION, TSGFA_PARTS, RunSpec
from .spec import spec_from_params as spec_from_params

_CHECKED_TEACHERS: set[str] = set()


def teacher_recipe(
    prof: Profile, splits: Splits, dataset: str
) -> tuple[ModelConfig, FitConfig, bool]:
    """The profile's teacher model, fit and class balancing for these splits: on real data the
    budget follows the dataset's size and the loss is class-balanced."""
    if not dataset:
        return prof.teacher_model, prof.teacher_fit, False
    return prof.teacher_model, with_budget(prof.teacher_fit, len(splits.train)), True


def expected_teacher_key(
    profile: str,
    camera_shake: float = 0.0,
    *,
    dataset: str = "",
    cache_dir: str | Path = "cache",
) -> str:
    """The key of the teacher `get_teacher` would load (or train) here, without training it."""
    prof = get_profile(profile)
    splits = profile_data(prof, camera_shake, dataset=dataset, cache_dir=cache_dir)
    model_cfg, fit_cfg, balanced = teacher_recipe(prof, splits, dataset)
    return teacher_key(splits, model_cfg, fit_cfg, True, balanced)


def get_teacher(
    profile: str,
    camera_shake: float = 0.0,
    *,
    dataset: str = "",
    cache_dir: str | Path = "cache",
    device: str = "auto",
    progress: bool = True,
    single_frame: bool = False,
) -> tuple[torch.nn.Module, TeacherInfo]:
    """The teacher of the profile named `profile` for the benchmark or a real dataset
    (`profile_teacher` on its data). `single_frame`: the same recipe on one (middle) frame per
    clip, a control (not warned about: it is meant to be weak where the classes live in motion).
    """
    from ..data.clips import single_frame as middle_frame

    prof = get_profile(profile)
    splits = profile_data(prof, camera_shake, dataset=dataset, cache_dir=cache_dir)
    if single_frame:
        splits = middle_frame(splits)
    where = dict(cache_dir=cache_dir, device=device, progress=progress)
    return profile_teacher(prof, splits, dataset, warn=not single_frame, **where)


def profile_teacher(
    prof: Profile,
    splits: Splits,
    dataset: str,
    *,
    cache_dir: str | Path,
    device: str,
    progress: bool,
    warn: bool = True,
) -> tuple[torch.nn.Module, TeacherInfo]:
    """The profile's teacher on `splits` (trained once, then cached). On real data the budget
    follows the dataset's size (steps, not epochs), the loss is class-balanced, and (`warn`) a
    weak teacher or flat soft labels are warned about."""
    model_cfg, fit_cfg, balanced = teacher_recipe(prof, splits, dataset)
    teacher, info = load_or_train_teacher(
        splits,
        model_cfg,
        fit_cfg,
        balanced=balanced,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
    )
    if not dataset or not warn:
        return teacher, info
    if info.key not in _CHECKED_TEACHERS:  # once per process: it costs a pass over held-out clips
        _CHECKED_TEACHERS.add(info.key)
        held_out = splits.val if len(splits.val) else splits.test
        tau = prof.student.tau
        warn_about_teacher(
            teacher_warnings(teacher, held_out, tau, profile=prof.name, device=device)
        )
    return teacher, info


def single_frame_control(profile: str, camera_shake: float = 0.0, **where: Any) -> TeacherInfo:
    """The teacher's recipe on one (middle) frame per clip: near chance if classes live in motion.

    `where`: get_teacher's dataset, cache_dir, device and progress.
    """
    return get_teacher(profile, camera_shake, single_frame=True, **where)[1]


def spec_data(spec: RunSpec, cache_dir: str | Path = "cache") -> Splits:
    """The data of `spec`: its profile's benchmark (with its camera shake) or its real dataset."""
    return profile_data(spec.prof, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir)


@dataclass(frozen=True)
class RunContext:
    """What one run reads, resolved once at its start and handed down: the spec (and through
    it the profile's sizes and budgets), the data, the teacher, and where the run works."""

    spec: RunSpec
    splits: Splits
    teacher: torch.nn.Module
    teacher_info: TeacherInfo
    cache_dir: str | Path
    device: str  # as asked ("auto", "cpu", "cuda:1"); `torch_device` resolves it
    progress: bool = True

    @property
    def profile(self) -> Profile:
        return self.spec.prof

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)


def run_context(
    spec: RunSpec, *, cache_dir: str | Path = "cache", device: str = "auto", progress: bool = True
) -> RunContext:
    """The context of `spec`: its data and its profile's teacher (trained once, then cached)."""
    splits = spec_data(spec, cache_dir)
    where = dict(cache_dir=cache_dir, device=device, progress=progress)
    teacher, info = profile_teacher(spec.prof, splits, spec.dataset, **where)
    return RunContext(spec, splits, teacher, info, **where)


def distilled_path(spec: RunSpec, teacher_key: str, cache_dir: str | Path) -> Path:
    """Where the set of `spec` made with (or relabeled by) teacher `teacher_key` is cached."""
    key = config_key(spec.distill_key(), teacher_key)
    return Path(cache_dir) / "distilled" / f"{key}.tsgd.pt"


def salient_config(spec: RunSpec) -> SalientConfig:
    """The salient-window selection that `spec` asks for."""
    return SalientConfig(
        ipc=spec.ipc,
        window=spec.salient_window,
        pack=spec.salient_pack,
        saliency=spec.saliency(),
        seed=spec.distill_seed,
    )


def tsgd_config(spec: RunSpec) -> TSGDConfig:
    """How `spec` recovers its set: its own settings, else tuned, else the profile's."""
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
    return distil(run_context(spec, cache_dir=cache_dir, device=device, progress=progress))


def distil(ctx: RunContext) -> DistilledSet:
    """The distilled (or selected) set of the run, made once and then loaded from the cache."""
    from ..data.artifact import load_cached_distilled, save_cached_distilled

    spec, splits, teacher, info = ctx.spec, ctx.splits, ctx.teacher, ctx.teacher_info
    device, progress = ctx.device, ctx.progress
    path = distilled_path(spec, info.key, ctx.cache_dir)
    cached = load_cached_distilled(path)  # None when missing or damaged (then rebuilt)
    if distributed.agree(cached is not None):  # under torchrun: all ranks load, or all make it
        return cached
    prof, dev = ctx.profile, ctx.torch_device
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
            ds = select_salient_windows(
                splits.train, spec.ipc, teacher=teacher, cfg=salient_config(spec), device=device
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
                teacher, splits.train, tsgd_config(spec), device=dev, progress=progress
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


def perturb_like(start: torch.Tensor, moved: torch.Tensor, seed: int) -> torch.Tensor:
    """`start` plus seeded Gaussian noise whose per-clip L2 norm equals that of `moved - start`
    (clipped to [0, 1] like every set): a change of recovery's size in a random direction."""
    start = start.float()
    change = (moved.float() - start).flatten(1).norm(dim=1)
    noise = torch.randn(start.shape, generator=torch.Generator().manual_seed(seed))
    noise = noise * (change / noise.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, 1, 1, 1, 1)
    return (start + noise).clamp(0.0, 1.0)


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


def student_config(spec: RunSpec, labels: str) -> StudentConfig:
    """The student recipe of `spec` (its steps, augmentation recipe and TSGFA parts) for `labels`."""
    return with_recipe(spec.student_recipe(), spec.recipe, spec, labels)


def with_recipe(student: StudentConfig, recipe: str, spec: RunSpec, labels: str) -> StudentConfig:
    """`student` trained with `labels` under `recipe`, TSGFA taking `spec`'s saliency and parts."""
    default = TSGFAConfig()
    tsgfa = TSGFAConfig(
        saliency=spec.saliency(),
        **{
            f"p_{part}": getattr(default, f"p_{part}") if part in spec.tsgfa_parts else 0.0
            for part in TSGFA_PARTS
        },
    )
    return replace(student, labels=labels, augment=recipe, tsgfa=tsgfa)


def evaluate_distilled(
    spec: RunSpec,
    ds: DistilledSet,
    *,
    cache_dir: str | Path = "cache",
    device: str = "auto",
    progress: bool = True,
) -> dict[str, EvalResult]:
    """Protocol evaluation of `ds` under each label mode of `spec`, relabeled by the teacher that made it."""
    ctx = run_context(spec, cache_dir=cache_dir, device=device, progress=progress)
    return evaluate_with(ctx, ds)


def evaluate_with(ctx: RunContext, ds: DistilledSet) -> dict[str, EvalResult]:
    """Protocol evaluation of `ds` under each label mode of the run's spec, relabeled by the
    run's teacher (refused when another teacher made the set)."""
    spec, splits, teacher, info = ctx.spec, ctx.splits, ctx.teacher, ctx.teacher_info
    device, progress = ctx.device, ctx.progress
    if ds.teacher_key is not None and ds.teacher_key != info.key:
        raise ValueError(
            f"the set was distilled with teacher {ds.teacher_key}, the cached teacher for profile "
            f"{spec.profile!r} is {info.key}: evaluate it with the cache dir that holds teacher "
            f"{ds.teacher_key}, or distil the set again"
        )
    check_teacher_matches(info, ds.to_clipset())
    target = splits.val if spec.eval_split == "val" else splits.test
    clips = {"set": ds.to_clipset()}
    if {"start", "perturbed"} & {spec.train_pixels, spec.label_pixels}:
        start = start_set(spec, splits.train)
        if start is None:
            raise ValueError(
                f"{spec.method} with init {spec.init!r} has no real start set to swap pixels "
                "or labels with: use train_pixels='set' and label_pixels='set'"
            )
        clips["start"] = ClipSet(start, ds.labels.clone(), list(ds.class_names))
        clips["perturbed"] = ClipSet(
            perturb_like(start, ds.videos, spec.distill_seed),
            ds.labels.clone(),
            list(ds.class_names),
        )
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
            precision=spec.precision,
        )
        for labels in spec.labels
    }


def evaluate_spec(spec: RunSpec, ds: DistilledSet, **where: Any) -> dict[str, EvalResult]:
    """`evaluate_distilled`, cached under the spec's evaluation key and the contents of `ds`.

    `where`: evaluate_distilled's cache_dir, device and progress.
    """
    # a misspelt keyword fails now, not only when the evaluation is missing from the cache
    inspect.signature(evaluate_distilled).bind(spec, ds, **where)
    path, key = eval_cache(spec, ds, where.get("cache_dir", "cache"))
    return cached_results(path, key, lambda: evaluate_distilled(spec, ds, **where))


def evaluate_cached(ctx: RunContext, ds: DistilledSet) -> dict[str, EvalResult]:
    """`evaluate_with`, cached like `evaluate_spec` (the same key: the same results)."""
    path, key = eval_cache(ctx.spec, ds, ctx.cache_dir)
    return cached_results(path, key, lambda: evaluate_with(ctx, ds))


def cached_results(
    path: Path, key: str, evaluate: Callable[[], dict[str, EvalResult]]
) -> dict[str, EvalResult]:
    """The results cached at `path` under `key`, else `evaluate()`'s, then cached (under
    torchrun: every rank loads, or every rank evaluates, and rank 0 writes)."""
    cached = load_json_keyed(path, key, eval_results_from_json)
    if distributed.agree(cached is not None):
        return cached
    results = evaluate()
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
        spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir
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


def full_data_key(
    profile: str,
    teacher_key: str,
    camera_shake: float,
    dataset: str,
    student_scale: float,
    split: str,
    precision: str = "fp32",
    recipe: str = "base",
    seeds: Sequence[int] = (),
) -> str:
    """The cache key of `full_data_results`: the data, the teacher's key, the student recipe
    and seeds (empty: the profile's); 2: the evaluation protocol's version."""
    prof = get_profile(profile)
    what = (
        prof.data,
        teacher_key,
        prof.student,
        prof.full_steps,
        tuple(seeds) or prof.upper_bound_seeds,
        camera_shake,
        student_scale,
        split,
        2,
    )
    what += (data_spec(dataset).identity(),) if dataset else ()
    what += (precision,) if precision != "fp32" else ()  # earlier upper bounds ran in fp32
    # earlier upper bounds ran under the base recipe; TSGFA's takes the default filter's saliency
    what += (recipe, asdict(RunSpec().saliency())) if recipe != "base" else ()
    return "full_" + config_key(*what)


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
    precision: str = DEFAULT_PRECISION,
    recipe: str = "base",
    seeds: Sequence[int] = (),
) -> dict[str, EvalResult]:
    """Upper bound: students trained on the whole real train split (profile's full_steps), under
    the student `recipe` ("base" or "tsgfa", with the default filter's saliency), one per seed
    (empty: the profile's `upper_bound_seeds`)."""
    prof = get_profile(profile)
    seeds = tuple(seeds) or prof.upper_bound_seeds
    splits = profile_data(prof, camera_shake, dataset=dataset, cache_dir=cache_dir)
    where = dict(cache_dir=cache_dir, device=device, progress=progress)
    teacher, info = profile_teacher(prof, splits, dataset, **where)
    key = full_data_key(
        profile, info.key, camera_shake, dataset, student_scale, split, precision, recipe, seeds
    )
    target = splits.val if split == "val" else splits.test
    fit_cfg = scaled_fit(replace(prof.student.fit, steps=prof.full_steps), student_scale)

    def evaluate() -> dict[str, EvalResult]:
        return {
            labels: evaluate_set(
                splits.train,
                target,
                with_recipe(replace(prof.student, fit=fit_cfg), recipe, RunSpec(), labels),
                teacher=teacher,
                seeds=seeds,
                device=device,
                progress=progress,
                precision=precision,
            )
            for labels in ("soft", "hard")
        }

    return cached_results(Path(cache_dir) / "evals" / f"{key}.json", key, evaluate)


def record(spec: RunSpec, ds: DistilledSet, results: dict[str, EvalResult]) -> dict[str, Any]:
    """One flat row for the report: the spec, accuracy per label mode, time and memory."""
    row: dict[str, Any] = {
        **asdict(spec),
        "labels": ",".join(spec.labels),
        "name": spec.name(),
        "method_label": METHOD_LABELS[spec.method],
        "recipe": spec.recipe,
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
    """Distil (or select) and evaluate one cell of the grid in one context; both steps cached."""
    ctx = run_context(spec, cache_dir=cache_dir, device=device, progress=progress)
    ds = distil(ctx)
    return ds, record(spec, ds, evaluate_cached(ctx, ds))

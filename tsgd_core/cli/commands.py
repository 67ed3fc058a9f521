"""The commands of `tsgd`: data, teacher, distill, evaluate, export and grid, each a thin layer
over the library."""

from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..data.clips import DataError

# RunSpec fields that describe what is distilled (the flags shared by distill and evaluate).
from .options import (
    SPEC_FLAG_HELP,
    SPEC_FLAGS,
    check_cache_dir,
    check_output,
    checked_input,
    class_count_text,
    dataset_text,
    fail,
    flag_name,
    one_line,
    percent,
    prepare_dataset,
    printable,
)

# what `tsgd export` and `tsgd data --preview` write besides the animations: a contact sheet
CONTACT_SHEET = ".png"


def write_clips(clips: Any, path: str | Path, args: argparse.Namespace, **options: Any) -> Path:
    """A set or clips as a GIF / MP4 grid, or as a contact-sheet PNG (chosen by the suffix)."""
    if Path(path).suffix.lower() == CONTACT_SHEET:
        from ..report.clip_figures import save_contact_sheet

        return save_contact_sheet(clips, path, scale=args.scale)
    from ..data.artifact import export

    return export(clips, path, fps=args.fps, scale=args.scale, **options)


def cmd_data(args: argparse.Namespace) -> None:
    from ..data.artifact import EXPORTERS

    if args.preview:
        check_output(args.preview, (*EXPORTERS, CONTACT_SHEET), "--preview")
        check_not_inside_root(args.preview, args.root, "--preview")
    text = dataset_text(args)
    if not text:
        splits, descriptions = benchmark_splits(args)
    else:
        check_cache_dir(args)
        splits, descriptions = prepare_dataset(args, text, announce=False), {}
    print_splits(splits, descriptions)
    if args.preview:
        clips = preview_clips(splits.train, args.preview_clips)
        path = write_clips(clips, args.preview, args)
        print(
            f"preview: {path} ({len(clips)} training clips, up to {args.preview_clips} "
            "per class, one row per class)"
        )


def check_not_inside_root(path: str | Path, root: str | None, flag: str) -> None:
    """An output outside the dataset being read: one inside could overwrite a video, or
    become a training video of the next listing."""
    if root is None:
        return
    out, data = Path(path).resolve(), Path(root).expanduser().resolve()
    if out == data or data in out.parents:
        fail(f"{flag} {path} lies inside --root {root}, the dataset being read: write it elsewhere")


def benchmark_splits(args: argparse.Namespace):
    from ..data.synthetic import describe_motion_classes
    from ..grid.profiles import load_data

    splits = load_data(args.profile, args.camera_shake)
    descriptions = describe_motion_classes(splits.num_classes)
    return splits, descriptions


def print_splits(splits: Any, descriptions: dict[str, str]) -> None:
    c, t, h, w = splits.clip_shape
    print(f"dataset: {splits.name}")
    print(f"clip shape: (C, T, H, W) = ({c}, {t}, {h}, {w})")
    print(f"classes: {splits.num_classes}")
    for part in ("train", "val", "test"):
        clips = getattr(splits, part)
        counts = class_count_text(clips.class_counts().tolist())
        print(f"  {part:5s}: {len(clips):6d} clips ({counts})")
    for note in ("val_carving", "shortcut_check"):  # real data: how val was carved, shortcuts
        if splits.config.get(note):
            print(f"  {splits.config[note]}")
    for i, name in enumerate(splits.class_names):
        note = f": {descriptions[name]}" if name in descriptions else ""
        print(f"  {i:3d} {printable(name)}{note}")


def preview_clips(data: Any, per_class: int) -> Any:
    """The first `per_class` clips of every class (fewer where a class has fewer)."""
    import torch

    index = torch.cat([data.indices_of_class(c)[:per_class] for c in range(data.num_classes)])
    return data.subset(index)


def cmd_teacher(args: argparse.Namespace) -> None:
    from ..data.storage import save_json
    from ..grid.experiments import profile_teacher
    from ..grid.profiles import get_profile, profile_data
    from ..runtime import resolve_device
    from ..training.teacher import teacher_path

    if args.out:
        check_output(args.out, (".json",), "--out")
    check_cache_dir(args)
    resolve_device(args.device)
    text = dataset_text(args)
    if text:
        prepare_dataset(args, text)
    prof = get_profile(args.profile)
    splits = profile_data(prof, args.camera_shake, dataset=text, cache_dir=args.cache_dir)
    announce_teacher(prof, splits, text, args)
    where = dict(cache_dir=args.cache_dir, device=args.device, progress=not args.quiet)
    _, info = profile_teacher(prof, splits, text, **where)
    path = teacher_path(args.cache_dir, info.key)
    if args.out:  # written before anything is printed: a closed stdout cannot lose it
        blob = {
            **asdict(info),
            "checkpoint": str(path),
            "profile": args.profile,
            "camera_shake": args.camera_shake,
            "dataset": text,
        }
        save_json(blob, args.out)
    data = f"dataset {args.dataset}" if text else f"camera shake {args.camera_shake:g}"
    print(f"teacher {info.key} for profile {args.profile!r} ({data})")
    print(f"  test accuracy:  {percent(info.test_acc)} %")
    if info.val_acc is not None:
        print(f"  val accuracy:   {percent(info.val_acc)} %")
    print(
        f"  training:       {info.train_wall_s:.1f} s, {info.clips_per_s:.0f} clips/s, "
        f"peak {info.train_peak_mb:.0f} MB"
    )
    print(f"  checkpoint:     {path}")
    if args.out:
        print(f"  info:           {args.out}")


def announce_teacher(prof: Any, splits: Any, dataset: str, args: argparse.Namespace) -> None:
    """Print which teacher the command uses and whether it comes from the cache (one line)."""
    from ..grid.experiments import teacher_recipe
    from ..runtime import resolve_device
    from ..training.teacher import teacher_source_line, training_threads

    model_cfg, fit_cfg, balanced = teacher_recipe(prof, splits, dataset)
    threads = training_threads(resolve_device(args.device))
    line = teacher_source_line(splits, model_cfg, fit_cfg, True, balanced, threads, args.cache_dir)
    print(line, flush=True)


def given_spec_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The RunSpec fields set on the command line (unset flags keep RunSpec's defaults)."""
    return {
        name: getattr(args, name) for name in SPEC_FLAGS if getattr(args, name, None) is not None
    }


def build_spec(params: dict[str, Any], where: str = "") -> Any:
    """A RunSpec, checked: method, IPC, profile, split and the saliency parameters. A refusal
    is bad input naming the flag (`where`, e.g. a set file, is named first when given)."""
    from ..grid.spec import spec_from_params

    try:
        spec = spec_from_params(**params)
        spec.saliency()  # validates k, alpha, eps, beta, spatial_pool now, not after training
    except DataError:
        raise
    except ValueError as error:
        fail(f"{where}{flag_words(one_line(error))}")
    return spec


def flag_words(text: str) -> str:
    """A RunSpec message in the words of the flags: 'n_students must be' -> '--students must be'."""
    for field in SPEC_FLAG_HELP:
        text = re.sub(rf"\b{field} must\b", f"{flag_name(field)} must", text)
    return text


def check_spec_data(spec: Any, cache_dir: str | Path = "cache", device: str = "auto") -> Any:
    """IPC, saliency pooling and evaluation split against the data, and the run against the
    memory there is, before any teacher is trained (the data is cheap); the data, checked."""
    with checked_input():
        return checked_spec_data(spec, cache_dir, device)


def checked_spec_data(spec: Any, cache_dir: str | Path, device: str) -> Any:
    """`check_spec_data` without turning errors into one line (the caller does)."""
    from ..grid.experiments import spec_data
    from ..methods.selection import SELECTION_METHODS, check_ipc
    from ..runtime import resolve_device
    from ..runtime.budget import check_distill_fits

    splits = spec_data(spec, cache_dir)
    train = splits.train
    # selection picks real clips and real init starts from them; noise init needs none
    if spec.method in SELECTION_METHODS or spec.init == "real":
        check_ipc(train, spec.ipc)
    check_saliency_fits(spec, train.clip_shape)
    check_split_has_clips(spec, splits)
    if spec.dataset:
        from ..data.datasets import warn_about_data
        from ..grid.planner import small_val_warning

        warn_about_data([w for w in [small_val_warning(splits.val)] if w])
    prof = spec.prof
    width = prof.student.model.width if spec.method == "dm" else prof.teacher_model.width
    check_distill_fits(spec.method, spec.ipc, train.num_classes, train.clip_shape, width)
    check_run_memory(spec, train, prof, resolve_device(device))
    return splits


# the methods that compute saliency maps; students do too under the TSGFA recipe
SALIENCY_METHODS = ("tsgd", "salient")


def uses_saliency(spec: Any) -> bool:
    return spec.method in SALIENCY_METHODS or spec.recipe == "tsgfa"


def check_saliency_fits(spec: Any, clip_shape: tuple[int, ...]) -> None:
    """The saliency's spatial pooling against the frames: a kernel wider than a frame fails in
    the middle of the work (avg_pool3d), so it is refused now, naming both flags."""
    height, width = clip_shape[-2:]
    side = min(height, width)
    if spec.spatial_pool <= side or not uses_saliency(spec):
        return
    largest = side if side % 2 else side - 1
    fix = f"an odd --spatial-pool of at most {largest}" if largest >= 1 else "--spatial-pool 1"
    fail(
        f"--spatial-pool {spec.spatial_pool} is wider than the {height}x{width} frames of the "
        f"data: use {fix}, or frames of at least {spec.spatial_pool} pixels (--size)"
    )


def check_split_has_clips(spec: Any, splits: Any) -> None:
    """Students are tested on a split that holds clips (--val-fraction 0 leaves val empty)."""
    if len(getattr(splits, spec.eval_split)) == 0:
        fail(
            f"the {spec.eval_split} split of this data is empty (--val-fraction 0 holds no "
            "clips out): evaluate on --split test, or give --val-fraction above 0"
        )


def check_run_memory(spec: Any, train: Any, prof: Any, device: Any, distill: bool = True) -> None:
    """Teacher training, distillation (unless the set exists) and student training against the
    memory there is, all before the first of them starts (a student that cannot fit is refused
    now, not after the teacher and the distillation)."""
    from ..runtime.budget import (
        check_run_fits,
        estimate_distill_bytes,
        estimate_training_bytes,
    )

    shape, teacher_width = train.clip_shape, prof.teacher_model.width
    width = prof.student.model.width if spec.method == "dm" else teacher_width
    clips = spec.ipc * train.num_classes
    stages = {
        f"teacher training of profile {spec.profile!r}": estimate_training_bytes(
            prof.teacher_fit.batch_size, len(train), shape, teacher_width
        ),
        f"{spec.method} with IPC {spec.ipc}": estimate_distill_bytes(
            spec.method, spec.ipc, train.num_classes, shape, width
        ),
        f"student training on IPC {spec.ipc}": estimate_training_bytes(
            prof.student.fit.batch_size, clips, shape, prof.student.model.width, teacher_width
        ),
    }
    if not distill:
        del stages[f"{spec.method} with IPC {spec.ipc}"]
    check_run_fits(stages, "lower the IPC, the frames or the frame size", device)


def spec_params(args: argparse.Namespace) -> dict[str, Any]:
    """The RunSpec fields of the flags, with the dataset decoded into the cache first."""
    params = given_spec_flags(args)
    text = dataset_text(args)
    if text:
        prepare_dataset(args, text)
        params["dataset"] = text
    return params


def cmd_distill(args: argparse.Namespace) -> None:
    from ..data.artifact import SUFFIX, save_distilled
    from ..grid.experiments import distil, distilled_path

    if args.out:
        check_output(args.out, (SUFFIX,), "--out")
    check_cache_dir(args)
    ctx = checked_context(build_spec(spec_params(args)), args)
    spec = ctx.spec
    cached = distilled_path(spec, ctx.teacher_info.key, args.cache_dir)
    before = file_identity(cached)
    ds = distil(ctx)
    # from the cache only if the entry there was used as it was (a damaged one is rebuilt)
    from_cache = before is not None and file_identity(cached) == before
    if args.out:  # written before anything is printed: a closed stdout cannot lose it
        save_distilled(ds, args.out)
    print(
        f"{spec.name()}: {len(ds.labels)} clips ({ds.num_classes} classes x IPC {ds.ipc}) "
        f"of shape {tuple(ds.videos.shape[1:])}, teacher {ds.teacher_key}"
    )
    print(f"  distillation:   {cost_text(ds.config)}{' (from the cache)' if from_cache else ''}")
    print(f"  cached set:     {cached}")
    if args.out:
        print(f"  saved:          {args.out}")


def checked_context(spec: Any, args: argparse.Namespace) -> Any:
    """The run's context, built once: the spec checked against its data and the memory there
    is, the teacher announced, then loaded (or trained)."""
    from ..grid.experiments import RunContext, profile_teacher
    from ..runtime import resolve_device

    resolve_device(args.device)
    splits = check_spec_data(spec, args.cache_dir, args.device)
    announce_teacher(spec.prof, splits, spec.dataset, args)
    where = dict(cache_dir=args.cache_dir, device=args.device, progress=not args.quiet)
    teacher, info = profile_teacher(spec.prof, splits, spec.dataset, **where)
    return RunContext(spec, splits, teacher, info, **where)


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, modification time) of a file, None when there is none: a file replaced
    by a rebuilt one has another identity."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def cost_text(config: dict[str, Any]) -> str:
    wall, peak = config.get("distill_wall_s"), config.get("distill_peak_mb")
    if wall is None:
        return "time not recorded"
    return f"{wall:.1f} s, peak {peak:.0f} MB" if peak is not None else f"{wall:.1f} s"


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..runtime import resolve_device

    if args.out:
        check_output(args.out, (".json",), "--out")
    check_cache_dir(args)
    resolve_device(args.device)
    start = time.perf_counter()
    if args.artifact:
        spec, ds, results = evaluate_artifact(args)
    else:
        spec, ds, results = evaluate_new_spec(args)
    if args.out:  # written before anything is printed: a closed stdout cannot lose it
        from ..data.storage import save_json
        from ..grid.experiments import record

        row = {
            **record(spec, ds, results),
            "artifact": str(args.artifact) if args.artifact else None,
        }
        save_json(row, args.out)
    print_results(spec, results, time.perf_counter() - start)
    if args.out:
        print(f"results: {args.out}")


def eval_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.labels is not None:
        out["labels"] = tuple(dict.fromkeys(args.labels))  # repeated modes once
    if args.split is not None:
        out["eval_split"] = args.split
    return out


def evaluate_new_spec(args: argparse.Namespace):
    """Distil (or load from the cache) the set of the spec flags, then evaluate it (cached)."""
    from ..grid.experiments import distil, evaluate_cached

    ctx = checked_context(build_spec({**spec_params(args), **eval_overrides(args)}), args)
    ds = distil(ctx)
    return ctx.spec, ds, evaluate_cached(ctx, ds)


def artifact_spec(ds: Any, path: Path, args: argparse.Namespace) -> Any:
    """The spec stored in the artifact (its profile finds the teacher), with the eval flags."""
    given = given_spec_flags(args)
    stored = ds.config.get("spec")
    if stored is None:
        fail(
            f"{path} does not record the spec it was made with (config['spec']), so its profile "
            "and teacher are unknown: evaluate sets written by `tsgd distill --out`"
        )
    if args.dataset is not None:
        given["dataset"] = args.dataset
    if given:
        flags = ", ".join("--dataset" if n == "dataset" else flag_name(n) for n in given)
        fail(
            f"{path} records its own spec; {flags} cannot change it: drop {flags}, or evaluate a "
            "new spec without the artifact"
        )
    if not isinstance(stored, dict):
        fail(f"{path} records its spec (config['spec']) as a {type(stored).__name__}, not a dict")
    where = f"{path} records a spec this tsgd cannot use: "
    return build_spec({**stored, **eval_overrides(args)}, where)


def evaluate_artifact(args: argparse.Namespace):
    """Evaluate the set in a file with the protocol, using the cached teacher of its profile.

    Evaluations are cached by the spec and the contents of the set, so an evaluation of the same
    file (or of the same clips under another name) is not repeated.
    """
    from ..data.artifact import load_distilled
    from ..grid.experiments import evaluate_spec

    path = Path(args.artifact)
    ds = load_distilled(path)
    spec = artifact_spec(ds, path, args)
    with checked_input():
        data = check_artifact_fits(ds, spec, path, args)
    announce_teacher(spec.prof, data, spec.dataset, args)
    results = evaluate_spec(
        spec, ds, cache_dir=args.cache_dir, device=args.device, progress=not args.quiet
    )
    return spec, ds, results


def check_artifact_fits(ds: Any, spec: Any, path: Path, args: argparse.Namespace) -> Any:
    """Before any teacher or student is trained: the set's classes and clip shape against the
    data of its spec, and the teacher it records against the one that would relabel it; the
    data, checked."""
    from ..grid.experiments import spec_data

    data = spec_data(spec, args.cache_dir)
    names, theirs = list(ds.class_names), list(data.class_names)
    if names != theirs:
        fail(
            f"{path} holds {len(names)} classes ({', '.join(names[:4])}...), the data of its "
            f"spec (profile {spec.profile!r}) has {len(theirs)} ({', '.join(theirs[:4])}...): "
            "evaluate it on the data it was made from, or train a teacher on this dataset and "
            "distil the set again"
        )
    shape, data_shape = tuple(ds.videos.shape[1:]), tuple(data.clip_shape)
    if shape != data_shape:
        fail(
            f"{path} holds clips of shape {shape}, the data of its spec (profile "
            f"{spec.profile!r}) has {data_shape}: evaluate it with the frames and frame size it "
            "was made with, or distil the set again"
        )
    from ..runtime import resolve_device

    check_run_memory(spec, data.train, spec.prof, resolve_device(args.device), distill=False)
    if ds.teacher_key is None:
        return data
    expected = relabel_teacher_key(spec, data)
    if ds.teacher_key == expected:
        return data
    fail(
        f"{path} was distilled with teacher {ds.teacher_key}, but here its profile "
        f"{spec.profile!r} would be relabelled by teacher {expected}: evaluate it with the "
        f"--cache-dir that holds teacher {ds.teacher_key}, or distil the set again"
    )


def relabel_teacher_key(spec: Any, data: Any) -> str:
    """The key of the teacher `experiments.get_teacher` would load or train for `spec` here
    (without training it)."""
    from ..grid.experiments import teacher_recipe
    from ..training.teacher import teacher_key

    model_cfg, fit, balanced = teacher_recipe(spec.prof, data, spec.dataset)
    return teacher_key(data, model_cfg, fit, True, balanced)


def print_results(spec: Any, results: dict[str, Any], wall_s: float) -> None:
    print(f"{spec.name()} on the {spec.eval_split} split (student recipe {spec.recipe}):")
    for labels, res in results.items():
        print(
            f"  {labels:4s} labels: {interval_text(res.accs)} "
            f"({res.num_train} training clips; "
            f"{sum(res.wall_s):.1f} s, peak {max(res.peak_mb):.0f} MB)"
        )
    if "soft" in results and "hard" in results:
        print(f"  {label_comparison(results['soft'].accs, results['hard'].accs)}")
    print(f"  this command took {wall_s:.1f} s")


def interval_text(accs: list[float]) -> str:
    """'61.4 % (95 % CI 50.2 to 72.6, n = 3 student seeds)': the t-interval over student seeds
    (student noise only: one distilled set)."""
    from ..grid.stats import LEVEL, clip_accuracy_interval, mean_ci

    mean, low, high = mean_ci(accs)
    n = len(accs)
    seeds = f"n = {n} student seed{'s' if n != 1 else ''}"
    if math.isnan(low):
        return f"{percent(mean)} % (no interval: {seeds})"
    low, high = clip_accuracy_interval(low, high)
    return f"{percent(mean)} % ({100 * LEVEL:.0f} % CI {percent(low)} to {percent(high)}, {seeds})"


def label_comparison(soft: list[float], hard: list[float]) -> str:
    """Soft minus hard labels, paired by student seed, and whether the difference is resolved
    (its interval excludes 0 and rests on at least stats.MIN_PAIRS pairs)."""
    from ..grid.stats import MIN_PAIRS, mean_ci, resolved

    diffs = [100 * (s - h) for s, h in zip(soft, hard, strict=False)]
    mean, low, high = mean_ci(diffs)
    n = len(diffs)
    where = f"{n} paired student seed{'s' if n != 1 else ''}"
    if not resolved(low, high, n):
        why = f"fewer than {MIN_PAIRS} pairs" if n < MIN_PAIRS else "the interval includes 0"
        span = "" if math.isnan(low) else f", 95 % CI {low:+.1f} to {high:+.1f}"
        return f"soft vs hard labels: {mean:+.1f} points{span} over {where}: not resolved ({why})"
    better = "above" if mean > 0 else "below"
    return (
        f"soft vs hard labels: soft labels are {abs(mean):.1f} points {better} hard labels "
        f"(95 % CI {low:+.1f} to {high:+.1f}, {where}): resolved"
    )


def cmd_export(args: argparse.Namespace) -> None:
    from ..data.artifact import EXPORTERS, load_distilled

    check_output(args.out, (*EXPORTERS, CONTACT_SHEET), "the output")
    ds = load_distilled(args.artifact)
    sheet = Path(args.out).suffix.lower() == CONTACT_SHEET
    path = write_clips(ds, args.out, args, **({} if sheet else {"per_row": args.per_row}))
    frames = ds.videos.shape[2]
    shown = "one row per clip with its class name" if sheet else f"at {args.fps:g} fps"
    print(f"{path}: {ds.num_classes} classes x IPC {ds.ipc} ({ds.method}), {frames} frames {shown}")


def cmd_grid(args: argparse.Namespace) -> None:
    from ..grid.cells import build_dataset_grid

    text = dataset_text(args)
    groups = build_dataset_grid(args.profile, text, shake=args.shake).groups()
    total = sum(len(specs) for specs in groups.values())
    data = f" on {args.dataset} ({args.root})" if text else ""
    print(f"grid of profile {args.profile!r}{data}: {total} runs")
    for group, specs in groups.items():
        print(f"{group} ({len(specs)})")
        if args.list:
            for spec in specs:
                print(f"  {spec.name()}")
    if not args.list:
        print("(add --list for the name of every run)")

"""The `tsgd` command line: data, teacher, distill, evaluate, export and grid.

Every command is a thin layer over `tsgd_core.grid.experiments` (and the modules it uses): it turns
flags into a `RunSpec` or a profile name, calls the library, prints a short summary and, when
asked, writes one output file atomically. Bad input (an IPC a class cannot give, a missing
file, a teacher for other classes, an unwritable output, a request too large for memory, ...)
ends with one line ``tsgd: error: ...`` on stderr and exit code 2, checked before the work starts
wherever it can be; an unexpected failure is one ``tsgd: internal error: ...`` line and exit code
1 (``TSGD_DEBUG=1`` shows the traceback); Ctrl-C says what was kept and exits with 130.

Under torchrun (`torchrun --nproc_per_node N -m tsgd_core.cli ...`) a command runs as one rank
of the job (see `tsgd_core.runtime.distributed`): the work is split over the ranks, and rank 0 alone
prints and writes files.

Heavy modules (torch and everything that uses it) are imported when the parser is built, not
at import time of this module; `tsgd_core.data.real_video` is imported only by `tsgd data --dataset`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .data.datasets import DATASET_KINDS
from .grid.spec import DISTILL_SWITCHES

# RunSpec fields that describe what is distilled (the flags shared by distill and evaluate).
SPEC_FLAGS = (
    "method",
    "ipc",
    "profile",
    "camera_shake",
    "tsgfa",
    "n_students",
    *DISTILL_SWITCHES,
)
PREVIEW_CLIPS_PER_CLASS = 4
BUG_REPORT_HINT = "this is a bug in tsgd: please report it with the command line (TSGD_DEBUG=1 shows the traceback)"
# The Python loader's advice, in the words of this command line
CLI_ADVICE = {
    "pass on_missing='skip'": "pass --on-missing skip",
    "pass annotations=<file or folder>": "pass --annotations PATH",
    "pass annotations=<folder>": "pass --annotations FOLDER",
    "and annotations at the split files": "and --annotations at the split files",
    "with classes=[...]": "with --classes NAME ...",
}


class CliError(ValueError):
    """A bad command line that argparse cannot see (a combination of flags, a file suffix)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``tsgd: error: ...`` and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"tsgd: error: {message} (see '{self.prog} --help')\n")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the epilog's line breaks; show defaults, except the None of unset optional flags."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or isinstance(action, argparse.BooleanOptionalAction):
            return action.help
        return super()._get_help_string(action)


# ----------------------------------------------------------------------------- small helpers


def fail(message: str) -> NoReturn:
    raise CliError(message)


def check_suffix(path: str | Path, suffixes: Sequence[str], flag: str) -> Path:
    """`path` must end in one of `suffixes` (checked before any work, so nothing is written)."""
    path = Path(path)
    if not any(path.name.lower().endswith(s) for s in suffixes):
        fail(f"{flag} {path} must end in {' or '.join(suffixes)}")
    return path


def image_size(text: str) -> tuple[int, int]:
    """'112' -> (112, 112); '128x171' -> (128, 171)."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(
            f"size must be N or HxW with positive integers, got {text!r}"
        )
    return size  # type: ignore[return-value]


def _parsed(text: str, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _parsed(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    value = _parsed(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = _parsed(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _parsed(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def probability(text: str) -> float:
    value = _parsed(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def frame_rate(text: str) -> float:
    from .data.artifact import MAX_FPS, MIN_FPS

    value = _parsed(text, float)
    if not MIN_FPS <= value <= MAX_FPS:
        raise argparse.ArgumentTypeError(
            f"must lie in [{MIN_FPS:g}, {MAX_FPS:g}] frames per second, got {text}"
        )
    return value


INT_TYPES = (int, positive_int, nonnegative_int)


def device_arg(text: str) -> str:
    """--device: auto, cpu or cuda[:N] that this machine has (checked when parsed)."""
    from .runtime import resolve_device

    try:
        resolve_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(one_line(error)) from None
    return text


def path_arg(text: str) -> str:
    """A file or folder flag: `~` expanded (as a shell does for a bare `~/x`); empty refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty path: give a file or folder name (or leave the flag out)"
        )
    return os.path.expanduser(text)


def check_output(path: str | Path, suffixes: Sequence[str], flag: str) -> Path:
    """An output file with the right suffix, in a place we can write: checked before any work."""
    from .data.storage import check_writable_file

    check_suffix(path, suffixes, flag)
    return check_writable_file(path, flag)


def check_cache_dir(args: argparse.Namespace) -> None:
    from .data.storage import check_writable_dir, sweep_cache

    check_writable_dir(args.cache_dir, "--cache-dir")
    sweep_cache(args.cache_dir)  # what a killed run (kill -9) left half-written


def percent(acc: float) -> str:
    return f"{100 * acc:.1f}"


def flag_name(field: str) -> str:
    """The command-line flag of a RunSpec field."""
    return "--seed" if field == "distill_seed" else "--" + field.replace("_", "-")


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def class_count_text(counts: Sequence[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low} per class" if low == high else f"{low}-{high} per class"


# ----------------------------------------------------------------------------- tsgd data


def cmd_data(args: argparse.Namespace) -> None:
    from .data.artifact import EXPORTERS

    if args.preview:
        check_output(args.preview, tuple(EXPORTERS), "--preview")
    text = dataset_text(args)
    if not text:
        splits, descriptions = benchmark_splits(args)
    else:
        check_cache_dir(args)
        splits, descriptions = prepare_dataset(args, text, announce=False), {}
    print_splits(splits, descriptions)
    if args.preview:
        from .data.artifact import export

        clips = preview_clips(splits.train, args.preview_clips)
        path = export(clips, args.preview, fps=args.fps, scale=args.scale)
        print(
            f"preview: {path} ({len(clips)} training clips, up to {args.preview_clips} "
            "per class, one row per class)"
        )


def benchmark_splits(args: argparse.Namespace):
    from .data.synthetic import describe_motion_classes
    from .grid.profiles import load_data

    splits = load_data(args.profile, args.camera_shake)
    descriptions = describe_motion_classes(splits.num_classes)
    return splits, descriptions


def dataset_text(args: argparse.Namespace) -> str:
    """The DataSpec text of --dataset and its options ("" for the built-in benchmark)."""
    from .data.datasets import DataSpec, clip_geometry

    if args.dataset is None:
        for flag in DATASET_ONLY_FLAGS:
            if getattr(args, flag.lstrip("-").replace("-", "_"), None) is not None:
                fail(
                    f"{flag} applies to a real dataset: add --dataset "
                    f"(one of {', '.join(DATASET_KINDS)})"
                )
        return ""
    if args.root is None:
        fail(
            f"--dataset {args.dataset} needs --root PATH "
            "(the folder of your copy; nothing is downloaded)"
        )
    if getattr(args, "camera_shake", None):
        fail("--camera-shake applies to the built-in benchmark, not to --dataset")
    profile = getattr(args, "profile", None) or "default"
    frames, height, width = clip_geometry(profile, args.dataset)
    spec = DataSpec(
        kind=args.dataset,
        root=str(Path(args.root).expanduser().resolve()),
        frames=args.frames or frames,
        size=args.size or (height, width),
        split=args.data_split or 1,
        classes=tuple(args.classes or ()),
        max_per_class=args.max_per_class,
        val_fraction=0.1 if args.val_fraction is None else args.val_fraction,
        backend=args.backend or "auto",
        annotations=str(Path(args.annotations).expanduser().resolve())
        if args.annotations
        else None,
        on_missing=args.on_missing or "error",
    )
    return spec.to_text()


def prepare_dataset(args: argparse.Namespace, text: str, announce: bool = True):
    """Decode the dataset into the cache (parallel, resumable) before any training."""
    from .data.datasets import DataSpec

    spec = DataSpec.from_text(text)
    splits = spec.load(args.cache_dir, progress=not args.quiet, workers=args.decode_workers)
    if announce:
        print(
            f"dataset: {spec.label()}: {len(splits.train)} train / {len(splits.val)} val / "
            f"{len(splits.test)} test clips, {splits.num_classes} classes"
        )
    return splits


def print_splits(splits: Any, descriptions: dict[str, str]) -> None:
    c, t, h, w = splits.clip_shape
    print(f"dataset: {splits.name}")
    print(f"clip shape: (C, T, H, W) = ({c}, {t}, {h}, {w})")
    print(f"classes: {splits.num_classes}")
    for part in ("train", "val", "test"):
        clips = getattr(splits, part)
        counts = class_count_text(clips.class_counts().tolist())
        print(f"  {part:5s}: {len(clips):6d} clips ({counts})")
    for i, name in enumerate(splits.class_names):
        note = f": {descriptions[name]}" if name in descriptions else ""
        print(f"  {i:3d} {name}{note}")


def preview_clips(data: Any, per_class: int) -> Any:
    """The first `per_class` clips of every class (fewer where a class has fewer)."""
    import torch

    index = torch.cat([data.indices_of_class(c)[:per_class] for c in range(data.num_classes)])
    return data.subset(index)


# ----------------------------------------------------------------------------- tsgd teacher


def cmd_teacher(args: argparse.Namespace) -> None:
    from .data.storage import save_json
    from .grid.experiments import get_teacher
    from .runtime import resolve_device
    from .training.teacher import teacher_path

    if args.out:
        check_output(args.out, (".json",), "--out")
    check_cache_dir(args)
    resolve_device(args.device)
    text = dataset_text(args)
    if text:
        prepare_dataset(args, text)
    _, info = get_teacher(
        args.profile,
        args.camera_shake,
        dataset=text,
        cache_dir=args.cache_dir,
        device=args.device,
        progress=not args.quiet,
    )
    path = teacher_path(args.cache_dir, info.key)
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
        blob = {
            **asdict(info),
            "checkpoint": str(path),
            "profile": args.profile,
            "camera_shake": args.camera_shake,
            "dataset": text,
        }
        print(f"  info:           {save_json(blob, args.out)}")


# ----------------------------------------------------------------------------- distill / evaluate


def given_spec_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The RunSpec fields set on the command line (unset flags keep RunSpec's defaults)."""
    return {
        name: getattr(args, name) for name in SPEC_FLAGS if getattr(args, name, None) is not None
    }


def build_spec(params: dict[str, Any]) -> Any:
    """A RunSpec, checked: method, IPC, profile, split and the saliency parameters."""
    from .grid.spec import spec_from_params

    spec = spec_from_params(**params)
    spec.saliency()  # validates k, alpha, eps, beta, spatial_pool now, not after training
    return spec


def check_spec_data(spec: Any, cache_dir: str | Path = "cache") -> None:
    """IPC against the training split, before any teacher is trained (the data is cheap)."""
    from .grid.profiles import get_profile, load_data
    from .methods.selection import SELECTION_METHODS, check_ipc
    from .runtime.budget import check_distill_fits

    train = load_data(
        spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir
    ).train
    # selection picks real clips and real init starts from them; noise init needs none
    if spec.method in SELECTION_METHODS or spec.init == "real":
        check_ipc(train, spec.ipc)
    prof = get_profile(spec.profile)
    width = prof.student.model.width if spec.method == "dm" else prof.teacher_model.width
    check_distill_fits(spec.method, spec.ipc, train.num_classes, train.clip_shape, width)


def spec_params(args: argparse.Namespace) -> dict[str, Any]:
    """The RunSpec fields of the flags, with the dataset decoded into the cache first."""
    params = given_spec_flags(args)
    text = dataset_text(args)
    if text:
        prepare_dataset(args, text)
        params["dataset"] = text
    return params


def cmd_distill(args: argparse.Namespace) -> None:
    from .data.artifact import SUFFIX, save_distilled
    from .grid.experiments import distilled_path, get_teacher, make_distilled
    from .runtime import resolve_device

    if args.out:
        check_output(args.out, (SUFFIX,), "--out")
    check_cache_dir(args)
    resolve_device(args.device)
    spec = build_spec(spec_params(args))
    check_spec_data(spec, args.cache_dir)
    _, teacher = get_teacher(
        spec.profile,
        spec.camera_shake,
        dataset=spec.dataset,
        cache_dir=args.cache_dir,
        device=args.device,
        progress=not args.quiet,
    )
    cached = distilled_path(spec, teacher.key, args.cache_dir)
    was_cached = cached.is_file()
    ds = make_distilled(spec, cache_dir=args.cache_dir, device=args.device, progress=not args.quiet)
    print(
        f"{spec.name()}: {len(ds.labels)} clips ({ds.num_classes} classes x IPC {ds.ipc}) "
        f"of shape {tuple(ds.videos.shape[1:])}, teacher {ds.teacher_key}"
    )
    print(f"  distillation:   {cost_text(ds.config)}{' (from the cache)' if was_cached else ''}")
    print(f"  cached set:     {cached}")
    if args.out:
        print(f"  saved:          {save_distilled(ds, args.out)}")


def cost_text(config: dict[str, Any]) -> str:
    wall, peak = config.get("distill_wall_s"), config.get("distill_peak_mb")
    if wall is None:
        return "time not recorded"
    return f"{wall:.1f} s, peak {peak:.0f} MB" if peak is not None else f"{wall:.1f} s"


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .runtime import resolve_device

    if args.out:
        check_output(args.out, (".json",), "--out")
    check_cache_dir(args)
    resolve_device(args.device)
    start = time.perf_counter()
    if args.artifact:
        spec, ds, results = evaluate_artifact(args)
    else:
        spec, ds, results = evaluate_new_spec(args)
    print_results(spec, results, time.perf_counter() - start)
    if args.out:
        from .data.storage import save_json
        from .grid.experiments import record

        row = {
            **record(spec, ds, results),
            "artifact": str(args.artifact) if args.artifact else None,
        }
        print(f"results: {save_json(row, args.out)}")


def eval_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.labels is not None:
        out["labels"] = tuple(dict.fromkeys(args.labels))  # repeated modes once
    if args.split is not None:
        out["eval_split"] = args.split
    return out


def evaluate_new_spec(args: argparse.Namespace):
    """Distil (or load from the cache) the set of the spec flags, then evaluate it (cached)."""
    from .grid.experiments import evaluate_spec, make_distilled

    spec = build_spec({**spec_params(args), **eval_overrides(args)})
    check_spec_data(spec, args.cache_dir)
    progress = not args.quiet
    ds = make_distilled(spec, cache_dir=args.cache_dir, device=args.device, progress=progress)
    results = evaluate_spec(
        spec, ds, cache_dir=args.cache_dir, device=args.device, progress=progress
    )
    return spec, ds, results


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
    return build_spec({**stored, **eval_overrides(args)})


def evaluate_artifact(args: argparse.Namespace):
    """Evaluate the set in a file with the protocol, using the cached teacher of its profile.

    Evaluations are cached by the spec and the contents of the set, so an evaluation of the same
    file (or of the same clips under another name) is not repeated.
    """
    from .data.artifact import load_distilled
    from .grid.experiments import evaluate_spec

    path = Path(args.artifact)
    ds = load_distilled(path)
    spec = artifact_spec(ds, path, args)
    check_artifact_fits(ds, spec, path, args)
    results = evaluate_spec(
        spec, ds, cache_dir=args.cache_dir, device=args.device, progress=not args.quiet
    )
    return spec, ds, results


def check_artifact_fits(ds: Any, spec: Any, path: Path, args: argparse.Namespace) -> None:
    """Before any teacher or student is trained: the set's classes and clip shape against the
    data of its spec, and the teacher it records against the one that would relabel it."""
    from .grid.profiles import load_data

    data = load_data(
        spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=args.cache_dir
    )
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
    if ds.teacher_key is None:
        return
    expected, matching_threads = relabel_teacher_key(spec, data, args.device, ds.teacher_key)
    if ds.teacher_key == expected:
        return
    hint = (
        f"run with OMP_NUM_THREADS={matching_threads} (the teacher's weights depend on the CPU "
        "thread count)"
        if matching_threads
        else f"evaluate it with the --cache-dir that holds teacher {ds.teacher_key}"
    )
    fail(
        f"{path} was distilled with teacher {ds.teacher_key}, but here its profile "
        f"{spec.profile!r} would be relabelled by teacher {expected}: {hint}, or distil the set "
        "again"
    )


def relabel_teacher_key(spec: Any, data: Any, device: str, recorded: str) -> tuple[str, int | None]:
    """The key of the teacher `experiments.get_teacher` would load or train for `spec` here
    (without training it), and a CPU thread count that gives the `recorded` key, if one does."""
    import torch

    from .grid.experiments import teacher_recipe
    from .runtime import resolve_device
    from .training.teacher import teacher_key, training_threads

    model_cfg, fit, balanced = teacher_recipe(spec.profile, data, spec.dataset)

    def key(threads: int | None) -> str:
        return teacher_key(data, model_cfg, fit, True, balanced, threads)

    threads = training_threads(resolve_device(device))
    others = range(1, max(torch.get_num_threads(), os.cpu_count() or 1, 8) + 1)
    matching = next((n for n in others if threads is not None and key(n) == recorded), None)
    return key(threads), matching


def print_results(spec: Any, results: dict[str, Any], wall_s: float) -> None:
    print(f"{spec.name()} on the {spec.eval_split} split (augment {spec.eval_augment}):")
    for labels, res in results.items():
        print(
            f"  {labels:4s} labels: {percent(res.mean)} ± {percent(res.std)} % "
            f"over {len(res.accs)} seeds ({res.num_train} training clips; "
            f"{sum(res.wall_s):.1f} s, peak {max(res.peak_mb):.0f} MB)"
        )
    print(f"  this command took {wall_s:.1f} s")


# ----------------------------------------------------------------------------- export and grid


def cmd_export(args: argparse.Namespace) -> None:
    from .data.artifact import EXPORTERS, export, load_distilled

    check_output(args.out, tuple(EXPORTERS), "the output")
    ds = load_distilled(args.artifact)
    path = export(ds, args.out, fps=args.fps, scale=args.scale, per_row=args.per_row)
    frames = ds.videos.shape[2]
    print(
        f"{path}: {ds.num_classes} classes x IPC {ds.ipc} ({ds.method}), "
        f"{frames} frames at {args.fps:g} fps"
    )


def cmd_grid(args: argparse.Namespace) -> None:
    from .grid.cells import build_dataset_grid

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


# ----------------------------------------------------------------------------- the parser

EXAMPLES = {
    "data": """examples:
  tsgd data --profile quick
  tsgd data --profile default --camera-shake 0.5 --preview motion.gif
  tsgd data --dataset miniucf --root ~/data/UCF101 --frames 8 --size 112 --preview ucf.gif
  tsgd data --dataset ucf101 --root ~/data/UCF101 --classes ApplyEyeMakeup Biking --workers 8""",
    "teacher": """examples:
  tsgd teacher --profile quick
  tsgd teacher --profile default --device cuda --out teacher.json
  torchrun --standalone --nproc_per_node 2 -m tsgd_core.cli teacher --profile default
  tsgd teacher --profile real-cpu --dataset ucf101 --root ~/data/UCF101 --max-per-class 40""",
    "distill": """examples:
  tsgd distill --method tsgd --ipc 1 --profile quick --out tsgd_ipc1.tsgd.pt
  tsgd distill --method random --ipc 5 --profile default --out random_ipc5.tsgd.pt
  tsgd distill --method tsgd --ipc 5 --no-tsgfo --init noise --seed 1
  torchrun --standalone --nproc_per_node 2 -m tsgd_core.cli distill --method tsgd --ipc 10
  tsgd distill --method tsgd --ipc 1 --profile literature --dataset miniucf --root ~/data/UCF101""",
    "evaluate": """examples:
  tsgd evaluate tsgd_ipc1.tsgd.pt --labels soft hard --out results.json
  tsgd evaluate --method herding --ipc 5 --profile quick --labels hard
  tsgd evaluate --method tsgd --ipc 5 --k 2 --split val --labels soft
  tsgd evaluate --method tsgd --ipc 1 --profile real-cpu --dataset hmdb51 --root ~/data/hmdb51""",
    "export": """examples:
  tsgd export tsgd_ipc1.tsgd.pt tsgd_ipc1.gif
  tsgd export tsgd_ipc1.tsgd.pt tsgd_ipc1.mp4 --fps 8 --scale 8""",
    "grid": """examples:
  tsgd grid --profile quick --list
  tsgd grid --profile default
  tsgd grid --profile real-cpu --dataset ucf101 --root ~/data/UCF101 --list""",
}


def common_options(cache_help: str, device: bool = True) -> argparse.ArgumentParser:
    """--cache-dir, --quiet and (for the commands that train) --device."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", type=path_arg, default="cache", help=cache_help)
    if device:
        common.add_argument(
            "--device",
            type=device_arg,
            default="auto",
            metavar="auto|cpu|cuda",
            help="auto takes a CUDA GPU when there is one",
        )
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    if device:
        common.add_argument(
            "--channels-last",
            action="store_true",
            help="train in the channels_last_3d memory format on CUDA (ignored on the CPU)",
        )
    return common


def add_spec_options(
    parser: argparse.ArgumentParser, profiles: Sequence[str], methods: Sequence[str]
) -> None:
    """The RunSpec fields as flags of the same names (unset: RunSpec's default)."""
    from .grid.spec import PIXEL_SOURCES, RunSpec
    from .methods.distill import INITS, LR_SCHEDULES, MODULATIONS, SALIENCY_SOURCES
    from .methods.salient import PACKINGS
    from .methods.salient import WINDOW_CHOICES as WINDOWS
    from .training.saliency import ALPHAS

    default = {f.name: f.default for f in fields(RunSpec)}

    def add(group: Any, flag: str, field: str, text: str, **kwargs: Any) -> None:
        if "type" in kwargs:
            kwargs["metavar"] = "N" if kwargs["type"] in INT_TYPES else "X"
        group.add_argument(
            flag, dest=field, default=None, help=f"{text} (default: {default[field]})", **kwargs
        )

    run = parser.add_argument_group("what to distil (a RunSpec)")
    add(run, "--method", "method", "selection baseline or distillation method", choices=methods)
    add(run, "--ipc", "ipc", "clips per class", type=positive_int)
    add(run, "--profile", "profile", "data, teacher and budget sizes", choices=profiles)
    add(
        run,
        "--camera-shake",
        "camera_shake",
        "global camera motion of the benchmark clips",
        type=nonnegative_float,
    )
    add(run, "--seed", "distill_seed", "seed of the selection / distillation", type=nonnegative_int)
    switch = argparse.BooleanOptionalAction
    tsgd = parser.add_argument_group("TSGD switches (used by tsgd, sre2l and dm where they apply)")
    add(tsgd, "--tsgfo", "tsgfo", "saliency-filtered optimisation", action=switch)
    add(tsgd, "--tsgfa", "tsgfa", "saliency-guided augmentation of the students", action=switch)
    add(tsgd, "--init", "init", "start from real clips or from noise", choices=INITS)
    add(tsgd, "--modulation", "modulation", "filter per pixel or per frame", choices=MODULATIONS)
    add(tsgd, "--lowpass", "lowpass", "also low-pass the update along time", action=switch)
    add(
        tsgd,
        "--saliency-source",
        "saliency_source",
        "saliency of the synthetic clip or of its real init",
        choices=SALIENCY_SOURCES,
    )
    add(tsgd, "--k", "k", "temporal half-window of the saliency smoothing", type=nonnegative_int)
    add(tsgd, "--alpha", "alpha", "smoothing weights", choices=ALPHAS)
    add(tsgd, "--eps", "eps", "saliency normalisation epsilon", type=positive_float)
    add(tsgd, "--beta", "beta", "saliency floor in [0, 1]", type=probability)
    add(
        tsgd,
        "--spatial-pool",
        "spatial_pool",
        "odd spatial pooling of the saliency (1 = off)",
        type=positive_int,
    )
    add(tsgd, "--r-bn", "r_bn", "weight of the BatchNorm statistics loss", type=nonnegative_float)
    recover = parser.add_argument_group(
        "recovery settings (unset: what the tuning stage chose, src tsgd_core/tuned.json)"
    )
    add(
        recover,
        "--lr",
        "lr",
        "Adam's pixel learning rate of TSGD / SRe2L-style",
        type=positive_float,
    )
    add(recover, "--iterations", "iterations", "recover / DM iterations", type=nonnegative_int)
    add(recover, "--lr-schedule", "lr_schedule", "pixel lr schedule", choices=LR_SCHEDULES)
    add(recover, "--first-bn", "first_bn", "weight of the first BN layer", type=nonnegative_float)
    add(
        recover,
        "--recover-augment",
        "recover_augment",
        "differentiable augmentation while recovering",
        action=switch,
    )
    add(recover, "--dm-lr", "dm_lr", "DM's pixel learning rate (SGD)", type=positive_float)
    add(recover, "--window", "window", "Salient windows: how windows are placed", choices=WINDOWS)
    add(recover, "--pack", "pack", "Salient windows: how windows are packed", choices=PACKINGS)
    add(
        recover,
        "--train-pixels",
        "train_pixels",
        "students train on the set's pixels or its start set's (control)",
        choices=PIXEL_SOURCES,
    )
    add(
        recover,
        "--label-pixels",
        "label_pixels",
        "the teacher's soft labels of the set's pixels or its start set's (control)",
        choices=PIXEL_SOURCES,
    )
    add(
        recover,
        "--students",
        "n_students",
        "the first N of the profile's student seeds",
        type=positive_int,
    )


# flags that mean nothing without --dataset
DATASET_ONLY_FLAGS = (
    "--root",
    "--frames",
    "--size",
    "--data-split",
    "--classes",
    "--max-per-class",
    "--val-fraction",
    "--backend",
    "--annotations",
    "--on-missing",
)


def add_dataset_options(
    parser: argparse.ArgumentParser,
    official_split_flag: bool = False,
    workers_flag: str = "--workers",
) -> None:
    """--dataset KIND --root DIR and the loader's options (a DataSpec).

    `workers_flag` names the decoding threads' flag (run_grid's --workers are grid workers).
    """
    from .data.real_video import BACKENDS

    data = parser.add_argument_group("real dataset (default: the built-in motion benchmark)")
    data.add_argument("--dataset", choices=DATASET_KINDS, help="use a real dataset from --root")
    data.add_argument(
        "--root",
        type=path_arg,
        metavar="DIR",
        help="folder of the real dataset (nothing is downloaded)",
    )
    data.add_argument(
        "--frames",
        type=positive_int,
        metavar="N",
        help="frames per clip (default: the profile's; literature: per dataset)",
    )
    data.add_argument(
        "--size", type=image_size, metavar="N|HxW", help="frame size (default: the profile's)"
    )
    # --split of `tsgd evaluate` picks val or test; this is the dataset's own split number
    splits = ("--data-split", "--split") if official_split_flag else ("--data-split",)
    data.add_argument(
        *splits,
        dest="data_split",
        type=int,
        choices=(1, 2, 3),
        help="official split 1-3 (UCF101, MiniUCF, HMDB51)",
    )
    data.add_argument("--classes", nargs="+", metavar="CLASS", help="keep only these classes")
    data.add_argument(
        "--max-per-class",
        type=positive_int,
        metavar="N",
        help="at most this many videos per class and split",
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        metavar="X",
        help="share of each training class held out (0.1)",
    )
    data.add_argument("--backend", choices=BACKENDS, help="video decoder (auto: decord, else PyAV)")
    data.add_argument(
        "--annotations",
        type=path_arg,
        metavar="DIR",
        help="folder of the split files when not in the usual place",
    )
    data.add_argument(
        "--on-missing", choices=("error", "skip"), help="videos named by a split file but absent"
    )
    data.add_argument(
        workers_flag,
        dest="decode_workers",
        type=positive_int,
        metavar="N",
        help="decoding threads (default: CPU cores, at most 8)",
    )


def add_preview_options(parser: argparse.ArgumentParser) -> None:
    from .data.artifact import MAX_FPS, MIN_FPS

    parser.add_argument(
        "--fps",
        type=frame_rate,
        default=4,
        help=f"frames per second of the animation ({MIN_FPS:g} to {MAX_FPS:g})",
    )
    parser.add_argument(
        "--scale", type=positive_int, default=4, help="pixel upscaling of every clip"
    )


def build_parser() -> argparse.ArgumentParser:
    from .grid.cells import DEFAULT_SHAKE
    from .grid.profiles import METHODS, PROFILES
    from .training.evaluate import LABEL_MODES

    profiles, methods = tuple(PROFILES), tuple(METHODS)
    parser = _Parser(
        prog="tsgd",
        description="Video dataset distillation with Temporal Saliency-Guided Distillation (TSGD).",
        epilog="Run 'tsgd COMMAND --help' for the options and examples of a command.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"tsgd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options("where teachers, sets and results are cached")

    def command(
        name: str, text: str, parents: Sequence[argparse.ArgumentParser] = ()
    ) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=text,
            description=text,
            epilog=EXAMPLES[name],
            formatter_class=_Formatter,
            parents=list(parents),
        )

    data = command(
        "data",
        "describe the built-in motion benchmark or a real video dataset",
        [common_options("decoded real clips are cached in its videos/ folder", device=False)],
    )
    data.add_argument(
        "--profile", choices=profiles, default="default", help="size of the built-in benchmark"
    )
    data.add_argument(
        "--camera-shake",
        type=nonnegative_float,
        default=0.0,
        help="global camera motion of the benchmark",
    )
    add_dataset_options(data, official_split_flag=True)
    data.add_argument(
        "--preview",
        type=path_arg,
        metavar="OUT.gif",
        help="write a GIF (or .mp4) grid of training clips per class",
    )
    data.add_argument(
        "--preview-clips",
        type=positive_int,
        default=PREVIEW_CLIPS_PER_CLASS,
        help="clips per class in the preview",
    )
    add_preview_options(data)
    data.set_defaults(func=cmd_data)

    teacher = command(
        "teacher", "train (or load from the cache) the teacher of a profile", [common]
    )
    teacher.add_argument(
        "--profile", choices=profiles, default="default", help="data and teacher sizes"
    )
    teacher.add_argument(
        "--camera-shake",
        type=nonnegative_float,
        default=0.0,
        help="global camera motion of the benchmark",
    )
    teacher.add_argument(
        "--out", type=path_arg, metavar="PATH.json", help="also write the teacher's info as JSON"
    )
    add_dataset_options(teacher)
    teacher.set_defaults(func=cmd_teacher)

    distill = command("distill", "distil (or select) a set and keep it in the cache", [common])
    add_spec_options(distill, profiles, methods)
    add_dataset_options(distill)
    distill.add_argument(
        "--out", type=path_arg, metavar="PATH.tsgd.pt", help="save a copy of the distilled set here"
    )
    distill.set_defaults(func=cmd_distill)

    evaluate = command("evaluate", "train students on a set and test them (the protocol)", [common])
    evaluate.add_argument(
        "artifact",
        nargs="?",
        type=path_arg,
        metavar="PATH.tsgd.pt",
        help="a saved set; without it the set of the spec flags is distilled (cached)",
    )
    evaluate.add_argument(
        "--labels",
        nargs="+",
        choices=LABEL_MODES,
        help="teacher soft labels and/or hard class labels (default: soft hard)",
    )
    evaluate.add_argument(
        "--split",
        choices=("test", "val"),
        help="test, or val for tuning without touching test (default: test)",
    )
    evaluate.add_argument(
        "--out", type=path_arg, metavar="PATH.json", help="write the results as JSON"
    )
    add_spec_options(evaluate, profiles, methods)
    add_dataset_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    export = command(
        "export", "write a saved set as a watchable GIF or MP4 grid (classes x instances)"
    )
    export.add_argument("artifact", type=path_arg, metavar="PATH.tsgd.pt", help="the saved set")
    export.add_argument(
        "out",
        type=path_arg,
        metavar="OUT.gif|OUT.mp4",
        help="the animation to write (format by suffix)",
    )
    add_preview_options(export)
    export.add_argument(
        "--per-row", type=positive_int, help="cells per row instead of one row per class"
    )
    export.set_defaults(func=cmd_export)

    grid = command(
        "grid",
        "show the runs of the report's grid for a profile",
        [common_options("cache", device=False)],
    )
    grid.add_argument("--profile", choices=profiles, default="default", help="profile of the grid")
    grid.add_argument(
        "--shake",
        type=nonnegative_float,
        default=DEFAULT_SHAKE,
        help="camera shake of the shake group",
    )
    grid.add_argument("--list", action="store_true", help="print every run's name, grouped")
    add_dataset_options(grid)
    grid.set_defaults(func=cmd_grid)
    return parser


def run_command(args: argparse.Namespace) -> None:
    """Run the command; under torchrun as one rank of the job, with rank 0 printing and writing."""
    from .runtime.budget import memory_limit_override
    from .runtime.distributed import launched_by_torchrun, process_group
    from .training.train import CHANNELS_LAST_ENV

    memory_limit_override()  # a bad TSGD_MEMORY_LIMIT_MB is one line before any work
    if getattr(args, "channels_last", False):
        os.environ[CHANNELS_LAST_ENV] = "1"
    if not launched_by_torchrun():
        args.func(args)
        return
    with process_group(getattr(args, "device", "auto")) as ctx:
        if ctx.is_main:
            args.func(args)
            return
        for name in ("out", "preview"):  # files are written by rank 0
            if hasattr(args, name):
                setattr(args, name, None)
        args.quiet = True
        with contextlib.redirect_stdout(io.StringIO()):
            args.func(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tsgd` with `argv` (default: sys.argv[1:]); returns the exit code.

    0: done; 2: bad input or an environment problem (one line); 1: an internal error (one line
    and a hint to report it); 130: interrupted with Ctrl-C (one line saying what was kept).
    """
    args = None
    try:
        with one_line_warnings():
            parser = build_parser()
            try:
                args = parser.parse_args(argv)
            except SystemExit as exit_:  # --help, --version and argparse errors
                return exit_.code if isinstance(exit_.code, int) else 2
            run_command(args)
    except KeyboardInterrupt:
        bar_open = args is not None and not getattr(args, "quiet", True)
        newline = "\n" if bar_open else ""  # end a progress bar's line first
        print(f"{newline}tsgd: interrupted: {kept_after_interrupt(args)}", file=sys.stderr)
        return 130
    except Exception as error:
        code, text = error_line(error)
        if code == 1 and os.environ.get("TSGD_DEBUG"):
            raise
        print(text, file=sys.stderr)
        return code
    return 0


def error_line(error: BaseException) -> tuple[int, str]:
    """The exit code and the one line for an exception that ends a command."""
    from .data.clips import DataError

    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return 2, (
            f"tsgd: error: out of memory ({one_line(error)[:200]}): lower the IPC, frames, "
            "frame size or scale, or use a machine with more memory"
        )
    if isinstance(error, OSError):
        return 2, f"tsgd: error: {os_error_text(error)}"
    if isinstance(error, ValueError | DataError):
        return 2, f"tsgd: error: {cli_advice(one_line(error))}"
    return (
        1,
        f"tsgd: internal error: {type(error).__name__}: {one_line(error)[:300]}; {BUG_REPORT_HINT}",
    )


def os_error_text(error: OSError) -> str:
    """'cannot write /x/y: Permission denied' style text; the path is always named when known."""
    reason = error.strerror or one_line(error)
    if error.filename is None:
        return reason
    target = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 else "")
    return f"{target}: {reason}"


def cli_advice(text: str) -> str:
    for python, cli in CLI_ADVICE.items():
        text = text.replace(python, cli)
    return text


def kept_after_interrupt(args: argparse.Namespace | None) -> str:
    command = getattr(args, "command", None)
    if command in ("teacher", "distill", "evaluate"):
        return (
            f"finished steps (teacher, distilled sets, evaluations) are kept in {args.cache_dir}; "
            "nothing half-written was left: run the same command again to resume"
        )
    if command == "data" and getattr(args, "dataset", None):
        return (
            f"the videos decoded so far are kept in {args.cache_dir}/videos (checkpointed every "
            "few seconds): run the same command again to continue the decode"
        )
    return "nothing was written"


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Warnings as 'tsgd: warning: ...' lines on stderr (not file, line and source) meanwhile."""

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        print(f"tsgd: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show  # restored by catch_warnings
        yield


if __name__ == "__main__":
    sys.exit(main())

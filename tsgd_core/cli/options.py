"""Flags of the command line: value types that fail with one clear line, the option groups
shared by commands, and the real-dataset options."""

from __future__ import annotations

import argparse
import math
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from ..data.clips import DataError
from ..data.datasets import DATASET_KINDS
from ..grid.spec import DISTILL_SWITCHES

# RunSpec fields that describe what is distilled (the flags shared by distill and evaluate).


# RunSpec fields that describe what is distilled (the flags shared by distill and evaluate).
SPEC_FLAGS = (
    "method",
    "ipc",
    "profile",
    "camera_shake",
    "student_augment",
    "n_students",
    "precision",
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
    "(classes=[...])": "(--classes)",
    "(max_per_class)": "(--max-per-class)",
    "(val_fraction)": "(--val-fraction)",
    "hard labels (labels='hard')": "--labels hard",
    "use device='cpu' or 'auto'": "use --device cpu or auto",
    "or use device='cpu'": "or use --device cpu",
    "train one with load_or_train_teacher": "train one with `tsgd teacher`",
    "distil it again or re-save it with save_distilled": "distil it again (tsgd distill --out)",
    "create it with save_distilled": "create it with `tsgd distill --out`",
    "written by save_distilled": "written by `tsgd distill --out`",
}


def cli_words(text: str) -> str:
    """A library message in the words of this command line (its flags for the API's names)."""
    for python, cli in CLI_ADVICE.items():
        text = text.replace(python, cli)
    return text


class CliError(DataError):
    """A bad command line that argparse cannot see (a combination of flags, a file suffix)."""


@contextmanager
def checked_input(prefix: str = "") -> Iterator[None]:
    """Meanwhile the library's ValueErrors are refusals of what the user gave (bad input,
    exit 2): for the checks before the work. A ValueError raised during the work stays a bug."""
    try:
        yield
    except DataError:
        raise
    except ValueError as error:
        raise CliError(f"{prefix}{one_line(error)}") from error


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``tsgd: error: ...`` and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"tsgd: error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the epilog's line breaks; show defaults, except the None of unset optional flags."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or isinstance(action, argparse.BooleanOptionalAction):
            return action.help
        return super()._get_help_string(action)


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
    from ..grid.spec import out_of_range, range_text

    if len(size) != 2 or any(out_of_range("size", side) for side in size):
        raise argparse.ArgumentTypeError(
            f"size must be N or HxW, each side {range_text('size')}, got {text!r}"
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


def nonnegative_float(text: str) -> float:
    value = _parsed(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def frame_rate(text: str) -> float:
    from ..grid.spec import out_of_range, range_text

    value = _parsed(text, float)
    if out_of_range("fps", value):
        raise argparse.ArgumentTypeError(
            f"must be {range_text('fps')} frames per second, got {text}"
        )
    return value


def field_value(field: str) -> Any:
    """The flag type of a RunSpec field or another numeric flag: parsed, then checked against
    its FIELD_RANGES / FLAG_RANGES entry."""
    from ..grid.spec import FIELD_RANGES, FLAG_RANGES, out_of_range, range_text

    integer = (FIELD_RANGES | FLAG_RANGES)[field][2]

    def parse(text: str) -> int | float:
        value = _parsed(text, int if integer else float)
        if out_of_range(field, value):
            raise argparse.ArgumentTypeError(f"must be {range_text(field)}, got {text}")
        return value

    parse.integer = integer  # type: ignore[attr-defined]
    parse.__name__ = field  # argparse names the type in some messages
    return parse


def device_arg(text: str) -> str:
    """--device: auto, cpu or cuda[:N] that this machine has (checked when parsed)."""
    from ..runtime import resolve_device

    try:
        resolve_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(cli_words(one_line(error))) from None
    return text


def path_arg(text: str) -> str:
    """A file or folder flag: `~` expanded, empty refused (runtime.paths, the one path check)."""
    from ..runtime.paths import path_type

    return path_type(text)


def check_output(path: str | Path, suffixes: Sequence[str], flag: str) -> Path:
    """An output file with the right suffix, in a place we can write: checked before any work."""
    from ..data.storage import check_writable_file

    check_suffix(path, suffixes, flag)
    with checked_input():
        return check_writable_file(path, flag)


# the cache's entry folders each command writes (besides the decoded videos of --dataset)
CACHE_WRITES = {
    "data": (),
    "teacher": ("teachers",),
    "distill": ("teachers", "distilled"),
    "evaluate": ("teachers", "distilled", "evals"),
}


def check_cache_dir(args: argparse.Namespace) -> None:
    """--cache-dir and the entry folders in it that this command will write are writable
    (a read-only `distilled/` in a writable cache is found now, not after the work)."""
    from ..data.datasets import VIDEO_CACHE
    from ..data.storage import check_writable_dir, sweep_cache

    folders = CACHE_WRITES.get(args.command, ())
    if getattr(args, "dataset", None):
        folders = (*folders, VIDEO_CACHE)
    with checked_input():
        check_writable_dir(args.cache_dir, "--cache-dir", folders)
    sweep_cache(args.cache_dir)  # what a killed run (kill -9) left half-written


def percent(acc: float) -> str:
    return f"{100 * acc:.1f}"


def flag_name(field: str) -> str:
    """The command-line flag of a RunSpec field."""
    return SPEC_FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def printable(text: str) -> str:
    """`text` with control and format characters (ANSI escapes, carriage returns, bidi
    overrides) written as escapes, so names read from files cannot drive the terminal."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if _is_control(ch) else ch for ch in text
    )


def _is_control(ch: str) -> bool:
    return ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf")


def class_count_text(counts: Sequence[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low} per class" if low == high else f"{low}-{high} per class"


def dataset_text(args: argparse.Namespace) -> str:
    """The DataSpec text of --dataset and its options ("" for the built-in benchmark)."""
    from ..data.datasets import DataSpec, clip_geometry

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
        sampling=getattr(args, "sampling", None) or "spread",
        group_pattern=getattr(args, "group_pattern", None),
    )
    return spec.to_text()


def prepare_dataset(args: argparse.Namespace, text: str, announce: bool = True):
    """Decode the dataset into the cache (parallel, resumable) before any training."""
    from ..data.datasets import DataSpec

    spec = DataSpec.from_text(text)
    splits = spec.load(args.cache_dir, progress=not args.quiet, workers=args.decode_workers)
    if announce:
        print(
            f"dataset: {spec.label()}: {len(splits.train)} train / {len(splits.val)} val / "
            f"{len(splits.test)} test clips, {splits.num_classes} classes"
        )
    return splits


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
  tsgd export tsgd_ipc1.tsgd.pt tsgd_ipc1.mp4 --fps 8 --scale 8
  tsgd export tsgd_ipc1.tsgd.pt tsgd_ipc1.png   # contact sheet""",
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


# RunSpec fields offered as flags, in --help order: field -> help. The flag is the field's name
# with dashes (but SPEC_FLAG_NAMES); a bool field is a --x / --no-x switch, a FIELD_RANGES field a
# checked number, and the others take the choices `add_spec_options` names for them.
SPEC_FLAG_HELP = {
    "method": "selection baseline or distillation method",
    "ipc": "clips per class",
    "profile": "data, teacher and budget sizes",
    "camera_shake": "global camera motion of the benchmark clips",
    "distill_seed": "seed of the selection / distillation",
    "tsgfo": "saliency-filtered optimisation",
    "init": "start from real clips or from noise",
    "modulation": "filter per pixel or per frame",
    "lowpass": "also low-pass the update along time",
    "saliency_source": "saliency of the synthetic clip or of its real init",
    "k": "temporal half-window of the saliency smoothing",
    "alpha": "smoothing weights",
    "eps": "saliency normalisation epsilon",
    "beta": "saliency floor in [0, 1]",
    "spatial_pool": "odd spatial pooling of the saliency (1 = off)",
    "r_bn": "weight of the BatchNorm statistics loss",
    "lr": "Adam's pixel learning rate of TSGD / SRe2L-style",
    "iterations": "recover / DM iterations",
    "lr_schedule": "pixel lr schedule",
    "first_bn": "weight of the first BN layer",
    "recover_augment": "differentiable augmentation while recovering",
    "dm_lr": "DM's pixel learning rate (SGD)",
    "window": "Salient windows: how windows are placed",
    "pack": "Salient windows: how windows are packed",
    "train_pixels": "students train on the set's pixels, its start set's, or the start set "
    "randomly moved as far as recovery moved it (controls)",
    "label_pixels": "the teacher's soft labels of those pixels (controls)",
    "n_students": "the first N of the profile's student seeds",
    "student_augment": "the students' recipe: base augmentation, or TSGFA on top (default: the "
    "method's published one, TSGFA for tsgd)",
    "precision": "students' arithmetic: auto takes bfloat16 on CUDA and on CPUs with it",
}
SPEC_FLAG_NAMES = {"distill_seed": "--seed", "n_students": "--students"}
# the --help group that starts at each field
SPEC_FLAG_GROUPS = {
    "method": "what to distil (a RunSpec)",
    "tsgfo": "TSGD switches (used by tsgd, sre2l and dm where they apply)",
    "lr": "recovery settings (unset: what the tuning stage chose, src tsgd_core/tuned.json)",
    "n_students": "students",
}


def add_spec_options(
    parser: argparse.ArgumentParser, profiles: Sequence[str], methods: Sequence[str]
) -> None:
    """The RunSpec fields as flags of the same names (unset: RunSpec's default)."""
    from ..grid.spec import FIELD_RANGES, PIXEL_SOURCES, RECIPES, RunSpec
    from ..methods.distill import INITS, LR_SCHEDULES, MODULATIONS, SALIENCY_SOURCES
    from ..methods.salient import PACKINGS, WINDOW_CHOICES
    from ..training.saliency import ALPHAS
    from ..training.train import PRECISIONS

    default = {f.name: f.default for f in fields(RunSpec)}
    choices = {
        "method": methods,
        "profile": profiles,
        "init": INITS,
        "modulation": MODULATIONS,
        "saliency_source": SALIENCY_SOURCES,
        "alpha": ALPHAS,
        "lr_schedule": LR_SCHEDULES,
        "window": WINDOW_CHOICES,
        "pack": PACKINGS,
        "train_pixels": PIXEL_SOURCES,
        "label_pixels": PIXEL_SOURCES,
        "precision": PRECISIONS,
        "student_augment": RECIPES,
    }
    group: Any = None
    for field, text in SPEC_FLAG_HELP.items():
        if field in SPEC_FLAG_GROUPS:
            group = parser.add_argument_group(SPEC_FLAG_GROUPS[field])
        kwargs: dict[str, Any] = {}
        if field in choices:
            kwargs["choices"] = choices[field]
        elif isinstance(default[field], bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif field in FIELD_RANGES:
            kwargs["type"] = field_value(field)
            kwargs["metavar"] = "N" if FIELD_RANGES[field][2] else "X"
        group.add_argument(
            SPEC_FLAG_NAMES.get(field, "--" + field.replace("_", "-")),
            dest=field,
            default=None,
            help=f"{text} (default: {default[field]})",
            **kwargs,
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
    "--sampling",
    "--group-pattern",
)


def add_dataset_options(
    parser: argparse.ArgumentParser,
    official_split_flag: bool = False,
    workers_flag: str = "--workers",
) -> None:
    """--dataset KIND --root DIR and the loader's options (a DataSpec).

    `workers_flag` names the decoding threads' flag (run_grid's --workers are grid workers).
    """
    from ..data.video_base import BACKENDS, SAMPLINGS

    data = parser.add_argument_group("real dataset (default: the built-in motion benchmark)")

    def typed(flag: str, kind: Any, metavar: str, text: str, **kwargs: Any) -> None:
        data.add_argument(flag, type=kind, metavar=metavar, help=text, **kwargs)

    data.add_argument("--dataset", choices=DATASET_KINDS, help="use a real dataset from --root")
    typed("--root", path_arg, "DIR", "folder of the real dataset (nothing is downloaded)")
    typed(
        "--frames",
        field_value("frames"),
        "N",
        "frames per clip (default: the profile's; literature: per dataset)",
    )
    typed("--size", image_size, "N|HxW", "frame size (default: the profile's)")
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
    typed(
        "--max-per-class",
        field_value("max_per_class"),
        "N",
        "at most this many videos per class and split",
    )
    typed(
        "--val-fraction",
        field_value("val_fraction"),
        "X",
        "share of each training class held out (0.1)",
    )
    data.add_argument("--backend", choices=BACKENDS, help="video decoder (auto: decord, else PyAV)")
    typed("--annotations", path_arg, "DIR", "folder of the split files when not in the usual place")
    data.add_argument(
        "--on-missing", choices=("error", "skip"), help="videos named by a split file but absent"
    )
    data.add_argument(
        "--sampling",
        choices=SAMPLINGS,
        help="frames spread over the whole clip, or at a fixed stride at the clip's own speed "
        "(default: spread)",
    )
    typed(
        "--group-pattern",
        str,
        "REGEX",
        "regex with one group: the source video in a video's name (val takes whole sources)",
    )
    help_workers = "decoding threads (default: CPU cores, at most 8)"
    typed(workers_flag, field_value("decode_workers"), "N", help_workers, dest="decode_workers")


def add_preview_options(parser: argparse.ArgumentParser) -> None:
    from ..data.artifact import MAX_FPS, MIN_FPS

    parser.add_argument(
        "--fps",
        type=frame_rate,
        default=4,
        help=f"frames per second of the animation ({MIN_FPS:g} to {MAX_FPS:g})",
    )
    parser.add_argument(
        "--scale", type=field_value("scale"), default=4, help="pixel upscaling of every clip"
    )

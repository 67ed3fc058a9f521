"""The `tsgd` program: the parser, the dispatch to a command, and one-line errors."""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .. import __version__
from .commands import cmd_data, cmd_distill, cmd_evaluate, cmd_export, cmd_grid, cmd_teacher

# RunSpec fields that describe what is distilled (the flags shared by distill and evaluate).
from .options import (
    BUG_REPORT_HINT,
    EXAMPLES,
    PREVIEW_CLIPS_PER_CLASS,
    HelpFormatter,
    Parser,
    add_dataset_options,
    add_preview_options,
    add_spec_options,
    cli_words,
    common_options,
    field_value,
    nonnegative_float,
    one_line,
    path_arg,
    printable,
)


def add_benchmark_options(
    parser: argparse.ArgumentParser, profiles: Sequence[str], profile_help: str
) -> None:
    """--profile and --camera-shake: which built-in benchmark (and its teacher) a command uses."""
    parser.add_argument("--profile", choices=profiles, default="default", help=profile_help)
    parser.add_argument(
        "--camera-shake",
        type=nonnegative_float,
        default=0.0,
        help="global camera motion of the benchmark",
    )


def build_parser() -> argparse.ArgumentParser:
    from ..grid.cells import DEFAULT_SHAKE
    from ..grid.profiles import METHODS, PROFILES
    from ..training.evaluate import LABEL_MODES

    profiles, methods = tuple(PROFILES), tuple(METHODS)
    parser = Parser(
        prog="tsgd",
        description="Video dataset distillation with Temporal Saliency-Guided Distillation (TSGD).",
        epilog="Run 'tsgd COMMAND --help' for the options and examples of a command.",
        formatter_class=HelpFormatter,
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
            formatter_class=HelpFormatter,
            parents=list(parents),
        )

    data = command(
        "data",
        "describe the built-in motion benchmark or a real video dataset",
        [common_options("decoded real clips are cached in its videos/ folder", device=False)],
    )
    add_benchmark_options(data, profiles, "size of the built-in benchmark")
    add_dataset_options(data, official_split_flag=True)
    data.add_argument(
        "--preview",
        type=path_arg,
        metavar="OUT.gif",
        help="write a GIF (or .mp4) grid of training clips per class, or a .png contact sheet",
    )
    data.add_argument(
        "--preview-clips",
        type=field_value("preview_clips"),
        default=PREVIEW_CLIPS_PER_CLASS,
        help="clips per class in the preview",
    )
    add_preview_options(data)
    data.set_defaults(func=cmd_data)

    teacher = command(
        "teacher", "train (or load from the cache) the teacher of a profile", [common]
    )
    add_benchmark_options(teacher, profiles, "data and teacher sizes")
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
        "export",
        "write a saved set as a watchable GIF or MP4 grid (classes x instances), or as a "
        "contact-sheet PNG (one row of frames per clip, with its class name)",
    )
    export.add_argument("artifact", type=path_arg, metavar="PATH.tsgd.pt", help="the saved set")
    export.add_argument(
        "out",
        type=path_arg,
        metavar="OUT.gif|OUT.mp4|OUT.png",
        help="the animation or contact sheet to write (format by suffix)",
    )
    add_preview_options(export)
    export.add_argument(
        "--per-row", type=field_value("per_row"), help="cells per row instead of one row per class"
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
    from ..runtime.budget import memory_limit_override
    from ..runtime.distributed import launched_by_torchrun, process_group
    from ..training.train import CHANNELS_LAST_ENV

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

    0: done; 2: bad input (one line); 1: a limit of the machine (memory, disk, open files, file
    size; one line naming it) or an internal error (one line and a hint to report it); 130:
    interrupted with Ctrl-C (one line saying what was kept). TSGD_DEBUG=1 adds the traceback.
    A reader that stops early (`| head -1`) changes nothing: the work and its files complete.
    """
    args = None
    with guarded_streams() as stdout:
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
            say(f"{newline}tsgd: interrupted: {kept_after_interrupt(args)}")
            return 130
        except Exception as error:
            code, text = error_line(error)
            if os.environ.get("TSGD_DEBUG"):
                traceback.print_exception(error, file=sys.stderr)
            say(text)
            return code
        if stdout.error is not None and stdout.error.errno != errno.EPIPE:
            say(stdout_failure_line(stdout.error))
            return 1
    return 0


def say(text: str) -> None:
    """One line on stderr, control characters escaped (text from files may hold any)."""
    print(printable(text), file=sys.stderr)


class _GuardedStream:
    """A text stream whose write errors (a reader that left, a full device) end its output
    instead of the command: the first error is kept in `error`, later writes are dropped."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.error: OSError | None = None

    def write(self, text: str) -> int:
        if self.error is None:
            try:
                return self._inner.write(text)
            except OSError as error:
                self._give_up(error)
        return len(text)

    def flush(self) -> None:
        if self.error is None:
            try:
                self._inner.flush()
            except OSError as error:
                self._give_up(error)

    def _give_up(self, error: OSError) -> None:
        self.error = error
        try:  # what the stream still buffers goes nowhere at exit (no "Exception ignored")
            fd = self._inner.fileno()
        except (OSError, ValueError, AttributeError):
            return
        sink = os.open(os.devnull, os.O_WRONLY)
        os.dup2(sink, fd)
        os.close(sink)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def guarded_streams() -> Iterator[_GuardedStream]:
    """sys.stdout and sys.stderr guarded meanwhile; yields the guarded stdout."""
    saved = sys.stdout, sys.stderr
    stdout, stderr = _GuardedStream(sys.stdout), _GuardedStream(sys.stderr)
    sys.stdout, sys.stderr = stdout, stderr
    try:
        yield stdout
    finally:
        if sys.stdout is stdout:
            sys.stdout = saved[0]
        if sys.stderr is stderr:
            sys.stderr = saved[1]


def stdout_failure_line(error: OSError) -> str:
    reason = error.strerror or one_line(error)
    return (
        f"tsgd: error: standard output could not be written ({reason}), so the summary is "
        "lost; the files the command wrote (--out, the cache) are complete: send standard "
        "output somewhere writable, or use --out"
    )


def error_line(error: BaseException) -> tuple[int, str]:
    """The exit code and the one line for an exception that ends a command: the one place
    where exceptions become lines (tsgd and the robustness stage say them the same way)."""
    limit = machine_limit_text(error)
    if limit is not None:
        return 1, f"tsgd: error: {limit}"
    if isinstance(error, Warning):  # PYTHONWARNINGS=error or -W error made a warning raise
        return 2, (
            f"tsgd: error: {cli_advice(one_line(error))} (a warning, made an error by "
            "PYTHONWARNINGS or -W error)"
        )
    if isinstance(error, OSError):
        return 2, f"tsgd: error: {os_error_text(error)}"
    if is_bad_input(error):
        return 2, f"tsgd: error: {cli_advice(one_line(error))}"
    return (
        1,
        f"tsgd: internal error: {type(error).__name__}: {one_line(error)[:300]}; {BUG_REPORT_HINT}",
    )


def is_bad_input(error: BaseException) -> bool:
    """Our own refusals of bad input (DataError and the CLI's CliError, the memory estimate's
    MemoryBudgetError); any other ValueError is a bug, and says so."""
    from ..data.clips import DataError
    from ..runtime.budget import MemoryBudgetError
    from ..runtime.paths import InputError  # a path or an environment variable

    return isinstance(error, DataError | MemoryBudgetError | InputError)


# what the CPU allocator and the C++ writers of torch say when the machine refuses
_ALLOCATION_FAILED = ("alloc_cpu.cpp", "can't allocate memory", "std::bad_alloc", "out of memory")
_WRITE_FAILED = ("unexpected pos", "file write failed", "failed writing file")


def machine_limit_text(error: BaseException) -> str | None:
    """The line for a limit of the machine (memory, open files, file size, disk space, a
    read-only file system), naming the limit and what to change; None for anything else."""
    text = one_line(error)
    code = error.errno if isinstance(error, OSError) else None
    if (
        code == errno.ENOMEM
        or isinstance(error, MemoryError)
        or (isinstance(error, RuntimeError) and any(s in text for s in _ALLOCATION_FAILED))
    ):
        return memory_text(text)
    if code in (errno.EMFILE, errno.ENFILE):
        return open_files_text(error, code == errno.ENFILE)
    if code == errno.EFBIG or (
        isinstance(error, RuntimeError)
        and any(s in text for s in _WRITE_FAILED)
        and _soft_limit("RLIMIT_FSIZE") is not None
    ):
        return file_size_text(error)
    if code in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {error.filename}" if error.filename else ""
        return (
            f"the disk is full{where} ({error.strerror or 'no space left'}): "
            "free some space or point --cache-dir / --out at another disk, then run again"
        )
    if code == errno.EROFS:
        where = f" ({error.filename})" if error.filename else ""
        return (
            f"the file system is read-only{where}: point --cache-dir / --out at a writable "
            "disk, or mount it read-write"
        )
    return None


def _soft_limit(name: str) -> int | None:
    """The soft limit `resource.<name>` of this process, or None where there is none."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft = resource.getrlimit(getattr(resource, name))[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def memory_text(detail: str) -> str:
    room = _soft_limit("RLIMIT_AS")
    limit = (
        f"; the address-space limit (ulimit -v, RLIMIT_AS) is {room // 2**20} MiB: raise it "
        "(ulimit -v unlimited),"
        if room is not None
        else ":"
    )
    return (
        f"out of memory ({detail[:200]}){limit} lower the IPC, frames, frame size or scale, "
        "or use a machine with more memory"
    )


def open_files_text(error: BaseException, system_wide: bool) -> str:
    where = f" opening {error.filename}" if getattr(error, "filename", None) else ""
    if system_wide:
        return (
            f"the system's table of open files is full{where} (ENFILE): close other programs, "
            "or raise fs.file-max, then run again"
        )
    soft = _soft_limit("RLIMIT_NOFILE")
    shown = "" if soft is None else f" is {soft}"
    return (
        f"too many open files{where}: the limit of open files per process (ulimit -n, "
        f"RLIMIT_NOFILE){shown}: raise it (ulimit -n 4096) or use fewer decoding --workers"
    )


def file_size_text(error: BaseException) -> str:
    where = f" writing {error.filename}" if getattr(error, "filename", None) else ""
    soft = _soft_limit("RLIMIT_FSIZE")
    shown = "" if soft is None else f" is {soft // 1024} KiB"
    return (
        f"a file grew past the file-size limit{where}: the limit (ulimit -f, RLIMIT_FSIZE)"
        f"{shown}: raise it (ulimit -f unlimited), then run again"
    )


def os_error_text(error: OSError) -> str:
    """'cannot write /x/y: Permission denied' style text; the path is always named when known."""
    reason = error.strerror or one_line(error)
    if error.filename is None:
        return reason
    target = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 else "")
    return f"{target}: {reason}"


def cli_advice(text: str) -> str:
    return cli_words(text)


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
        print(f"tsgd: warning: {printable(cli_words(one_line(message)))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show  # restored by catch_warnings
        yield

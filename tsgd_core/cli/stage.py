"""What the command lines of run_all.sh's stages share (--tune, --ladder, --robustness): the
one-line parser, the run flags with checked values, the output checks before any work, and one
line with the right exit code for whatever ends the work."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NoReturn

from . import options


class StageParser(argparse.ArgumentParser):
    """argparse with one-line errors ('<name>: error: ...') and exit code 2."""

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.name = name

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.name}: error: {message} (see --help)\n")


def add_run_flags(parser: argparse.ArgumentParser, workers: int, device: str = "cpu") -> None:
    """--cache, --device and --workers: where a stage's cells are cached, on what they run and
    how many processes run them (`workers` by default), each checked when parsed."""
    parser.add_argument("--cache", type=options.path_arg, default="cache", help="core cache")
    parser.add_argument("--device", type=options.device_arg, default=device, help="cpu | cuda")
    parser.add_argument(
        "--workers", type=options.field_value("workers"), default=workers, help="processes"
    )


def default_workers() -> int:
    return os.cpu_count() or 1


def check_outputs(cache: str, out: str | Path, out_marks: Iterable[str]) -> tuple[Path, Path]:
    """Before any work: the cache and its entry folders writable, --out writable and not another
    program's folder (a README.md there that this stage did not write). Returns both paths."""
    from ..runtime.paths import CACHE_SUBFOLDERS, check_own_output, check_writable_dir

    cache_dir = check_writable_dir(cache, "--cache", CACHE_SUBFOLDERS)
    out_dir = check_writable_dir(out, "--out")
    check_own_output(out_dir, "--out", ["README.md"], out_marks)
    return cache_dir, out_dir


def run_stage(name: str, work: Callable[[], int]) -> int:
    """`work()`, its exit code; what ends it early is one line '<name>: error: ...': bad input 2,
    a limit of the machine 1, as `tsgd` says them."""
    try:
        return work()
    except Exception as error:
        from .app import error_line

        code, text = error_line(error)
        print(text.replace("tsgd:", f"{name}:", 1), file=sys.stderr)
        return code

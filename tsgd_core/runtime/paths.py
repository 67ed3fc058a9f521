"""What a user hands the program before any work starts: paths, environment variables, and
the identity of this process (for the temporary files it leaves if it is killed).

* `check_writable_dir` / `check_writable_file`: the one check of every path a flag or a notebook
  parameter names: `~` expanded, an empty or blank path refused, and the folders that will be
  written (the subfolders too, where they exist already) writable; a folder where a file is
  expected (or a file where a folder is) refused, naming the flag.
* `user_path`: `~` expanded and an empty path refused, for paths that are only read;
  `path_type` is the same as the argparse type of every path flag.
* `env_int`: an integer environment variable, or a refusal naming it and what to set.
* `owner_token` / `owner_gone`: who wrote a temporary file (host, boot, process id and the
  process's start time), so a later run removes a dead writer's file even where process ids
  come back (PID 1 is always alive in a container).

Every refusal is an `InputError` (a ValueError): bad input a user gave, which the command
lines report in one line with exit code 2.

Imports nothing from tsgd_core.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path

# the cache's entry folders (tsgd_core.data, training and grid write them): a read-only one in
# a writable cache would otherwise be found when the first entry is saved, after the work
CACHE_SUBFOLDERS = ("teachers", "distilled", "evals", "videos", "robustness")


class InputError(ValueError):
    """Bad input a user gave (a path, an environment variable): the message names it and what
    to do instead."""


EMPTY_PATH = "an empty path: give a file or folder name (or leave it out)"


def user_path(text: str | os.PathLike[str], what: str) -> Path:
    """`~` expanded (as a shell does for a bare `~/x`); an empty or blank path is an InputError
    naming `what`."""
    if str(text).strip() == "":
        raise InputError(f"{what}: {EMPTY_PATH}")
    return Path(os.path.expanduser(os.fspath(text)))


def path_type(text: str) -> str:
    """The argparse type of every path flag: `user_path`, its error argparse's one line."""
    if not text.strip():
        raise argparse.ArgumentTypeError(EMPTY_PATH)
    return str(user_path(text, "path"))


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _can_create_in(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _check_folder(path: Path, what: str, shown: Path) -> None:
    """`path` is a writable folder, or can be made in one: else InputError about `shown`."""
    base = _nearest_existing(path)
    if not base.is_dir():
        raise InputError(f"{what} {shown} cannot be used: {base} is a file, not a folder")
    if not _can_create_in(base):
        where = "" if base == shown else f" ({base} is not)"
        raise InputError(f"{what} {shown} is not writable{where}: use a folder you can write in")


def check_writable_dir(
    path: str | os.PathLike[str], what: str, subfolders: Iterable[str] = ()
) -> Path:
    """`path` is (or can become) a folder we can write in, and so is each of its `subfolders`
    that the work will write: InputError naming `what` otherwise. Returns the path, `~` expanded."""
    path = user_path(path, what)
    _check_folder(path, what, path)
    for name in subfolders:
        _check_folder(path / name, what, path / name)
    return path


def check_writable_file(path: str | os.PathLike[str], what: str) -> Path:
    """`path` can be written (atomically, beside it): InputError naming `what` otherwise."""
    path = user_path(path, what)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder: give a file name")
    _check_folder(path.parent, what, path)  # the line names the file and the folder that fails
    return path


def check_own_output(
    folder: str | os.PathLike[str], what: str, overwritten: Iterable[str], marks: Iterable[str]
) -> None:
    """Refuse an output folder that holds a file the work overwrites (a README.md) beside none
    of the `marks` this program leaves with it: the file is another program's (the checkout's
    README for an empty or `.` flag, a home folder's): InputError naming `what`."""
    folder = Path(folder)
    marks = list(marks)
    if any((folder / mark).exists() for mark in marks):
        return
    for name in overwritten:
        if (folder / name).exists():
            raise InputError(
                f"{what} {folder} holds a {name} that this command did not write (no "
                f"{' or '.join(marks)} beside it), and it would be overwritten: give an empty "
                "folder or this command's earlier output"
            )


# ----------------------------------------------------------------------------- environment


def env_int(name: str, default: int, low: int, high: int, advice: str) -> int:
    """The integer in environment variable `name` (`default` when unset or empty), in
    [low, high]; else InputError naming the variable, its value and `advice` (what to set)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InputError(
            f"environment variable {name}={text!r} is not an integer in [{low}, {high}]: {advice}"
        )
    return value


# ----------------------------------------------------------------------------- who wrote a file


def host_name() -> str:
    """This machine's name, reduced to letters, digits and dashes (it goes into file names)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot, from /proc), or None where that
    cannot be read (no such process, no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count from the last ')'
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _stamp(pid: int) -> str | None:
    """A short digest of (boot, start time of `pid`): another process that later gets the same
    id, or the same id after a reboot, has another stamp."""
    start = process_start(pid)
    if start is None:
        return None
    return hashlib.sha256(f"{_boot_id()}:{start}".encode()).hexdigest()[:8]


def owner_token() -> str:
    """'<host>~<pid>~<stamp>~' of this process, for the names of its temporary files
    ('<host>~<pid>~' where the start time cannot be read)."""
    pid = os.getpid()
    stamp = _stamp(pid)
    return f"{host_name()}~{pid}~" + (f"{stamp}~" if stamp else "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def owner_gone(pid: int, stamp: str | None) -> bool | None:
    """Whether the writer (`pid`, with `stamp` when its name recorded one) on this host has
    ended: True or False where that is certain, None where it cannot be told (no stamp was
    recorded and a process of that id is alive: perhaps another one, such as PID 1)."""
    if not _pid_alive(pid):
        return True
    if stamp is None:
        return None
    now = _stamp(pid)
    return None if now is None else now != stamp

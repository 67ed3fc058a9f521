"""Progress of the long steps (decoding, teacher, distillation, students): a live tqdm bar on a
terminal; in a Jupyter kernel (papermill's executed notebooks) one summary line when the step
ends, so a report keeps its output short; elsewhere (pipes, logs, worker processes) nothing.

Plain `tqdm.std` everywhere: `tqdm.auto` in a kernel without ipywidgets warns ("IProgress not
found") and its widgets would not survive in an executed notebook anyway.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.std import tqdm


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (a notebook, or papermill executing one)."""
    shell = sys.modules.get("IPython")
    ip = getattr(shell, "get_ipython", lambda: None)() if shell else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def on_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and not in_kernel()


class SummaryLine:
    """tqdm's calls used here, counted in silence; one line `desc: n steps in s` at the end."""

    def __init__(self, iterable: Iterable | None, desc: str, total: int | None, unit: str):
        self.iterable, self.desc, self.unit = iterable, desc, unit
        self.total = total if total is not None else _length(iterable)
        self.n, self.start, self.closed = 0, time.perf_counter(), False

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.n += 1
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        self.postfix = (args, kwargs)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or self.desc

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        wall = time.perf_counter() - self.start
        of = f"/{self.total}" if self.total is not None else ""
        print(f"{self.desc}: {self.n}{of} {self.unit}s in {wall:.1f} s", flush=True)

    def __enter__(self) -> SummaryLine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _length(iterable: Iterable | None) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def progress_bar(
    iterable: Iterable | None = None,
    *,
    desc: str,
    total: int | None = None,
    enabled: bool = True,
    unit: str = "step",
    summary: bool = True,
    **options: Any,
) -> Any:
    """A live bar on a terminal, a summary line in a notebook kernel (`summary`: sub-steps
    pass False), else a silent tqdm; `enabled=False` is silent everywhere."""
    if enabled and summary and in_kernel():
        return SummaryLine(iterable, desc, total, unit)
    live = enabled and on_terminal()
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not live, **options)


class ReaderMayLeave:
    """A stdout that keeps the work going when its reader has gone (`... | head -1`): the first
    broken pipe points the descriptor at /dev/null (so the interpreter's last flush succeeds
    too) and later output is dropped. Progress is a report of the work, never a reason to stop it."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.reader_gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):  # no descriptor (a test's stream): drop
            pass

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ... of the stream
        return getattr(self.stream, name)


@contextmanager
def stdout_reader_may_leave() -> Iterator[ReaderMayLeave]:
    """sys.stdout as a ReaderMayLeave for the duration of the block."""
    wrapper = ReaderMayLeave(sys.stdout)
    sys.stdout = wrapper
    try:
        yield wrapper
    finally:
        if sys.stdout is wrapper:
            sys.stdout = wrapper.stream


def run_module_reader_may_leave(argv: list[str]) -> None:
    """`python -m tsgd_core.runtime.progress MODULE ARGS...`: MODULE run as `python -m MODULE
    ARGS...`, with a stdout its reader may leave (run_all.sh's last stage after `| head -1`)."""
    import runpy

    sys.argv = list(argv)
    with stdout_reader_may_leave():
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_module_reader_may_leave(sys.argv[1:])

"""Executing the steps of a plan: one shared Jupyter kernel (or one per notebook), direct runs,
failed notebooks kept for inspection, the HTML export."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .planner import DIRECT_PARAMS, NOTEBOOKS, Step, direct_params, is_done

KERNEL = "python3"


# set by the SIGINT handler: an error that follows a Ctrl-C (a kernel or worker it stopped) is
# the interrupt, not a failure
INTERRUPTED = threading.Event()


INTERRUPT_CODES = (130, -signal.SIGINT)  # a process that stopped on Ctrl-C


RESET_CODE = "%reset -f\nimport matplotlib.pyplot as _plt\n_plt.close('all')\ndel _plt\n"


class SharedKernel:
    """One kernel for many notebooks; `reset` clears the namespace (imported modules stay)."""

    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name=KERNEL)
        self.km.start_kernel(cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def reset(self) -> None:
        reply = self.kc.execute_interactive(RESET_CODE, timeout=120, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"could not reset the shared kernel: {reply['content']}")

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def register_shared_engine(kernel: SharedKernel) -> str:
    """A papermill engine that runs every notebook on `kernel` (papermill's engine plug-in API)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines

    class SharedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            kernel.reset()
            client = PapermillNotebookClient(
                nb_man,
                km=kernel.km,
                kernel_name=kernel_name,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client.kc = kernel.kc  # reuse the open channels; the client does not own them
            return client.execute()

    papermill_engines.register("tsgd-shared-kernel", SharedKernelEngine)
    return "tsgd-shared-kernel"


def use_kernel_threads() -> None:
    """Give this process the notebook kernels' torch threads: it imported torch before
    OMP_NUM_THREADS was set, and a CPU teacher's cache key names the thread count."""
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def run_direct(step: Step) -> dict[str, Any]:
    """One grid cell without its notebooks: distil (or load) and evaluate, write record.json."""
    from ..data.storage import save_json
    from . import experiments

    use_kernel_threads()
    params = step.params
    start = time.perf_counter()
    if "full_data" in params:
        results = experiments.full_data_results(
            params["profile"],
            dataset=params.get("dataset", ""),
            split=params["full_data"],
            recipe=params.get("recipe", "base"),
            seeds=params.get("seeds", ()),
            cache_dir=params["cache_dir"],
            device=params["device"],
            progress=False,
        )
        record = {labels: res.summary() for labels, res in results.items()}
    else:
        spec = experiments.spec_from_params(**{"profile": params["profile"], **params["spec"]})
        _, record = experiments.run(
            spec, cache_dir=params["cache_dir"], device=params["device"], progress=False
        )
    save_json(record, step.out_dir / "record.json")
    save_json(direct_params(step), step.out_dir / DIRECT_PARAMS)  # after the record: done
    wall = time.perf_counter() - start
    return {"wall_s": wall, "cells_s": wall, "overhead_s": 0.0}


def execute(step: Step, engine: str | None) -> dict[str, Any]:
    """Run one notebook to a temporary file; rename it on success, to .failed.ipynb on error."""
    import papermill as pm

    if step.direct:
        return run_direct(step)
    step.out_dir.mkdir(parents=True, exist_ok=True)
    tmp = running_path(step)
    start = time.perf_counter()
    try:
        nb = pm.execute_notebook(
            str(step.source),
            str(tmp),
            parameters=step.params,
            kernel_name=KERNEL,
            progress_bar=True,
            request_save_on_cell_execute=False,  # one write at the end: outputs hold images
            cwd=str(NOTEBOOKS),
            engine_name=engine,
        )
    except BaseException:
        if tmp.exists():
            os.replace(tmp, failed_path(step))
        raise
    os.replace(tmp, step.executed)
    failed_path(step).unlink(missing_ok=True)  # an earlier failure of this step is history now
    wall = time.perf_counter() - start
    cells = sum(
        (c.get("metadata", {}).get("papermill", {}).get("duration") or 0.0) for c in nb.cells
    )
    return {"wall_s": wall, "cells_s": cells, "overhead_s": wall - cells}


def running_path(step: Step) -> Path:
    """Where a step's notebook is executed before it is renamed: named by its writer (host,
    process and its start), which keeps two shards that run the same setup notebook off each
    other's file and lets a later run remove what a killed one left (data.storage)."""
    from ..runtime.paths import owner_token

    return step.out_dir / f".{step.executed.stem}.{owner_token()}running.tmp.ipynb"


def failed_path(step: Step) -> Path:
    return step.out_dir / f"{step.executed.stem}.failed.ipynb"


def export_html(notebooks: list[Path]) -> None:
    """All executed notebooks to HTML in one nbconvert call (each beside its notebook)."""
    stale = [
        nb
        for nb in notebooks
        if not nb.with_suffix(".html").is_file()
        or nb.with_suffix(".html").stat().st_mtime < nb.stat().st_mtime
    ]
    if not stale:
        return
    print(f"[html] exporting {len(stale)} notebook(s) with nbconvert", flush=True)
    cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--log-level", "ERROR"]
    subprocess.run([*cmd, *map(str, stale)], check=True)


def entry(step: Step) -> dict[str, Any]:
    return {"step": step.label, "notebook": step.notebook, "stage": step.stage}


def run_steps(
    steps: list[Step], *, force: bool, fresh_kernels: bool, progress: Progress | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Execute `steps` in order (skipping done ones); the exit code and a log entry per step."""
    import papermill as pm

    log: list[dict[str, Any]] = []
    if not steps:
        return 0, log
    kernel = None if fresh_kernels else SharedKernel(NOTEBOOKS)
    engine = None if kernel is None else register_shared_engine(kernel)
    try:
        for i, step in enumerate(steps, 1):
            head = f"[{i}/{len(steps)}] {step.label} ({step.notebook or 'direct'})"
            if not force and is_done(step):
                print(f"{head}: done, skipped", flush=True)
                log.append({**entry(step), "skipped": True})
                if progress is not None:
                    progress.log.append(log[-1])
                continue
            print(head, flush=True)
            if progress is not None:
                progress.step = head
            try:
                timing = execute(step, engine)
            except pm.PapermillExecutionError as err:
                if err.ename == "KeyboardInterrupt" or INTERRUPTED.is_set():  # Ctrl-C
                    raise KeyboardInterrupt from err
                print(
                    f"\nFAILED {head}\n  cell {err.cell_index} of the executed notebook: "
                    f"{err.ename}: {err.evalue}\n"
                    f"  executed notebook: {step.out_dir / (step.executed.stem + '.failed.ipynb')}\n"
                    "  results of earlier steps are intact; fix and rerun to continue from here",
                    file=sys.stderr,
                )
                return 1, log
            except Exception as err:  # the kernel died, a timeout, a file we could not write
                if INTERRUPTED.is_set():  # the kernel died of the Ctrl-C: not a failure
                    raise KeyboardInterrupt from err
                print(f"\nFAILED {head}\n  {type(err).__name__}: {err}", file=sys.stderr)
                return 1, log
            log.append({**entry(step), "skipped": False, **timing})
            if progress is not None:
                progress.finished += 1
                progress.log.append(log[-1])
        if progress is not None:
            progress.step = None
    finally:
        if kernel is not None:
            try:
                kernel.close()
            except (Exception, KeyboardInterrupt):  # a second Ctrl-C while shutting it down
                pass
    return 0, log


@dataclass
class Progress:
    """Where a run is, to say what an interrupt kept."""

    step: str | None = None
    finished: int = 0
    reports: Path | None = None
    log: list[dict[str, Any]] = field(default_factory=list)  # every step's entry, as it ends

    def kept(self) -> str:
        if self.reports is None:
            return ": nothing was run"
        where = f" during {self.step}" if self.step else ""
        return (
            f"{where}; the {self.finished} step(s) finished in this run and all earlier results "
            f"are kept (notebooks in {self.reports}, sets and evaluations in the cache): run the "
            "same command again to continue from here"
        )

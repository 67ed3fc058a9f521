#!/usr/bin/env python
"""Execute the notebooks of the report with papermill: the grid of experiments, then the report.

    python scripts/run_grid.py --profile quick --reports reports/quick
    python scripts/run_grid.py --profile real-cpu --dataset ucf101 --root ~/data/UCF101

With `--dataset KIND --root DIR` (and the loader's options of `tsgd teacher --help`) every
notebook runs on that real dataset: it is decoded once into the cache (parallel, resumable),
the grid is `experiments.build_dataset_grid` (no camera-shake group) and the report names the
dataset and its sizes.

Order: 01 (data and saliency) and 02 (teacher) once; 03 (distill) and 04 (evaluate) for every
spec of `experiments.build_grid(profile)` into `<reports>/runs/<group>/<spec name>/`; 05 (report)
into `<reports>/`; 00 (quickstart) once; then every executed notebook to HTML (nbconvert).

Reruns are cheap: the core caches (`--cache`) hold teachers, distilled sets and evaluations, and a
step whose executed notebook is newer than its source and was run with the same parameters (for
04 also: its record.json exists) is skipped unless `--force`. Executed notebooks are written
to a temporary name and renamed on success, so an interrupted run loses only the step in flight;
a failing notebook stops the run with its name and the failing cell's error (exit code 1) and is
kept as `<name>.failed.ipynb` for inspection.

By default one kernel executes all notebooks in turn (its namespace is reset between
notebooks): a fresh kernel per notebook costs its start and the imports of torch and matplotlib
again, seconds per notebook. `--fresh-kernels` starts one per notebook instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tsgd_core, however the package was installed
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "python3"
RESET_CODE = "%reset -f\nimport matplotlib.pyplot as _plt\n_plt.close('all')\ndel _plt\n"


@dataclass
class Step:
    """One notebook execution: which notebook, with which parameters, written where."""

    label: str
    notebook: str
    out_dir: Path
    params: dict[str, Any]
    always: bool = False  # rerun even when an executed notebook with these parameters exists
    needs: list[str] = field(default_factory=list)  # files in out_dir that must exist to skip

    @property
    def executed(self) -> Path:
        return self.out_dir / self.notebook

    @property
    def source(self) -> Path:
        return NOTEBOOKS / self.notebook


def plain(value: Any) -> Any:
    """Tuples to lists (papermill writes parameters as Python literals)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def plan(
    profile: str,
    reports: Path,
    cache: Path,
    device: str,
    groups: list[str] | None,
    dataset: str = "",
    command: str | None = None,
    ipcs: list[int] | None = None,
) -> list[Step]:
    """Every step of the run, in order (`dataset`: DataSpec text of a real dataset, or "")."""
    from tsgd_core import experiments

    common = {"profile": profile, "cache_dir": str(cache), "device": device, "progress": False}
    if dataset:  # only then: the benchmark's executed notebooks keep their parameters
        common["dataset"] = dataset
    steps = [
        Step(
            "data and saliency",
            "01_data_and_saliency.ipynb",
            reports / "data_and_saliency",
            {},
            needs=["data_summary.json"],
        ),
        Step("teacher", "02_teacher.ipynb", reports / "teacher", {}, needs=["teacher.json"]),
    ]
    for group, specs in experiments.build_dataset_grid(profile, dataset).groups().items():
        if groups and group not in groups:
            continue
        for spec in specs:
            if ipcs and spec.ipc not in ipcs:
                continue
            folder = reports / "runs" / group / spec.name()
            params = {"spec": plain(spec_params(spec))}
            label = f"{group}/{spec.name()}"
            steps.append(Step(label, "03_distill.ipynb", folder, params, needs=["distill.json"]))
            steps.append(Step(label, "04_evaluate.ipynb", folder, params, needs=["record.json"]))
    command = command or {"default": "./run_all.sh", "quick": "./run_all.sh --quick"}.get(
        profile, f"./run_all.sh --profile {profile}"
    )
    steps.append(
        Step(
            "report",
            "05_report.ipynb",
            reports,
            {"runs_dir": str(reports / "runs"), "command": command},
            always=True,
        )
    )
    steps.append(
        Step(
            "quickstart", "00_quickstart.ipynb", reports / "quickstart", {}, needs=["results.json"]
        )
    )
    for step in steps:
        step.params = {**common, "out_dir": str(step.out_dir), **step.params}
    return steps


def spec_params(spec: Any) -> dict[str, Any]:
    """A spec as notebook parameters; the empty dataset of the benchmark is left out."""
    params = asdict(spec)
    if not params.get("dataset"):
        params.pop("dataset", None)
    return params


def dataset_flags(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """The dataset options as given on the command line (each flag with its values)."""
    out, keep = [], False
    for token in argv:
        if token.startswith("--"):
            keep = token.split("=")[0] in flags
        if keep:
            out.append(token)
    return out


def is_done(step: Step) -> bool:
    """An executed notebook newer than its source, run with these parameters, with its outputs."""
    if step.always or not step.executed.is_file():
        return False
    if step.executed.stat().st_mtime < step.source.stat().st_mtime:
        return False
    if not all((step.out_dir / name).is_file() for name in step.needs):
        return False
    try:
        meta = json.loads(step.executed.read_text())["metadata"]["papermill"]
    except (KeyError, ValueError):
        return False
    return meta.get("parameters") == step.params


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


def execute(step: Step, engine: str | None) -> dict[str, Any]:
    """Run one notebook to a temporary file; rename it on success, to .failed.ipynb on error."""
    import papermill as pm

    step.out_dir.mkdir(parents=True, exist_ok=True)
    tmp = step.out_dir / f".{step.executed.stem}.running.ipynb"
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
            os.replace(tmp, step.out_dir / f"{step.executed.stem}.failed.ipynb")
        raise
    os.replace(tmp, step.executed)
    wall = time.perf_counter() - start
    cells = sum(
        (c.get("metadata", {}).get("papermill", {}).get("duration") or 0.0) for c in nb.cells
    )
    return {"wall_s": wall, "cells_s": cells, "overhead_s": wall - cells}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default", help="smoke | quick | default")
    parser.add_argument("--reports", type=Path, help="output folder (default reports/<profile>)")
    parser.add_argument("--cache", type=Path, default=ROOT / "cache", help="core cache folder")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--groups", help="comma-separated grid groups to run (default: all)")
    parser.add_argument("--ipcs", help="comma-separated IPCs to run (default: the profile's)")
    parser.add_argument("--force", action="store_true", help="rerun steps that look done")
    parser.add_argument("--fresh-kernels", action="store_true", help="a new kernel per notebook")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per kernel (OMP_NUM_THREADS; default 1)",
    )
    parser.add_argument("--no-html", action="store_true", help="skip the HTML export")
    parser.add_argument("--dry-run", action="store_true", help="print the steps and exit")
    from tsgd_core import cli

    cli.add_dataset_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar while decoding")
    args = parser.parse_args(argv)

    # The kernels inherit this environment. One thread: the models are tiny, and on a shared
    # CPU two OpenMP threads per process were ten times slower than one (measured).
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    folder = f"{args.profile}-{args.dataset}" if args.dataset else args.profile
    reports = (args.reports or Path("reports") / folder).resolve()
    groups = args.groups.split(",") if args.groups else None
    from tsgd_core.experiments import get_profile

    get_profile(args.profile)  # a clear error for an unknown profile, before anything runs
    args.cache_dir = args.cache.resolve()
    try:
        dataset = cli.dataset_text(args)
        if dataset and not args.dry_run:  # decode once, in parallel, before any notebook
            cli.prepare_dataset(args, dataset)
    except (ValueError, cli.CliError) as error:
        print(f"run_grid: error: {cli.one_line(error)}", file=sys.stderr)
        return 2
    command = None
    if dataset:
        flags = dataset_flags(
            sys.argv[1:] if argv is None else argv, ("--dataset", *cli.DATASET_ONLY_FLAGS)
        )
        command = f"./run_all.sh --profile {args.profile} {' '.join(flags)}"
    ipcs = [int(i) for i in args.ipcs.split(",")] if args.ipcs else None
    steps = plan(args.profile, reports, args.cache_dir, args.device, groups, dataset, command, ipcs)
    if args.dry_run:
        for i, step in enumerate(steps, 1):
            state = "done" if is_done(step) and not args.force else "todo"
            print(f"[{i}/{len(steps)}] {state} {step.label} {step.notebook} -> {step.out_dir}")
        return 0

    import papermill as pm

    kernel = None if args.fresh_kernels else SharedKernel(NOTEBOOKS)
    engine = None if kernel is None else register_shared_engine(kernel)
    log: list[dict[str, Any]] = []
    start = time.perf_counter()
    try:
        for i, step in enumerate(steps, 1):
            head = f"[{i}/{len(steps)}] {step.label} ({step.notebook})"
            if not args.force and is_done(step):
                print(f"{head}: done, skipped", flush=True)
                log.append({"step": step.label, "notebook": step.notebook, "skipped": True})
                continue
            print(head, flush=True)
            try:
                timing = execute(step, engine)
            except pm.PapermillExecutionError as err:
                print(
                    f"\nFAILED {head}\n  cell {err.cell_index} of the executed notebook: "
                    f"{err.ename}: {err.evalue}\n"
                    f"  executed notebook: {step.out_dir / (step.executed.stem + '.failed.ipynb')}\n"
                    "  results of earlier steps are intact; fix and rerun to continue from here",
                    file=sys.stderr,
                )
                return 1
            except Exception as err:  # the kernel died, a timeout, a file we could not write
                print(f"\nFAILED {head}\n  {type(err).__name__}: {err}", file=sys.stderr)
                return 1
            log.append({"step": step.label, "notebook": step.notebook, "skipped": False, **timing})
    finally:
        if kernel is not None:
            kernel.close()
    if not args.no_html:
        export_html([s.executed for s in steps if s.executed.is_file()])
    from tsgd_core.report import write_reports_index
    from tsgd_core.storage import save_json

    write_reports_index(reports.parent)
    total = time.perf_counter() - start
    ran = [e for e in log if not e["skipped"]]
    overhead = sum(e["overhead_s"] for e in ran)
    summary = {
        "profile": args.profile,
        "total_wall_s": total,
        "notebooks_run": len(ran),
        "notebooks_skipped": len(log) - len(ran),
        "overhead_s": overhead,
        "shared_kernel": kernel is not None,
        "threads": os.environ["OMP_NUM_THREADS"],
        "steps": log,
    }
    save_json(summary, reports / "run_grid.json")
    per = overhead / len(ran) if ran else 0.0
    print(
        f"done in {total:.0f} s: {len(ran)} notebook(s) run, {len(log) - len(ran)} skipped; "
        f"notebook overhead outside cells {overhead:.0f} s ({per:.1f} s each). "
        f"Report: {reports / 'README.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

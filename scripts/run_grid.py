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
A cell repeated over several distillation seeds runs its notebooks for the first seed (the
figures a reader looks at) and `experiments.run` directly for the others (the same numbers,
without a notebook's figures and overhead); so do the validation studies (NUMBERS_ONLY_GROUPS),
whose figures are the report's.

Reruns are cheap: the core caches (`--cache`) hold teachers, distilled sets and evaluations, and a
step whose executed notebook is newer than its source and was run with the same parameters (for
04 also: its record.json exists) is skipped unless `--force`. Executed notebooks are written
to a temporary name and renamed on success, so an interrupted run loses only the step in flight;
a failing notebook stops the run with its name and the failing cell's error (exit code 1) and is
kept as `<name>.failed.ipynb` for inspection until the step succeeds. Ctrl-C stops the run with one
line saying what was kept (exit code 130); bad options are one line (exit code 2). Temporary files
that a killed run (kill -9) left in the cache or the reports are removed at the start.

Across workers: `--workers N` runs 01, 02 and the teachers of the cells once, then the cells
(03 + 04 of one spec) in N parallel processes (`--shard i/N` each, one GPU each when there are
several), then 05 and 00. `--shard i/n` runs setup and the i-th of n parts of the cells only
(for a job array: `--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`), and `--merge` builds
the report from the runs the shards left in `<reports>/runs` (the cache is shared; its writes
are atomic).

By default one kernel executes all notebooks in turn (its namespace is reset between
notebooks): a fresh kernel per notebook costs its start and the imports of torch and matplotlib
again, seconds per notebook. `--fresh-kernels` starts one per notebook instead.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tsgd_core, however the package was installed
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "python3"
# grid groups run without notebooks: validation studies whose figures live in the report
NUMBERS_ONLY_GROUPS = ("controls", "sensitivity", "recover", "convergence", "tsgfa", "dm")
# set by the SIGINT handler: an error that follows a Ctrl-C (a kernel or worker it stopped) is
# the interrupt, not a failure
INTERRUPTED = threading.Event()
INTERRUPT_CODES = (130, -signal.SIGINT)  # a process that stopped on Ctrl-C
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
    direct: bool = False  # run experiments.run in this process, no notebook (cached; cheap to redo)
    stage: str = "cell"  # "setup" (before the cells), "cell" (one grid cell), "final" (after)

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
    from tsgd_core.grid import experiments

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
            stage="setup",
        ),
        Step(
            "teacher",
            "02_teacher.ipynb",
            reports / "teacher",
            {},
            needs=["teacher.json"],
            stage="setup",
        ),
    ]
    first_seed = experiments.get_profile(profile).distill_seeds[0]
    groups = groups or list(experiments.DEFAULT_GROUPS)
    # the upper bound (students on the whole train split) as a cell of its own, so that a
    # worker computes it once, in parallel with the others; the report reads it from the cache
    steps.append(Step("full data", "", reports / "full_data", {"full_data": "test"}, direct=True))
    for group, specs in experiments.build_dataset_grid(profile, dataset).groups().items():
        if group not in groups:
            continue
        for spec in specs:
            if ipcs and spec.ipc not in ipcs:
                continue
            folder = reports / "runs" / group / spec.name()
            params = {"spec": plain(spec_params(spec))}
            label = f"{group}/{spec.name()}"
            # validation studies and repeated draws: numbers only (the notebooks of the test
            # split's first draw show what a reader looks at)
            if spec.distill_seed != first_seed or group in NUMBERS_ONLY_GROUPS:
                steps.append(Step(label, "", folder, params, direct=True))
                continue
            steps.append(Step(label, "03_distill.ipynb", folder, params, needs=["distill.json"]))
            # compare=False: the start sets and the full data are cells of their own here
            steps.append(
                Step(
                    label,
                    "04_evaluate.ipynb",
                    folder,
                    {**params, "compare": False},
                    needs=["record.json"],
                )
            )
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
            stage="final",
        )
    )
    steps.append(
        Step(
            "quickstart",
            "00_quickstart.ipynb",
            reports / "quickstart",
            {},
            needs=["results.json"],
            stage="final",
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
    if step.direct:
        return direct_done(step)
    if step.always or not step.executed.is_file():
        return False
    if step.executed.stat().st_mtime < step.source.stat().st_mtime:
        return False
    if not all((step.out_dir / name).is_file() for name in step.needs):
        return False
    try:
        notebook = json.loads(step.executed.read_text())
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON: run the step again
        return False
    meta = notebook.get("metadata") if isinstance(notebook, dict) else None
    papermill = meta.get("papermill") if isinstance(meta, dict) else None
    return isinstance(papermill, dict) and papermill.get("parameters") == step.params


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


DIRECT_PARAMS = "step.json"  # the parameters a direct step's record.json was made with


# parameters that say where and how a step runs, not what it computes
WHERE_PARAMS = ("out_dir", "cache_dir", "device", "progress")


def experiment_params(params: dict[str, Any]) -> dict[str, Any]:
    """What a direct step computes: its parameters less where and how it ran."""
    return {k: v for k, v in plain(params).items() if k not in WHERE_PARAMS}


def direct_done(step: Step) -> bool:
    """A direct step is done when its record exists and was made for the same experiment
    (wherever it ran: another checkout or machine, another device)."""
    try:
        made_with = json.loads((step.out_dir / DIRECT_PARAMS).read_text())
    except (OSError, ValueError):
        return False
    same = experiment_params(made_with) == experiment_params(step.params)
    return (step.out_dir / "record.json").is_file() and same


def use_kernel_threads() -> None:
    """Give this process the notebook kernels' torch threads: it imported torch before
    OMP_NUM_THREADS was set, and a CPU teacher's cache key names the thread count."""
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def run_direct(step: Step) -> dict[str, Any]:
    """One grid cell without its notebooks: distil (or load) and evaluate, write record.json."""
    from tsgd_core.data.storage import save_json
    from tsgd_core.grid import experiments

    use_kernel_threads()
    params = step.params
    start = time.perf_counter()
    if "full_data" in params:
        results = experiments.full_data_results(
            params["profile"],
            dataset=params.get("dataset", ""),
            split=params["full_data"],
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
    save_json(plain(step.params), step.out_dir / DIRECT_PARAMS)  # after the record: done
    wall = time.perf_counter() - start
    return {"wall_s": wall, "cells_s": wall, "overhead_s": 0.0}


def execute(step: Step, engine: str | None) -> dict[str, Any]:
    """Run one notebook to a temporary file; rename it on success, to .failed.ipynb on error."""
    import papermill as pm

    if step.direct:
        return run_direct(step)
    step.out_dir.mkdir(parents=True, exist_ok=True)
    # the process id keeps two shards that run the same setup notebook off each other's file
    tmp = step.out_dir / f".{step.executed.stem}.{os.getpid()}.running.ipynb"
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


def notebook_parameters(notebook: Path) -> set[str]:
    """The names its `parameters` cell assigns: what papermill can set (it only logs a warning
    for any other name and runs the notebook without it)."""
    cells = json.loads(notebook.read_text())["cells"]
    names: set[str] = set()
    for cell in cells:
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for node in ast.parse(source).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def unknown_parameters(steps: list[Step]) -> list[str]:
    """'notebook: name, ...' for every planned notebook given a parameter it does not declare."""
    declared: dict[str, set[str]] = {}
    problems = []
    for step in steps:
        if step.direct:
            continue
        if step.notebook not in declared:
            declared[step.notebook] = notebook_parameters(step.source)
        unknown = sorted(set(step.params) - declared[step.notebook])
        if unknown:
            problems.append(f"{step.notebook}: {', '.join(unknown)}")
    return sorted(set(problems))


def path_flag(text: str) -> Path:
    """A folder flag: `~` expanded, an empty value refused."""
    from tsgd_core.cli import path_arg

    return Path(path_arg(text))


def ipc_list(text: str) -> list[int]:
    """--ipcs 1,5 -> [1, 5]: positive integers, comma-separated."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        ipcs = [int(p) for p in parts]
    except ValueError:
        ipcs = []
    if not ipcs or min(ipcs) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers (e.g. 1,5), got {text!r}"
        )
    return list(dict.fromkeys(ipcs))


def check_ipcs(profile: str, dataset: str, groups: list[str] | None, ipcs: list[int]) -> None:
    """Every IPC of --ipcs is one the chosen groups of the profile's grid run (else the plan
    would silently have no cell for it)."""
    from tsgd_core.grid import experiments

    groups = groups or list(experiments.DEFAULT_GROUPS)
    grid = experiments.build_dataset_grid(profile, dataset).groups()
    have = sorted({s.ipc for g, specs in grid.items() if g in groups for s in specs})
    missing = [i for i in ipcs if i not in have]
    if missing:
        raise ValueError(
            f"--ipcs {','.join(map(str, missing))}: profile {profile!r} runs IPC "
            f"{', '.join(map(str, have)) or 'none'} in group(s) {', '.join(groups)}: pick from "
            "those"
        )


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors ('run_grid: error: ...') and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"run_grid: error: {message} (see --help)\n")


def grid_groups(text: str) -> list[str]:
    """--groups main,ablation -> ['main', 'ablation'], each a group of the grid."""
    from tsgd_core.grid.cells import Grid

    known = list(Grid().groups())
    groups = [g.strip() for g in text.split(",") if g.strip()]
    unknown = [g for g in groups if g not in known]
    if not groups or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown group(s) {', '.join(unknown) or repr(text)}: use a comma-separated list "
            f"of {', '.join(known)}"
        )
    return groups


MAX_AUTO_WORKERS = 8  # each worker holds a kernel and the data: memory grows with them


def workers_arg(text: str) -> int | str:
    """--workers N (a positive integer) or auto."""
    from tsgd_core.cli import positive_int

    return text if text == "auto" else positive_int(text)


def auto_workers(device: str) -> int:
    """One worker per GPU where the cells run on CUDA, else one per CPU core (at most 8)."""
    import torch

    from tsgd_core.runtime import resolve_device

    if resolve_device(device).type == "cuda":
        return max(1, torch.cuda.device_count())
    return max(1, min(MAX_AUTO_WORKERS, os.cpu_count() or 1))


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n (SLURM's array task id and count give exactly that)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        index, count = -1, 0
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(
            f"--shard takes i/n with 0 <= i < n (e.g. 0/4), got {text!r}"
        )
    return index, count


def cell_labels(steps: list[Step]) -> list[str]:
    """The grid cells of a plan, in plan order (a cell is its 03 and 04 steps)."""
    return list(dict.fromkeys(s.label for s in steps if s.stage == "cell"))


def stale_runs(steps: list[Step], reports: Path) -> list[Path]:
    """Run folders of the planned groups that the plan no longer has: records of an older grid
    or protocol, which the report would otherwise pool with the current ones."""
    runs = reports / "runs"
    planned = {s.out_dir for s in steps if s.stage == "cell"}
    groups = {d.parent for d in planned if d.parent.parent == runs}
    return sorted(
        d for g in groups if g.is_dir() for d in g.iterdir() if d.is_dir() and d not in planned
    )


def remove_stale_runs(steps: list[Step], reports: Path) -> None:
    import shutil

    for folder in stale_runs(steps, reports):
        print(f"[stale] removing {folder} (not a run of this grid)", flush=True)
        shutil.rmtree(folder)


def shard_steps(steps: list[Step], shard: tuple[int, int], with_setup: bool = True) -> list[Step]:
    """Setup (unless not asked for) and every n-th cell from the i-th on: shards split the cells."""
    index, count = shard
    mine = set(cell_labels(steps)[index::count])
    return [
        s
        for s in steps
        if (s.stage == "setup" and with_setup) or (s.stage == "cell" and s.label in mine)
    ]


def merge_steps(steps: list[Step]) -> list[Step]:
    """What builds the report from the shards' runs: setup (done already: skipped) and final."""
    return [s for s in steps if s.stage != "cell"]


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
        if progress is not None:
            progress.step = None
    finally:
        if kernel is not None:
            try:
                kernel.close()
            except (Exception, KeyboardInterrupt):  # a second Ctrl-C while shutting it down
                pass
    return 0, log


def worker_command(args: argparse.Namespace, reports: Path, index: int, count: int) -> list[str]:
    """This script's command line for worker `index` of `count`: its shard, cells only."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--profile", args.profile]
    cmd += ["--reports", str(reports), "--cache", str(args.cache.resolve())]
    cmd += ["--device", args.device, "--threads", str(args.threads), "--no-html"]
    cmd += ["--shard", f"{index}/{count}", "--cells-only"]
    if args.groups:
        cmd += ["--groups", ",".join(args.groups)]
    cmd += getattr(args, "cell_flags", [])  # the dataset and --ipcs, as given
    if args.force:
        cmd.append("--force")
    if args.fresh_kernels:
        cmd.append("--fresh-kernels")
    return cmd


def worker_env(index: int, device: str) -> dict[str, str]:
    """The environment of worker `index`: one GPU of its own when several are visible."""
    env = dict(os.environ)
    if device == "cpu":
        return env
    import torch

    gpus = torch.cuda.device_count()
    if gpus > 1:
        visible = env.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(gpus)))).split(",")
        env["CUDA_VISIBLE_DEVICES"] = visible[index % len(visible)]
    return env


def train_cell_teachers(steps: list[Step], cache: Path, device: str) -> None:
    """Every teacher the cells need (one per camera shake), trained once before the workers
    start, instead of by several workers at once (same result, wasted time)."""
    from tsgd_core.grid.experiments import get_teacher

    use_kernel_threads()  # else it trains a teacher the kernels' thread count cannot find
    specs = [s.params["spec"] for s in steps if "spec" in s.params]
    for profile, shake in dict.fromkeys((spec["profile"], spec["camera_shake"]) for spec in specs):
        print(f"[teacher] profile {profile!r}, camera shake {shake:g} (cached once for all)")
        get_teacher(profile, shake, cache_dir=cache, device=device, progress=False)


def run_workers(args: argparse.Namespace, reports: Path, count: int) -> int:
    """`count` processes of this script, one shard each, in parallel; 0 when all succeeded."""
    logs = reports / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def one(index: int) -> int:
        log_path = logs / f"worker{index}of{count}.log"
        print(f"[worker {index}/{count}] started, log: {log_path}", flush=True)
        with open(log_path, "w") as out:
            code = subprocess.run(
                worker_command(args, reports, index, count),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=worker_env(index, args.device),
            ).returncode
        if code == 0:
            state = "done"
        elif code in INTERRUPT_CODES or INTERRUPTED.is_set():
            state = "interrupted"
        else:
            state = f"FAILED (exit code {code}; see the log)"
        print(f"[worker {index}/{count}] {state}: {log_path}", flush=True)
        return code

    with ThreadPoolExecutor(max_workers=count) as pool:
        codes = list(pool.map(one, range(count)))
    if INTERRUPTED.is_set() or any(code in INTERRUPT_CODES for code in codes):
        raise KeyboardInterrupt
    return max(codes)


def shard_summary_path(reports: Path, shard: tuple[int, int]) -> Path:
    return reports / "run_grid.shard{}of{}.json".format(*shard)


def worker_logs(reports: Path, count: int) -> list[dict[str, Any]]:
    """The step logs the workers left in their shard summaries (so the total counts them)."""
    log = []
    for index in range(count):
        path = shard_summary_path(reports, (index, count))
        if path.is_file():
            log += [e for e in json.loads(path.read_text())["steps"] if e["stage"] == "cell"]
    return log


def on_interrupt(signum: int, frame: Any) -> None:
    """Ctrl-C: remember it (what fails next is its consequence), then interrupt as usual."""
    INTERRUPTED.set()
    signal.default_int_handler(signum, frame)


def index_reports_root(reports: Path) -> bool:
    """Whether to rewrite the index of the folder holding `reports`: not the repository's
    `reports/`, whose README.md is tracked and lists the committed reports (a smoke or quick
    run there would otherwise rewrite it), unless that index is missing."""
    root = ROOT / "reports"
    return reports.parent.resolve() != root.resolve() or not (root / "README.md").is_file()


def main(argv: list[str] | None = None) -> int:
    """Run the grid; one line and exit 2 for bad options or files, 130 for Ctrl-C."""
    progress = Progress()
    INTERRUPTED.clear()
    handler = None
    if threading.current_thread() is threading.main_thread():
        handler = signal.signal(signal.SIGINT, on_interrupt)
    try:
        return run(argv, progress)
    except KeyboardInterrupt:
        print(f"\nrun_grid: interrupted{progress.kept()}", file=sys.stderr)
        return 130
    except OSError as err:
        target = f"{err.filename}: " if err.filename else ""
        print(f"run_grid: error: {target}{err.strerror or err}", file=sys.stderr)
        return 2
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, handler)


@dataclass
class Progress:
    """Where a run is, to say what an interrupt kept."""

    step: str | None = None
    finished: int = 0
    reports: Path | None = None

    def kept(self) -> str:
        if self.reports is None:
            return ": nothing was run"
        where = f" during {self.step}" if self.step else ""
        return (
            f"{where}; the {self.finished} step(s) finished in this run and all earlier results "
            f"are kept (notebooks in {self.reports}, sets and evaluations in the cache): run the "
            "same command again to continue from here"
        )


def run(argv: list[str] | None, progress: Progress) -> int:
    from tsgd_core import cli
    from tsgd_core.grid.profiles import PROFILES

    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile", default="default", choices=list(PROFILES), help="data and budget sizes"
    )
    parser.add_argument(
        "--reports", type=path_flag, help="output folder (default reports/<profile>)"
    )
    parser.add_argument("--cache", type=path_flag, default=ROOT / "cache", help="core cache folder")
    parser.add_argument("--device", type=cli.device_arg, default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--groups",
        type=grid_groups,
        help="comma-separated grid groups to run (default: all but shake)",
    )
    parser.add_argument(
        "--ipcs", type=ipc_list, help="comma-separated IPCs to run (default: the profile's)"
    )
    parser.add_argument("--force", action="store_true", help="rerun steps that look done")
    parser.add_argument("--fresh-kernels", action="store_true", help="a new kernel per notebook")
    parser.add_argument(
        "--threads",
        type=cli.positive_int,
        default=1,
        help="torch CPU threads per kernel (OMP_NUM_THREADS; default 1)",
    )
    parser.add_argument("--no-html", action="store_true", help="skip the HTML export")
    parser.add_argument("--dry-run", action="store_true", help="print the steps and exit")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        "--workers",
        type=workers_arg,
        default=1,
        help="run the grid's cells in this many parallel processes (one GPU each if several); "
        "auto: one per GPU, else one per CPU core (at most 8)",
    )
    scale.add_argument(
        "--shard",
        type=parse_shard,
        metavar="i/n",
        help="run setup and the i-th of n parts of the cells, no report (job arrays)",
    )
    scale.add_argument(
        "--merge", action="store_true", help="build the report from the runs the shards left"
    )
    parser.add_argument(
        "--cells-only", action="store_true", help="with --shard: skip the setup notebooks"
    )
    cli.add_dataset_options(parser, workers_flag="--decode-workers")
    parser.add_argument("--quiet", action="store_true", help="no progress bar while decoding")
    args = parser.parse_args(argv)
    if args.workers == "auto":
        args.workers = auto_workers(args.device)
    if args.cells_only and args.shard is None:
        parser.error("--cells-only applies to --shard")

    # The kernels inherit this environment. One thread: the models are tiny, and on a shared
    # CPU two OpenMP threads per process were ten times slower than one (measured).
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    folder = f"{args.profile}-{args.dataset}" if args.dataset else args.profile
    reports = (args.reports or Path("reports") / folder).resolve()
    from tsgd_core.data.storage import remove_stale_temporaries, sweep_cache

    args.cache_dir = args.cache.resolve()
    from tsgd_core.runtime.budget import memory_limit_override

    try:
        memory_limit_override()  # a bad TSGD_MEMORY_LIMIT_MB: one line now, not in a kernel
        dataset = cli.dataset_text(args)
        if args.ipcs:
            check_ipcs(args.profile, dataset, args.groups, args.ipcs)
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
    ipcs = args.ipcs
    # what the workers must repeat to plan the same cells (the data is decoded once, here)
    args.cell_flags = dataset_flags(
        sys.argv[1:] if argv is None else argv, ("--dataset", *cli.DATASET_ONLY_FLAGS, "--ipcs")
    )
    steps = plan(
        args.profile, reports, args.cache_dir, args.device, args.groups, dataset, command, ipcs
    )
    if args.shard is not None:
        steps = shard_steps(steps, args.shard, with_setup=not args.cells_only)
    elif args.merge:
        steps = merge_steps(steps)
    unknown = unknown_parameters(steps)
    if unknown:  # papermill would only log a warning and run without them
        print(
            f"run_grid: error: parameters the notebooks do not declare: {'; '.join(unknown)}: "
            "add them to the notebook's parameters cell or stop passing them",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        for i, step in enumerate(steps, 1):
            state = "done" if is_done(step) and not args.force else "todo"
            print(f"[{i}/{len(steps)}] {state} {step.label} {step.notebook} -> {step.out_dir}")
        return 0

    sweep_cache(args.cache)  # what a killed run (kill -9) left half-written
    remove_stale_temporaries(reports, recursive=True)
    if args.shard is None and not args.merge:  # a shard plans only its own cells
        remove_stale_runs(steps, reports)
    progress.reports = reports
    start = time.perf_counter()
    run = {"force": args.force, "fresh_kernels": args.fresh_kernels, "progress": progress}
    if args.workers > 1:
        # setup once here (the teacher is trained once), the cells in the workers, then the rest
        code, log = run_steps([s for s in steps if s.stage == "setup"], **run)
        if code == 0:
            train_cell_teachers(steps, args.cache.resolve(), args.device)
            code = run_workers(args, reports, args.workers)
            log += worker_logs(reports, args.workers)
        if code == 0:
            code, more = run_steps(
                [s for s in steps if s.stage != "setup" and s.stage != "cell"], **run
            )
            log += more
    else:
        code, log = run_steps(steps, **run)
    if code:
        return code
    if not args.no_html:
        export_html([s.executed for s in steps if not s.direct and s.executed.is_file()])
    from tsgd_core.data.storage import save_json
    from tsgd_core.report import write_reports_index

    if args.shard is None and index_reports_root(reports):
        write_reports_index(reports.parent)
    total = time.perf_counter() - start
    ran = [e for e in log if not e["skipped"]]
    overhead = sum(e["overhead_s"] for e in ran)
    by_group: dict[str, float] = {}
    for row in ran:  # where the time went: "main/..." -> main, "teacher" -> teacher
        group = row["step"].split("/")[0]
        by_group[group] = by_group.get(group, 0.0) + row["wall_s"]
    summary = {
        "profile": args.profile,
        "total_wall_s": total,
        "wall_s_by_group": by_group,
        "notebooks_run": len(ran),
        "notebooks_skipped": len(log) - len(ran),
        "overhead_s": overhead,
        "shared_kernel": not args.fresh_kernels,
        "threads": os.environ["OMP_NUM_THREADS"],
        "workers": args.workers,
        "shard": list(args.shard) if args.shard else None,
        "steps": log,
    }
    path = (
        reports / "run_grid.json" if args.shard is None else shard_summary_path(reports, args.shard)
    )
    save_json(summary, path)
    per = overhead / len(ran) if ran else 0.0
    what = (
        f"Report: {reports / 'README.md'}"
        if args.shard is None
        else "Build the report with --merge once every shard is done."
    )
    print(
        f"done in {total:.0f} s: {len(ran)} notebook(s) run, {len(log) - len(ran)} skipped; "
        f"notebook overhead outside cells {overhead:.0f} s ({per:.1f} s each). {what}"
    )
    for group, wall in sorted(by_group.items(), key=lambda kv: -kv[1]):
        print(f"  {group:<20} {wall:8.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

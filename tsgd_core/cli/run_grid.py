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
import errno
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..grid.kernels import INTERRUPTED, Progress, export_html, run_steps
from ..grid.planner import (
    ROOT,
    dataset_flags,
    is_done,
    merge_steps,
    missing_cells,
    plan,
    remove_stale_runs,
    select_cells,
    shard_steps,
    split_lines,
    unknown_parameters,
)
from ..grid.workers import (
    auto_workers,
    run_workers,
    shard_summary_path,
    train_cell_teachers,
    worker_logs,
)


def path_flag(text: str) -> Path:
    """A folder flag: `~` expanded, an empty value refused (runtime.paths.path_type)."""
    from ..runtime.paths import path_type

    return Path(path_type(text))


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


def choice_list(text: str, known: Sequence[str], what: str) -> list[str]:
    """'a,b' -> ['a', 'b'], each one of `known` (else argparse's error lists them)."""
    chosen = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in known]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown {what}(s) {', '.join(unknown) or repr(text)}: use a comma-separated list "
            f"of {', '.join(known)}"
        )
    return list(dict.fromkeys(chosen))


def method_list(text: str) -> list[str]:
    """--methods tsgd,random -> ['tsgd', 'random'], each a method of the grid."""
    from ..grid.profiles import METHODS

    return choice_list(text, METHODS, "method")


def check_selection(
    profile: str,
    dataset: str,
    groups: list[str] | None,
    ipcs: list[int] | None,
    methods: list[str] | None,
) -> None:
    """Every IPC of --ipcs and every method of --methods is one the chosen groups of the
    profile's grid run (else the plan would silently have no cell for it)."""
    from ..grid import experiments

    groups = groups or list(experiments.DEFAULT_GROUPS)
    grid = experiments.build_dataset_grid(profile, dataset).groups()
    specs = [s for g, group_specs in grid.items() if g in groups for s in group_specs]
    where = f"profile {profile!r} runs {{}} in group(s) {', '.join(groups)}: pick from those"
    have = sorted({s.ipc for s in specs})
    missing = [i for i in ipcs or [] if i not in have]
    if missing:
        runs = f"IPC {', '.join(map(str, have)) or 'none'}"
        raise ValueError(f"--ipcs {','.join(map(str, missing))}: {where.format(runs)}")
    specs = [s for s in specs if not ipcs or s.ipc in ipcs]
    have_methods = list(dict.fromkeys(s.method for s in specs))
    missing_methods = [m for m in methods or [] if m not in have_methods]
    if missing_methods:
        at = f" at IPC {','.join(map(str, ipcs))}" if ipcs else ""
        runs = f"the methods {', '.join(have_methods) or 'none'}{at}"
        raise ValueError(f"--methods {','.join(missing_methods)}: {where.format(runs)}")


def check_plan_against_data(args: argparse.Namespace, dataset: str) -> tuple[str, int]:
    """Before any training: --ipcs against the smallest class (ValueError), and a warning when
    the val split is too small to choose by. Returns the smallest class (name, train clips)."""
    from ..data.datasets import warn_about_data
    from ..grid.planner import check_ipcs_fit, small_val_warning, smallest_class
    from ..grid.profiles import load_data

    splits = load_data(args.profile, dataset=dataset, cache_dir=args.cache_dir)
    smallest = smallest_class(splits.train)
    warn_about_data([w for w in [small_val_warning(splits.val)] if w])
    check_ipcs_fit(args.ipcs, smallest)
    return smallest


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line errors ('run_grid: error: ...') and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"run_grid: error: {message} (see --help)\n")


def grid_groups(text: str) -> list[str]:
    """--groups main,ablation -> ['main', 'ablation'], each a group of the grid."""
    from ..grid.cells import Grid

    return choice_list(text, list(Grid().groups()), "group")


def workers_arg(text: str) -> int | str:
    """--workers N (a positive integer in its FLAG_RANGES range) or auto."""
    from .options import field_value

    return text if text == "auto" else field_value("workers")(text)


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


def on_interrupt(signum: int, frame: Any) -> None:
    """Ctrl-C: remember it (what fails next is its consequence), then interrupt as usual."""
    INTERRUPTED.set()
    signal.default_int_handler(signum, frame)


def run_all_steps(
    args: argparse.Namespace, steps: list[Any], reports: Path, run: dict[str, Any]
) -> tuple[int, list[dict[str, Any]]]:
    """The steps in this process, or the setup here and the cells in `args.workers` workers."""
    if args.workers <= 1:
        return run_steps(steps, **run)
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
    return code, log


def log_of_ran(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in log if not e["skipped"]]


def record_run(
    args: argparse.Namespace, reports: Path, log: list[dict[str, Any]], total: float, code: int
) -> dict[str, Any]:
    """Write run_grid.json (a shard's own file for a shard): where the time went, per group and
    per step, with the runs recorded before it kept under "earlier"; `exit_code` not 0 marks a
    run that failed or was interrupted."""
    from ..data.storage import save_json

    ran = log_of_ran(log)
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
        "overhead_s": sum(e["overhead_s"] for e in ran),
        "shared_kernel": not args.fresh_kernels,
        "threads": os.environ["OMP_NUM_THREADS"],
        "workers": args.workers,
        "shard": list(args.shard) if args.shard else None,
        "selection": {"groups": args.groups, "ipcs": args.ipcs, "methods": args.methods},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "exit_code": code,
        "steps": log,
    }
    path = (
        reports / "run_grid.json" if args.shard is None else shard_summary_path(reports, args.shard)
    )
    save_json(with_earlier_runs(summary, path), path)
    return summary


def with_earlier_runs(summary: dict[str, Any], path: Path) -> dict[str, Any]:
    """`summary` with the runs recorded before it at `path` under "earlier", oldest first: a
    partial run (--ipcs, --methods, --groups) must not erase the record of the whole run."""
    from ..data.storage import load_json

    try:
        before = load_json(path) if path.is_file() else None
    except (OSError, ValueError):  # an unreadable old record is replaced, not fatal
        before = None
    if not isinstance(before, dict) or "steps" not in before:
        return summary
    earlier = before.pop("earlier", [])
    return {**summary, "earlier": [*earlier, before]}


def index_reports_root(reports: Path) -> bool:
    """Whether to rewrite the index of the folder holding `reports`: not the repository's
    `reports/`, whose README.md is tracked and lists the committed reports (a smoke or quick
    run there would otherwise rewrite it), unless that index is missing."""
    root = ROOT / "reports"
    return reports.parent.resolve() != root.resolve() or not (root / "README.md").is_file()


def main(argv: list[str] | None = None) -> int:
    """Run the grid; one line and exit 2 for bad options or files, 130 for Ctrl-C. A reader of
    stdout that leaves (`| head -1`) neither stops the grid nor changes its exit code."""
    from ..runtime.progress import stdout_reader_may_leave

    progress = Progress()
    INTERRUPTED.clear()
    handler = None
    if threading.current_thread() is threading.main_thread():
        handler = signal.signal(signal.SIGINT, on_interrupt)
    try:
        with stdout_reader_may_leave():
            return run(argv, progress)
    except KeyboardInterrupt:
        print(f"\nrun_grid: interrupted{progress.kept()}", file=sys.stderr)
        return 130
    except OSError as err:
        target = f"{err.filename}: " if err.filename else ""
        print(f"run_grid: error: {target}{err.strerror or err}", file=sys.stderr)
        return 1 if err.errno in (errno.ENOSPC, errno.EDQUOT) else 2  # a limit of the machine
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, handler)


# what a grid's report folder holds beside its README.md (01's output, the run's summary): a
# README.md without them is another program's, which the report would overwrite
REPORT_MARKS = ("data_and_saliency", "run_grid.json")


def set_kernel_threads(threads: int | None) -> int:
    """The kernels' torch threads: --threads, else OMP_NUM_THREADS, else 1; set as
    OMP_NUM_THREADS and MKL_NUM_THREADS for the kernels and workers (which inherit them), with
    this checkout first on PYTHONPATH. A bad OMP_NUM_THREADS without --threads: ValueError."""
    from ..grid.spec import FLAG_RANGES
    from ..runtime.paths import env_int

    if threads is None:
        low, high, _ = FLAG_RANGES["threads"]
        advice = "set it to a thread count, unset it (1 thread), or pass --threads N"
        threads = env_int("OMP_NUM_THREADS", 1, int(low), int(high), advice)
    # one thread by default: the models are tiny, and on a shared CPU two OpenMP threads per
    # process were ten times slower than one (measured)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    return threads


def check_step_folders(steps: list[Any], reports: Path) -> None:
    """Every folder the steps write can be written, and none is the notebooks' own folder (an
    executed notebook would replace its source): ValueError naming --reports, before any work."""
    from ..runtime.paths import check_writable_dir

    for step in steps:
        if not step.direct and step.executed.resolve() == step.source.resolve():
            raise ValueError(
                f"--reports {reports} would overwrite the notebook {step.source} with its "
                "executed copy: give a folder outside notebooks/"
            )
    inside = sorted({str(s.out_dir.relative_to(reports)) for s in steps} - {"."})
    check_writable_dir(reports, "--reports", inside)


MISSING_SHOWN = 6  # missing cells named in a merge's error; the rest are counted


def check_merge(steps: list[Any], reports: Path, allow_partial: bool) -> None:
    """A merge needs a finished run of every planned cell: ValueError naming the missing ones
    (a warning line with --allow-partial; none finished is refused even then)."""
    missing = missing_cells(steps)
    planned = len(dict.fromkeys(s.label for s in steps if s.stage == "cell"))
    if not missing:
        return
    if len(missing) == planned:
        raise ValueError(
            f"--merge: no finished run of any of the {planned} planned cells in {reports}: "
            "run the shards first (--shard i/n), then merge"
        )
    named = ", ".join(missing[:MISSING_SHOWN])
    if len(missing) > MISSING_SHOWN:
        named += f", ... (+{len(missing) - MISSING_SHOWN} more)"
    what = f"{len(missing)} of {planned} planned cells have no finished run: {named}"
    if not allow_partial:
        raise ValueError(
            f"--merge: {what}: run the shards that hold them (--dry-run --shard i/n lists a "
            "shard's cells), or pass --allow-partial to report the others"
        )
    print(
        f"run_grid: warning: --allow-partial: {what}; the report leaves them out", file=sys.stderr
    )


def run(argv: list[str] | None, progress: Progress) -> int:
    from ..grid.profiles import PROFILES
    from . import options

    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile", default="default", choices=list(PROFILES), help="data and budget sizes"
    )
    parser.add_argument(
        "--reports", type=path_flag, help="output folder (default reports/<profile>)"
    )
    parser.add_argument("--cache", type=path_flag, default=ROOT / "cache", help="core cache folder")
    parser.add_argument(
        "--device", type=options.device_arg, default="auto", help="auto | cpu | cuda"
    )
    parser.add_argument(
        "--groups",
        type=grid_groups,
        help="comma-separated grid groups to run (default: all but shake)",
    )
    parser.add_argument(
        "--ipcs", type=ipc_list, help="comma-separated IPCs to run (default: the profile's)"
    )
    parser.add_argument(
        "--methods",
        type=method_list,
        help="comma-separated methods whose cells to run (default: all; e.g. random,tsgd)",
    )
    parser.add_argument("--force", action="store_true", help="rerun steps that look done")
    parser.add_argument("--fresh-kernels", action="store_true", help="a new kernel per notebook")
    parser.add_argument(
        "--threads",
        type=options.field_value("threads"),
        help="torch CPU threads per kernel (sets OMP_NUM_THREADS; default: OMP_NUM_THREADS, "
        "else 1)",
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
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="with --merge: build the report although some planned cells have no run yet",
    )
    options.add_dataset_options(parser, workers_flag="--decode-workers")
    parser.add_argument("--quiet", action="store_true", help="no progress bar while decoding")
    args = parser.parse_args(argv)
    if args.workers == "auto":
        args.workers = auto_workers(args.device)
    if args.cells_only and args.shard is None:
        parser.error("--cells-only applies to --shard")
    if args.allow_partial and not args.merge:
        parser.error("--allow-partial applies to --merge")

    folder = f"{args.profile}-{args.dataset}" if args.dataset else args.profile
    reports = (args.reports or Path("reports") / folder).resolve()
    from ..data.storage import remove_stale_temporaries, sweep_cache

    args.cache_dir = args.cache.resolve()
    from ..runtime.budget import memory_limit_override
    from ..runtime.paths import CACHE_SUBFOLDERS, check_own_output, check_writable_dir

    try:
        memory_limit_override()  # a bad TSGD_MEMORY_LIMIT_MB: one line now, not in a kernel
        args.threads = set_kernel_threads(args.threads)
        if not args.dry_run:  # before any work: not a folder found unwritable after the grid
            check_writable_dir(args.cache_dir, "--cache", CACHE_SUBFOLDERS)
            check_writable_dir(reports, "--reports")
            check_own_output(reports, "--reports", ["README.md"], REPORT_MARKS)
        dataset = options.dataset_text(args)
        if args.ipcs or args.methods:
            check_selection(args.profile, dataset, args.groups, args.ipcs, args.methods)
        smallest = None
        if dataset and not args.dry_run:  # decode once, in parallel, before any notebook
            options.prepare_dataset(args, dataset)
            smallest = check_plan_against_data(args, dataset)
    except (ValueError, options.CliError) as error:
        print(f"run_grid: error: {options.one_line(error)}", file=sys.stderr)
        return 2
    command = None
    if dataset:
        flags = dataset_flags(
            sys.argv[1:] if argv is None else argv, ("--dataset", *options.DATASET_ONLY_FLAGS)
        )
        command = f"./run_all.sh --profile {args.profile} {' '.join(flags)}"
    # what the workers must repeat to plan the same cells (the data is decoded once, here)
    args.cell_flags = dataset_flags(
        sys.argv[1:] if argv is None else argv,
        ("--dataset", *options.DATASET_ONLY_FLAGS, "--ipcs", "--methods"),
    )
    # the whole grid of the chosen groups: what stale-run removal compares the runs with, so
    # that a run of some IPCs or methods never removes the others' results
    everything = plan(
        args.profile,
        reports,
        args.cache_dir,
        args.device,
        args.groups,
        dataset,
        command,
        smallest=smallest,
    )
    steps = select_cells(everything, args.ipcs, args.methods)
    try:
        if not args.dry_run:
            check_step_folders(steps, reports)
        if args.merge:
            check_merge(steps, reports, args.allow_partial)
    except ValueError as error:
        print(f"run_grid: error: {options.one_line(error)}", file=sys.stderr)
        return 2
    if args.shard is not None:
        print("\n".join(split_lines(steps, args.shard[1], "shard", only=args.shard[0])), flush=True)
        steps = shard_steps(steps, args.shard, with_setup=not args.cells_only)
    elif args.workers > 1:
        print("\n".join(split_lines(steps, args.workers, "worker")), flush=True)
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
    if args.shard is None and not args.merge:  # a shard runs only its own cells
        remove_stale_runs(everything, reports)
    progress.reports = reports
    start = time.perf_counter()
    run = {"force": args.force, "fresh_kernels": args.fresh_kernels, "progress": progress}
    try:
        code, log = run_all_steps(args, steps, reports, run)
    except KeyboardInterrupt:  # what ran before the Ctrl-C keeps its time
        record_run(args, reports, progress.log, time.perf_counter() - start, 130)
        raise
    total = time.perf_counter() - start
    if code:  # the time of what ran is kept: a rerun's record lists this one as earlier
        record_run(args, reports, log, total, code)
        return code
    if not args.no_html:
        export_html([s.executed for s in steps if not s.direct and s.executed.is_file()])
    from ..report import write_reports_index

    if args.shard is None and index_reports_root(reports):
        write_reports_index(reports.parent)
    total = time.perf_counter() - start
    summary = record_run(args, reports, log, total, code)
    ran, by_group, overhead = log_of_ran(log), summary["wall_s_by_group"], summary["overhead_s"]
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

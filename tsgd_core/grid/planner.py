"""The plan of a grid run: one step per notebook (or direct run) of every cell, whether a step
is done already, and how shards split the cells."""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # the checkout: notebooks/, scripts/ and reports/


NOTEBOOKS = ROOT / "notebooks"


# the full-data cells' folders in a report, per student recipe
FULL_DATA_FOLDERS = {"base": "full_data", "tsgfa": "full_data_tsgfa"}


# grid groups run without notebooks: validation studies whose figures live in the report
NUMBERS_ONLY_GROUPS = ("controls", "sensitivity", "recover", "convergence", "tsgfa", "dm")


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


def full_data_label(recipe: str) -> str:
    """The step label of the upper bound under `recipe` (run_grid.json's group of its time)."""
    return "full data" + ("" if recipe == "base" else f" ({recipe})")


def plan(
    profile: str,
    reports: Path,
    cache: Path,
    device: str,
    groups: list[str] | None,
    dataset: str = "",
    command: str | None = None,
    ipcs: list[int] | None = None,
    smallest: tuple[str, int] | None = None,
    methods: list[str] | None = None,
) -> list[Step]:
    """Every step of the run, in order (`dataset`: DataSpec text of a real dataset, or "").

    ipcs, methods: only the cells of these IPCs and methods (None: all; `select_cells`).
    smallest: (class name, train clips) of the data's smallest class; cells of a larger IPC
    cannot be built and are left out of the plan, one line per IPC saying so.
    """
    from . import experiments

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
    # under each student recipe (the base recipe's cell keeps its older folder and parameters)
    # a profile's own full-data seeds are a parameter, so that a record made with other seeds is
    # not taken for done (profiles without them keep their older parameters)
    full_seeds = experiments.get_profile(profile).full_seeds
    for recipe, folder in FULL_DATA_FOLDERS.items():
        params = {"full_data": "test", **({"recipe": recipe} if recipe != "base" else {})}
        params |= {"seeds": list(full_seeds)} if full_seeds else {}
        label = full_data_label(recipe)
        steps.append(Step(label, "", reports / folder, params, direct=True))
    grid = experiments.build_dataset_grid(profile, dataset).groups()
    for line in dropped_ipc_lines(grid, groups, smallest):
        print(line, flush=True)
    for group, specs in grid.items():
        if group not in groups:
            continue
        for spec in specs:
            if not ipc_fits(spec.ipc, smallest):
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
    return select_cells(steps, ipcs, methods)


def select_cells(
    steps: list[Step], ipcs: list[int] | None, methods: list[str] | None
) -> list[Step]:
    """The plan less the grid cells of other IPCs and methods than these (None: all); the
    full-data cells, setup and report stay."""

    def chosen(step: Step) -> bool:
        spec = step.params.get("spec")
        if step.stage != "cell" or spec is None:
            return True
        return (not ipcs or spec["ipc"] in ipcs) and (not methods or spec["method"] in methods)

    return [s for s in steps if chosen(s)]


def smallest_class(train: Any) -> tuple[str, int]:
    """(name, clips) of the class with the fewest training clips."""
    counts = train.class_counts()
    index = int(counts.argmin())
    return train.class_names[index], int(counts[index])


def ipc_fits(ipc: int, smallest: tuple[str, int] | None) -> bool:
    """Whether a set of `ipc` clips per class can be drawn from the training split."""
    return smallest is None or ipc <= smallest[1]


def dropped_ipc_lines(
    grid: dict[str, list[Any]], groups: list[str], smallest: tuple[str, int] | None
) -> list[str]:
    """One line per IPC of the chosen groups that the smallest class cannot fill."""
    wanted = {s.ipc for g, specs in grid.items() if g in groups for s in specs}
    dropped = sorted(i for i in wanted if not ipc_fits(i, smallest))
    if not dropped or smallest is None:
        return []
    name, count = smallest
    return [
        f"[plan] IPC {ipc} left out of the grid: class {name!r} has {count} training clip"
        f"{'s' if count != 1 else ''}"
        for ipc in dropped
    ]


def check_ipcs_fit(ipcs: list[int] | None, smallest: tuple[str, int] | None) -> None:
    """--ipcs asks for IPCs the smallest class cannot fill: DataError naming the class."""
    from ..data.clips import DataError

    too_large = [i for i in ipcs or [] if not ipc_fits(i, smallest)]
    if too_large and smallest is not None:
        name, count = smallest
        raise DataError(
            f"--ipcs {','.join(map(str, too_large))}: class {name!r} has only {count} training "
            f"clip{'s' if count != 1 else ''}, so no set of more than {count} per class can be "
            f"drawn: use IPCs up to {count}, or add videos of {name!r}"
        )


# below this many validation clips per class, val accuracy moves in steps too coarse to choose by
MIN_VAL_PER_CLASS = 5


def small_val_warning(val: Any) -> str | None:
    """A warning when a class has fewer than MIN_VAL_PER_CLASS validation clips (else None)."""
    if val.num_classes == 0:
        return None
    counts = val.class_counts()
    index = int(counts.argmin())
    fewest = int(counts[index])
    if fewest >= MIN_VAL_PER_CLASS:
        return None
    return (
        f"the val split has {fewest} clip{'s' if fewest != 1 else ''} of class "
        f"{val.class_names[index]!r} (fewer than {MIN_VAL_PER_CLASS} per class): val accuracy "
        f"cannot guide choices here (one clip moves it by {100 / max(fewest, 1):.0f} points in "
        "that class): rely on the profile's stated settings, or add videos (a larger "
        "--max-per-class) for a val split that can"
    )


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
    """An executed notebook of the source as it is now, run with these parameters, with its
    outputs. The cells are compared, not modification times: a copy, a checkout or a clock can
    make an old executed notebook look newer than an edited source."""
    if step.direct:
        return direct_done(step)
    if step.always or not step.executed.is_file():
        return False
    if not all((step.out_dir / name).is_file() for name in step.needs):
        return False
    try:
        notebook = json.loads(step.executed.read_text())
        source = json.loads(step.source.read_text())
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON: run the step again
        return False
    meta = notebook.get("metadata") if isinstance(notebook, dict) else None
    papermill = meta.get("papermill") if isinstance(meta, dict) else None
    if not (isinstance(papermill, dict) and papermill.get("parameters") == step.params):
        return False
    return cell_sources(notebook) == cell_sources(source)


def cell_sources(notebook: Any) -> list[tuple[str, str]] | None:
    """(type, source) of every cell but papermill's injected parameters (None: not a notebook)."""
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        return None
    out = []
    for cell in cells:
        tags = (cell.get("metadata") or {}).get("tags") or []
        if "injected-parameters" in tags:
            continue
        text = cell.get("source", "")
        out.append((str(cell.get("cell_type")), text if isinstance(text, str) else "".join(text)))
    return out


DIRECT_PARAMS = "step.json"  # the parameters a direct step's record.json was made with


# parameters that say where and how a step runs, not what it computes
WHERE_PARAMS = ("out_dir", "cache_dir", "device", "progress")
# what a full-data step's record adds to its parameters: the key of the report's teacher
TEACHER_KEY = "teacher_key"


def experiment_params(params: dict[str, Any]) -> dict[str, Any]:
    """What a direct step computes: its parameters less where and how it ran."""
    return {k: v for k, v in plain(params).items() if k not in (*WHERE_PARAMS, TEACHER_KEY)}


def report_teacher_key(reports: Path) -> str | None:
    """The key of the teacher that the grid's teacher step recorded in `reports` (None: none)."""
    try:
        key = json.loads((reports / "teacher" / "teacher.json").read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) else None


def direct_params(step: Step) -> dict[str, Any]:
    """What a direct step's step.json says it was made with: its parameters, and for the upper
    bound the report's teacher, whose soft labels its students learn from."""
    if "full_data" not in step.params:
        return plain(step.params)
    return {**plain(step.params), TEACHER_KEY: report_teacher_key(step.out_dir.parent)}


def direct_done(step: Step) -> bool:
    """A direct step is done when its record exists and was made for the same experiment
    (wherever it ran: another checkout or machine, another device); an upper bound, also by
    the teacher the report has now (a retrained teacher makes the record stale)."""
    try:
        made_with = json.loads((step.out_dir / DIRECT_PARAMS).read_text())
    except (OSError, ValueError):
        return False
    same = same_experiment(experiment_params(made_with), experiment_params(step.params))
    if "full_data" in step.params and isinstance(made_with, dict):
        same = same and made_with.get(TEACHER_KEY) == direct_params(step)[TEACHER_KEY]
    return (step.out_dir / "record.json").is_file() and same


def same_experiment(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two direct steps' parameters compute the same thing: equal but for their specs,
    whose evaluation keys agree (a spec written before a RunSpec field existed, or in another
    spelling of the same cell, is the same experiment)."""
    from .spec import spec_from_params

    a, b = dict(a), dict(b)
    spec_a, spec_b = a.pop("spec", None), b.pop("spec", None)
    if a != b or (spec_a is None) != (spec_b is None):
        return False
    if spec_a is None:
        return True
    try:
        keys = [
            spec_from_params(**{"profile": a.get("profile", "default"), **s}).eval_key()
            for s in (spec_a, spec_b)
        ]
    except (TypeError, ValueError):  # a spec this checkout cannot read: not the same
        return False
    return keys[0] == keys[1]


def assigned_names(source: str) -> set[str]:
    """The names a cell's top-level assignments bind."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def notebook_parameters(notebook: Path) -> set[str]:
    """The names its `parameters` cell assigns: what papermill can set (it only logs a warning
    for any other name and runs the notebook without it)."""
    cells = json.loads(notebook.read_text())["cells"]
    names: set[str] = set()
    for cell in cells:
        if "parameters" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        names |= assigned_names(source)
    return names


INJECTED_HEADER = "# Parameters\n"  # how papermill's injected-parameters cell begins


def refuse_unknown_parameters(history: Sequence[str] | None = None) -> None:
    """Raise ValueError when papermill injected a parameter the notebook does not declare.

    `history` is the kernel's cell history (default: IPython's `In`): papermill runs the
    notebook's parameters cell, then its injected cell; a name the injected cell sets that the
    cell before it does not is one papermill would only have warned about. Without papermill
    (or outside IPython): nothing."""
    if history is None:
        from IPython import get_ipython

        shell = get_ipython()
        history = shell.user_ns.get("In", []) if shell is not None else []
    for before, cell in pairwise(history):
        if cell.startswith(INJECTED_HEADER):
            unknown = sorted(assigned_names(cell) - assigned_names(before))
            if unknown:
                declared = ", ".join(sorted(assigned_names(before)))
                raise ValueError(
                    f"this notebook has no parameter {', '.join(unknown)}: its parameters are "
                    f"{declared}; stop passing {'it' if len(unknown) == 1 else 'them'}"
                )


# the notebooks' path parameters that are only read; every other one names a folder written
READ_PATH_PARAMETERS = ("runs_dir", "committed_report")


def checked_path_parameters(**paths: str) -> tuple[str, ...]:
    """A notebook's path parameters, in the order given, each `~` expanded; ValueError naming
    the parameter when one is empty, or when a folder it writes cannot be written (cache_dir:
    with its entry folders). The same check as every path flag's (runtime.paths)."""
    from ..runtime.paths import CACHE_SUBFOLDERS, check_writable_dir, user_path

    checked = []
    for name, value in paths.items():
        if name in READ_PATH_PARAMETERS:
            checked.append(str(user_path(value, name)))
            continue
        inside = CACHE_SUBFOLDERS if name == "cache_dir" else ()
        checked.append(str(check_writable_dir(value, name, inside)))
    return tuple(checked)


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


def cell_labels(steps: list[Step]) -> list[str]:
    """The grid cells of a plan, in plan order (a cell is its 03 and 04 steps)."""
    return list(dict.fromkeys(s.label for s in steps if s.stage == "cell"))


# what a run folder holds (any of them): a folder without one is not the grid's to remove
RUN_FILES = (
    "record.json",
    DIRECT_PARAMS,
    "distill.json",
    "03_distill.ipynb",
    "04_evaluate.ipynb",
    "03_distill.failed.ipynb",
    "04_evaluate.failed.ipynb",
)


def is_run_folder(folder: Path) -> bool:
    return any((folder / name).is_file() for name in RUN_FILES)


def stale_runs(steps: list[Step], reports: Path) -> list[Path]:
    """Run folders of the planned groups that the plan no longer has: records of an older grid
    or protocol, which the report would otherwise pool with the current ones.

    `steps` must be the whole grid of the chosen groups (`plan` without ipcs and methods): a
    run that --ipcs or --methods left out of this run is another part's result, not stale.
    Folders that hold none of a run's files are not the grid's and are never listed."""
    runs = reports / "runs"
    planned = {s.out_dir for s in steps if s.stage == "cell"}
    groups = {d.parent for d in planned if d.parent.parent == runs}
    return sorted(
        d
        for g in groups
        if g.is_dir()
        for d in g.iterdir()
        if d.is_dir() and d not in planned and is_run_folder(d)
    )


def remove_stale_runs(steps: list[Step], reports: Path) -> None:
    """Delete `stale_runs` (each named on one line)."""
    import shutil

    for folder in stale_runs(steps, reports):
        print(f"[stale] removing {folder} (not a run of this grid)", flush=True)
        shutil.rmtree(folder)


def missing_cells(steps: list[Step]) -> list[str]:
    """The cells of a plan that have no finished run (a step of theirs is not done), in order."""
    return list(dict.fromkeys(s.label for s in steps if s.stage == "cell" and not is_done(s)))


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


SPLIT_SHOWN = 4  # cells named per share; the rest are counted


def split_lines(steps: list[Step], count: int, who: str, only: int | None = None) -> list[str]:
    """How `count` shares (workers or shards) split the cells of a plan, one line per share (only
    share `only` when given): every count-th cell from the i-th, as `shard_steps` takes them."""
    cells = cell_labels(steps)
    lines = [
        f"[split] {len(cells)} cell(s) over {count} {who}s: {who} i runs cells i, i+{count}, ..."
    ]
    for index in range(count) if only is None else [only]:
        mine = cells[index::count]
        named = ", ".join(mine[:SPLIT_SHOWN])
        if len(mine) > SPLIT_SHOWN:
            named += f", ... (+{len(mine) - SPLIT_SHOWN} more)"
        lines.append(f"[split] {who} {index}/{count}: {len(mine)} cell(s): {named or 'none'}")
    return lines

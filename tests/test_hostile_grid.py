"""Hostile input to the grid runner and its stages (issue 28, part A): partial runs that must not
delete each other's results, paths that must not overwrite what they do not own, flags, counts
and environment variables refused in one line, a broken stdout that must not stop the work,
leftovers removed, edited notebooks rerun.

The grid is driven cheaply: `kernels.execute` is replaced by a fake that writes what a step
leaves (its executed notebook, record.json, ...), so a whole smoke grid "runs" in a second."""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_hostile_limits import fake_venv  # noqa: F401, F811 (a fixture: run_all.sh, no install)

from tsgd_core.grid import kernels, planner
from tsgd_core.grid.planner import DIRECT_PARAMS, plain

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--profile", "smoke", "--groups", "main", "--ipcs", "1", "--no-html", "--fresh-kernels"]


def one_error_line(err: str, out: str, prefix: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in err + out and "internal error" not in err
    return lines[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture
def run_grid(monkeypatch):
    """The runner, with the environment its main sets restored after."""
    for name in ("PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    from tsgd_core.cli import run_grid

    return run_grid


def executed_copy(step: planner.Step) -> dict:
    """What papermill leaves for `step`: the source notebook with its parameters recorded."""
    notebook = json.loads(step.source.read_text())
    notebook.setdefault("metadata", {})["papermill"] = {"parameters": plain(step.params)}
    return notebook


@pytest.fixture
def fake_steps(monkeypatch):
    """kernels.execute replaced: each step writes the files a real one leaves; returns the list
    of (label, notebook, OMP_NUM_THREADS) of the steps run, in order."""
    ran: list[tuple[str, str, str | None]] = []

    def execute(step: planner.Step, engine: object) -> dict:
        step.out_dir.mkdir(parents=True, exist_ok=True)
        ran.append((step.label, step.notebook, os.environ.get("OMP_NUM_THREADS")))
        if step.direct:
            (step.out_dir / "record.json").write_text("{}")
            (step.out_dir / DIRECT_PARAMS).write_text(json.dumps(plain(step.params)))
        else:
            for name in step.needs:
                (step.out_dir / name).write_text("{}")
            step.executed.write_text(json.dumps(executed_copy(step)))
            if step.notebook == "05_report.ipynb":
                (step.out_dir / "README.md").write_text("# the report\n")
        return {"wall_s": 0.0, "cells_s": 0.0, "overhead_s": 0.0}

    monkeypatch.setattr(kernels, "execute", execute)
    return ran


def grid(run_grid, capsys, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    """run_grid.main on the smoke grid's main group at IPC 1, reports and cache under tmp_path."""
    where = ["--reports", str(tmp_path / "rep"), "--cache", str(tmp_path / "cache")]
    try:
        code = run_grid.main([*GRID, *where, *argv])
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def runs(tmp_path: Path) -> list[str]:
    folder = tmp_path / "rep" / "runs" / "main"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ----------------------------------------------------------------------------- 1: partial runs


def test_1_a_partial_run_keeps_the_other_parts_results(run_grid, fake_steps, capsys, tmp_path):
    code, out, _ = grid(run_grid, capsys, tmp_path, "--methods", "random")
    assert code == 0, out
    random_runs = runs(tmp_path)
    assert random_runs and all(r.startswith("random_") for r in random_runs)
    old = tmp_path / "rep" / "runs" / "main" / "random_ipc1_0ld0ld"  # an older grid's run
    old.mkdir()
    (old / "record.json").write_text("{}")
    code, out, _ = grid(run_grid, capsys, tmp_path, "--methods", "dm")
    assert code == 0, out
    assert set(random_runs) < set(runs(tmp_path)), "the dm run removed Random's results"
    assert any(r.startswith("dm_") for r in runs(tmp_path))
    assert not old.exists() and f"[stale] removing {old}" in out  # stale runs still go


def test_1_another_ipc_keeps_the_first_ipcs_results(run_grid, fake_steps, capsys, tmp_path):
    assert grid(run_grid, capsys, tmp_path, "--methods", "random")[0] == 0
    first = runs(tmp_path)
    argv = [*GRID, "--reports", str(tmp_path / "rep"), "--cache", str(tmp_path / "cache")]
    argv[argv.index("--ipcs") + 1] = "2"
    assert run_grid.main([*argv, "--methods", "random"]) == 0
    assert "[stale]" not in capsys.readouterr().out
    assert set(first) < set(runs(tmp_path))


def test_new_kind_stale_removal_never_deletes_what_is_not_a_run(
    run_grid, fake_steps, capsys, tmp_path
):
    mine = tmp_path / "rep" / "runs" / "main" / "my_notes"  # the user's, not the grid's
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me")
    code, out, _ = grid(run_grid, capsys, tmp_path, "--methods", "random")
    assert code == 0, out
    assert (mine / "notes.txt").read_text() == "keep me"


# ----------------------------------------------------------------------------- 2, 13: stage flags


class WorkStarted(BaseException):  # noqa: N818 (not an error: a probe that the work began)
    """Raised by the faked work of a stage: it started (and with which keywords)."""


def stage_main(flag: str):
    """The main function of the module run_all.sh runs for `flag` (--tune, --ladder, ...)."""
    text = (ROOT / "run_all.sh").read_text()
    module = re.search(rf"^\s*{flag}\).*?python -m ([\w.]+)", text, flags=re.M)[1]
    return importlib.import_module(module).main


@pytest.fixture
def stages_fake_work(monkeypatch):
    """The tuning and ladder stages' work replaced by a probe that raises WorkStarted."""
    from tsgd_core.grid import ladder, tuning

    def started(*args, **kwargs):
        raise WorkStarted(kwargs)

    monkeypatch.setattr(tuning, "tune", started)
    monkeypatch.setattr(ladder, "train_teachers", started)
    monkeypatch.setattr(ladder, "run_specs", started)


def stage(flag: str, capsys, *argv: str) -> tuple[int, str]:
    """Run a stage; its exit code and one error line (WorkStarted means it was not refused)."""
    try:
        code = stage_main(flag)(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, one_error_line(captured.err, captured.out, "")


PROFILE = {"--tune": ["--profile", "smoke"], "--ladder": []}  # the ladder has its own profiles
STAGE_CASES = {  # name -> (stage flag, argv, text the one line must contain)
    "tune --ipcs 0": ("--tune", ["--ipcs", "0"], "--ipcs"),
    "tune --ipcs abc": ("--tune", ["--ipcs", "abc"], "'abc'"),
    "tune --ipcs empty": ("--tune", ["--ipcs", ","], "--ipcs"),
    "tune --workers 0": ("--tune", ["--workers", "0"], "--workers"),
    "tune --workers -3": ("--tune", ["--workers", "-3"], "--workers"),
    "tune --out empty": ("--tune", ["--out", ""], "--out: an empty path"),
    "tune --out blank": ("--tune", ["--out", "  "], "--out: an empty path"),
    "tune --tuned empty": ("--tune", ["--tuned", ""], "--tuned: an empty path"),
    "tune --cache empty": ("--tune", ["--cache", ""], "--cache: an empty path"),
    "tune --device tpu": ("--tune", ["--device", "tpu"], "unknown device 'tpu'"),
    "ladder --ipcs 0": ("--ladder", ["--ipcs", "0"], "--ipcs"),
    "ladder --ipcs abc": ("--ladder", ["--ipcs", "abc"], "'abc'"),
    "ladder --workers 0": ("--ladder", ["--workers", "0"], "--workers"),
    "ladder --workers -3": ("--ladder", ["--workers", "-3"], "--workers"),
    "ladder --out empty": ("--ladder", ["--out", ""], "--out: an empty path"),
    "ladder --cache empty": ("--ladder", ["--cache", ""], "--cache: an empty path"),
    "ladder --device tpu": ("--ladder", ["--device", "tpu"], "unknown device 'tpu'"),
}


@pytest.mark.parametrize("case", sorted(STAGE_CASES))
def test_2_13_bad_stage_flag_is_one_line_exit_2_before_work(
    stages_fake_work, capsys, tmp_path, monkeypatch, case
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("the user's readme\n")
    flag, argv, needle = STAGE_CASES[case]
    code, line = stage(flag, capsys, *argv, *PROFILE[flag])
    assert code == 2 and needle in line, line
    assert [p.name for p in files_under(tmp_path)] == ["README.md"]
    assert (tmp_path / "README.md").read_text() == "the user's readme\n"


@pytest.mark.slow  # two interpreters with torch: seconds each
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--tune", "--ipcs", "0"], "tune: error: argument --ipcs"),
        (["--ladder", "--workers", "-3"], "ladder: error: argument --workers"),
    ],
)
def test_13_run_all_stage_flags_are_one_line_exit_2(fake_venv, tmp_path, argv, needle):  # noqa: F811
    result = subprocess.run(
        ["bash", str(ROOT / "run_all.sh"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=fake_venv,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert needle in one_error_line(result.stderr, result.stdout, needle.split()[0])


def test_2_tune_expands_tilde_in_out_and_makes_no_folder_named_tilde(
    stages_fake_work, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(WorkStarted) as started:
        stage_main("--tune")(["--profile", "smoke", "--out=~/x", "--tuned", "~/t.json"])
    kwargs = started.value.args[0]
    assert Path(kwargs["out"]) == tmp_path / "home" / "x"
    assert Path(kwargs["tuned_path"]) == tmp_path / "home" / "t.json"
    assert not (tmp_path / "~").exists()


def test_2_tune_tuned_folder_is_refused_before_the_work(
    stages_fake_work, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "somewhere").mkdir()
    code, line = stage("--tune", capsys, "--profile", "smoke", "--tuned", "somewhere")
    assert code == 2 and "--tuned" in line and "is a folder" in line, line


@pytest.mark.parametrize("flag, marker", [("--tune", "tuning.csv"), ("--ladder", "ladder.csv")])
def test_new_kind_stage_out_refuses_a_folder_whose_readme_it_did_not_write(
    stages_fake_work, capsys, tmp_path, monkeypatch, flag, marker
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("the user's readme\n")
    code, line = stage(flag, capsys, *PROFILE[flag], "--out", ".")
    assert code == 2 and "README.md" in line and "--out" in line, line
    assert (tmp_path / "README.md").read_text() == "the user's readme\n"
    (tmp_path / marker).write_text("")  # the stage's own earlier output: overwritten as before
    with pytest.raises(WorkStarted):
        stage_main(flag)([*PROFILE[flag], "--out", "."])


def test_new_kind_run_grid_refuses_reports_whose_readme_it_did_not_write(
    run_grid, fake_steps, capsys, tmp_path
):
    readme = tmp_path / "rep" / "README.md"
    readme.parent.mkdir()
    readme.write_text("the user's readme\n")
    code, out, err = grid(run_grid, capsys, tmp_path, "--methods", "random")
    assert code == 2, out
    line = one_error_line(err, out, "run_grid: error:")
    assert "--reports" in line and "README.md" in line
    assert readme.read_text() == "the user's readme\n" and not fake_steps


def test_2_run_grid_refuses_an_unwritable_reports_subfolder_before_work(
    run_grid, fake_steps, capsys, tmp_path
):
    blocker = tmp_path / "rep" / "runs"
    blocker.parent.mkdir()
    blocker.write_text("a file where the runs go")
    code, out, err = grid(run_grid, capsys, tmp_path, "--methods", "random")
    assert code == 2 and not fake_steps
    assert "runs" in one_error_line(err, out, "run_grid: error:")


def test_2_path_check_is_one_function_for_flags_and_notebooks(tmp_path, monkeypatch):
    from tsgd_core.cli import options
    from tsgd_core.data import storage
    from tsgd_core.runtime import paths

    assert storage.check_writable_dir is paths.check_writable_dir
    assert storage.check_writable_file is paths.check_writable_file
    monkeypatch.setenv("HOME", str(tmp_path))
    assert options.path_arg("~/a") == str(tmp_path / "a")
    cache = tmp_path / "cache"
    (cache / "teachers").mkdir(parents=True)
    (cache / "distilled").write_text("a file where a folder goes")
    with pytest.raises(ValueError, match="distilled"):
        paths.check_writable_dir(cache, "--cache", paths.CACHE_SUBFOLDERS)


# ----------------------------------------------------------------------------- 3: notebooks


def notebook_cells(name: str) -> tuple[str, str]:
    """The parameters cell and the cell after it (the one that checks the parameters)."""
    cells = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    index = next(i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", []))
    return "".join(code[index]["source"]), "".join(code[index + 1]["source"])


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("0*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
@pytest.mark.parametrize("parameter", ["cache_dir", "out_dir"])
def test_3_empty_notebook_path_parameter_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, name, parameter
):
    params, check = notebook_cells(name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(params, namespace)
    namespace.update({"profile": "smoke", parameter: "", "progress": False})
    with pytest.raises(ValueError, match=f"{parameter}: an empty path"):
        exec(check, namespace)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("name", ["00_quickstart.ipynb", "03_distill.ipynb", "04_evaluate.ipynb"])
def test_3_tilde_in_notebook_paths_is_the_home_folder(tmp_path, monkeypatch, name):
    params, check = notebook_cells(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    namespace: dict = {}
    exec(params, namespace)
    namespace.update({"profile": "smoke", "cache_dir": "~/c", "out_dir": "~/o"})
    exec(check, namespace)
    assert namespace["cache_dir"] == str(tmp_path / "home" / "c")
    assert namespace["out"] == tmp_path / "home" / "o" and namespace["out"].is_dir()
    assert not (tmp_path / "~").exists()


# ----------------------------------------------------------------------------- 6, 15: merge


def test_6_merge_after_one_shard_names_the_missing_cells_and_refuses(
    run_grid, fake_steps, capsys, tmp_path
):
    code, out, _ = grid(run_grid, capsys, tmp_path, "--methods", "random,dm", "--shard", "0/2")
    assert code == 0, out
    done = {label for label, _, _ in fake_steps if label.startswith("main/")}
    fake_steps.clear()
    code, out, err = grid(run_grid, capsys, tmp_path, "--methods", "random,dm", "--merge")
    assert code == 2 and not fake_steps, out
    line = one_error_line(err, out, "run_grid: error:")
    steps = planner.plan("smoke", tmp_path / "rep", tmp_path / "cache", "cpu", ["main"])
    steps = [s for s in steps if s.stage == "cell" and s.params.get("spec", {}).get("ipc") == 1]
    planned = {s.label for s in steps if s.params["spec"]["method"] in ("random", "dm")}
    missing = planned - done
    assert missing and all(label in line for label in missing) and "--allow-partial" in line
    assert not (tmp_path / "rep" / "README.md").exists()
    argv = ["--methods", "random,dm", "--merge", "--allow-partial"]
    code, out, _ = grid(run_grid, capsys, tmp_path, *argv)
    assert code == 0 and (tmp_path / "rep" / "README.md").is_file(), out


def test_15_merge_with_no_runs_is_refused_before_any_notebook(
    run_grid, fake_steps, capsys, tmp_path
):
    code, out, err = grid(run_grid, capsys, tmp_path, "--merge")
    assert code == 2 and fake_steps == []
    assert "no finished run" in one_error_line(err, out, "run_grid: error:")


def test_6_allow_partial_applies_to_merge_only(run_grid, capsys, tmp_path):
    code, _, err = grid(run_grid, capsys, tmp_path, "--allow-partial", "--dry-run")
    assert code == 2 and "--allow-partial" in err


# ----------------------------------------------------------------------------- 7: broken stdout


class ClosedReader(io.StringIO):
    """A stdout whose reader has gone (`... | head -1` after its line): every write fails."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_7_a_closed_stdout_does_not_stop_the_grid(run_grid, fake_steps, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdout", ClosedReader())
    where = ["--reports", str(tmp_path / "rep"), "--cache", str(tmp_path / "cache")]
    code = run_grid.main([*GRID, *where, "--methods", "random"])
    assert code == 0
    steps = [label for label, _, _ in fake_steps]
    assert steps[0] == "data and saliency" and steps[-1] == "quickstart"
    assert (tmp_path / "rep" / "run_grid.json").is_file()


def test_a_partial_run_keeps_the_record_of_the_runs_before_it(run_grid, fake_steps, tmp_path):
    where = ["--reports", str(tmp_path / "rep"), "--cache", str(tmp_path / "cache")]
    assert run_grid.main([*GRID, *where]) == 0
    first = json.loads((tmp_path / "rep" / "run_grid.json").read_text())
    assert "earlier" not in first and first["selection"]["ipcs"] == [1]
    assert run_grid.main([*GRID, *where, "--methods", "random", "--force"]) == 0
    second = json.loads((tmp_path / "rep" / "run_grid.json").read_text())
    assert second["selection"]["methods"] == ["random"]
    assert second["earlier"] == [first]  # the whole run's steps and times, as written
    assert len(second["steps"]) < len(first["steps"])
    (tmp_path / "rep" / "run_grid.json").write_text("{")  # unreadable: replaced, not fatal
    assert run_grid.main([*GRID, *where, "--methods", "random"]) == 0
    assert "earlier" not in json.loads((tmp_path / "rep" / "run_grid.json").read_text())


def test_a_failed_run_keeps_the_time_of_what_ran(run_grid, fake_steps, tmp_path, monkeypatch):
    where = ["--reports", str(tmp_path / "rep"), "--cache", str(tmp_path / "cache")]
    real = kernels.execute

    def fail_at_the_report(step: planner.Step, engine: object) -> dict:
        if step.notebook == "05_report.ipynb":
            raise RuntimeError("the kernel died")
        return {**real(step, engine), "wall_s": 2.0}

    monkeypatch.setattr(kernels, "execute", fail_at_the_report)
    assert run_grid.main([*GRID, *where]) == 1
    failed = json.loads((tmp_path / "rep" / "run_grid.json").read_text())
    assert failed["exit_code"] == 1 and failed["wall_s_by_group"]["main"] > 0
    assert any(step["step"].startswith("main/") for step in failed["steps"])
    monkeypatch.setattr(kernels, "execute", real)
    assert run_grid.main([*GRID, *where]) == 0  # the rerun finishes: the failed run is earlier
    again = json.loads((tmp_path / "rep" / "run_grid.json").read_text())
    assert again["exit_code"] == 0 and again["earlier"] == [failed]


def test_an_interrupted_run_keeps_the_time_of_what_ran(run_grid, fake_steps, tmp_path, monkeypatch):
    where = ["--reports", str(tmp_path / "rep"), "--cache", str(tmp_path / "cache")]
    real = kernels.execute

    def ctrl_c_at_the_report(step: planner.Step, engine: object) -> dict:
        if step.notebook == "05_report.ipynb":
            raise KeyboardInterrupt
        return real(step, engine)

    monkeypatch.setattr(kernels, "execute", ctrl_c_at_the_report)
    assert run_grid.main([*GRID, *where]) == 130
    record = json.loads((tmp_path / "rep" / "run_grid.json").read_text())
    assert record["exit_code"] == 130
    ran = [step["step"] for step in record["steps"]]
    assert ran[0] == "data and saliency" and any(s.startswith("main/") for s in ran)
    assert "report" not in ran, "the interrupted step is not counted as run"


@pytest.mark.slow  # an interpreter with torch: seconds
def test_7_run_grid_into_a_closed_pipe_exits_0_without_a_traceback(tmp_path):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    argv = [sys.executable, "scripts/run_grid.py", "--profile", "smoke", "--dry-run"]
    argv += ["--cache", str(tmp_path / "c"), "--reports", str(tmp_path / "r")]
    result = subprocess.run(argv, stdout=write, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    os.close(write)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.slow  # an interpreter with torch: seconds
def test_7_run_all_builds_the_book_with_a_stdout_whose_reader_may_leave(tmp_path):
    text = (ROOT / "run_all.sh").read_text()
    book = next(
        line
        for line in text.splitlines()
        if "tsgd_core.report.book" in line and "python" in line and not line.startswith("#")
    )
    assert "tsgd_core.runtime.progress tsgd_core.report.book" in book
    read, write = os.pipe()
    os.close(read)
    argv = [sys.executable, "-m", "tsgd_core.runtime.progress", "tsgd_core.report.book"]
    argv += ["--times", str(ROOT / "reports" / "default")]  # prints a table to stdout
    result = subprocess.run(argv, stdout=write, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    os.close(write)
    assert result.returncode == 0 and result.stderr == "", result.stderr


# ----------------------------------------------------------------------------- 10: leftovers


def leftover(folder: Path, owner: str, age_s: float) -> Path:
    """A temporary file as atomic_path names them, `age_s` old (negative: in the future)."""
    path = folder / f".record{len(list(folder.iterdir()))}.{owner}abc_1234.tmp.json"
    path.write_text("half")
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


def test_10_leftover_of_a_live_pid_it_cannot_prove_is_removed_once_old(tmp_path):
    from tsgd_core.data.storage import remove_stale_temporaries
    from tsgd_core.runtime.paths import host_name

    old = leftover(tmp_path, f"{host_name()}~1~", age_s=2 * 24 * 3600)  # PID 1 is always alive
    fresh = leftover(tmp_path, f"{host_name()}~1~", age_s=10)  # perhaps a writer right now
    assert remove_stale_temporaries(tmp_path) == [old]
    assert fresh.exists()


def test_10_leftover_of_another_process_with_a_reused_pid_is_removed_at_once(tmp_path):
    from tsgd_core.data.storage import remove_stale_temporaries
    from tsgd_core.runtime.paths import host_name, owner_token

    reused = leftover(tmp_path, f"{host_name()}~1~0badf00d~", age_s=10)  # PID 1, another start
    mine = leftover(tmp_path, owner_token(), age_s=10)  # this live process: kept
    assert remove_stale_temporaries(tmp_path) == [reused]
    assert mine.exists()


def test_10_leftover_with_a_future_mtime_is_removed(tmp_path):
    from tsgd_core.data.storage import remove_stale_temporaries
    from tsgd_core.runtime.paths import host_name

    future = leftover(tmp_path, f"{host_name()}~1~", age_s=-365 * 24 * 3600)
    other_host = leftover(tmp_path, "elsewhere~77~", age_s=-365 * 24 * 3600)
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([future, other_host])


def test_10_a_killed_runs_executed_notebook_leftover_is_removed_at_start(tmp_path):
    from tsgd_core.data.storage import remove_stale_temporaries

    code = (
        "from pathlib import Path; from tsgd_core.grid import kernels, planner; "
        "print(kernels.running_path(planner.Step('t', '02_teacher.ipynb', Path('.'), {})).name)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    kept = tmp_path / "teacher" / result.stdout.strip()  # that process is gone: as if killed
    kept.parent.mkdir()
    kept.write_text("{}")
    assert remove_stale_temporaries(tmp_path, recursive=True) == [kept]


# ----------------------------------------------------------------------------- 11: edited notebook


@pytest.fixture
def notebook_copy(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / "02_teacher.ipynb", folder)
    monkeypatch.setattr(planner, "NOTEBOOKS", folder)
    return folder / "02_teacher.ipynb"


def test_11_an_edited_notebook_is_rerun_whatever_the_mtimes(notebook_copy, tmp_path):
    step = planner.Step("teacher", "02_teacher.ipynb", tmp_path / "t", {"profile": "smoke"})
    step.out_dir.mkdir()
    step.executed.write_text(json.dumps(executed_copy(step)))
    assert planner.is_done(step)
    source = json.loads(notebook_copy.read_text())
    source["cells"][-1]["source"] = ["print('an edit')\n"]
    notebook_copy.write_text(json.dumps(source))
    future = time.time() + 365 * 24 * 3600  # touch -d '+1 year' on the executed copy
    os.utime(step.executed, (future, future))
    assert not planner.is_done(step)


def test_11_a_touched_but_unchanged_notebook_stays_done(notebook_copy, tmp_path):
    step = planner.Step("teacher", "02_teacher.ipynb", tmp_path / "t", {"profile": "smoke"})
    step.out_dir.mkdir()
    step.executed.write_text(json.dumps(executed_copy(step)))
    os.utime(notebook_copy, (time.time() + 60,) * 2)  # a checkout or a copy: newer, the same
    assert planner.is_done(step)


# ----------------------------------------------------------------------------- 12, 20: environment


def test_12_threads_flag_wins_over_the_environment(
    run_grid, fake_steps, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    code, out, _ = grid(run_grid, capsys, tmp_path, "--methods", "random", "--threads", "2")
    assert code == 0, out
    assert json.loads((tmp_path / "rep" / "run_grid.json").read_text())["threads"] == "2"
    assert {threads for _, _, threads in fake_steps} == {"2"}


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_20_bad_omp_num_threads_is_named_in_one_line(
    run_grid, capsys, tmp_path, monkeypatch, value
):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    code, out, err = grid(run_grid, capsys, tmp_path, "--dry-run")
    assert code == 2
    line = one_error_line(err, out, "run_grid: error:")
    assert "OMP_NUM_THREADS" in line and "--threads" in line


def test_20_threads_flag_overrides_a_bad_omp_num_threads(
    run_grid, fake_steps, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "abc")
    code, out, _ = grid(run_grid, capsys, tmp_path, "--methods", "random", "--threads", "1")
    assert code == 0, out
    assert {threads for _, _, threads in fake_steps} == {"1"}


@pytest.mark.parametrize("name", ["WORLD_SIZE", "LOCAL_RANK"])
def test_20_bad_torchrun_variable_is_named_in_one_line(capsys, tmp_path, monkeypatch, name):
    from tsgd_core.cli import main

    monkeypatch.chdir(tmp_path)
    for torchrun_sets in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.setenv(torchrun_sets, "2" if torchrun_sets == "WORLD_SIZE" else "0")
    monkeypatch.setenv(name, "abc")
    code = main(["data", "--profile", "smoke", "--quiet", "--cache-dir", str(tmp_path / "c")])
    captured = capsys.readouterr()
    assert code == 2
    line = one_error_line(captured.err, captured.out, "tsgd: error:")
    assert f"{name}='abc'" in line and "torchrun" in line

"""The grid across workers: shards of the cells, a merge into one report, a cache many write."""

from __future__ import annotations

import argparse
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from helpers import run_records as records

from tsgd_core.cli import run_grid as runner
from tsgd_core.data.storage import save_torch
from tsgd_core.grid import planner, workers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_grid(monkeypatch):
    """The runner (`tsgd_core.cli.run_grid`), with the environment its main sets restored after."""
    for name in ("PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # main sets them: restore
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    return runner


def smoke_plan(tmp_path: Path):
    return planner.plan("smoke", tmp_path / "reports", tmp_path / "cache", "cpu", None)


def test_shards_split_the_cells_and_each_runs_the_setup(run_grid, tmp_path):
    steps = smoke_plan(tmp_path)
    cells = planner.cell_labels(steps)
    assert len(cells) > 4 and len(set(cells)) == len(cells)
    shares = [planner.shard_steps(steps, (i, 3)) for i in range(3)]
    seen = [s.label for share in shares for s in share if s.stage == "cell"]
    assert sorted(seen) == sorted(s.label for s in steps if s.stage == "cell"), "each cell once"
    for share in shares:
        assert [s.notebook for s in share if s.stage == "setup"] == [
            "01_data_and_saliency.ipynb",
            "02_teacher.ipynb",
        ]
        assert not [s for s in share if s.stage == "final"], "no shard builds the report"
        cells = [s for s in share if s.stage == "cell"]
        labels = [s.label for s in cells]
        # a cell is its 03 and 04 notebooks together, or one direct (numbers-only) step
        assert all(labels.count(s.label) == (1 if s.direct else 2) for s in cells), (
            "cells stay whole"
        )
    cells_only = planner.shard_steps(steps, (0, 3), with_setup=False)
    assert {s.stage for s in cells_only} == {"cell"}
    merged = planner.merge_steps(steps)
    assert [s.notebook for s in merged if s.stage == "final"] == [
        "05_report.ipynb",
        "00_quickstart.ipynb",
    ]


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "0/0"])
def test_a_bad_shard_is_refused_with_the_expected_form(run_grid, text):
    with pytest.raises(argparse.ArgumentTypeError, match="--shard takes i/n with 0 <= i < n"):
        run_grid.parse_shard(text)
    assert run_grid.parse_shard("3/4") == (3, 4)


def test_each_worker_runs_its_shard_of_cells_on_one_gpu_of_its_own(run_grid, monkeypatch):
    args = argparse.Namespace(
        profile="smoke",
        cache=Path("cache"),
        device="cuda",
        threads=1,
        groups=["main", "ablation"],  # as --groups parses it
        force=False,
        fresh_kernels=True,
        cell_flags=["--dataset", "ucf101", "--root", "/d", "--ipcs", "1"],
    )
    cmd = workers.worker_command(args, Path("/r"), 1, 2)
    assert cmd[cmd.index("--shard") + 1] == "1/2" and "--cells-only" in cmd
    assert cmd[cmd.index("--groups") + 1] == "main,ablation" and "--fresh-kernels" in cmd
    assert cmd[cmd.index("--dataset") :][:6] == [
        "--dataset",
        "ucf101",
        "--root",
        "/d",
        "--ipcs",
        "1",
    ]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    assert [workers.worker_env(i, "cuda")["CUDA_VISIBLE_DEVICES"] for i in range(3)] == [
        "4",
        "5",
        "4",
    ]
    assert workers.worker_env(1, "cpu")["CUDA_VISIBLE_DEVICES"] == "4,5"


def test_the_cells_teachers_are_trained_once_before_the_workers(run_grid, tmp_path, monkeypatch):
    from tsgd_core.grid import experiments

    calls, threads = [], []

    def get_teacher(*args, **kwargs):
        calls.append((args, kwargs))
        threads.append(torch.get_num_threads())

    monkeypatch.setattr(experiments, "get_teacher", get_teacher)
    # every group, camera shake (not run by default) included
    groups = list(experiments.GROUPS)
    steps = planner.plan("smoke", tmp_path / "reports", tmp_path / "cache", "cpu", groups)
    # the kernels' thread count (a CPU teacher's key names it), not this process's own
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        workers.train_cell_teachers(steps, tmp_path / "cache", "cpu")
    finally:
        torch.set_num_threads(before)
    shakes = {s.params["spec"]["camera_shake"] for s in steps if "spec" in s.params}
    assert sorted(a for a, _ in calls) == sorted(("smoke", shake) for shake in shakes)
    assert len(calls) == len(shakes) == 2 and calls[0][1]["cache_dir"] == tmp_path / "cache"
    assert threads == [1, 1]


def test_cache_files_survive_concurrent_writers(tmp_path):
    """Two writers race on one cache file while a reader loads it: never a torn file."""
    path = tmp_path / "cache" / "distilled" / "key.pt"
    payloads = [torch.full((64, 64), float(w)) for w in range(2)]
    save_torch(payloads[0], path)
    stop, seen = threading.Event(), []

    def write(w: int) -> None:
        for _ in range(30):
            save_torch(payloads[w], path)

    def read() -> None:
        while not stop.is_set():
            seen.append(float(torch.load(path, weights_only=True).unique().item()))

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(write, range(2)))
    stop.set()
    reader.join()
    assert seen and set(seen) <= {0.0, 1.0}, "every load saw one writer's whole file"
    assert [p.name for p in path.parent.iterdir()] == ["key.pt"], "no temporary file left"


# ----------------------------------------------------------------------------- execution


@pytest.mark.slow
@pytest.mark.notebooks
def test_two_shards_and_a_merge_give_the_report_of_one_run(run_grid, tmp_path):
    """The dm group's four cells run direct (numbers only, no kernel): the shards split them,
    each shard runs the setup notebooks, the merge builds the report (05, 00) from their runs."""
    pytest.importorskip("papermill")
    common = ["--profile", "smoke", "--groups", "dm", "--cache", str(tmp_path / "cache")]
    common += ["--device", "cpu", "--no-html"]
    one, sharded = tmp_path / "one", tmp_path / "sharded"
    assert run_grid.main([*common, "--reports", str(one)]) == 0
    for part in (["--shard", "0/2"], ["--shard", "1/2"], ["--merge"]):
        assert run_grid.main([*common, "--reports", str(sharded), *part]) == 0
        if part[0] == "--shard":
            assert not (sharded / "README.md").exists(), "a shard builds no report"
    assert records(sharded) == records(one) and len(records(one)) == 4
    for table in REPORT_TABLES:
        assert (sharded / table).read_text() == (one / table).read_text(), table
    shard_logs = [json.loads((sharded / f"run_grid.shard{i}of2.json").read_text()) for i in (0, 1)]
    ran = [e for log in shard_logs for e in log["steps"] if not e["skipped"]]
    full = {"full data", "full data (tsgfa)"}  # the upper bound under each student recipe
    cells = [e["step"] for e in ran if e["stage"] == "cell" and e["step"] not in full]
    assert len(cells) == 4 and len(set(cells)) == 4, "each cell ran in one shard"
    held = [{e["step"] for e in log["steps"] if e["stage"] == "cell"} for log in shard_logs]
    assert all(share - full for share in held), "both shards hold cells"
    steps = [e["step"] for e in ran]
    assert all(steps.count(f) == 1 for f in full), "each upper bound runs once"
    assert all(
        [e["notebook"] for e in log["steps"] if e["stage"] == "setup"]
        == ["01_data_and_saliency.ipynb", "02_teacher.ipynb"]
        for log in shard_logs
    ), "each shard runs the setup"


# what the merge writes from the runs: the same as one run's, byte for byte
REPORT_TABLES = ("all_runs.csv", "main_table.csv", "paired_differences.csv", "controls.csv")


def test_stale_runs_are_the_planned_groups_folders_the_plan_no_longer_has(run_grid, tmp_path):
    reports = tmp_path / "reports"
    steps = planner.plan("smoke", reports, tmp_path / "cache", "cpu", ["main"])
    current = next(s.out_dir for s in steps if s.stage == "cell" and "spec" in s.params)
    old = reports / "runs" / "main" / "random_ipc1_0ld0ld"  # an older grid's run
    other = reports / "runs" / "shake" / "sre2l_ipc1_abcdef"  # a group this run does not plan
    for folder in (current, old, other):
        folder.mkdir(parents=True)
        (folder / "record.json").write_text("{}")
    assert planner.stale_runs(steps, reports) == [old]
    planner.remove_stale_runs(steps, reports)
    assert not old.exists() and current.is_dir() and other.is_dir()


def test_auto_workers_is_one_per_cpu_core_up_to_eight(run_grid, monkeypatch):
    for cores, expected in ((2, 2), (64, workers.MAX_AUTO_WORKERS), (None, 1)):
        monkeypatch.setattr(workers.os, "cpu_count", lambda cores=cores: cores)
        assert workers.auto_workers("cpu") == expected
    assert run_grid.workers_arg("auto") == "auto" and run_grid.workers_arg("3") == 3
    for bad, message in (("two", "expected an integer"), ("0", r"an integer in \[1, 1024\]")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            run_grid.workers_arg(bad)


def test_the_split_is_announced_one_line_per_share_and_names_each_cell_once(tmp_path):
    steps = smoke_plan(tmp_path)
    cells = planner.cell_labels(steps)
    lines = planner.split_lines(steps, 3, "worker")
    assert len(lines) == 4 and lines[0].startswith(f"[split] {len(cells)} cell(s) over 3 workers")
    counts = [int(line.split(": ")[1].split()[0]) for line in lines[1:]]
    assert counts == [len(cells[i::3]) for i in range(3)] and sum(counts) == len(cells)
    assert lines[1].startswith("[split] worker 0/3:") and cells[0] in lines[1]
    assert f"(+{counts[0] - planner.SPLIT_SHOWN} more)" in lines[1]
    only = planner.split_lines(steps, 3, "shard", only=2)
    assert len(only) == 2 and only[1].startswith("[split] shard 2/3:") and cells[2] in only[1]

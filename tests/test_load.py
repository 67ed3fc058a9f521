"""Load: grids that share one cache, and a grid killed (SIGKILL) and resumed, give the records
of one clean run (issue 19).

Each grid is `scripts/run_grid.py` at the smoke profile on the `dm` group's cells only (one
shard of one, without the setup notebooks: the cells run directly, so no notebook kernel is
started), which takes seconds on one core.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import run_records as records

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--profile", "smoke", "--groups", "dm", "--shard", "0/1", "--cells-only"]
GRID += ["--device", "cpu", "--no-html", "--threads", "1"]
KILLS, KILL_SEED = 5, 19

pytestmark = pytest.mark.slow


def grid(cache: Path, reports: Path) -> subprocess.Popen:
    """A grid in a process group of its own (so a kill takes its children with it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    argv = [sys.executable, str(ROOT / "scripts" / "run_grid.py"), *GRID]
    return subprocess.Popen(
        [*argv, "--cache", str(cache), "--reports", str(reports)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=env,
    )


def finish(process: subprocess.Popen) -> None:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The records of one clean run (a fresh cache)."""
    pytest.importorskip("papermill")
    base = tmp_path_factory.mktemp("clean")
    finish(grid(base / "cache", base / "reports"))
    found = records(base / "reports")
    assert len(found) == 4, found
    return found


def test_two_grids_sharing_one_cache_give_the_records_of_one_run(clean, tmp_path):
    cache = tmp_path / "cache"
    processes = [grid(cache, tmp_path / f"reports{i}") for i in (0, 1)]
    for process in processes:
        finish(process)
    assert records(tmp_path / "reports0") == clean
    assert records(tmp_path / "reports1") == clean
    leftovers = [p for p in cache.rglob(".*.tmp*")]
    assert leftovers == [], "a finished run leaves no temporary in the shared cache"


def test_grid_killed_five_times_and_resumed_gives_the_records_of_one_run(clean, tmp_path):
    draw = random.Random(KILL_SEED)
    cache, reports = tmp_path / "cache", tmp_path / "reports"
    killed = 0
    for _ in range(KILLS):
        process = grid(cache, reports)
        time.sleep(draw.uniform(1.5, 6.0))  # a random point: imports, teacher, a cell, a write
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            killed += 1
        process.communicate(timeout=60)
    finish(grid(cache, reports))
    assert killed >= 1, "the grid finished before any kill: the test killed nothing"
    assert records(reports) == clean

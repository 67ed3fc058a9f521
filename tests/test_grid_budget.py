"""scripts/grid_budget.py: a grid's wall time estimated from a finished run's seconds per cell."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import grid_budget  # noqa: E402

from tsgd_core.grid.cells import build_grid  # noqa: E402


def record(main_cells: int = 4, main_s: float = 400.0) -> dict:
    steps = [{"step": "teacher", "stage": "setup"}]
    steps += [{"step": f"main/cell{i}", "stage": "cell"} for i in range(main_cells)]
    steps += [{"step": "controls/c0", "stage": "cell"}, {"step": "controls/c0", "stage": "cell"}]
    return {
        "steps": steps,
        "wall_s_by_group": {"teacher": 50.0, "main": main_s, "controls": 30.0},
        "total_wall_s": 300.0,
    }


def test_seconds_per_cell_times_todays_cells():
    assert grid_budget.cells_by_group(record()) == {"main": 4, "controls": 1}  # notebooks: 1 cell
    rows = grid_budget.estimate(record(), "smoke", ["main", "controls", "tsgfa"], None)
    grid = build_grid("smoke").groups()
    assert rows["main"]["cells"] == len(grid["main"]) and rows["main"]["s_per_cell"] == 100.0
    assert rows["main"]["worker_s"] == 100.0 * len(grid["main"])
    assert rows["controls"]["worker_s"] == 30.0 * len(grid["controls"])
    # a group the old run did not have is counted at the main group's rate, and says so
    assert rows["tsgfa"]["rate_from"] == "main"
    only_ipc1 = grid_budget.estimate(record(), "smoke", ["main"], [1])
    assert only_ipc1["main"]["cells"] == sum(s.ipc == 1 for s in grid["main"])


def test_the_command_prints_the_table_and_refuses_a_bad_record(tmp_path, capsys):
    path = tmp_path / "run_grid.json"
    path.write_text(json.dumps(record()))
    argv = ["--record", str(path), "--profile", "smoke", "--workers", "2"]
    assert grid_budget.main(argv) == 0
    out = capsys.readouterr().out
    cells = len(build_grid("smoke").main)
    assert f"| main | {cells} (4) | 0 | 100 |" in out and "50 s of setup" in out
    (tmp_path / "bad.json").write_text("{")
    assert grid_budget.main(["--record", str(tmp_path / "bad.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_rates_pool_every_recorded_run_and_skipped_cells_do_not_count():
    partial = record(main_cells=2, main_s=400.0)  # a later, partial run: 200 s a main cell
    partial["steps"].append({"step": "main/old", "stage": "cell", "skipped": True})
    partial["earlier"] = [record(main_cells=4, main_s=400.0)]  # the whole run: 100 s a cell
    rates, cells = grid_budget.pooled_rates(grid_budget.recorded_runs(partial))
    assert cells["main"] == 6 and rates["main"] == 800.0 / 6
    rows = grid_budget.estimate(partial, "smoke", ["main"], None)
    assert rows["main"]["old_cells"] == 6 and rows["main"]["s_per_cell"] == 800.0 / 6


def test_the_upper_bounds_count_as_last_timed(tmp_path, capsys):
    earlier = record()
    earlier["wall_s_by_group"]["full data"] = 100.0
    latest = record(main_cells=2)
    latest["wall_s_by_group"] |= {"full data": 700.0, "full data (tsgfa)": 900.0}
    latest["earlier"] = [earlier]
    runs = grid_budget.recorded_runs(latest)
    assert grid_budget.last_timed(runs, grid_budget.UPPER_BOUNDS) == {
        "full data": 700.0,
        "full data (tsgfa)": 900.0,
    }
    assert grid_budget.last_timed(runs[:1], grid_budget.UPPER_BOUNDS) == {"full data": 100.0}
    path = tmp_path / "run_grid.json"
    path.write_text(json.dumps(latest))
    assert grid_budget.main(["--record", str(path), "--profile", "smoke", "--groups", "main"]) == 0
    out = capsys.readouterr().out
    assert "| full data (tsgfa) (upper bound) | 1 (1) | 0 | 900 | 900 |" in out
    main_s = grid_budget.estimate(latest, "smoke", ["main"], None)["main"]["worker_s"]
    assert f"{main_s + 1600:,.0f} worker-s over 2 workers" in out


def test_a_later_partial_run_neither_hides_the_setup_nor_chooses_the_groups(tmp_path, capsys):
    """The record's last run may have remade only the controls, the teacher skipped: the
    estimate is still of ./run_all.sh's groups, with the setup time an earlier run took."""
    partial = {
        # a run lists the cells it skipped too: it has the most steps of all
        "steps": [{"step": "controls/c1", "stage": "cell"}]
        + [{"step": f"main/cell{i}", "stage": "cell", "skipped": True} for i in range(9)],
        "wall_s_by_group": {"teacher": 0.0, "controls": 60.0},
        "total_wall_s": 90.0,
        "earlier": [record()],
    }
    path = tmp_path / "run_grid.json"
    path.write_text(json.dumps(partial))
    assert grid_budget.main(["--record", str(path), "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert f"| main | {len(build_grid('smoke').main)} (4) | 0 | 100 |" in out
    assert "50 s of setup" in out and "the longest recorded run: 5 min" in out


def test_a_cell_whose_evaluation_another_cell_makes_is_free():
    # the default profile's tuning chose 0 iterations for TSGD under the base recipe and for
    # SRe2L-style at IPC 1: those cells train on Random's set, evaluated once, by Random's cell
    grid = build_grid("default").groups()["main"]
    starts = [s for s in grid if s.is_start_set]
    assert starts and {s.method for s in starts} <= {"tsgd", "sre2l", "dm"}
    rows = grid_budget.estimate(record(), "default", ["main"], None)
    assert rows["main"]["cells"] == len(grid) and rows["main"]["shared"] == len(starts)
    assert rows["main"]["worker_s"] == 100.0 * (len(grid) - len(starts))


def test_recorded_cells_that_found_their_evaluation_cached_leave_the_rate():
    run = record(main_cells=4, main_s=400.0)
    for step in run["steps"]:
        step["wall_s"] = 130.0 if step["step"] != "main/cell3" else 10.0
    assert grid_budget.cached_cells(run) == {"main": (1, 10.0)}
    rates, cells = grid_budget.pooled_rates([run])
    assert cells["main"] == 3 and rates["main"] == 390.0 / 3
    assert cells["controls"] == 1  # two notebooks of one cell, 260 s together: not cached

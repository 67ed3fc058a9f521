"""A notebook run by papermill with a parameter it does not declare stops at its first code cell
(papermill itself would only log a warning and run without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsgd_core.grid.planner import notebook_parameters, refuse_unknown_parameters

ROOT = Path(__file__).resolve().parents[1]
PARAMETERS = 'profile = "tutorial"\ncache_dir = "../cache"\n'


def test_a_parameter_the_cell_before_does_not_assign_is_refused_by_name():
    history = ["", PARAMETERS, '# Parameters\nprofile = "smoke"\nipc = 3\n', "x = 1"]
    with pytest.raises(
        ValueError, match=r"no parameter ipc: its parameters are cache_dir, profile"
    ):
        refuse_unknown_parameters(history)


def test_declared_parameters_and_runs_without_papermill_pass():
    refuse_unknown_parameters(["", PARAMETERS, '# Parameters\nprofile = "smoke"\n'])
    refuse_unknown_parameters(["", PARAMETERS, "x = 1"])  # run by hand: no injected cell
    refuse_unknown_parameters()  # outside IPython: no history at all


def test_every_notebook_calls_the_check_right_after_its_parameters():
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        first = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
        after = next(c for c in cells[first + 1 :] if c.cell_type == "code")
        assert "refuse_unknown_parameters()" in after.source, path.name
        assert notebook_parameters(path), path.name


@pytest.mark.xdist_group("notebooks")
def test_papermill_with_an_unknown_parameter_fails_before_any_work(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "02.ipynb"
    with pytest.raises(papermill.PapermillExecutionError, match="no parameter ipc"):
        papermill.execute_notebook(
            str(ROOT / "notebooks" / "02_teacher.ipynb"),
            str(out),
            parameters={"ipc": 3, "cache_dir": str(tmp_path / "cache")},
            cwd=str(ROOT / "notebooks"),
            progress_bar=False,
        )
    assert not (tmp_path / "cache").exists(), "nothing was loaded or trained"

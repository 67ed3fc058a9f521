"""The notebooks read in d2l's rhythm: short code cells, one shared checker, the run time last.

Fast: nothing is executed, the notebooks are read as JSON (and `tsgd_core.teaching` is called).
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_notebooks import EXPECTED, NOTEBOOKS, load

from tsgd_core import teaching

MAX_CELL_LINES = 30


def code_cells(name: str) -> list:
    return [c for c in load(NOTEBOOKS / f"{name}.ipynb").cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", EXPECTED)
def test_no_code_cell_is_longer_than_30_lines(name):
    long = {c.id: n for c in code_cells(name) if (n := len(c.source.splitlines())) > MAX_CELL_LINES}
    assert not long, f"{name}: cells over {MAX_CELL_LINES} lines (id: lines): {long}"


@pytest.mark.parametrize("name", EXPECTED)
def test_the_exercises_use_the_library_checker(name):
    sources = [c.source for c in code_cells(name)]
    assert not any("def check(" in s for s in sources), f"{name} defines its own check"
    assert sum("from tsgd_core.teaching import check" in s for s in sources) == 1


@pytest.mark.parametrize("name", EXPECTED)
def test_no_notebook_describes_the_machine_s_load(name):
    text = "\n".join(c.source for c in load(NOTEBOOKS / f"{name}.ipynb").cells)
    for words in ("load average", "CPU cores shared", "nice -n 19"):
        assert words not in text, f"{name} still says {words!r}"


def test_check_says_not_answered_right_and_wrong(capsys):
    assert teaching.check(1, None, lambda a: a == 2) is None
    assert teaching.check(2, 2, lambda a: a == 2) is True
    assert teaching.check(3, 5, lambda a: a == 2) is False
    assert capsys.readouterr().out.splitlines() == [
        "Exercise 1: not answered yet (replace None in the answer cell).",
        "Exercise 2: correct.",
        "Exercise 3: not yet right; see the hint.",
    ]


def test_check_takes_an_answer_that_raises_as_wrong(capsys):
    assert teaching.check(4, "text", lambda a: a.shape == (2,)) is False
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0].startswith("(AttributeError:")
        and out[1] == "Exercise 4: not yet right; see the hint."
    )


def test_in_percent_gives_one_decimal_and_leaves_the_rest():
    table = pd.DataFrame({"method": ["a"], "mean": [0.145573], "ci_low": [-0.005983], "n": [15]})
    shown = teaching.in_percent(table, ["mean", "ci_low", "absent"])
    assert shown.to_dict("records") == [{"method": "a", "mean": 14.6, "ci_low": -0.6, "n": 15}]
    assert table["mean"].iloc[0] == 0.145573, "the input is not changed"

"""Every notebook ends with at least three exercises, each checkable and each solved.

An exercise is four cells after the `## Exercises` heading (and its `check` helper): a markdown
task with a hint (tag `exercise`), an answer cell that starts as `answer_<k> = None` (tag
`answer`), a check cell that prints whether the answer is right (tag `check`) and a collapsed
solution (tag `solution`, `"jupyter": {"source_hidden": true}`). Executing a notebook with a
copy of each check cell after its solution shows both states: the placeholder is reported as
not answered (without an error), the solution as correct.

That execution costs nothing extra: every notebook run of the suite (`test_notebooks.run_notebook`,
every notebook at smoke size, and 05 at its defaults on the committed report in
`test_report_notebook`) executes `exercised_copy` of the notebook and ends with
`assert_exercises_solved`; this module checks the structure, the checker itself, and that those
runs cover every notebook.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_notebooks import EXPECTED, NOTEBOOKS, load

MIN_EXERCISES = 3


@dataclass
class Exercise:
    number: int
    task: object  # the nbformat cells
    answer: object
    check: object
    solution: object


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def exercise_section(nb) -> list:
    """The cells after the `## Exercises` heading: the notebook must end with them."""
    headings = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and re.search(r"^## Exercises\s*$", c.source, re.M)
    ]
    assert len(headings) == 1, "one markdown cell with the heading '## Exercises'"
    return nb.cells[headings[0] + 1 :]


def exercises(nb) -> list[Exercise]:
    """Parse the Exercises section into its exercises, asserting the structure on the way."""
    cells = exercise_section(nb)
    assert cells and "exercise-setup" in tags(cells[0]), "the section opens with its check helper"
    assert "from tsgd_core.teaching import check" in cells[0].source, "the library's checker"
    cells = cells[1:]
    while cells and "footer" in tags(cells[-1]):  # the run-time footer closes the notebook
        cells = cells[:-1]
    assert len(cells) % 4 == 0, "each exercise is a task, an answer, a check and a solution"
    out = []
    for k, start in enumerate(range(0, len(cells), 4), 1):
        task, answer, check, solution = cells[start : start + 4]
        assert task.cell_type == "markdown" and "exercise" in tags(task), f"exercise {k}: task"
        assert task.source.startswith(f"### Exercise {k}:"), f"exercise {k}: numbered heading"
        assert "**Hint:**" in task.source, f"exercise {k}: the task gives a hint"
        assert answer.cell_type == "code" and "answer" in tags(answer), f"exercise {k}: answer"
        assert answer.source.startswith(f"answer_{k} = None"), f"exercise {k}: placeholder None"
        assert check.cell_type == "code" and "check" in tags(check), f"exercise {k}: check"
        uses_check = re.search(rf"check\(\s*{k},\s*answer_{k},", check.source)
        assert uses_check, f"exercise {k}: the check calls check({k}, answer_{k}, ...)"
        assert solution.cell_type == "code" and "solution" in tags(solution)
        assert solution.metadata.get("jupyter", {}).get("source_hidden") is True, (
            f"exercise {k}: the solution is collapsed"
        )
        assert f"answer_{k} = " in solution.source, f"exercise {k}: the solution sets answer_{k}"
        out.append(Exercise(k, task, answer, check, solution))
    return out


@pytest.mark.parametrize("name", EXPECTED)
def test_every_notebook_ends_with_at_least_three_checked_exercises(name):
    found = exercises(load(NOTEBOOKS / f"{name}.ipynb"))
    assert len(found) >= MIN_EXERCISES, f"{name} has {len(found)} exercises"


def test_the_parser_rejects_a_visible_solution_and_a_missing_hint():
    nb = load(NOTEBOOKS / "00_quickstart.ipynb")
    broken = copy.deepcopy(nb)
    first = exercises(broken)[0]
    first.solution.metadata["jupyter"]["source_hidden"] = False
    with pytest.raises(AssertionError, match="collapsed"):
        exercises(broken)
    broken = copy.deepcopy(nb)
    first = exercises(broken)[0]
    first.task.source = first.task.source.replace("**Hint:**", "Hint")
    with pytest.raises(AssertionError, match="hint"):
        exercises(broken)


def with_checks_after_solutions(nb):
    """A copy of the notebook in which every solution cell is followed by its check again."""
    nb = copy.deepcopy(nb)
    found = exercises(nb)
    for exercise in found:
        again = copy.deepcopy(exercise.check)
        again.id = f"{exercise.check.id}-again"
        nb.cells.insert(nb.cells.index(exercise.solution) + 1, again)
    return nb, len(found)


def stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def exercised_copy(name: str, folder: Path) -> Path:
    """notebooks/<name>.ipynb with every check cell repeated after its solution, written into
    `folder` (execute it with cwd=notebooks/ so its relative paths hold)."""
    import nbformat

    nb, _ = with_checks_after_solutions(load(NOTEBOOKS / f"{name}.ipynb"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def assert_exercises_solved(name: str, executed: Path) -> None:
    """In an executed `exercised_copy`: each check says 'not answered yet' (no error) before its
    solution ran, and 'correct.' after."""
    cells = {c.id: c for c in load(executed).cells}
    found = exercises(load(NOTEBOOKS / f"{name}.ipynb"))
    for k, exercise in enumerate(found, 1):
        before = stream_text(cells[exercise.check.id])
        after = stream_text(cells[f"{exercise.check.id}-again"])
        assert f"Exercise {k}: not answered yet" in before, f"{name}, exercise {k}: {before!r}"
        assert "Error" not in before, f"{name}, exercise {k}: {before!r}"
        assert f"Exercise {k}: correct." in after, f"{name}, exercise {k}: {after!r}"


def executed_outputs(nb, text_of: dict) -> None:
    """Give each check cell of `nb` the stream output `text_of[cell id]` (as if executed)."""
    import nbformat

    for cell in nb.cells:
        if cell.id in text_of:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text_of[cell.id])]


@pytest.mark.parametrize(
    ("again", "error"),
    [
        ("Exercise {k}: correct.\n", None),
        ("Exercise {k}: not yet right; see the hint.\n", "correct"),
        ("Exercise {k}: not answered yet (replace None in the answer cell).\n", "correct"),
    ],
)
def test_the_solved_check_fails_unless_every_solution_is_correct(tmp_path, again, error):
    import nbformat

    name = "02_teacher"
    copy_ = exercised_copy(name, tmp_path)
    nb = load(copy_)
    found = exercises(load(NOTEBOOKS / f"{name}.ipynb"))
    text_of = {}
    for k, exercise in enumerate(found, 1):
        text_of[exercise.check.id] = f"Exercise {k}: not answered yet (replace None ...).\n"
        # only the last exercise's solution goes wrong: one wrong answer is enough to fail
        last = k == len(found)
        text_of[f"{exercise.check.id}-again"] = (
            again if last else "Exercise {k}: correct.\n"
        ).format(k=k)
    executed_outputs(nb, text_of)
    nbformat.write(nb, copy_)
    if error is None:
        assert_exercises_solved(name, copy_)
    else:
        with pytest.raises(AssertionError, match=error):
            assert_exercises_solved(name, copy_)


def test_every_notebook_run_of_the_suite_checks_its_exercises():
    import inspect

    import test_notebooks
    import test_report_notebook

    runner = inspect.getsource(test_notebooks.run_notebook)
    assert "exercised_copy(" in runner and "assert_exercises_solved(" in runner
    assert "exercised_copy(" in inspect.getsource(test_report_notebook)
    calls = set(
        re.findall(r'run_notebook\(\s*workspace,\s*"(\w+)"', inspect.getsource(test_notebooks))
    )
    assert calls == set(EXPECTED), f"notebooks the suite never executes: {set(EXPECTED) - calls}"

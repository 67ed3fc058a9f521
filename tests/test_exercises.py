"""Every notebook ends with at least three exercises, each checkable and each solved.

An exercise is four cells after the `## Exercises` heading (and its `check` helper): a markdown
task with a hint (tag `exercise`), an answer cell that starts as `answer_<k> = None` (tag
`answer`), a check cell that prints whether the answer is right (tag `check`) and a collapsed
solution (tag `solution`, `"jupyter": {"source_hidden": true}`). Executing a notebook with a
copy of each check cell after its solution shows both states: the placeholder is reported as
not answered (without an error), the solution as correct.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import pytest
from test_notebooks import EXPECTED, NOTEBOOKS, load, workspace  # noqa: F401 (a fixture)

# under pytest-xdist these tests run on the notebooks' worker, as test_notebooks does
pytestmark = pytest.mark.xdist_group("notebooks")

MIN_EXERCISES = 3
# executed here at the smoke profile: the cheapest notebooks (the others run in test_notebooks)
EXECUTED = ["00_quickstart", "01_data_and_saliency"]


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
    assert "def check(" in cells[0].source
    cells = cells[1:]
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


@pytest.mark.notebooks
@pytest.mark.parametrize("name", EXECUTED)
def test_the_checks_say_not_answered_then_correct_once_the_solution_ran(workspace, name, tmp_path):  # noqa: F811
    import nbformat
    import papermill as pm

    nb, count = with_checks_after_solutions(load(NOTEBOOKS / f"{name}.ipynb"))
    source = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, source)
    executed = tmp_path / "out" / f"{name}.ipynb"
    executed.parent.mkdir()
    pm.execute_notebook(
        str(source),
        str(executed),
        parameters={
            "profile": "smoke",
            "cache_dir": str(workspace / "cache"),
            "out_dir": str(tmp_path / "out"),
            "device": "cpu",
            "progress": False,
        },
        kernel_name="python3",
        cwd=str(NOTEBOOKS),  # the notebooks' relative paths (../reports/default) hold
        progress_bar=False,
        execution_timeout=300,
    )
    cells = {c.id: c for c in load(executed).cells}
    for k, exercise in enumerate(exercises(load(NOTEBOOKS / f"{name}.ipynb")), 1):
        before = stream_text(cells[exercise.check.id])
        after = stream_text(cells[f"{exercise.check.id}-again"])
        assert f"Exercise {k}: not answered yet" in before, before
        assert "Error" not in before, before
        assert f"Exercise {k}: correct." in after, after
    assert k == count

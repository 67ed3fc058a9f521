"""What the tutorial notebooks share: the exercises' checker and tables in percent.

A room of its own at the top of the package (tests/test_imports.py): the notebooks import it;
nothing in the package does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd


def check(number: int, answer: Any, is_right: Callable[[Any], Any]) -> bool | None:
    """Print whether exercise `number` is answered, and right; `is_right(answer)` decides.

    Returns None while the answer is the placeholder None, else whether it is right. A wrong type
    or shape is a wrong answer, not a crash: the error is printed on its own line.
    """
    if answer is None:
        print(f"Exercise {number}: not answered yet (replace None in the answer cell).")
        return None
    try:
        right = bool(is_right(answer))
    except Exception as error:  # whatever a learner's answer raises is a wrong answer
        right = False
        print(f"({type(error).__name__}: {error})")
    print(f"Exercise {number}: " + ("correct." if right else "not yet right; see the hint."))
    return right


def in_percent(table: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """A copy of `table` with those of `columns` (fractions) it has in percent, one decimal."""
    out = table.copy()
    for column in [c for c in columns if c in out.columns]:
        out[column] = (100 * out[column].astype(float)).round(1)
    return out

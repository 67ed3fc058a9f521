"""05_report.ipynb stands alone: at its defaults it reads the committed reports/default and
trains nothing, in under a minute on a fresh clone (an empty cache)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
REPORT = ROOT / "reports" / "default"
LIMIT_S = 60.0


@pytest.mark.notebooks
def test_05_report_at_its_defaults_reads_the_committed_report(tmp_path):
    pm = pytest.importorskip("papermill")
    pytest.importorskip("ipykernel")
    if not (REPORT / "runs").is_dir():
        pytest.skip("no committed reports/default/runs in this checkout")
    cache, out = tmp_path / "cache", tmp_path / "report"
    cache.mkdir()
    out.mkdir()
    before = {p: p.stat().st_mtime_ns for p in REPORT.rglob("*") if p.is_file()}
    start = time.perf_counter()
    # the defaults, but for an empty cache (a fresh clone) and an output folder of the test's
    # its exercises too, as a learner does them: each check again after its solution
    from test_exercises import assert_exercises_solved, exercised_copy

    pm.execute_notebook(
        str(exercised_copy("05_report", tmp_path / "exercised")),
        str(out / "05_report.ipynb"),
        parameters={"cache_dir": str(cache), "out_dir": str(out), "progress": False},
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
        execution_timeout=int(2 * LIMIT_S),
    )
    wall = time.perf_counter() - start
    executed = json.loads((out / "05_report.ipynb").read_text())
    assert executed["metadata"]["papermill"]["exception"] in (None, False)
    assert_exercises_solved("05_report", out / "05_report.ipynb")
    # trains nothing: no teacher, no distilled set, no evaluation lands in the cache
    written = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    assert not [p for p in written if p.startswith(("teachers/", "distilled/", "evals/"))], written
    assert (out / "README.md").is_file() and (out / "main_table.csv").is_file()
    table = (out / "main_table.csv").read_text()
    assert "Full data" in table, "the full-data row was not read"
    for method in ("tsgd", "sre2l"):  # the report's own figures stand in for the sets
        assert (out / "figures" / f"distilled_{method}.png").is_file()
    # the committed report is read, never rewritten
    after = {p: p.stat().st_mtime_ns for p in REPORT.rglob("*") if p.is_file()}
    assert after == before, "05 wrote into reports/default"
    assert wall < LIMIT_S, f"05_report took {wall:.0f} s at its defaults (limit {LIMIT_S:.0f} s)"

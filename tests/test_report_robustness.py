"""The report shows the robustness stage's tables and figure, one section per axis, when the
report folder holds robustness.csv (written by ./run_all.sh --robustness)."""

from __future__ import annotations

import sys
from pathlib import Path

from tsgd_core import report
from tsgd_core.grid import robustness as rb

sys.path.insert(0, str(Path(__file__).parent))
from test_report import WINS, grid_records  # noqa: E402
from test_robustness import fabricated_rows  # noqa: E402

SETTINGS = {"teacher_arch": "C3D teacher", "resolution": "16x16", "compression": "CRF 45"}


def four_axes_csv(folder: Path, axes=rb.AXES) -> Path:
    """The fabricated frame-rate rows, copied to every axis (its perturbed setting renamed)."""
    rows = []
    for axis in axes:
        for row in fabricated_rows():
            setting = row["setting"] if row["clean"] else SETTINGS.get(axis, row["setting"])
            rows.append({**row, "axis": axis, "setting": setting})
    table = rb.robustness_table(rows)
    path = folder / "robustness.csv"
    path.write_text(table.round(2).to_csv(index=False))
    return path


def test_every_axis_has_its_table_sentences_and_the_figure(tmp_path):
    four_axes_csv(tmp_path)
    text = report.robustness_section(tmp_path)
    assert "## Robustness" in text and "![robustness](figures/robustness.png)" in text
    assert (tmp_path / "figures" / "robustness.png").stat().st_size > 0
    for axis in rb.AXES:
        assert f"### {rb.AXIS_TITLES[axis].capitalize()}" in text
    section = text.split("### H.264")[1]
    assert "CRF 45: 62.0 %, 20.0 points below clean" in section  # a loss reads as below
    assert "CRF 45: 87.0 %, 5.0 points above clean" in section  # a gain reads as above
    assert "| setting" in section and "| CRF 45" in section


def test_an_axis_not_run_is_named(tmp_path):
    four_axes_csv(tmp_path, axes=("frame_rate",))
    text = report.robustness_section(tmp_path)
    assert "### Frame size\n\nNot run: `./run_all.sh --robustness --axes resolution`" in text


def test_no_csv_no_section_and_the_readme_carries_it(tmp_path):
    assert report.robustness_section(tmp_path) == ""
    df = grid_records(WINS)
    text = report.write_report(df, tmp_path, profile="smoke", command="x")["readme"].read_text()
    assert "## Robustness" not in text
    four_axes_csv(tmp_path)
    text = report.write_report(df, tmp_path, profile="smoke", command="x")["readme"].read_text()
    assert text.index("## Robustness") < text.index("## Files")

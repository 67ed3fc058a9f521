"""The README's results table, rendered from a report's main_table.csv (never typed by hand).

    python scripts/readme_results.py            # rewrite README.md's blocks from their reports
    python scripts/readme_results.py --check    # exit 1 when a block is not the render
    python scripts/readme_results.py --print    # print the blocks

Two blocks: `results` (between `<!-- results:begin -->` and `<!-- results:end -->`) from
reports/default, and `real-results` from reports/real-cpu-ucf101 (five real UCF101 classes). Rows are sets x
label modes, columns IPCs, each under the base recipe and under TSGFA side by side; a cell is
the accuracy (%) and, for a set with a start set under the same student recipe, its gain over that start set in points with its 95 % interval (bold when
resolved). A main_table.csv from before the student recipe was an axis (no `recipe` column) names
the base-recipe TSGD set "TSGD w/o TSGFA" and the TSGFA one "TSGD"; its only start set is the
base recipe's Random, so the TSGFA row shows its accuracy alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsgd_core.report.book import recorded_runs  # noqa: E402

README = ROOT / "README.md"
DEFAULT_CSV = ROOT / "reports" / "default" / "main_table.csv"
# README's blocks: the built-in benchmark's, then real footage's (five UCF101 classes)
BLOCKS = {
    "results": DEFAULT_CSV,
    "real-results": ROOT / "reports" / "real-cpu-ucf101" / "main_table.csv",
}
SUFFIX = " + TSGFA"
TSGD, FULL = "TSGD", "Full data (upper bound)"
# table order (the report's): selection, distillation, then the method
ORDER = ("Random", "Herding", "K-Center", "Salient windows", "DM", "SRe2L-style", "TSGD")
FIGURE = "recipes.png"  # every set under both recipes, side by side
MIN_PAIRS = 5  # tsgd_core.grid.stats.MIN_PAIRS: fewer pairs never resolve


@dataclass(frozen=True)
class Row:
    """One (set, recipe, IPC, labels) row of main_table.csv, accuracies and gains in percent."""

    method: str
    recipe: str
    ipc: int | None
    labels: str
    mean: float
    n: int
    gain: float | None
    gain_low: float | None
    gain_high: float | None


def number(text: str) -> float | None:
    """A CSV cell as a float; None when empty or NaN."""
    if text is None or text.strip() == "":
        return None
    value = float(text)
    return None if math.isnan(value) else value


def recipe_of(record: dict[str, str], old: bool) -> tuple[str, str]:
    """(set name, recipe) of a CSV row; an old table's TSGD rows are renamed (see the docstring)."""
    method = record["method"]
    if old:
        if method == "TSGD w/o TSGFA":
            return TSGD, "base"
        return method, "tsgfa" if method == TSGD else "base"
    if method.endswith(SUFFIX):
        return method[: -len(SUFFIX)], "tsgfa"
    return method, record.get("recipe") or "base"


def read_rows(path: Path) -> tuple[list[Row], bool]:
    """The rows of a main_table.csv and whether it predates the recipe column."""
    with open(path, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    old = bool(records) and "recipe" not in records[0]
    rows = []
    for record in records:
        method, recipe = recipe_of(record, old)
        gains = [number(record[c]) for c in ("gain_vs_start", "gain_ci_low", "gain_ci_high")]
        if old and recipe == "tsgfa":
            gains = [None, None, None]  # its gain is over a start set of the other recipe
        ipc = number(record["ipc"])
        mean, n = float(record["mean"]), int(float(record["n"]))
        rows.append(
            Row(
                method, recipe, None if ipc is None else int(ipc), record["labels"], mean, n, *gains
            )
        )
    return rows, old


def signed(value: float) -> str:
    return f"{value:+.1f}"


def cell(row: Row | None) -> str:
    """'49.9 (**+8.9** [+5.6, +12.1])'; the accuracy alone without a same-recipe gain."""
    if row is None:
        return "–"
    if row.gain is None or row.gain_low is None or row.gain_high is None:
        return f"{row.mean:.1f}"
    resolved = row.n >= MIN_PAIRS and (row.gain_low > 0 or row.gain_high < 0)
    gain = f"**{signed(row.gain)}**" if resolved else signed(row.gain)
    return f"{row.mean:.1f} ({gain} [{signed(row.gain_low)}, {signed(row.gain_high)}])"


def column_name(ipc: int, recipe: str, old: bool) -> str:
    """'IPC 5' for the base recipe, 'IPC 5 + TSGFA' (with † on an old table) for TSGFA."""
    if recipe == "base":
        return f"IPC {ipc}"
    return f"IPC {ipc}{SUFFIX}" + (" †" if old else "")


def table_lines(rows: list[Row], old: bool) -> list[str]:
    """The markdown table: one line per (set, labels); per IPC a column for each recipe, side by
    side, so a set's accuracy under the base recipe sits beside its accuracy under TSGFA."""
    ipcs = sorted({r.ipc for r in rows if r.ipc is not None})
    recipes = [rc for rc in ("base", "tsgfa") if any(r.recipe == rc for r in rows)]
    columns = [(i, rc) for i in ipcs for rc in recipes]
    at = {(r.method, r.recipe, r.ipc, r.labels): r for r in rows}
    lines = [
        "| set | labels | " + " | ".join(column_name(i, rc, old) for i, rc in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for method in ORDER:
        for labels in ("soft", "hard"):
            cells = [cell(at.get((method, rc, i, labels))) for i, rc in columns]
            if any(c != "–" for c in cells):
                lines.append(f"| {method} | {labels} | " + " | ".join(cells) + " |")
    return lines


def notes(rows: list[Row], old: bool) -> list[str]:
    """What the table's numbers are, and (old table) what it cannot show."""
    pairs = sorted({r.n for r in rows if r.ipc is not None})
    n = f"n = {pairs[0]}" if len(pairs) == 1 else f"n = {pairs[0]} to {pairs[-1]}"
    lines = [
        f"Test accuracy in % ({n} draw x student pairs a cell); in brackets the gain over the "
        "start set (Random, the same draws, the same student recipe) in points with its 95 % "
        "interval, **bold** when resolved; – not run."
    ]
    full = {(r.recipe, r.labels): r.mean for r in rows if r.method == FULL}
    parts = [
        ("" if recipe == "base" else "under TSGFA ")
        + f"{full[(recipe, 'soft')]:.1f} % soft, {full[(recipe, 'hard')]:.1f} % hard"
        for recipe in ("base", "tsgfa")
        if (recipe, "soft") in full and (recipe, "hard") in full
    ]
    if parts:  # one line for both recipes' upper bounds
        lines.append(f"{FULL}: " + "; ".join(parts) + ".")
    if old:
        lines.append(
            "† TSGFA student recipe. This committed report predates the recipe axis: it has no "
            "Random + TSGFA (so no same-recipe gain), and its figure names TSGD + TSGFA 'TSGD' "
            "and TSGD 'TSGD w/o TSGFA'; the next full run rebuilds it."
        )
    return lines


def read_json(path: Path) -> dict | None:
    """A report's JSON file as a dict; None when absent or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def context_lines(report: Path) -> list[str]:
    """The teacher's accuracy, the one-frame control's and the run's wall time, from the files
    the grid wrote beside the table (each left out when its file is absent)."""
    lines = []
    teacher = read_json(report / "teacher" / "teacher.json")
    if teacher and "test_acc" in teacher:
        text = f"Teacher: {100 * teacher['test_acc']:.1f} % test"
        if teacher.get("val_acc") is not None:
            text += f", {100 * teacher['val_acc']:.1f} % val"
        summary = read_json(report / "data_and_saliency" / "data_summary.json") or {}
        single = (summary.get("single_frame_vs_3d") or {}).get("one frame only")
        if single is not None:
            text += (
                f"; its recipe on one frame per clip (the one-frame control): {100 * single:.1f} %"
            )
        lines.append(text + ".")
    run = read_json(report / "run_grid.json")
    if run and "total_wall_s" in run:
        runs = recorded_runs(run)
        minutes = sum(r.get("total_wall_s", 0.0) for r in runs) / 60
        how = "one run" if len(runs) == 1 else f"{len(runs)} runs"
        workers = ", then ".join(str(r.get("workers")) for r in runs)
        lines.append(
            f"Made by {how} of the grid: {minutes:.0f} min of wall time, {workers} worker(s) on "
            "this machine's CPU (`run_grid.json`)."
        )
    return lines


def figure_lines(csv_path: Path, readme_dir: Path) -> list[str]:
    """The report's figure of every set under both recipes, linked relative to the README; none if
    absent."""
    figure = csv_path.resolve().parent / "figures" / FIGURE
    if not figure.is_file():
        return []
    target = os.path.relpath(figure, readme_dir.resolve()).replace(os.sep, "/")
    return [f"![Test accuracy of every set under each student recipe, per IPC]({target})", ""]


def markers(name: str) -> tuple[str, str]:
    """The begin and end markers of the block called `name`."""
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def render(csv_path: Path = DEFAULT_CSV, readme_dir: Path = ROOT, name: str = "results") -> str:
    """The block, markers included, rendered from `csv_path` for a README in `readme_dir`."""
    rows, old = read_rows(csv_path)
    body = figure_lines(csv_path, readme_dir) + table_lines(rows, old) + [""] + notes(rows, old)
    body += context_lines(csv_path.resolve().parent)
    return "\n".join([markers(name)[0], *body, markers(name)[1]])


def current_block(text: str, name: str = "results") -> str:
    """README's block `name`, markers included; ValueError when a marker is missing."""
    begin, end_marker = markers(name)
    start, end = text.find(begin), text.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {begin} ... {end_marker} block")
    return text[start : end + len(end_marker)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", choices=list(BLOCKS), help="one block (default: every block)")
    parser.add_argument("--csv", type=Path, help="a report's main_table.csv (with --block)")
    parser.add_argument("--readme", type=Path, default=README)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 when a block is stale")
    mode.add_argument("--print", action="store_true", help="print the blocks, write nothing")
    args = parser.parse_args(argv)
    if args.csv and not args.block:
        parser.error("--csv needs --block: which block it renders")
    sources = {args.block: args.csv or BLOCKS[args.block]} if args.block else BLOCKS
    for path in sources.values():
        if not path.is_file():
            print(
                f"readme_results: no {path}: pass --csv a report's main_table.csv", file=sys.stderr
            )
            return 2
    blocks = {name: render(path, args.readme.parent, name) for name, path in sources.items()}
    if args.print:
        print("\n\n".join(blocks.values()))
        return 0
    text = new = args.readme.read_text(encoding="utf-8")
    try:
        for name, block in blocks.items():
            new = new.replace(current_block(new, name), block)
    except ValueError as error:
        print(f"readme_results: {error}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            stale = "README.md's results blocks are stale: run python scripts/readme_results.py"
            print(f"readme_results: {stale}", file=sys.stderr)
        return int(new != text)
    tmp = args.readme.with_name(args.readme.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(args.readme)  # atomic: a reader never sees half a README
    return 0


if __name__ == "__main__":
    sys.exit(main())

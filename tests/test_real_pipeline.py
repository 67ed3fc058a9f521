"""End to end on real files: a UCF101-layout folder of encoded videos through the grid to a report.

The folder is motion-benchmark clips of three classes the benchmark lacks, written as H.264 .mp4
and MPEG-4 .avi files with UCF101's split files (CRLF line ends); `scripts/run_grid.py` runs the
notebooks on it as `./run_all.sh --profile smoke --dataset ucf101 --root <tree>` would (main
group, IPC 1, three methods).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tsgd_core.data.datasets import DataSpec, example_video_tree, write_video_tree
from tsgd_core.data.synthetic import make_motion_benchmark

ROOT = Path(__file__).resolve().parents[1]


# a real folder whose class count and names are none of the benchmark's
TREE_CLASSES = ["Alpha", "Beta", "Gamma"]


def three_class_tree(root: Path) -> Path:
    """The UCF101 layout (CamelCase class folders, CRLF split files) of 3 classes the benchmark
    lacks: 6 train, 1 val and 3 test clips each, as .mp4 and .avi."""
    bench = make_motion_benchmark(3, 6, 1, 3, frames=8, height=16, width=16)
    names = [name.lower() for name in TREE_CLASSES]  # written as UCF101's CamelCase folders
    renamed = replace(
        bench,
        **{p: replace(getattr(bench, p), class_names=names) for p in ("train", "val", "test")},
    )
    return write_video_tree(renamed, root, "ucf101")


def outputs_text(executed: Path) -> str:
    """Every text output of an executed notebook (streams, results, markdown), joined."""
    parts = []
    for cell in json.loads(executed.read_text())["cells"]:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            data = output.get("data", {})
            parts += [data.get("text/plain", ""), data.get("text/markdown", "")]
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


# a start set, a distribution-matching and a recovering method (the rest run in the fullgrid test)
METHODS = ("random", "dm", "tsgd")


@pytest.mark.slow
def test_grid_on_a_ucf101_folder_to_a_finished_report(tmp_path):
    """`./run_all.sh --profile smoke --dataset ucf101 --root <tree>` (main group, IPC 1, three
    methods) on a folder of 3 new classes: every notebook (01, 02, each cell's 03 and 04, 05, 00) uses the
    folder, and its class names reach the summary, the teacher, the sets and the evaluations."""
    pytest.importorskip("papermill")

    tree = three_class_tree(tmp_path / "UCF101")
    assert {p.suffix for p in tree.rglob("v_*")} == {".mp4", ".avi"}
    assert b"\r\n" in (tree / "ucfTrainTestlist" / "trainlist01.txt").read_bytes()
    reports = tmp_path / "reports" / "smoke-ucf101"
    command = [sys.executable, str(ROOT / "scripts" / "run_grid.py"), "--profile", "smoke"]
    command += ["--dataset", "ucf101", "--root", str(tree), "--size", "16"]
    command += ["--cache", str(tmp_path / "cache"), "--reports", str(reports)]
    command += ["--groups", "main", "--ipcs", "1", "--methods", ",".join(METHODS)]
    command += ["--no-html", "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    # 01: the data summary and the notebook's computed sentences
    summary = json.loads((reports / "data_and_saliency" / "data_summary.json").read_text())
    assert summary["classes"] == TREE_CLASSES and summary["sizes"]["test"] == 9
    assert summary["data"].startswith("ucf101 split 1 (8x16x16)")
    # 9 test clips: one is worth 11.11 points, said in the notebook and on stderr
    assert any("one clip is worth 11.11 points" in m for m in summary["warnings"])
    text01 = outputs_text(reports / "data_and_saliency" / "01_data_and_saliency.ipynb")
    assert "the one-frame control (" in text01  # the computed above / below / level sentence
    assert "tsgd: warning: the test split has 9 clips" in text01
    # 02: one teacher, on these classes
    teacher = json.loads((reports / "teacher" / "teacher.json").read_text())
    assert teacher["classes"] == TREE_CLASSES and teacher["chance"] == pytest.approx(1 / 3)
    assert list(teacher["per_class_test_acc"]) == TREE_CLASSES
    assert Path(DataSpec.from_text(teacher["dataset"]).root) == tree.resolve()
    assert teacher["key"] == summary["teacher_key"], "01 and 02 use one teacher"
    assert (tmp_path / "cache" / "teachers" / f"{teacher['key']}.pt").is_file()
    assert (reports / "teacher" / "teacher_confusion.png").is_file()
    # 03 and 04 of every cell: the folder's classes, its dataset, its teacher
    records = [json.loads(p.read_text()) for p in reports.glob("runs/main/*/record.json")]
    assert {r["method"] for r in records} == set(METHODS)
    assert all(0.0 <= r["acc_soft_mean"] <= 1.0 for r in records)
    runs = sorted(p.parent for p in reports.glob("runs/main/*/distill.json"))
    # the first draw of each cell (every method under each student recipe) ran as 03 + 04
    assert len(runs) == 2 * len(METHODS), runs
    for run in runs:
        info = json.loads((run / "distill.json").read_text())
        assert info["class_names"] == TREE_CLASSES and info["shape"] == [3, 3, 8, 16, 16]
        assert info["dataset"] == teacher["dataset"] and info["teacher_key"] == teacher["key"]
        evaluation = json.loads((run / "evaluation.json").read_text())
        assert evaluation["class_names"] == TREE_CLASSES
        assert evaluation["dataset"] == teacher["dataset"]
        assert evaluation["teacher_key"] == teacher["key"]
    # 05: the report names the data
    readme = (reports / "README.md").read_text()
    sizes = summary["sizes"]
    assert "Data: ucf101 split 1 (8x16x16)" in readme
    assert f"{sizes['train']} train / {sizes['val']} val / 9 test clips" in readme
    assert "--dataset ucf101 --root" in readme
    for figure in ("accuracy_vs_ipc", "cost", "distilled_tsgd"):
        assert (reports / "figures" / f"{figure}.png").is_file()
    # a rerun finds every step done but the report (always rebuilt)
    again = subprocess.run(
        [*command, "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    states = [line.split()[1] for line in again.stdout.splitlines() if line.startswith("[")]
    # 01, 02; the full data under each recipe (direct); 6 cells at IPC 1 (3 methods x 2
    # student recipes): the first draw as 03 + 04, the second draw direct; 05, 00
    assert again.returncode == 0 and states.count("todo") == 1 and len(states) == 2 + 2 + 6 * 3 + 2


def five_class_tree(root: Path) -> Path:
    """A UCF101-layout folder of 5 classes (not the benchmark's 10), one of them a class the
    benchmark lacks (PlayingDhol), at smoke sizes: 8 train, 1 val, 3 test clips per class."""
    return example_video_tree(root, 5, (8, 1, 3))


@pytest.mark.fullgrid
def test_every_group_runs_on_a_five_class_folder_and_every_notebook_uses_it(tmp_path):
    """The whole grid (every default group, both IPCs) at the smoke profile's sizes: the quick
    profile is too slow for a test. Every executed notebook gets the folder as its dataset, and
    the teacher, the data summary, the records and the report name its 5 classes."""
    pytest.importorskip("papermill")
    from tsgd_core.grid import experiments

    tree = five_class_tree(tmp_path / "UCF101")
    reports = tmp_path / "reports" / "smoke-ucf101"
    command = [sys.executable, str(ROOT / "scripts" / "run_grid.py"), "--profile", "smoke"]
    command += ["--dataset", "ucf101", "--root", str(tree), "--size", "16"]
    command += ["--cache", str(tmp_path / "cache"), "--reports", str(reports)]
    command += ["--no-html", "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    assert done.returncode == 0, done.stderr[-3000:]

    classes = ["PlayingDhol", "TranslateDown", "TranslateLeft", "TranslateRight", "TranslateUp"]
    teacher = json.loads((reports / "teacher" / "teacher.json").read_text())
    assert sorted(teacher["class_names"]) == classes
    summary = json.loads((reports / "data_and_saliency" / "data_summary.json").read_text())
    assert summary["sizes"]["test"] == 15
    records = [json.loads(p.read_text()) for p in reports.glob("runs/*/*/record.json")]
    groups = {p.parent.parent.name for p in reports.glob("runs/*/*/record.json")}
    expected = {g for g in experiments.DEFAULT_GROUPS if g != "shake"}
    assert groups == expected, sorted(groups ^ expected)
    assert all(DataSpec.from_text(r["dataset"]).root == str(tree.resolve()) for r in records)
    executed = sorted(reports.rglob("*.ipynb"))
    assert len(executed) >= len(expected) + 3
    for path in executed:
        notebook = json.loads(path.read_text())
        injected = [
            "".join(c["source"])
            for c in notebook["cells"]
            if "injected-parameters" in c.get("metadata", {}).get("tags", [])
        ]
        assert injected and str(tree.resolve()) in injected[0], f"{path} did not get the folder"
    shown = "".join(
        json.dumps(c.get("outputs", []))
        for name in ("data_and_saliency", "teacher")
        for path in (reports / name).glob("*.ipynb")
        for c in json.loads(path.read_text())["cells"]
    )
    assert "PlayingDhol" in shown, "the data and teacher notebooks' tables name the new class"

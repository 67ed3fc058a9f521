"""Hostile dataset folders (issue 28, "data silently wrong"): each is refused with one line
naming the files and lines at fault, exit 2, before anything is decoded or cached."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tsgd_core.cli import main
from tsgd_core.data.clips import DataError
from tsgd_core.data.real_video import list_video_dataset


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("tsgd: error:"), lines[0]
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not decoded: the lists are refused first")


def ucf_tree(root: Path, train: list[str], test: list[str]) -> Path:
    """Two classes, three videos each on disk; the split files hold exactly these lines."""
    notes = root / "ucfTrainTestlist"
    notes.mkdir(parents=True)
    (notes / "classInd.txt").write_text("1 Archery\r\n2 BalanceBeam\r\n")
    for name in ("Archery", "BalanceBeam"):
        for g in (1, 8, 9):
            touch(root / name / f"v_{name}_g{g:02d}_c01.avi")
    (notes / "trainlist01.txt").write_text("".join(f"{line}\r\n" for line in train))
    (notes / "testlist01.txt").write_text("".join(f"{line}\r\n" for line in test))
    return root


TRAIN = [
    "Archery/v_Archery_g08_c01.avi 1",
    "Archery/v_Archery_g09_c01.avi 1",
    "BalanceBeam/v_BalanceBeam_g08_c01.avi 2",
    "BalanceBeam/v_BalanceBeam_g09_c01.avi 2",
]
TEST = ["Archery/v_Archery_g01_c01.avi", "BalanceBeam/v_BalanceBeam_g01_c01.avi"]


def refused(capsys, tmp_path: Path, root: Path, kind: str = "ucf101") -> str:
    cache = tmp_path / "cache"
    argv = ["data", "--dataset", kind, "--root", str(root), "--cache-dir", str(cache), "--quiet"]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert not [p for p in cache.rglob("*") if p.is_file()], "something was cached"
    return line


def test_a_test_video_in_the_train_list_is_refused_naming_both_lines(capsys, tmp_path):
    # case 8: the test list's second line appears again as the train list's third
    leaked = "BalanceBeam/v_BalanceBeam_g01_c01.avi 2"
    root = ucf_tree(tmp_path / "ucf", [*TRAIN[:2], leaked, *TRAIN[2:]], TEST)
    line = refused(capsys, tmp_path, root)
    notes = root / "ucfTrainTestlist"
    assert f"{notes / 'trainlist01.txt'}:3 and {notes / 'testlist01.txt'}:2" in line, line
    assert "in both the train and the test split" in line


def test_a_line_listed_twice_is_refused_naming_both_lines(capsys, tmp_path):
    # case 8: a repeated line would count its video twice
    root = ucf_tree(tmp_path / "ucf", [*TRAIN, TRAIN[1]], TEST)
    line = refused(capsys, tmp_path, root)
    train_list = root / "ucfTrainTestlist" / "trainlist01.txt"
    assert f"{train_list}:2 and {train_list}:5" in line and "twice" in line, line


def test_a_repeat_in_other_letter_case_or_without_the_class_index_is_still_a_repeat(tmp_path):
    # the resolver finds files whatever their letter case, so the check ignores it too
    repeat = "Archery/V_ARCHERY_G08_C01.AVI"
    root = ucf_tree(tmp_path / "ucf", TRAIN, [*TEST, repeat])
    with pytest.raises(DataError, match=re.escape("trainlist01.txt:1 and ")):
        list_video_dataset("ucf101", root)


def test_a_clean_listing_is_unchanged(tmp_path):
    listing = list_video_dataset("ucf101", ucf_tree(tmp_path / "ucf", TRAIN, TEST))
    assert (len(listing.train), len(listing.test)) == (4, 2)


def test_hmdb51_video_marked_train_and_test_is_refused(capsys, tmp_path):
    root = tmp_path / "hmdb"
    notes = root / "testTrainMulti_7030_splits"
    notes.mkdir(parents=True)
    for name in ("clap", "run"):
        for i in range(3):
            touch(root / name / f"Title{i}_{name}_f_cm_np1_fr_med_0.avi")
        lines = [f"Title{i}_{name}_f_cm_np1_fr_med_0.avi {flag}" for i, flag in enumerate("112")]
        if name == "run":
            lines.append(lines[0][:-1] + "2")
        (notes / f"{name}_test_split1.txt").write_text("\n".join(lines) + "\n")
    line = refused(capsys, tmp_path, root, "hmdb51")
    split_file = notes / "run_test_split1.txt"
    assert f"{split_file}:1 and {split_file}:4" in line, line
    assert "in both the train and the test split" in line


def test_frame_folder_in_both_list_files_is_refused(capsys, tmp_path):
    root = tmp_path / "frames"
    for name in ("a", "b"):
        for i in range(3):
            touch(root / name / f"{name}{i}" / "frame_0001.png")
    (root / "trainlist.txt").write_text("a/a0\na/a1\nb/b0\nb/b1\n")
    (root / "testlist.txt").write_text("a/a2\nb/b2\nb/b1\n")
    line = refused(capsys, tmp_path, root, "frames")
    assert f"{root / 'trainlist.txt'}:4 and {root / 'testlist.txt'}:3" in line, line

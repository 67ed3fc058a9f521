"""Hostile input, table-driven: each bad input ends in one error line (no traceback) with the
right exit code, and leaves nothing half-written (issue 19)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from tsgd_core.cli import kept_after_interrupt, main
from tsgd_core.data.artifact import DistilledSet, load_distilled, save_distilled
from tsgd_core.data.clips import DataError
from tsgd_core.grid import kernels, planner, workers

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--profile", "smoke", "--quiet"]


def one_error_line(err: str, out: str, prefix: str = "tsgd: error:") -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in err + out and "internal error" not in err
    return lines[0]


def run_tsgd(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    if code == 0:
        return code, captured.err
    return code, one_error_line(captured.err, captured.out)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ----------------------------------------------------------------------------- tsgd: flags

DISTILL = ["distill", "--method", "random", "--ipc", "1", *SMOKE]


def flag_cases(tmp: Path) -> dict[str, tuple[list[object], str]]:
    """name -> (argv, text the one error line must contain); all refused when parsed."""
    cache = ["--cache-dir", tmp / "cache"]
    return {
        "device tpu": ([*DISTILL, *cache, "--device", "tpu"], "unknown device 'tpu'"),
        "device cuda:x": ([*DISTILL, *cache, "--device", "cuda:x"], "this machine has cpu"),
        "empty --out": ([*DISTILL, *cache, "--out", ""], "argument --out: an empty path"),
        "empty --cache-dir": ([*DISTILL, "--cache-dir", ""], "--cache-dir: an empty path"),
        "blank --cache-dir": (["teacher", *SMOKE, "--cache-dir", "  "], "an empty path"),
        "empty teacher --out": (["teacher", *SMOKE, *cache, "--out", ""], "an empty path"),
        "empty evaluate --out": (["evaluate", "x.tsgd.pt", *cache, "--out", ""], "empty path"),
        "empty artifact": (["evaluate", "", *cache], "an empty path"),
        "empty export input": (["export", "", tmp / "x.gif"], "an empty path"),
        "empty export output": (["export", "x.tsgd.pt", ""], "an empty path"),
        "empty --preview": (["data", "--profile", "smoke", "--preview", ""], "empty path"),
        "empty --root": (["data", "--dataset", "ucf101", "--root", ""], "--root: an empty"),
        "empty --annotations": (
            ["data", "--dataset", "ucf101", "--root", tmp, "--annotations", ""],
            "--annotations: an empty path",
        ),
    }


@pytest.mark.parametrize("case", sorted(flag_cases(Path("t"))))
def test_tsgd_bad_flag_is_one_line_exit_2_nothing_written(capsys, tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    argv, needle = flag_cases(tmp_path)[case]
    code, line = run_tsgd(capsys, *argv)
    assert code == 2 and needle in line, line
    assert files_under(tmp_path) == []


def test_cuda_on_a_machine_without_it_names_the_devices_there(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, line = run_tsgd(capsys, *DISTILL, "--cache-dir", tmp_path / "c", "--device", "cuda")
    assert code == 2 and "no CUDA GPU is visible (this machine has cpu)" in line
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("value", ["abc", "nan", "-5", "0", "inf", "1e400"])
def test_bad_memory_limit_is_one_line_naming_mib(capsys, monkeypatch, value):
    monkeypatch.setenv("TSGD_MEMORY_LIMIT_MB", value)
    code, line = run_tsgd(capsys, "grid", "--profile", "smoke")
    assert code == 2 and f"TSGD_MEMORY_LIMIT_MB={value!r}" in line
    assert "must be a positive number of MiB" in line


def test_memory_limit_override_and_ulimit_are_read():
    from tsgd_core.runtime import budget

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TSGD_MEMORY_LIMIT_MB", "1.5")
        assert budget.available_memory_bytes() == int(1.5 * 2**20)
    assert budget._address_space_room() is None or budget._address_space_room() >= 0


def test_tilde_paths_are_expanded_not_made_into_a_folder_named_tilde(capsys, tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    argv = ["data", "--profile", "smoke", "--preview", "~/p.gif", "--preview-clips", "1"]
    code, _ = run_tsgd(capsys, *argv, "--scale", "1")
    assert code == 0
    assert (home / "p.gif").is_file() and not (work / "~").exists()


def test_interrupted_decode_says_the_decoded_videos_are_kept():
    import argparse

    args = argparse.Namespace(command="data", dataset="ucf101", cache_dir="c")
    text = kept_after_interrupt(args)
    assert "nothing was written" not in text and "c/videos" in text


# ----------------------------------------------------------------------------- set files


def small_set(tmp: Path, **changes: object) -> Path:
    ds = DistilledSet(
        videos=torch.rand(4, 3, 2, 4, 4),
        labels=torch.tensor([0, 0, 1, 1]),
        class_names=["a", "b"],
        method="random",
        ipc=2,
        config={"spec": {"method": "random", "ipc": 2, "profile": "smoke"}},
        soft_labels=torch.full((4, 2), 0.5),
    )
    path = save_distilled(ds, tmp / "set.tsgd.pt")
    record = torch.load(path, weights_only=True)
    record.update(changes)
    torch.save(record, path)
    return path


SET_CASES = {
    "pixels far above 1": ({"videos": torch.full((4, 3, 2, 4, 4), 5.0)}, "outside [0, 1]"),
    "pixels below 0": ({"videos": torch.full((4, 3, 2, 4, 4), -3.0)}, "outside [0, 1]"),
    "header IPC above the clips": ({"ipc": 3}, "2 classes x IPC 3 = 6 clips, but videos holds 4"),
    "header IPC below the clips": ({"ipc": 1}, "2 classes x IPC 1 = 2 clips"),
    "more classes than clips allow": ({"class_names": ["a", "b", "c"]}, "3 classes x IPC 2"),
    "repeated class names": ({"class_names": ["a", "a"]}, "class_names repeat ['a']"),
    "empty class name": ({"class_names": ["a", " "]}, "empty or non-str name"),
    "labels against the IPC": ({"labels": torch.tensor([0, 0, 0, 1])}, "'a' has 3"),
    "spec IPC against the header": (
        {"config": {"spec": {"method": "random", "ipc": 5, "profile": "smoke"}}},
        "its recorded spec IPC 5",
    ),
    "soft labels not probabilities": (
        {"soft_labels": torch.full((4, 2), float("nan"))},
        "soft_labels hold values that are not probabilities",
    ),
}


@pytest.mark.parametrize("case", sorted(SET_CASES))
def test_damaged_set_is_refused_on_load_naming_the_file(tmp_path, case):
    changes, needle = SET_CASES[case]
    path = small_set(tmp_path, **changes)
    with pytest.raises(DataError) as caught:
        load_distilled(path)
    text = str(caught.value)
    assert str(path) in text and needle in text and "distil it again" in text, text


@pytest.mark.parametrize("case", sorted(SET_CASES))
def test_damaged_set_is_one_line_in_export_and_evaluate(capsys, tmp_path, case):
    path = small_set(tmp_path, **SET_CASES[case][0])
    gif, out = tmp_path / "x.gif", tmp_path / "r.json"
    code, line = run_tsgd(capsys, "export", path, gif)
    assert code == 2 and str(path) in line
    cache = tmp_path / "cache"
    code, line = run_tsgd(capsys, "evaluate", path, "--cache-dir", cache, "--out", out)
    assert code == 2 and str(path) in line
    assert not gif.exists() and not out.exists() and files_under(cache) == []


def test_slight_rounding_past_the_pixel_range_is_accepted(tmp_path):
    videos = torch.rand(4, 3, 2, 4, 4)
    videos[0, 0, 0, 0, 0], videos[1, 0, 0, 0, 0] = 1.0004, -0.0004
    assert load_distilled(small_set(tmp_path, videos=videos)).ipc == 2


def smoke_set(tmp: Path, **changes: object) -> Path:
    """A set of the smoke profile's classes and clip shape, as `tsgd distill --out` writes."""
    from tsgd_core.grid.profiles import load_data
    from tsgd_core.grid.spec import RunSpec

    data = load_data("smoke")
    k = data.num_classes
    ds = DistilledSet(
        videos=torch.rand(k, *data.clip_shape),
        labels=torch.arange(k),
        class_names=list(data.class_names),
        method="random",
        ipc=1,
        config={"spec": asdict(RunSpec(method="random", ipc=1, profile="smoke"))},
        teacher_key="0123456789ab",
    )
    for name, value in changes.items():
        setattr(ds, name, value)
    return save_distilled(ds, tmp / "smoke.tsgd.pt")


MISMATCHES = {  # name -> (changes made from the smoke data, text of the error)
    "another teacher": (
        lambda data: {},
        "was distilled with teacher 0123456789ab, but here its profile 'smoke'",
    ),
    "other classes": (
        lambda data: {
            "class_names": list(data.class_names)[:3],
            "labels": torch.arange(3),
            "videos": torch.rand(3, *data.clip_shape),
        },
        "holds 3 classes",
    ),
    "other clip shape": (
        lambda data: {"videos": torch.rand(data.num_classes, 3, 2, 4, 4)},
        "holds clips of shape (3, 2, 4, 4)",
    ),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_evaluate_refuses_a_mismatched_set_before_any_training(capsys, tmp_path, case):
    from tsgd_core.grid.profiles import load_data

    make_changes, needle = MISMATCHES[case]
    changes = make_changes(load_data("smoke"))
    path = smoke_set(tmp_path, **changes)
    cache, out = tmp_path / "cache", tmp_path / "r.json"
    code, line = run_tsgd(capsys, "evaluate", path, "--cache-dir", cache, "--out", out)
    assert code == 2 and needle in line and str(path) in line, line
    assert not out.exists()
    assert not (cache / "teachers").exists()  # refused before a teacher was trained


# ----------------------------------------------------------------------------- run_grid, run_all.sh


@pytest.fixture
def run_grid():
    from tsgd_core.cli import run_grid

    return run_grid


def grid_main(run_grid, capsys, *argv: str) -> tuple[int, str]:
    try:
        code = run_grid.main(["--profile", "smoke", "--dry-run", *argv])
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, one_error_line(captured.err, captured.out, "run_grid: error:")


GRID_CASES = {
    "ipcs not a number": (["--ipcs", "abc"], "got 'abc'"),
    "ipcs zero": (["--ipcs", "0"], "positive integers"),
    "ipcs negative": (["--ipcs", "-1"], "positive integers"),
    "ipcs empty": (["--ipcs", ","], "positive integers"),
    "ipc the profile lacks": (["--ipcs", "7"], "profile 'smoke' runs IPC 1, 2"),
    "one ipc the profile lacks": (["--ipcs", "1,7"], "--ipcs 7:"),
    "ipc outside the chosen groups": (["--groups", "tsgfa", "--ipcs", "1"], "--ipcs 1:"),
    "unknown method": (["--methods", "tsgd,foo"], "unknown method(s) foo"),
    "empty methods": (["--methods", ","], "unknown method(s) ','"),
    "method outside the chosen groups": (
        ["--groups", "dm", "--methods", "tsgd"],
        "--methods tsgd: profile 'smoke' runs the methods dm in group(s) dm",
    ),
    "device tpu": (["--device", "tpu"], "unknown device 'tpu'"),
    "empty reports": (["--reports", ""], "--reports: an empty path"),
    "empty cache": (["--cache", ""], "--cache: an empty path"),
}


@pytest.mark.parametrize("case", sorted(GRID_CASES))
def test_run_grid_bad_option_is_one_line_exit_2(run_grid, capsys, case):
    argv, needle = GRID_CASES[case]
    code, line = grid_main(run_grid, capsys, *argv)
    assert code == 2 and needle in line, line


def test_run_grid_methods_keep_only_their_cells(run_grid, capsys):
    code = run_grid.main(["--profile", "smoke", "--dry-run", "--groups", "main", "--ipcs", "1"])
    everything = capsys.readouterr().out
    code += run_grid.main(
        ["--profile", "smoke", "--dry-run", "--groups", "main", "--ipcs", "1"]
        + ["--methods", "random,tsgd"]
    )
    chosen = capsys.readouterr().out
    assert code == 0
    cells = set(re.findall(r"^\[\d+/\d+\] \w+ (main/\S+)", chosen, flags=re.M))
    assert {c.split("/")[1].split("_")[0] for c in cells} == {"random", "tsgd"}
    assert any("noTSGFA" in c for c in cells), "TSGD w/o TSGFA is a TSGD cell"
    assert "main/dm_ipc1" in everything and "main/dm_ipc1" not in chosen
    assert "full data" in chosen and "05_report" in chosen  # the rest of the run stays


@pytest.mark.parametrize("value", ["abc", "nan", "-5"])
def test_run_grid_bad_memory_limit_is_one_line(run_grid, capsys, monkeypatch, value):
    monkeypatch.setenv("TSGD_MEMORY_LIMIT_MB", value)
    code, line = grid_main(run_grid, capsys)
    assert code == 2 and "must be a positive number of MiB" in line


def test_run_grid_expands_tilde_in_reports_and_cache(run_grid, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    args = ["--reports", "~/r", "--cache", "~/c"]
    parsed = [run_grid.path_flag(a) for a in args[1::2]]
    assert parsed == [tmp_path / "r", tmp_path / "c"]


def test_unknown_notebook_parameter_is_found_before_running(run_grid, tmp_path):
    step = planner.Step("x", "02_teacher.ipynb", tmp_path, {"profile": "smoke", "ipc": 3})
    assert planner.unknown_parameters([step]) == ["02_teacher.ipynb: ipc"]
    planned = planner.plan("smoke", tmp_path, tmp_path / "c", "cpu", None)
    assert planner.unknown_parameters(planned) == []  # the grid passes only declared ones


def test_smoke_run_leaves_the_tracked_reports_index_alone(run_grid, tmp_path):
    assert not run_grid.index_reports_root(ROOT / "reports" / "smoke")
    assert not run_grid.index_reports_root(ROOT / "reports" / "default")
    assert run_grid.index_reports_root(tmp_path / "reports" / "smoke")


def test_ctrl_c_in_a_worker_is_interrupted_not_failed(run_grid, capsys, monkeypatch, tmp_path):
    import argparse

    class Done:
        returncode = 130

    monkeypatch.setattr(workers.subprocess, "run", lambda *a, **k: Done())
    monkeypatch.setattr(workers, "worker_command", lambda *a: ["true"])
    args = argparse.Namespace(device="cpu")
    with pytest.raises(KeyboardInterrupt):
        workers.run_workers(args, tmp_path, 2)
    out = capsys.readouterr().out
    assert "FAILED" not in out and out.count("interrupted") == 2


def test_kernel_dying_of_ctrl_c_is_interrupted_not_failed(run_grid, capsys, monkeypatch, tmp_path):
    def dies(step, engine):
        kernels.INTERRUPTED.set()  # the SIGINT handler ran; the kernel died of it
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(kernels, "execute", dies)
    step = planner.Step("x", "02_teacher.ipynb", tmp_path, {}, always=True)
    try:
        with pytest.raises(KeyboardInterrupt):
            kernels.run_steps([step], force=True, fresh_kernels=True)
    finally:
        kernels.INTERRUPTED.clear()
    assert "FAILED" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--profile"], "--profile needs a name"),
        (["--profile="], "--profile needs a name"),
        (["--profile", ""], "--profile needs a name"),
        (["--dataset"], "--dataset needs a kind"),
        (["--dataset="], "--dataset needs a kind"),
        (["--profile", "../etc"], "names, not paths"),
    ],
)
def test_run_all_bad_arguments_are_one_line_exit_2(argv, needle):
    result = subprocess.run(
        ["bash", str(ROOT / "run_all.sh"), *argv], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    line = one_error_line(result.stderr, result.stdout, "run_all.sh: error:")
    assert needle in line


def test_run_grid_script_ipcs_abc_is_one_line_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/run_grid.py", "--profile", "smoke", "--ipcs", "abc"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    one_error_line(result.stderr, result.stdout, "run_grid: error:")


# ----------------------------------------------------------------------------- numeric ranges


def range_cases() -> dict[str, tuple[str, str, str]]:
    """name -> (flag, value, field): every numeric RunSpec flag below, above and beside its range."""
    from tsgd_core.cli.options import flag_name
    from tsgd_core.grid.spec import FIELD_RANGES

    cases = {}
    for field, (low, high, integer) in FIELD_RANGES.items():
        flag = {"n_students": "--students"}.get(field, flag_name(field))
        below = str(int(low) - 1) if integer else f"{low - max(abs(low), 1e-3):g}"
        values = {"below": below, "above": "1e308" if not integer else str(int(high) + 1)}
        values |= {"nan": "nan", "text": "abc"} if not integer else {"fraction": "1.5"}
        for what, value in values.items():
            cases[f"{field} {what}"] = (flag, value, field)
    return cases


NO_FLAG = ("student_scale",)  # a RunSpec field of the grid only


@pytest.mark.parametrize("case", sorted(c for c in range_cases() if c.split()[0] not in NO_FLAG))
def test_out_of_range_flag_is_one_line_naming_flag_and_value(capsys, tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    flag, value, _ = range_cases()[case]
    argv = ["distill", "--method", "tsgd", *SMOKE, "--cache-dir", tmp_path / "c"]
    code, line = run_tsgd(capsys, *argv, flag, value)
    assert code == 2 and f"argument {flag}" in line and value in line, line
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("case", sorted(c for c in range_cases() if "text" not in c))
def test_out_of_range_run_parameter_is_refused_by_the_run_spec(case):
    from tsgd_core.grid.spec import range_text, spec_from_params

    _, value, field = range_cases()[case]
    number = float(value) if "." in value or "e" in value or value == "nan" else int(value)
    with pytest.raises(ValueError, match=f"^{field} must be {re.escape(range_text(field))}, got"):
        spec_from_params(method="tsgd", profile="smoke", **{field: number})


# ----------------------------------------------------------------------------- machine limits


@pytest.mark.parametrize(
    "error, needle",
    [
        (OSError(28, "No space left on device", "/c/x.pt"), "the disk is full writing /c/x.pt"),
        (OSError(122, "Disk quota exceeded"), "the disk is full"),
        (MemoryError(), "out of memory"),
        (torch.cuda.OutOfMemoryError("CUDA out of memory"), "out of memory"),
    ],
)
def test_machine_limits_are_exit_1_and_not_a_bug(capsys, monkeypatch, error, needle):
    from tsgd_core import cli

    def raise_it(args):
        raise error

    monkeypatch.setattr(cli.app, "cmd_grid", raise_it)
    code, line = run_tsgd(capsys, "grid", "--profile", "smoke")
    assert code == 1 and needle in line and "report it" not in line, line

"""Hostile input at the machine's limits, table-driven: unwritable folders, a full disk, low
memory limits (`ulimit -v`, cgroups, TSGD_MEMORY_LIMIT_MB) and bad options that reach
`run_all.sh`'s stages. Each ends in one error line (no traceback) with the right exit code
(2: bad input, 1: a limit of the machine) and leaves nothing half-written (issue 19).

A full disk and a read-only folder are real tmpfs mounts where the tests run as root; elsewhere
a read-only folder is a folder without write permission, and the full disk is fault injection.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from tsgd_core.cli import main
from tsgd_core.data.artifact import DistilledSet, save_distilled
from tsgd_core.runtime import budget

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--profile", "smoke", "--quiet"]


def one_error_line(err: str, out: str, prefix: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in err + out and "internal error" not in err
    assert "Exception ignored" not in err
    return lines[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextmanager
def tmpfs(folder: Path, size: str, readonly: bool = False) -> Iterator[Path]:
    """A real tmpfs of `size` at `folder` (root only); skips the test where it cannot mount."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"{'ro,' if readonly else ''}size={size}"
    mounted = (
        is_root()
        and shutil.which("mount")
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip("a tmpfs cannot be mounted here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write in: a read-only tmpfs for root, else a folder of mode 0555."""
    folder = tmp_path / "ro"
    if is_root():
        with tmpfs(folder, "1m", readonly=True):
            yield folder
        return
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB disk (tmpfs)."""
    with tmpfs(tmp_path / "tiny", "256k") as folder:
        yield folder


@pytest.fixture
def fake_venv(tmp_path: Path) -> dict[str, str]:
    """The environment under which run_all.sh's bootstrap finds its venv installed and runs
    this interpreter: nothing is installed and the shared venv is never touched."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    (venv / ".tsgd-installed").write_text(f"{digest} torch\n")
    return {**os.environ, "TSGD_VENV": str(venv), "TSGD_TORCH_SPEC": "torch"}


def run_all(*argv: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "run_all.sh"), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def run_tsgd(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, one_error_line(captured.err, captured.out, "tsgd: error:") if code else ""


# ----------------------------------------------------------------------------- unwritable folders


def folder_cases(blocked: Path) -> dict[str, tuple[str, list[object], str]]:
    """name -> (program, argv, flag) with `blocked` as a folder that cannot be written."""
    return {
        "run_all --cache": ("run_all", ["--profile", "smoke", "--cache", blocked / "c"], "--cache"),
        "run_all --cache=": ("run_all", [f"--cache={blocked / 'c'}"], "--cache"),
        "run_all --reports": ("run_all", ["--reports", blocked / "r"], "--reports"),
        "run_all --robustness --cache": (
            "run_all",
            ["--robustness", "--cache", blocked],
            "--cache",
        ),
        "run_all --robustness --out": (
            "run_all",
            ["--robustness", "--out", blocked / "o"],
            "--out",
        ),
        "run_grid --cache": ("run_grid", ["--cache", blocked / "c"], "--cache"),
        "run_grid --reports": ("run_grid", ["--reports", blocked / "r"], "--reports"),
        "robustness --cache": ("robustness", ["--cache", blocked / "c"], "--cache"),
        "robustness --out": ("robustness", ["--out", blocked / "o"], "--out"),
        "tsgd teacher --cache-dir": (
            "tsgd",
            ["teacher", *SMOKE, "--cache-dir", blocked / "c"],
            "--cache-dir",
        ),
        "tsgd distill --out": (
            "tsgd",
            ["distill", "--method", "random", *SMOKE, "--out", blocked / "x.tsgd.pt"],
            "--out",
        ),
    }


def run_program(program: str, argv: list[object], capsys, tmp_path: Path) -> tuple[int, str]:
    """Run one of the programs; returns the exit code and its one error line."""
    argv = [str(a) for a in argv]
    if program == "run_all":
        result = run_all(*argv)
        return result.returncode, one_error_line(result.stderr, result.stdout, "run_all.sh:")
    if program == "tsgd":
        cache = [] if "--cache-dir" in argv else ["--cache-dir", tmp_path / "cache"]
        return run_tsgd(capsys, *argv, *cache)
    if program == "run_grid":
        from tsgd_core.cli import run_grid

        defaults = ["--profile", "smoke", "--reports", str(tmp_path / "r"), "--no-html"]
        code = run_grid.main([*defaults, "--cache", str(tmp_path / "cache"), *argv])
    else:
        from tsgd_core.cli import robustness

        code = robustness.main(["--profile", "smoke", "--out", str(tmp_path / "o"), *argv])
    captured = capsys.readouterr()
    return code, one_error_line(captured.err, captured.out, f"{program}: error:")


@pytest.mark.parametrize("case", sorted(folder_cases(Path("x"))))
def test_read_only_folder_is_refused_before_any_work(
    read_only, capsys, tmp_path, case, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    program, argv, flag = folder_cases(read_only)[case]
    code, line = run_program(program, argv, capsys, tmp_path)
    assert code == 2 and flag in line and "not writable" in line, line
    assert files_under(read_only) == [] and files_under(tmp_path / "r") == []
    assert not (tmp_path / "cache" / "teachers").exists()


@pytest.mark.parametrize("case", sorted(folder_cases(Path("x"))))
def test_folder_blocked_by_a_file_is_refused_before_any_work(capsys, tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    program, argv, flag = folder_cases(blocker)[case]
    code, line = run_program(program, argv, capsys, tmp_path)
    assert code == 2 and flag in line and "a_file" in line, line
    assert blocker.read_text() == "not a folder" and files_under(tmp_path / "r") == []
    assert not (tmp_path / "cache" / "teachers").exists()


# ----------------------------------------------------------------------------- run_all.sh's stages

RUN_ALL_CASES = {  # name -> (argv, environment, the one line's prefix and text)
    "ipcs abc": (["--ipcs", "abc"], {}, "run_grid: error:", "got 'abc'"),
    "ipcs 0": (["--ipcs", "0"], {}, "run_grid: error:", "positive integers"),
    "ipcs the profile lacks": (["--ipcs", "7"], {}, "run_grid: error:", "runs IPC 1, 2"),
    "device tpu": (["--device", "tpu"], {}, "run_grid: error:", "unknown device 'tpu'"),
    "unknown group": (["--groups", "nope"], {}, "run_grid: error:", "unknown group(s) nope"),
    "threads above the range": (["--threads", "5000"], {}, "run_grid: error:", "[1, 1024]"),
    "bad memory limit": ([], {"TSGD_MEMORY_LIMIT_MB": "abc"}, "run_grid: error:", "MiB"),
    "robustness ipc 0": (["--robustness", "--ipc", "0"], {}, "robustness: error:", "--ipc"),
    "robustness device": (["--robustness", "--device", "tpu"], {}, "robustness: error:", "tpu"),
}


@pytest.mark.parametrize("case", sorted(RUN_ALL_CASES))
def test_run_all_bad_option_of_a_stage_is_one_line_exit_2(fake_venv, tmp_path, case):
    argv, env, prefix, needle = RUN_ALL_CASES[case]
    cache, reports = tmp_path / "cache", tmp_path / "reports"
    if argv[:1] == ["--robustness"]:
        argv = ["--robustness", "--cache", cache, *argv[1:]]
    else:  # a dry run, should the option be accepted
        argv = ["--profile", "smoke", "--cache", cache, "--reports", reports, *argv, "--dry-run"]
    result = run_all(*argv, env={**fake_venv, **env})
    assert result.returncode == 2, result.stderr
    assert needle in one_error_line(result.stderr, result.stdout, prefix)
    assert files_under(tmp_path / "cache") == [] and files_under(reports) == []


# ----------------------------------------------------------------------------- a full disk


def a_set(tmp_path: Path, clips: int = 4, frames: int = 2, side: int = 4) -> Path:
    ds = DistilledSet(
        videos=torch.rand(clips, 3, frames, side, side, generator=torch.Generator().manual_seed(0)),
        labels=torch.arange(clips) % 2,
        class_names=["a", "b"],
        method="random",
        ipc=clips // 2,
        config={},
    )
    return save_distilled(ds, tmp_path / "set.tsgd.pt")


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_export_onto_a_full_disk_is_one_line_exit_1_and_no_file(tiny_disk, tmp_path, suffix):
    artifact = a_set(tmp_path, clips=8, frames=16, side=32)
    out = tiny_disk / f"grid{suffix}"
    result = subprocess.run(
        [sys.executable, "-m", "tsgd_core.cli", "export", str(artifact), str(out), "--scale", "8"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr, result.stdout, "tsgd: error:")
    assert f"the disk is full writing {out}" in line
    assert files_under(tiny_disk) == []


def test_gif_writer_failing_mid_write_leaves_no_file_and_no_second_traceback(
    capfd, tmp_path, monkeypatch
):
    from PIL import Image

    artifact, out = a_set(tmp_path), tmp_path / "out" / "grid.gif"

    def fills_the_disk(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"GIF89a")  # half-written
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", fills_the_disk)
    code, line = run_tsgd(capfd, "export", artifact, out, "--scale", "1")  # fd 2: __del__ too
    assert code == 1 and f"the disk is full writing {out}" in line
    assert files_under(tmp_path / "out") == []


def test_teacher_larger_than_the_free_disk_is_refused_before_training(tiny_disk, capsys):
    # 256 KiB hold a smoke teacher, not the margin kept beside it: refused before training
    code, line = run_tsgd(capsys, "teacher", *SMOKE, "--cache-dir", tiny_disk / "cache")
    assert code == 1 and "the teacher checkpoint" in line and "free" in line, line
    assert files_under(tiny_disk) == []


@pytest.mark.parametrize("what", ["teacher", "set"])
def test_free_disk_is_checked_before_large_writes(capsys, tmp_path, monkeypatch, what):
    monkeypatch.setattr(budget, "free_disk_bytes", lambda path: 1000)  # fault injection
    cache = tmp_path / "cache"
    if what == "teacher":
        code, line = run_tsgd(capsys, "teacher", *SMOKE, "--cache-dir", cache)
        assert code == 1 and "the disk is full writing" in line and "teacher" in line, line
    else:
        with pytest.raises(budget.DiskSpaceError) as caught:
            a_set(tmp_path / "sets")
        assert caught.value.errno == errno.ENOSPC and "needs about" in str(caught.value)
    assert files_under(tmp_path) == []


def test_a_set_larger_than_a_real_small_disk_is_refused_before_writing(tiny_disk, tmp_path):
    with pytest.raises(budget.DiskSpaceError, match="the set set.tsgd.pt needs about"):
        a_set(tiny_disk, clips=8, frames=16, side=32)
    assert files_under(tiny_disk) == []


# ----------------------------------------------------------------------------- memory limits


def vm_size_after_imports() -> int:
    code = (
        "import tsgd_core.cli, torch, pathlib\n"
        "for line in pathlib.Path('/proc/self/status').read_text().splitlines():\n"
        "    if line.startswith('VmSize:'): print(int(line.split()[1]))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env
    )
    return int(result.stdout.strip())


def under_ulimit(kib: int, *argv: str) -> subprocess.CompletedProcess:
    command = f'ulimit -v {kib} && exec "$@"'
    return subprocess.run(
        ["bash", "-c", command, "bash", sys.executable, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def ulimit_kib() -> int:
    """`ulimit -v` that leaves about 600 MiB of address space above what the imports take."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc to read the address space")
    return vm_size_after_imports() + 600 * 1024


def test_ulimit_v_is_the_memory_the_estimate_sees(ulimit_kib):
    code = "from tsgd_core.runtime import budget; print(budget.available_memory_bytes())"
    result = under_ulimit(ulimit_kib, "-c", code)
    assert result.returncode == 0, result.stderr
    assert 0 < int(result.stdout) <= ulimit_kib * 1024


def test_run_larger_than_ulimit_v_is_refused_before_any_work(ulimit_kib, tmp_path):
    # about 1.2 GB of clips and optimiser state: more than the 600 MiB left under the limit
    cache = tmp_path / "cache"
    argv = ["-m", "tsgd_core.cli", "distill", "--method", "tsgd", "--init", "noise"]
    result = under_ulimit(ulimit_kib, *argv, "--ipc", "2000", *SMOKE, "--cache-dir", str(cache))
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr, result.stdout, "tsgd: error:")
    assert "needs about" in line and "lower the IPC" in line
    available = line.split("more than the ")[1].split(" available")[0]
    assert available.endswith("MB") and float(available.split()[0]) < 700, line
    assert not (cache / "teachers").exists()


def test_memory_is_the_smallest_of_meminfo_cgroup_and_ulimit(monkeypatch):
    monkeypatch.delenv("TSGD_MEMORY_LIMIT_MB", raising=False)
    for name, value in [
        ("_meminfo_available", 9e9),
        ("_cgroup_room", 5e8),
        ("_address_space_room", 7e8),
    ]:
        monkeypatch.setattr(budget, name, lambda value=value: int(value))
    assert budget.available_memory_bytes() == int(5e8)
    monkeypatch.setattr(budget, "_cgroup_room", lambda: None)
    assert budget.available_memory_bytes() == int(7e8)


@pytest.mark.parametrize(
    "limit, used, room",
    [("max", "100", None), ("1048576", "524288", 524288), (str(2**63 - 4096), "5", None)],
)
def test_cgroup_limit_is_read_v2_and_v1(tmp_path, monkeypatch, limit, used, room):
    (tmp_path / "max").write_text(limit + "\n")
    (tmp_path / "current").write_text(used + "\n")
    files = (
        (str(tmp_path / "none"), str(tmp_path / "none")),
        (str(tmp_path / "max"), str(tmp_path / "current")),
    )
    monkeypatch.setattr(budget, "CGROUP_FILES", files)
    assert budget._cgroup_room() == room


def test_teacher_training_that_cannot_fit_is_refused_before_training(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TSGD_MEMORY_LIMIT_MB", "1")
    cache = tmp_path / "cache"
    code, line = run_tsgd(capsys, "teacher", *SMOKE, "--cache-dir", cache)
    assert code == 2 and "teacher training (batches of 16 clips" in line, line
    assert "1.0 MB available" in line and files_under(cache / "teachers") == []


def test_student_training_that_cannot_fit_is_refused(monkeypatch):
    from tsgd_core.grid.profiles import get_profile, load_data
    from tsgd_core.training.evaluate import train_student

    data = load_data("smoke").train
    monkeypatch.setenv("TSGD_MEMORY_LIMIT_MB", "0.05")
    with pytest.raises(budget.MemoryBudgetError, match=r"^student training \(batches of 8 clips"):
        train_student(data, get_profile("smoke").student, device="cpu")


def test_one_estimate_names_the_largest_stage_of_a_run(monkeypatch):
    shape = (3, 8, 16, 16)
    stages = {
        "teacher training": budget.estimate_training_bytes(16, 40, shape, 8),
        "tsgd with IPC 5000": budget.estimate_distill_bytes("tsgd", 5000, 4, shape, 8),
        "student training": budget.estimate_training_bytes(8, 20000, shape, 8, 8),
    }
    assert budget.estimate_run_bytes(stages)[0] == "tsgd with IPC 5000"
    assert stages["student training"] > budget.estimate_training_bytes(8, 20000, shape, 8)
    monkeypatch.setenv("TSGD_MEMORY_LIMIT_MB", "100")
    with pytest.raises(budget.MemoryBudgetError, match="^tsgd with IPC 5000 needs about"):
        budget.check_run_fits(stages, "lower the IPC")


def test_cli_refuses_a_run_whose_largest_stage_cannot_fit_before_the_teacher(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("TSGD_MEMORY_LIMIT_MB", "2")
    cache = tmp_path / "cache"
    code, line = run_tsgd(
        capsys, "evaluate", "--method", "random", "--ipc", "1", *SMOKE, "--cache-dir", cache
    )
    assert code == 2 and "needs about" in line and "2.0 MB available" in line, line
    assert not (cache / "teachers").exists()


# ----------------------------------------------------------------------------- API wording


def test_api_errors_name_arguments_not_flags(capsys, tmp_path):
    from tsgd_core.data.artifact import load_distilled
    from tsgd_core.data.clips import DataError
    from tsgd_core.runtime import resolve_device

    missing = tmp_path / "missing.tsgd.pt"
    with pytest.raises(DataError) as caught:
        load_distilled(missing)
    assert "create it with save_distilled" in str(caught.value) and "--" not in str(caught.value)
    code, line = run_tsgd(capsys, "evaluate", missing, "--cache-dir", tmp_path / "c")
    assert code == 2 and "create it with `tsgd distill --out`" in line, line
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="use device='cpu' or 'auto'") as caught:
            resolve_device("cuda")
        assert "--" not in str(caught.value)


def test_cli_turns_api_words_into_flags():
    from tsgd_core.cli.options import cli_words

    text = "train one with load_or_train_teacher; more clips (val_fraction) or use device='cpu'"
    assert (
        cli_words(text)
        == "train one with `tsgd teacher`; more clips (--val-fraction) or use --device cpu"
    )


def test_flag_ranges_share_the_export_frame_rates():
    from tsgd_core.data.artifact import MAX_FPS, MIN_FPS
    from tsgd_core.grid.spec import FLAG_RANGES

    assert FLAG_RANGES["fps"][:2] == (MIN_FPS, MAX_FPS)

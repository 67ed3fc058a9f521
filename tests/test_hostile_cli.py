"""Hostile input to the `tsgd` command line and its data side, round 3 (issue 28, part B): each
case ends in the right exit code and one clear line, and nothing is lost, remembered wrongly or
half-written. Real limits where they are cheap (setrlimit in a child, a real FIFO, a read-only
mount), fault injection elsewhere. The numbers are the issue's cases.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from test_hostile_limits import is_root, tmpfs

from tsgd_core import cli
from tsgd_core.cli import main
from tsgd_core.data import video_cache
from tsgd_core.data.artifact import load_distilled
from tsgd_core.data.clips import DataError
from tsgd_core.data.video_base import VideoDecodeError
from tsgd_core.data.video_decode import read_clip

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--profile", "smoke", "--quiet"]
RANDOM = ["--method", "random", "--ipc", "1", *SMOKE]
CLASSES = ("Alpha", "Beta", "Gamma")


def one_error_line(err: str, out: str = "", prefix: str = "tsgd: error:") -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("tsgd: warning:")]
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in err + out and "internal error" not in err
    assert "Exception ignored" not in err
    return lines[0]


def run_tsgd(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Exit code, stdout and (on failure) the one error line of `tsgd argv` run in-process."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    if code == 0:
        return code, captured.out, captured.err
    return code, captured.out, one_error_line(captured.err, captured.out)


def tsgd_process(
    *argv: object,
    limits: dict[int, int] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    **options: object,
) -> subprocess.CompletedProcess:
    """`tsgd argv` in a child process, under `limits` (resource.RLIMIT_* -> soft and hard)."""

    def limit() -> None:
        for which, value in (limits or {}).items():
            resource.setrlimit(which, (value, value))

    return subprocess.run(
        [sys.executable, "-m", "tsgd_core.cli", *map(str, argv)],
        capture_output="stdout" not in options,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        preexec_fn=limit,
        **options,
    )


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ----------------------------------------------------------------------------- shared fixtures


@pytest.fixture(scope="module")
def smoke_cache(tmp_path_factory) -> Path:
    """A cache holding the smoke profile's teacher (trained once for the module)."""
    cache = tmp_path_factory.mktemp("smoke") / "cache"
    assert main(["teacher", *SMOKE, "--cache-dir", str(cache)]) == 0
    return cache


@pytest.fixture(scope="module")
def saved_set(smoke_cache, tmp_path_factory) -> Path:
    """A set written by `tsgd distill --out` (random, IPC 1, smoke)."""
    path = tmp_path_factory.mktemp("set") / "s.tsgd.pt"
    assert main(["distill", *RANDOM, "--cache-dir", str(smoke_cache), "--out", str(path)]) == 0
    return path


def edited_set(saved: Path, folder: Path, **changes: object) -> Path:
    """A copy of the set file with some of its record's fields replaced."""
    record = torch.load(saved, weights_only=True)
    record.update(changes)
    path = folder / "edited.tsgd.pt"
    torch.save(record, path)
    return path


def encode(path: Path, label: int) -> None:
    """A 10-frame 32x32 MPEG-4 clip: a bright bar moving right (0, 2) or left (1)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.full((10, 32, 32, 3), 20, np.uint8)
    for t in range(10):
        x = (3 + 2 * t * (-1 if label == 1 else 1)) % 22
        frames[t, 10:20, x : x + 10] = 200 + 10 * label
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_ucf_tree(root: Path, per_class: int) -> Path:
    """UCF101's layout: `per_class` videos a class, the first in the test list."""
    notes = root / "ucfTrainTestlist"
    notes.mkdir(parents=True)
    (notes / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    train, test = [], []
    for i, name in enumerate(CLASSES):
        for g in range(per_class):
            rel = f"{name}/v_{name}_g{g + 1:02d}_c01.avi"
            encode(root / rel, i)
            (test if g == 0 else train).append(f"{rel} {i + 1}" if g else rel)
    (notes / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (notes / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


@pytest.fixture(scope="module")
def ucf_tree(tmp_path_factory) -> Path:
    return make_ucf_tree(tmp_path_factory.mktemp("ucf") / "UCF101", per_class=4)


def copied_tree(tree: Path, folder: Path) -> Path:
    import shutil

    return Path(shutil.copytree(tree, folder / tree.name))


def data_argv(root: Path, cache: Path, *more: object) -> list[object]:
    return ["data", "--dataset", "ucf101", "--root", root, "--cache-dir", cache, "--quiet", *more]


def clip_counts(stdout: str) -> dict[str, int]:
    """{'train': n, 'val': n, 'test': n} from `tsgd data`'s summary."""
    counts = {}
    for line in stdout.splitlines():
        part, _, rest = line.strip().partition(":")
        if part.strip() in ("train", "val", "test") and "clips" in rest:
            counts[part.strip()] = int(rest.split()[0])
    return counts


# ----------------------------------------------------------------------------- 4: passing decode failures


@pytest.fixture(scope="module")
def ucf_many(tmp_path_factory) -> Path:
    """8 videos a class: enough threads open files at once for a low RLIMIT_NOFILE to bite."""
    return make_ucf_tree(tmp_path_factory.mktemp("ucf_many") / "UCF101", per_class=8)


@pytest.mark.slow  # two interpreters with torch under a real RLIMIT_NOFILE
def test_4_decode_under_an_open_file_limit_is_named_and_decoded_again(ucf_many, tmp_path):
    cache = tmp_path / "cache"
    argv = data_argv(ucf_many, cache, "--workers", "8")
    limited = tsgd_process(*argv, limits={resource.RLIMIT_NOFILE: 12})
    assert limited.returncode == 1, limited.stderr
    line = one_error_line(limited.stderr, limited.stdout)
    assert "RLIMIT_NOFILE" in line and "is 12" in line and "ulimit -n" in line, line
    assert "skipping" not in limited.stderr  # nothing was taken for a broken video
    again = tsgd_process(*argv)
    assert again.returncode == 0, again.stderr
    assert "skipping" not in again.stderr and "skipped" not in again.stderr
    counts = clip_counts(again.stdout)
    assert counts["train"] + counts["val"] == 21 and counts["test"] == 3, again.stdout


def test_4_decode_failure_of_the_moment_is_not_remembered_but_a_corrupt_file_is(
    ucf_tree, tmp_path, capsys, monkeypatch
):
    root = copied_tree(ucf_tree, tmp_path)
    corrupt = root / "Beta" / "v_Beta_g02_c01.avi"
    corrupt.write_bytes(os.urandom(3000))
    starved = root / "Alpha" / "v_Alpha_g03_c01.avi"
    real_read, calls = video_cache.read_clip, []

    def no_memory_for_one(path, *args, **kwargs):
        calls.append(Path(path).name)
        if Path(path) == starved:
            raise VideoDecodeError(path, "decord: std::bad_alloc (Cannot allocate memory)")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(video_cache, "read_clip", no_memory_for_one)
    code, _, line = run_tsgd(capsys, *data_argv(root, tmp_path / "c"))
    assert code == 1 and "out of memory" in line and starved.name in line, line
    monkeypatch.setattr(video_cache, "read_clip", real_read)
    code, out, err = run_tsgd(capsys, *data_argv(root, tmp_path / "c"))
    assert code == 0 and "skipped 1 of 12 videos" in err and str(corrupt) in err, err
    assert starved.name not in err
    assert sum(clip_counts(out).values()) == 11  # every video but the corrupt one
    monkeypatch.setattr(video_cache, "read_clip", no_memory_for_one)
    calls.clear()
    code, out, _ = run_tsgd(capsys, *data_argv(root, tmp_path / "c"))
    assert code == 0 and calls == []  # the corrupt file is remembered, not decoded again


def test_4_a_failure_an_older_tsgd_remembered_is_decoded_again(ucf_tree, tmp_path, capsys):
    cache = tmp_path / "c"
    code, out, _ = run_tsgd(capsys, *data_argv(ucf_tree, cache))
    assert code == 0 and sum(clip_counts(out).values()) == 12
    (store,) = (cache / "videos").iterdir()
    status = np.load(store / video_cache.STATUS_FILE)
    status[[1, 5]] = -1  # how an older tsgd marked a video that failed for any cause
    np.save(store / video_cache.STATUS_FILE, status)
    (store / video_cache.META_FILE).unlink()
    code, out, _ = run_tsgd(capsys, *data_argv(ucf_tree, cache))
    assert code == 0 and sum(clip_counts(out).values()) == 12, out
    assert (np.load(store / video_cache.STATUS_FILE) == 1).all()


def test_4_a_passing_failure_reading_a_video_stamp_is_raised_not_keyed(tmp_path, monkeypatch):
    video = tmp_path / "v.avi"
    video.write_bytes(b"x" * 100)

    def too_many_files(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr("builtins.open", too_many_files)
    with pytest.raises(OSError) as caught:
        video_cache._read_stamp(video)
    assert caught.value.errno == errno.EMFILE


# ----------------------------------------------------------------------------- 5: read-only subfolders


@pytest.fixture
def cache_with_read_only(request, tmp_path) -> tuple[Path, Path]:
    """A writable cache whose `request.param` folder cannot be written (a read-only mount)."""
    cache = tmp_path / "cache"
    folder = cache / request.param
    if is_root():
        with tmpfs(folder, "1m", readonly=True):
            yield cache, folder
        return
    folder.mkdir(parents=True)
    folder.chmod(0o555)
    try:
        yield cache, folder
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize(
    "cache_with_read_only, command",
    [
        ("distilled", ["distill", *RANDOM]),
        ("teachers", ["distill", *RANDOM]),
        ("teachers", ["teacher", *SMOKE]),
        ("evals", ["evaluate", *RANDOM]),
        ("videos", ["data", "--dataset", "ucf101", "--quiet"]),
    ],
    indirect=["cache_with_read_only"],
)
def test_5_read_only_cache_subfolder_is_refused_before_any_work(
    cache_with_read_only, command, capsys, ucf_tree
):
    cache, folder = cache_with_read_only
    root = ["--root", ucf_tree] if "--dataset" in command else []
    code, _, line = run_tsgd(capsys, *command, *root, "--cache-dir", cache)
    assert code == 2 and "--cache-dir" in line and str(folder) in line, line
    assert "not writable" in line
    assert [p for p in files_under(cache) if folder not in p.parents] == []  # no work was done


# ----------------------------------------------------------------------------- 7: a closed or full stdout


@pytest.mark.slow  # an interpreter with torch behind a real pipe
@pytest.mark.parametrize("command", ["distill", "evaluate"])
def test_7_stdout_closed_by_the_reader_keeps_out_and_exit_0(command, smoke_cache, tmp_path):
    out = tmp_path / ("s.tsgd.pt" if command == "distill" else "e.json")
    argv = [command, *RANDOM, "--cache-dir", smoke_cache, "--out", out]
    line = " ".join(f"'{a}'" for a in [sys.executable, "-m", "tsgd_core.cli", *map(str, argv)])
    # head leaves after the first line; the summary comes after the work, into a closed pipe
    script = f"{line} | head -1 > /dev/null; echo ${{PIPESTATUS[0]}}"
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.stdout.strip() == "0", result.stderr
    assert "Broken pipe" not in result.stderr and "Exception ignored" not in result.stderr
    assert out.is_file() and out.stat().st_size > 0


class _ClosedPipe:
    """A stdout whose reader has left: every write and flush is EPIPE."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_7_broken_stdout_during_the_work_changes_no_exit_code(
    saved_set, smoke_cache, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "e.json"
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["evaluate", str(saved_set), "--cache-dir", str(smoke_cache), "--out", str(out)])
    assert code == 0 and out.is_file()
    assert "Broken pipe" not in capsys.readouterr().err


@pytest.mark.slow  # an interpreter with torch writing to /dev/full
def test_7_full_stdout_names_standard_output_not_the_disk(smoke_cache, tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    out = tmp_path / "s.tsgd.pt"
    with open("/dev/full", "w") as full:
        result = tsgd_process(
            "distill",
            *RANDOM,
            "--cache-dir",
            smoke_cache,
            "--out",
            out,
            stdout=full,
            stderr=subprocess.PIPE,
        )
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert "standard output" in line and "disk is full" not in line, line
    assert out.is_file()


# ----------------------------------------------------------------------------- 9: a FIFO for a video


@pytest.mark.slow  # an interpreter with torch, bounded by a timeout should it hang
def test_9_fifo_in_place_of_a_listed_video_is_refused_naming_it(ucf_tree, tmp_path):
    root = copied_tree(ucf_tree, tmp_path)
    fifo = root / "Alpha" / "v_Alpha_g02_c01.avi"
    fifo.unlink()
    os.mkfifo(fifo)
    result = tsgd_process(*data_argv(root, tmp_path / "c"), timeout=60)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr, result.stdout)
    assert str(fifo) in line and "named pipe" in line, line


def test_9_read_clip_refuses_a_fifo_without_opening_it(tmp_path):
    fifo = tmp_path / "v.avi"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="named pipe"):
        read_clip(fifo, 4, (8, 8))


# ----------------------------------------------------------------------------- 14: wrong-typed fields

WRONG_TYPES = {  # field -> (value, text the error names)
    "videos": ("abc", "videos is a str, not a tensor"),
    "labels": ([0, 1, 2, 3], "labels is a list, not a tensor"),
    "class_names": (3, "class_names is an int, not a list of str"),
    "history": ([1.0], "history is a list"),
    "config": ("abc", "config is a str, not a dict"),
    "float labels": (("labels", torch.tensor([0.0, 1.0, 2.0, 3.0])), "labels holds torch.float32"),
    "integer videos": (("videos", torch.zeros(4, 3, 8, 16, 16, dtype=torch.long)), "torch.int64"),
    "class names as one str": (("class_names", "abcd"), "class_names is a str"),
    "history values": (("history", {"loss": 3.0}), "history['loss'] is a float, not a list"),
    "ipc a bool": (("ipc", True), "ipc is a bool, not an int"),
}


def wrong_typed(case: str) -> tuple[str, object, str]:
    value, needle = WRONG_TYPES[case]
    field, value = value if isinstance(value, tuple) else (case, value)
    return field, value, needle


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_14_wrong_typed_field_is_bad_input_naming_file_and_field(case, saved_set, tmp_path, capsys):
    field, value, needle = wrong_typed(case)
    path = edited_set(saved_set, tmp_path, **{field: value})
    with pytest.raises(DataError) as caught:
        load_distilled(path)
    assert str(path) in str(caught.value) and needle in str(caught.value), caught.value
    code, _, line = run_tsgd(capsys, "evaluate", path, "--cache-dir", tmp_path / "c")
    assert code == 2 and str(path) in line and needle in line, line
    assert files_under(tmp_path / "c") == []


# ----------------------------------------------------------------------------- 15: checked up front


def test_15_spatial_pool_wider_than_the_frames_is_refused_before_any_work(capsys, tmp_path):
    cache = tmp_path / "cache"
    argv = ["distill", "--method", "tsgd", *SMOKE, "--spatial-pool", "63", "--cache-dir", cache]
    code, _, line = run_tsgd(capsys, *argv)
    assert code == 2 and "--spatial-pool 63" in line and "at most 15" in line, line
    assert files_under(cache) == []


def test_15_size_1_is_refused_naming_the_flags_before_any_training(ucf_tree, capsys, tmp_path):
    cache = tmp_path / "cache"
    dataset = ["--dataset", "ucf101", "--root", ucf_tree, "--frames", "4", "--size", "1"]
    argv = ["distill", "--method", "tsgd", "--ipc", "1", *SMOKE, *dataset, "--cache-dir", cache]
    code, _, line = run_tsgd(capsys, *argv)
    assert code == 2 and "--spatial-pool 3" in line and "--size" in line, line
    assert "1x1" in line and not (cache / "teachers").exists()


@pytest.mark.slow  # trains a teacher
def test_15_val_fraction_0_trains_the_teacher_without_val(ucf_tree, capsys, tmp_path):
    cache = tmp_path / "cache"
    dataset = ["--dataset", "ucf101", "--root", ucf_tree, "--frames", "4", "--size", "8"]
    out = tmp_path / "t.json"
    argv = ["teacher", *SMOKE, *dataset, "--val-fraction", "0", "--cache-dir", cache]
    code, stdout, _ = run_tsgd(capsys, *argv, "--out", out)
    assert code == 0 and "test accuracy" in stdout and "val accuracy" not in stdout
    assert len(list((cache / "teachers").glob("*.pt"))) == 1 and out.is_file()


def test_15_val_split_of_no_clips_is_refused_before_any_training(ucf_tree, capsys, tmp_path):
    cache = tmp_path / "cache"
    dataset = ["--dataset", "ucf101", "--root", ucf_tree, "--frames", "4", "--size", "8"]
    argv = ["evaluate", *RANDOM, *dataset, "--val-fraction", "0", "--split", "val"]
    code, _, line = run_tsgd(capsys, *argv, "--cache-dir", cache)
    assert code == 2 and "val split" in line and "--val-fraction" in line, line
    assert not (cache / "teachers").exists()


@pytest.mark.parametrize("debug", [False, True])
def test_15_a_value_error_of_a_bug_is_an_internal_error(debug, capsys, monkeypatch):
    def bug(args):
        return [][0:1] + [int("not a number")]

    monkeypatch.setattr(cli.app, "cmd_grid", bug)
    if debug:
        monkeypatch.setenv("TSGD_DEBUG", "1")
    code = main(["grid", "--profile", "smoke"])
    err = capsys.readouterr().err
    assert code == 1 and "tsgd: internal error: ValueError" in err and "report it" in err, err
    assert ("Traceback" in err) == debug


@pytest.mark.parametrize("debug", [False, True])
def test_15_bad_input_is_exit_2_and_debug_shows_its_traceback(debug, capsys, monkeypatch):
    def refuses(args):
        raise DataError("that file is not a dataset")

    monkeypatch.setattr(cli.app, "cmd_grid", refuses)
    if debug:
        monkeypatch.setenv("TSGD_DEBUG", "1")
    code = main(["grid", "--profile", "smoke"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().endswith("tsgd: error: that file is not a dataset")
    assert ("Traceback" in err) == debug


# ----------------------------------------------------------------------------- 16, 17, 18: messages


def test_16_flags_a_saved_set_cannot_change_are_named_as_typed(saved_set, capsys, tmp_path):
    code, _, line = run_tsgd(
        capsys, "evaluate", saved_set, "--students", "1", "--cache-dir", tmp_path / "c"
    )
    assert code == 2 and "drop --students" in line and "--n-students" not in line, line


def test_16_students_above_the_profile_seeds_names_the_flag(capsys, tmp_path):
    argv = ["evaluate", *RANDOM, "--students", "4", "--cache-dir", tmp_path / "c"]
    code, _, line = run_tsgd(capsys, *argv)
    assert code == 2 and "--students must be 1 to 3" in line and "n_students" not in line, line


def test_17_a_set_naming_an_unknown_profile_names_the_file(saved_set, capsys, tmp_path):
    record = torch.load(saved_set, weights_only=True)
    config = {**record["config"], "spec": {**record["config"]["spec"], "profile": "x"}}
    path = edited_set(saved_set, tmp_path, config=config)
    code, _, line = run_tsgd(capsys, "evaluate", path, "--cache-dir", tmp_path / "c")
    assert code == 2 and str(path) in line and "unknown profile 'x'" in line, line


def test_18_a_rebuilt_damaged_set_is_not_reported_from_the_cache(smoke_cache, capsys):
    argv = ["distill", *RANDOM, "--cache-dir", smoke_cache]
    code, out, _ = run_tsgd(capsys, *argv)
    assert code == 0
    cached = Path(out.split("cached set:")[1].split()[0])
    code, out, _ = run_tsgd(capsys, *argv)
    assert code == 0 and "(from the cache)" in out
    cached.write_bytes(b"damaged" * 100)
    code, out, err = run_tsgd(capsys, *argv)
    assert code == 0 and "damaged cache entry" in err
    assert "(from the cache)" not in out, out


# ----------------------------------------------------------------------------- 19: machine limits


@pytest.mark.slow  # an interpreter with torch under a real RLIMIT_FSIZE
def test_19_file_size_limit_is_named_and_nothing_is_left(smoke_cache, tmp_path):
    import shutil

    cache = Path(shutil.copytree(smoke_cache / "teachers", tmp_path / "cache" / "teachers"))
    out = tmp_path / "s.tsgd.pt"
    result = tsgd_process(
        "distill",
        *RANDOM,
        "--cache-dir",
        cache.parent,
        "--out",
        out,
        limits={resource.RLIMIT_FSIZE: 8 * 1024},
    )
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr, result.stdout)
    assert "RLIMIT_FSIZE" in line and "8 KiB" in line and "ulimit -f" in line, line
    assert not out.exists() and not list(tmp_path.rglob(".*.tmp*"))


LIMITS = {  # name -> (error raised by the work, text of the one line)
    "open files": (OSError(errno.EMFILE, "Too many open files", "/tmp/tmpx1"), "RLIMIT_NOFILE"),
    "file table": (OSError(errno.ENFILE, "Too many open files in system"), "ENFILE"),
    "file size": (OSError(errno.EFBIG, "File too large", "/c/x.pt"), "RLIMIT_FSIZE"),
    "allocator": (
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: "
            "can't allocate memory: you tried to allocate 1073741824 bytes"
        ),
        "out of memory",
    ),
    "read-only": (OSError(errno.EROFS, "Read-only file system", "/c/d"), "read-only"),
}


@pytest.mark.parametrize("case", sorted(LIMITS))
def test_19_machine_limits_are_named_exit_1_not_bugs(case, capsys, monkeypatch):
    error, needle = LIMITS[case]

    def hits_the_limit(args):
        raise error

    monkeypatch.setattr(cli.app, "cmd_grid", hits_the_limit)
    code, _, line = run_tsgd(capsys, "grid", "--profile", "smoke")
    assert code == 1 and needle in line and "report it" not in line, line


@pytest.mark.slow  # an interpreter under a real RLIMIT_AS
def test_19_memory_under_ulimit_v_names_the_address_space_limit():
    code = (
        "import resource\n"
        "from tsgd_core.cli.app import error_line\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**34, 2**34))\n"
        "print(error_line(RuntimeError('[enforce fail at alloc_cpu.cpp:127] err == 0'))[1])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "RLIMIT_AS" in result.stdout and "16384 MiB" in result.stdout, result.stdout


# ----------------------------------------------------------------------------- 20: warnings as errors


def test_20_a_warning_made_an_error_is_bad_input_in_the_words_of_the_flags(capsys, monkeypatch):
    def warns(args):
        warnings.warn("3 videos are missing: pass on_missing='skip'", stacklevel=2)

    monkeypatch.setattr(cli.app, "cmd_grid", warns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, _, line = run_tsgd(capsys, "grid", "--profile", "smoke")
    assert code == 2 and "pass --on-missing skip" in line and "on_missing=" not in line, line


@pytest.mark.slow  # an interpreter with torch
def test_20_pythonwarnings_error_on_a_corrupt_video_is_one_line_exit_2(ucf_tree, tmp_path):
    root = copied_tree(ucf_tree, tmp_path)
    (root / "Beta" / "v_Beta_g02_c01.avi").write_bytes(os.urandom(3000))
    result = tsgd_process(*data_argv(root, tmp_path / "c"), env={"PYTHONWARNINGS": "error"})
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr, result.stdout)
    assert "v_Beta_g02_c01.avi" in line and "PYTHONWARNINGS" in line, line


# ----------------------------------------------------------------------------- 21: control characters


def test_21_class_names_with_escape_sequences_are_printed_escaped(saved_set, capsys, tmp_path):
    names = ["\x1b[31mred\x1b[0m", "b\rb", "c\u202ec", "d"]
    path = edited_set(saved_set, tmp_path, class_names=names)
    code, _, line = run_tsgd(capsys, "evaluate", path, "--cache-dir", tmp_path / "c")
    assert code == 2 and "holds 4 classes" in line, line
    assert "\\x1b[31mred" in line and "\\u202e" in line  # a carriage return is a space
    assert not any(ch in line for ch in "\x1b\r\u202e")


def test_21_printable_escapes_control_and_format_characters_only():
    from tsgd_core.cli.options import printable

    assert printable("Café ☕ 日本 a-b_c") == "Café ☕ 日本 a-b_c"
    assert printable("a\x1b[2Jb\x07\x00") == "a\\x1b[2Jb\\x07\\x00"


# ----------------------------------------------------------------------------- the same kinds elsewhere


@pytest.mark.slow  # an interpreter with torch, bounded by a timeout should it hang
def test_9_kind_fifo_in_place_of_a_split_list_is_refused_naming_it(ucf_tree, tmp_path):
    root = copied_tree(ucf_tree, tmp_path)
    fifo = root / "ucfTrainTestlist" / "classInd.txt"
    fifo.unlink()
    os.mkfifo(fifo)
    result = tsgd_process(*data_argv(root, tmp_path / "c"), timeout=60)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr, result.stdout)
    assert str(fifo) in line and "named pipe" in line and "not a text file" in line, line


@pytest.mark.parametrize("where", ["an existing video", "a new file"])
def test_preview_inside_the_dataset_being_read_is_refused(where, ucf_tree, tmp_path, capsys):
    root = copied_tree(ucf_tree, tmp_path)
    video = root / "Alpha" / "v_Alpha_g02_c01.avi"
    target = video.with_suffix(".mp4") if where == "a new file" else root / "Alpha" / "p.mp4"
    if where == "an existing video":
        target.write_bytes(video.read_bytes())
    before = target.read_bytes() if target.exists() else None
    code, _, line = run_tsgd(capsys, *data_argv(root, tmp_path / "c", "--preview", target))
    assert code == 2 and "--preview" in line and "inside --root" in line, line
    assert (target.read_bytes() if target.exists() else None) == before


def test_disk_refusal_names_the_room_it_keeps_to_spare(tmp_path, monkeypatch):
    from tsgd_core.runtime import budget

    monkeypatch.setattr(budget, "free_disk_bytes", lambda path: 2**20)
    with pytest.raises(budget.DiskSpaceError) as caught:
        budget.check_disk_fits(tmp_path / "x.pt", 96 * 1024, "the set x.pt")
    assert "needs about 96.0 KB and 1.0 MB to spare, the disk has 1.0 MB free" in str(caught.value)

"""Fault injection: damaged caches, unwritable outputs, oversized requests, bad arguments,
interrupts and awkward real-video inputs. Each case must end in one clear line (or work), with the
documented exit code, and leave nothing partial behind.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from tsgd_core import cli
from tsgd_core.data.artifact import load_distilled
from tsgd_core.data.clips import DataError
from tsgd_core.data.storage import (
    CacheRepairWarning,
    atomic_path,
    is_stale_temporary,
    load_json_keyed,
    remove_stale_temporaries,
    save_json_keyed,
)
from tsgd_core.grid import kernels, planner
from tsgd_core.runtime.budget import MemoryBudgetError, check_fits

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--profile", "smoke", "--quiet"]
RANDOM_IPC1 = ["distill", "--method", "random", "--ipc", "1", *SMOKE]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, list[str]]:
    """Exit code, stdout and the stderr lines of one `tsgd` command run in this process."""
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


def hidden_temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name or ".running" in p.name]


@pytest.fixture(scope="module")
def pristine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smoke cache with the teacher and the random IPC-1 and IPC-2 sets (made once)."""
    cache = tmp_path_factory.mktemp("faults") / "cache"
    for ipc in ("1", "2"):
        argv = ["distill", "--method", "random", "--ipc", ipc, *SMOKE, "--cache-dir", str(cache)]
        assert cli.main(argv) == 0
    return cache


@pytest.fixture
def cache(pristine_cache: Path, tmp_path: Path) -> Path:
    """A private copy of the pristine cache, free to damage."""
    return Path(shutil.copytree(pristine_cache, tmp_path / "cache"))


def only(folder: Path, pattern: str = "*") -> Path:
    files = sorted(folder.glob(pattern))
    assert len(files) == 1, files
    return files[0]


def a_saved_set(cache: Path) -> Path:
    return sorted((cache / "distilled").glob("*.tsgd.pt"))[0]


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Path:
    """A folder in which nothing can be created (read-only; /sys where we run as root)."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    candidates = [folder, Path("/sys")]
    for candidate in candidates:
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            yield candidate
            break
    else:
        pytest.skip("no unwritable folder here (root on a writable /sys)")
    folder.chmod(0o755)


# ----------------------------------------------------------------------------- damaged caches


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(2000))


def pickle_header(path: Path) -> None:
    """Bytes that open like a pickle of an unknown protocol (0x80 0xd3): torch.load warns about
    the protocol and then advises on weights_only; neither may reach the user."""
    path.write_bytes(b"\x80\xd3" + random.Random(1).randbytes(2000))


DAMAGES = {
    "truncated": truncate,
    "empty": empty,
    "garbage": garbage,
    "pickle header": pickle_header,
}


def assert_one_repair_line(lines: list[str], path: Path) -> None:
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"tsgd: warning: damaged cache entry {path} ("), lines
    assert lines[0].endswith("rebuilding it"), lines


def damage_teacher(path: Path, damage: str) -> None:
    if damage == "changed weights":
        blob = torch.load(path, weights_only=True)
        first = next(iter(blob["state_dict"]))
        blob["state_dict"][first] = blob["state_dict"][first] + 1  # a flipped bit, in spirit
        torch.save(blob, path)
    elif damage == "wrong content":
        torch.save({"state_dict": {}}, path)  # loads, but is no teacher (KeyError: 'info')
    elif damage == "other key":
        blob = torch.load(path, weights_only=True)
        blob["info"]["key"] = "0123456789ab"  # another teacher's checkpoint under this name
        torch.save(blob, path)
    else:
        DAMAGES[damage](path)


@pytest.mark.parametrize("damage", [*DAMAGES, "wrong content", "other key", "changed weights"])
def test_damaged_teacher_is_detected_by_path_and_removed(cache, damage):
    from tsgd_core.training.teacher import load_cached_teacher

    path = only(cache / "teachers")
    assert load_cached_teacher(path, path.stem) is not None
    damage_teacher(path, damage)
    with pytest.warns(CacheRepairWarning, match=str(path)) as caught:
        assert load_cached_teacher(path, path.stem) is None
    assert len(caught) == 1 and not path.exists()


def test_damaged_teacher_is_reported_by_path_and_retrained(cache, capsys):
    path = only(cache / "teachers")
    truncate(path)  # what an unfinished copy leaves: [Errno 22] from torch.load before
    code, out, err = run_cli(capsys, "teacher", *SMOKE, "--cache-dir", cache)
    assert code == 0
    assert_one_repair_line(err, path)
    assert f"checkpoint:     {path}" in out
    blob = torch.load(path, weights_only=True)
    assert blob["info"]["key"] == path.stem
    assert hidden_temporaries(cache) == []


@pytest.mark.parametrize("damage", [*DAMAGES, "a set of another IPC copied over it"])
def test_damaged_distilled_set_is_reported_by_path_and_rebuilt(cache, capsys, damage):
    entries = {load_distilled(p).ipc: p for p in (cache / "distilled").glob("*.tsgd.pt")}
    path = entries[1]
    if damage in DAMAGES:
        DAMAGES[damage](path)
    else:
        shutil.copyfile(entries[2], path)
    code, out, err = run_cli(capsys, *RANDOM_IPC1, "--cache-dir", cache)
    assert code == 0
    assert_one_repair_line(err, path)
    assert "4 clips (4 classes x IPC 1)" in out
    rebuilt = load_distilled(path)
    assert rebuilt.ipc == 1 and rebuilt.config["cache_key"] == path.name.split(".")[0]
    code, _, err = run_cli(capsys, *RANDOM_IPC1, "--cache-dir", cache)
    assert code == 0 and err == []  # healed: served from the cache without a word


@pytest.mark.parametrize(
    "content",
    [
        '{"cache_key": "k", "val',  # truncated
        "",  # empty
        "\x89PNG garbage",  # not JSON
        {"hard": {"accs": "x"}},  # a well-formed record whose value fails (TypeError)
        [1, 2],  # a well-formed record whose value fails (AttributeError)
        "[1, 2]",  # JSON, but no record
        '{"cache_key": "other", "value": {}}',  # another entry's file
        "edited",  # a record whose value changed after it was written
    ],
)
def test_damaged_evaluation_entry_is_reported_and_dropped(tmp_path, content):
    from tsgd_core.grid.experiments import eval_results_from_json

    path = tmp_path / "evals" / "k.json"
    path.parent.mkdir()
    if isinstance(content, str):
        path.write_text(content)
    else:
        save_json_keyed(content, path, "k")
    if content == "edited":
        result = {"accs": [0.5], "wall_s": [1.0], "peak_mb": [1.0]}
        save_json_keyed(
            {"hard": {**result, "labels": "hard", "augment": "base", "num_train": 4}}, path, "k"
        )
        path.write_text(path.read_text().replace("0.5", "0.9"))
    with pytest.warns(CacheRepairWarning, match=str(path)) as caught:
        assert load_json_keyed(path, "k", eval_results_from_json) is None
    assert len(caught) == 1
    assert not path.exists()  # the caller computes and writes it again


def test_evaluations_are_keyed_by_the_contents_of_the_set(cache, monkeypatch):
    from tsgd_core.grid import experiments
    from tsgd_core.training.evaluate import EvalResult

    calls = []

    def fake_evaluate(spec, ds, **_):
        calls.append(float(ds.videos.sum()))
        return {"hard": EvalResult([0.5], [1.0], [1.0], "hard", "base", len(ds.labels))}

    monkeypatch.setattr(experiments, "evaluate_distilled", fake_evaluate)
    spec = experiments.RunSpec(method="random", ipc=1, profile="smoke", labels=("hard",))
    ds = experiments.make_distilled(spec, cache_dir=cache, progress=False)
    experiments.evaluate_spec(spec, ds, cache_dir=cache)
    experiments.evaluate_spec(spec, ds, cache_dir=cache)
    assert len(calls) == 1  # cached
    ds.videos = 1 - ds.videos  # a set with the same spec but other clips (e.g. rebuilt)
    experiments.evaluate_spec(spec, ds, cache_dir=cache)
    assert len(calls) == 2


def test_keyed_json_round_trip(tmp_path):
    path = save_json_keyed({"a": 1}, tmp_path / "e.json", "key1")
    assert load_json_keyed(path, "key1") == {"a": 1}
    assert load_json_keyed(tmp_path / "absent.json", "key1") is None


# ----------------------------------------------------------------------------- unwritable outputs


def refused_before_work(code: int, err: list[str], cache: Path, *words: str) -> None:
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("tsgd: error: "), err
    for word in words:
        assert word in err[0], err
    assert not cache.exists()  # no teacher trained, no set made: the work never started


def test_evaluate_to_an_unwritable_output_fails_before_training(tmp_path, capsys, unwritable_dir):
    cache = tmp_path / "cache"
    out = unwritable_dir / "r.json"
    code, _, err = run_cli(
        capsys, "evaluate", "--method", "random", *SMOKE, "--cache-dir", cache, "--out", out
    )
    refused_before_work(code, err, cache, str(out), "--out")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["teacher", *SMOKE, "--out", "{file}/t.json"], ["--out", "is a file"]),
        (["distill", *RANDOM_IPC1[1:], "--out", "{file}/s.tsgd.pt"], ["--out", "is a file"]),
        (["distill", *RANDOM_IPC1[1:], "--out", "{ro}/s.tsgd.pt"], ["--out", "not writable"]),
        (["teacher", *SMOKE, "--out", "{ro}/t.json"], ["--out", "not writable"]),
        (["teacher", *SMOKE, "--out", "{dir}"], ["is a folder"]),
        (["data", "--profile", "smoke", "--preview", "{ro}/p.gif"], ["--preview"]),
        (["data", "--profile", "smoke", "--preview", "{file}/p.gif"], ["--preview", "is a file"]),
    ],
)
def test_unwritable_outputs_are_refused_before_work(tmp_path, capsys, unwritable_dir, argv, words):
    cache = tmp_path / "cache"
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir.json").mkdir()
    argv = [
        a.replace("{file}", str(tmp_path / "file"))
        .replace("{ro}", str(unwritable_dir))
        .replace("{dir}", str(tmp_path / "dir.json"))
        for a in argv
    ]
    code, out, err = run_cli(capsys, *argv, "--cache-dir", cache)
    refused_before_work(code, err, cache, *words)
    assert "preview:" not in out


@pytest.mark.parametrize(
    "cache_dir, words",
    [("", ["--cache-dir: an empty path"]), ("{file}", ["is a file"]), ("{ro}/c", ["not writable"])],
)
def test_unusable_cache_dir_is_refused_before_work(
    tmp_path, capsys, unwritable_dir, cache_dir, words
):
    (tmp_path / "file").write_text("x")
    cache_dir = cache_dir.replace("{file}", str(tmp_path / "file")).replace(
        "{ro}", str(unwritable_dir)
    )
    before = set(Path.cwd().iterdir())
    code, _, err = run_cli(capsys, *RANDOM_IPC1, "--cache-dir", cache_dir)
    assert code == 2 and len(err) == 1 and err[0].startswith("tsgd: error:"), err
    assert "--cache-dir" in err[0], err
    for word in words:
        assert word in err[0]
    assert set(Path.cwd().iterdir()) == before  # '' did not write into the current folder


def test_export_to_unwritable_places(pristine_cache, tmp_path, capsys, unwritable_dir):
    artifact = a_saved_set(pristine_cache)
    (tmp_path / "file").write_text("x")
    for out in (unwritable_dir / "a.gif", tmp_path / "file" / "a.gif"):
        code, _, err = run_cli(capsys, "export", artifact, out)
        assert code == 2 and len(err) == 1 and str(out) in err[0], err


# ----------------------------------------------------------------------------- sizes and arguments


@pytest.mark.parametrize(
    "argv",
    [
        ["distill", "--method", "dm", "--ipc", "100000", "--init", "noise", *SMOKE],
        ["distill", "--method", "tsgd", "--ipc", "1000000", "--init", "noise", *SMOKE],
        ["evaluate", "--method", "dm", "--ipc", "100000", "--init", "noise", *SMOKE],
    ],
)
def test_oversized_distillation_is_refused_before_any_work(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.setenv("TSGD_MEMORY_LIMIT_MB", "4096")
    cache = tmp_path / "cache"
    code, _, err = run_cli(capsys, *argv, "--cache-dir", cache)
    refused_before_work(code, err, cache, "needs about", "4.0 GB available", "lower the IPC")


def test_oversized_export_is_refused_before_allocating(pristine_cache, tmp_path, capsys):
    artifact = a_saved_set(pristine_cache)
    out = tmp_path / "a.gif"
    code, _, err = run_cli(capsys, "export", artifact, out, "--scale", "100000")
    assert code == 2 and len(err) == 1 and "needs about" in err[0] and "scale" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_library_entry_points_check_memory_first(monkeypatch, tiny_clips):
    from tsgd_core.methods.dm import DMConfig, distill_dm

    monkeypatch.setenv("TSGD_MEMORY_LIMIT_MB", "1")
    with pytest.raises(MemoryBudgetError, match="needs about"):
        distill_dm(tiny_clips, DMConfig(ipc=5000, init="noise"), progress=False)
    with pytest.raises(MemoryBudgetError, match="1.0 MB available"):
        check_fits(2**21, "two megabytes", "ask for less")
    check_fits(2**19, "half a megabyte", "ask for less")  # fits: no error


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["export", "a.tsgd.pt", "a.gif", "--fps", "inf"], "--fps"),
        (["export", "a.tsgd.pt", "a.gif", "--fps", "0.0001"], "--fps"),
        (["export", "a.tsgd.pt", "a.gif", "--fps", "nan"], "--fps"),
        (["export", "a.tsgd.pt", "a.gif", "--scale", "0"], "--scale"),
        (["export", "a.tsgd.pt", "a.gif", "--per-row", "-1"], "--per-row"),
        (["distill", "--r-bn", "nan"], "--r-bn"),
        (["distill", "--eps", "inf"], "--eps"),
        (["distill", "--eps", "0"], "--eps"),
        (["distill", "--beta", "1.5"], "--beta"),
        (["distill", "--seed", "-1"], "--seed"),
        (["distill", "--ipc", "0"], "--ipc"),
        (["distill", "--ipc", "two"], "--ipc"),
        (["distill", "--k", "-1"], "--k"),
        (["distill", "--camera-shake", "-inf"], "--camera-shake"),
        (["evaluate", "--spatial-pool", "0"], "--spatial-pool"),
        (["data", "--preview-clips", "-2"], "--preview-clips"),
        (["data", "--frames", "2.7"], "--frames"),
        (["data", "--split", "4"], "--data-split/--split"),
        (["data", "--max-per-class", "0"], "--max-per-class"),
        (["grid", "--shake", "nan"], "--shake"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_flag(capsys, argv, flag):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert len(err) == 1 and err[0].startswith(f"tsgd: error: argument {flag}"), err


def test_gif_fps_is_what_is_printed(pristine_cache, tmp_path, capsys):
    import imageio.v3 as iio

    artifact = a_saved_set(pristine_cache)
    code, out, _ = run_cli(capsys, "export", artifact, tmp_path / "a.gif", "--fps", "0.5")
    assert code == 0 and "at 0.5 fps" in out
    assert iio.immeta(tmp_path / "a.gif", index=0)["duration"] == 2000  # ms per frame


# ----------------------------------------------------------------------------- cli.main's net


@pytest.mark.parametrize(
    "error, code, start",
    [
        (PermissionError(13, "Permission denied", "/x/r.json"), 2, "tsgd: error: /x/r.json: "),
        (OSError(28, "No space left on device"), 1, "tsgd: error: the disk is full"),
        (MemoryError(), 1, "tsgd: error: out of memory"),
        (RuntimeError("boom\nsecond line"), 1, "tsgd: internal error: RuntimeError: boom"),
        (KeyError("x"), 1, "tsgd: internal error: KeyError"),
    ],
)
def test_every_failure_is_one_line_with_its_exit_code(capsys, monkeypatch, error, code, start):
    def raise_it(args):
        raise error

    monkeypatch.setattr(cli.app, "cmd_grid", raise_it)  # the parser binds it in app
    got, _, err = run_cli(capsys, "grid", "--profile", "smoke")
    assert got == code and len(err) == 1 and err[0].startswith(start), err
    if code == 1 and "internal" in start:
        assert "please report it" in err[0]


# ----------------------------------------------------------------------------- interrupts


def run_interrupted(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run Python `code` in a child that SIGINTs itself from inside the work it patches."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        preexec_fn=ctrl_c_delivered,
    )


def ctrl_c_delivered() -> None:
    """SIGINT back to its default in the child, as in a terminal: a suite started in the
    background by a shell without job control (`(./run_tests.sh &)`) inherits it ignored, and
    Python then installs no KeyboardInterrupt handler, so the child's own Ctrl-C did nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_in_distill_keeps_the_teacher_and_leaves_nothing_partial(cache, capsys):
    shutil.rmtree(cache / "distilled")
    child = run_interrupted(
        f"""
        import os, signal, sys, time
        from tsgd_core import cli
        from tsgd_core.grid import experiments

        def interrupted(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in the terminal does
            time.sleep(30)

        experiments.distill_tsgd = interrupted
        sys.exit(cli.main(["distill", "--method", "tsgd", "--profile", "smoke", "--quiet",
                           "--cache-dir", {str(cache)!r}]))
        """
    )
    assert child.returncode == 130, child.stderr
    lines = child.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tsgd: interrupted: "), lines
    assert str(cache) in lines[0] and "run the same command again" in lines[0]
    assert len(list((cache / "teachers").glob("*.pt"))) == 1  # finished work is kept
    assert not (cache / "distilled").exists() or list((cache / "distilled").iterdir()) == []
    assert hidden_temporaries(cache) == []
    code, out, err = run_cli(
        capsys, "distill", "--method", "tsgd", *SMOKE, "--cache-dir", cache
    )  # resumes: the teacher comes from the cache
    assert code == 0 and err == [] and "IPC 1" in out


def test_another_thread_count_finds_the_cached_teacher_and_its_set(cache, capsys):
    """The teacher key names the recipe alone: a run with another CPU thread count uses the
    teacher and the set the first run cached (no second teacher, no second set), and its teacher
    line says where the teacher came from."""
    from tsgd_core.grid.experiments import get_teacher

    sets = [load_distilled(p) for p in (cache / "distilled").glob("*.tsgd.pt")]
    (before,) = {ds.teacher_key for ds in sets}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads != 1 else 2)
        code, out, err = run_cli(capsys, *RANDOM_IPC1, "--cache-dir", cache)
        _, other = get_teacher("smoke", cache_dir=cache, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert code == 0 and err == [], err
    assert other.key == before and f"teacher {before}" in out and "from the cache" in out
    assert len(list((cache / "teachers").glob("*.pt"))) == 1
    keys = {load_distilled(p).teacher_key for p in (cache / "distilled").glob("*.tsgd.pt")}
    assert keys == {before}


def test_ctrl_c_in_run_grid_is_one_line_and_exit_130(tmp_path):
    child = run_interrupted(
        f"""
        import os, signal, sys, time
        from tsgd_core.cli import run_grid
        from tsgd_core.grid import kernels

        def interrupted(step, engine):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)

        kernels.execute = interrupted
        sys.exit(run_grid.main(["--profile", "smoke", "--fresh-kernels", "--no-html",
                                "--reports", {str(tmp_path / "reports")!r},
                                "--cache", {str(tmp_path / "cache")!r}]))
        """
    )
    assert child.returncode == 130, child.stderr
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("run_grid: interrupted during [1/"), lines
    assert "run the same command again" in lines[0]


def test_kill_9_during_a_save_leaves_a_temporary_that_the_next_run_removes(cache, capsys):
    folder = cache / "distilled"
    target = folder / "0123456789ab.tsgd.pt"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from tsgd_core.data.storage import atomic_path\n"
            f"with atomic_path({str(target)!r}) as tmp:\n"
            "    tmp.write_bytes(b'x' * 100000)\n"
            "    print('writing', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    left = hidden_temporaries(folder)
    assert len(left) == 1 and not target.exists()
    old_style = folder / ".old.abc123.tmp.pt"  # an older naming, or another host's: by age
    old_style.write_bytes(b"x")
    os.utime(old_style, (0, 0))
    with atomic_path(folder / "mine.json") as mine:  # a live writer's file is never touched
        mine.write_text("{}")
        assert not is_stale_temporary(mine)
        code, _, err = run_cli(capsys, *RANDOM_IPC1, "--cache-dir", cache)
        assert code == 0 and err == []
        assert mine.exists()
    assert hidden_temporaries(cache) == []


def test_remove_stale_temporaries_keeps_fresh_foreign_files(tmp_path):
    fresh = tmp_path / ".x.otherhost~1~abc.tmp.pt"
    fresh.write_bytes(b"x")
    regular = tmp_path / "entry.pt"
    regular.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == []
    assert fresh.exists() and regular.exists()


# ----------------------------------------------------------------------------- run_grid


@pytest.fixture
def run_grid_module():
    from tsgd_core.cli import run_grid

    return run_grid


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--profile", "nope"], ["--profile", "nope"]),
        (["--groups", "bogus"], ["--groups", "bogus", "main"]),
        (["--threads", "0"], ["--threads"]),
    ],
)
def test_run_grid_bad_options_are_one_line(run_grid_module, capsys, argv, words):
    with pytest.raises(SystemExit) as exit_:
        run_grid_module.main([*argv, "--dry-run"])
    lines = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and lines[0].startswith("run_grid: error:")
    for word in words:
        assert word in lines[0]


def test_run_grid_script_bad_profile_is_one_line_exit_2(tmp_path):
    # run_all.sh passes --profile on to run_grid.py; the venv is the one running these tests
    result = subprocess.run(
        [sys.executable, "scripts/run_grid.py", "--profile", "nope", "--reports", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr


def grid_step(run_grid_module, tmp_path: Path):
    step = planner.Step("x", "02_teacher.ipynb", tmp_path / "out", {"a": 1})
    step.out_dir.mkdir(parents=True)
    return step


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', "{", '{"metadata": []}', "\xff\xfe"])
def test_is_done_treats_any_odd_executed_notebook_as_not_done(run_grid_module, tmp_path, content):
    step = grid_step(run_grid_module, tmp_path)
    step.executed.write_text(content, encoding="latin-1")
    assert planner.is_done(step) is False


def test_failed_notebook_is_removed_once_the_step_succeeds(run_grid_module, tmp_path, monkeypatch):
    import papermill

    step = grid_step(run_grid_module, tmp_path)
    failed = kernels.failed_path(step)
    failed.write_text("{}")

    class Executed:
        cells: list = []

    def fake_execute(source, out, **kwargs):
        Path(out).write_text("{}")
        return Executed()

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    kernels.execute(step, None)
    assert step.executed.is_file() and not failed.exists()


# ----------------------------------------------------------------------------- real-video inputs


def write_png_clips(root: Path, classes: dict[str, int], frames: int = 2) -> Path:
    import imageio.v3 as iio

    for name, count in classes.items():
        for v in range(count):
            folder = root / name / f"clip {v}"  # a space in every name
            folder.mkdir(parents=True)
            for t in range(frames):
                iio.imwrite(folder / f"{t}.png", np.full((8, 8, 3), 40 * t, dtype=np.uint8))
    return root


def test_split_files_may_name_videos_with_spaces(tmp_path):
    from tsgd_core.data.real_video import list_video_dataset

    root = tmp_path / "ucf"
    notes = root / "ucfTrainTestlist"
    notes.mkdir(parents=True)
    (notes / "classInd.txt").write_text("1 Punch\n2 Jump Rope\n")
    for name in (
        "Punch/v_Punch 1.avi",
        "Punch/v_Punch 2.avi",
        "Jump Rope/v 1.avi",
        "Jump Rope/v 2.avi",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    (notes / "trainlist01.txt").write_text("Punch/v_Punch 1.avi 1\nJump Rope/v 1.avi 2\n")
    (notes / "testlist01.txt").write_text("Punch/v_Punch 2.avi\nJump Rope/v 2.avi\n")
    listing = list_video_dataset("ucf101", root)
    assert listing.class_names == ["Punch", "Jump Rope"]
    assert sorted(e.path.name for e in listing.train) == ["v 1.avi", "v_Punch 1.avi"]
    frames_root = write_png_clips(tmp_path / "frames", {"a": 2, "b": 2})
    (frames_root / "testlist.txt").write_text("a/clip 0\nb/clip 1\n")
    assert list_video_dataset("frames", frames_root).counts("test") == [1, 1]


def test_latin1_split_file_is_named(tmp_path):
    from tsgd_core.data.real_video import list_video_dataset

    notes = tmp_path / "ucf" / "ucfTrainTestlist"
    notes.mkdir(parents=True)
    (notes / "classInd.txt").write_bytes("1 Caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"classInd\.txt is not UTF-8 text .*save it as UTF-8"):
        list_video_dataset("ucf101", tmp_path / "ucf")


def test_cli_advice_uses_the_cli_flags(tmp_path, capsys):
    root = tmp_path / "ucf"
    notes = root / "ucfTrainTestlist"
    notes.mkdir(parents=True)
    (notes / "classInd.txt").write_text("1 Punch\n")
    (notes / "trainlist01.txt").write_text("Punch/absent.avi 1\n")
    (notes / "testlist01.txt").write_text("Punch/absent2.avi\n")
    argv = ["data", "--dataset", "ucf101", "--root", root, "--cache-dir", tmp_path / "c", "--quiet"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and len(err) == 1
    assert "--on-missing skip" in err[0] and "on_missing=" not in err[0], err
    code, _, err = run_cli(capsys, *argv[:4], root / "elsewhere", *argv[5:])
    assert code == 2 and len(err) == 1


def test_decord_native_lines_stay_out_of_the_terminal(tmp_path, capfd):
    from tsgd_core.data.video_base import VideoDecodeError
    from tsgd_core.data.video_decode import _decord_available, read_clip

    if not _decord_available():
        pytest.skip("decord is not installed")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(3000))
    with pytest.raises(VideoDecodeError) as error:
        read_clip(bad, 4, (8, 8), backend="decord")
    assert str(bad) in str(error.value)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_python_loader_arguments(tmp_path):
    from tsgd_core.data.real_video import load_video_dataset

    root = write_png_clips(tmp_path / "frames", {"Punch": 3, "Kick": 3})
    common = dict(size=(8, 8), progress=False, test_fraction=0.34)
    with pytest.raises(
        DataError, match=r"val_fraction=0.9 leaves class\(es\) .* without a training"
    ):
        load_video_dataset("frames", root, frames=2, val_fraction=0.9, **common)
    one = load_video_dataset("frames", root, frames=2, classes="Punch", **common)
    assert one.class_names == ["Punch"]
    with pytest.raises(DataError, match="whole numbers.*2.7"):
        load_video_dataset("frames", root, frames=2.7, **common)
    assert load_video_dataset("frames", root, frames=2.0, **common).clip_shape[1] == 2


def test_decoding_more_than_fits_is_refused_before_decoding(tmp_path, monkeypatch):
    from tsgd_core.data.real_video import load_video_dataset
    from tsgd_core.runtime.budget import MemoryBudgetError

    root = write_png_clips(tmp_path / "frames", {"a": 2, "b": 2})
    monkeypatch.setenv("TSGD_MEMORY_LIMIT_MB", "64")
    with pytest.raises(MemoryBudgetError, match=r"4 videos of 16 frames at 2000x2000 needs about"):
        load_video_dataset("frames", root, frames=16, size=(2000, 2000), progress=False)

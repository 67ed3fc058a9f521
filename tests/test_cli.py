"""The `tsgd` command line: help, the smoke pipeline, export, and one-line errors for bad input."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest

from tsgd_core import __version__
from tsgd_core.cli import main
from tsgd_core.data.artifact import load_distilled, save_distilled
from tsgd_core.data.datasets import DATASET_KINDS
from tsgd_core.grid.cells import build_grid
from tsgd_core.grid.stats import clip_accuracy_interval, mean_ci

SMOKE = ["--profile", "smoke", "--quiet"]
# `tsgd distill` of one random clip per class at the smoke profile; --cache-dir and --out follow
DISTILL_RANDOM = ["distill", "--method", "random", "--ipc", "1", *SMOKE]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `tsgd distill` of the smoke profile (trains the tiny teacher once for the module)."""
    root = tmp_path_factory.mktemp("cli")
    cache, out = root / "cache", root / "random_ipc1.tsgd.pt"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([*DISTILL_RANDOM, "--cache-dir", str(cache), "--out", str(out)])
    return {
        "code": code,
        "cache": cache,
        "artifact": out,
        "stdout": stdout.getvalue(),
        "root": root,
    }


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ----------------------------------------------------------------------------- help and version

HELP_MENTIONS = {
    "data": [
        "--profile",
        "--camera-shake",
        "--dataset",
        "--root",
        "--frames",
        "--size",
        "--preview",
        "examples:",
    ],
    "teacher": ["--profile", "--camera-shake", "--cache-dir", "--device", "--out", "examples:"],
    "distill": [
        "--method",
        "--ipc",
        "--tsgfo",
        "--no-tsgfo",
        "--student-augment",
        "--init",
        "--modulation",
        "--lowpass",
        "--saliency-source",
        "--k",
        "--alpha",
        "--eps",
        "--beta",
        "--spatial-pool",
        "--r-bn",
        "--seed",
        "--out",
        "examples:",
    ],
    "evaluate": [
        "PATH.tsgd.pt",
        "--labels",
        "--split",
        "--out",
        "--method",
        "--ipc",
        "--student-augment",
        "examples:",
    ],
    "export": ["PATH.tsgd.pt", "OUT.gif", "--fps", "--scale", "examples:"],
    "grid": ["--profile", "--list", "examples:"],
}


@pytest.mark.parametrize("command", sorted(HELP_MENTIONS))
def test_help_of_every_command_exits_0_and_names_its_options(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    for option in HELP_MENTIONS[command]:
        assert option in out, f"{command} --help does not mention {option}"


def test_top_level_help_lists_the_commands_and_version_prints(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in HELP_MENTIONS:
        assert command in out
    code, out, _ = run_cli(capsys, "--version")
    assert (code, out.strip()) == (0, f"tsgd {__version__}")


def test_installed_console_script_prints_the_version(tmp_path):
    script = Path(sys.prefix) / "bin" / "tsgd"
    if not script.is_file():
        pytest.skip("the tsgd console script is not installed in this environment")
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"tsgd {__version__}"


# ----------------------------------------------------------------------------- the smoke pipeline


def test_distill_writes_a_loadable_artifact_of_one_clip_per_class(smoke_run):
    assert smoke_run["code"] == 0
    ds = load_distilled(smoke_run["artifact"])
    assert tuple(ds.videos.shape) == (4, 3, 8, 16, 16)
    assert sorted(ds.labels.tolist()) == [0, 1, 2, 3]
    assert (ds.method, ds.ipc) == ("random", 1)
    assert ds.teacher_key is not None
    assert ds.config["spec"]["profile"] == "smoke"
    assert "random_ipc1" in smoke_run["stdout"]
    assert len(list((smoke_run["cache"] / "teachers").glob("*.pt"))) == 1


def test_distill_again_loads_the_cached_set(capsys, smoke_run, tmp_path):
    out = tmp_path / "again.tsgd.pt"
    code, stdout, _ = run_cli(
        capsys, *DISTILL_RANDOM, "--cache-dir", smoke_run["cache"], "--out", out
    )
    assert code == 0 and "from the cache" in stdout
    assert load_distilled(out).videos.equal(load_distilled(smoke_run["artifact"]).videos)


def test_export_writes_a_gif_grid_that_imageio_reads(capsys, smoke_run, tmp_path):
    out = tmp_path / "set.gif"
    code, _, _ = run_cli(capsys, "export", smoke_run["artifact"], out, "--fps", "4", "--scale", "2")
    assert code == 0
    frames = iio.imread(out, index=None)
    # 4 classes x 1 instance, cells of 16 * 2 pixels with 2-pixel separators, and a strip of
    # class names on the left of the grid
    grid_width = 1 * (32 + 2) + 2
    assert frames.shape[1] == 4 * (32 + 2) + 2 and frames.shape[2] > grid_width + 16
    assert frames.shape[0] >= 2


def test_export_writes_a_contact_sheet_png(capsys, smoke_run, tmp_path):
    out = tmp_path / "set.png"
    code, stdout, _ = run_cli(capsys, "export", smoke_run["artifact"], out, "--scale", "2")
    assert code == 0 and "one row per clip with its class name" in stdout
    sheet = iio.imread(out)
    # 4 classes x IPC 1: four rows of 16 * 2 pixels, eight frames of 16 * 2 pixels
    assert sheet.shape[0] >= 4 * 32 and sheet.shape[1] >= 8 * 32 and sheet.shape[2] in (3, 4)


def test_data_summarises_the_benchmark_and_writes_a_preview(capsys, tmp_path):
    out = tmp_path / "preview.gif"
    code, stdout, _ = run_cli(
        capsys, "data", *SMOKE, "--preview", out, "--preview-clips", "2", "--scale", "1"
    )
    assert code == 0
    assert "classes: 4" in stdout and "(3, 8, 16, 16)" in stdout
    assert "train:     40 clips (10 per class)" in stdout
    preview = iio.imread(out, index=None)
    # 4 classes x 2 clips of 16 pixels with separators, and the class names' strip on the left
    assert preview.shape[1] == 4 * 18 + 2 and preview.shape[2] > 2 * 18 + 2 + 16


def test_teacher_reports_the_cached_teacher_and_writes_its_info(capsys, smoke_run, tmp_path):
    out = tmp_path / "teacher.json"
    code, stdout, _ = run_cli(
        capsys, "teacher", *SMOKE, "--cache-dir", smoke_run["cache"], "--out", out
    )
    assert code == 0
    info = json.loads(out.read_text())
    assert Path(info["checkpoint"]).is_file()
    assert info["key"] == load_distilled(smoke_run["artifact"]).teacher_key
    assert f"{100 * info['test_acc']:.1f} %" in stdout


def test_grid_lists_every_spec_grouped(capsys):
    code, stdout, _ = run_cli(capsys, "grid", "--profile", "quick", "--list")
    assert code == 0
    for group, specs in build_grid("quick").groups().items():
        assert f"{group} ({len(specs)})" in stdout
        for spec in specs:
            assert f"  {spec.name()}\n" in stdout


def test_dataset_choices_match_the_real_video_loader():
    real_video = pytest.importorskip("tsgd_core.data.real_video")
    assert DATASET_KINDS == tuple(real_video.KINDS)


# ----------------------------------------------------------------------------- bad input

DISTILL = ["distill", "--method", "random", *SMOKE]


def bad_inputs(root: Path, cache: Path, artifact: Path) -> dict[str, tuple[list, str, Path]]:
    """name -> (argv, text the error must contain, the output path that must not appear)."""
    pt, gif, js = root / "out.tsgd.pt", root / "out.gif", root / "out.json"
    return {
        "ipc zero": (
            [*DISTILL, "--ipc", "0", "--cache-dir", cache, "--out", pt],
            "argument --ipc: must be an integer in [1, 1e+07], got 0",
            pt,
        ),
        "ipc negative": (
            [*DISTILL, "--ipc", "-3", "--cache-dir", cache, "--out", pt],
            "got -3",
            pt,
        ),
        "ipc above the class size": (
            [*DISTILL, "--ipc", "11", "--cache-dir", cache, "--out", pt],
            "IPC 11 is more than class",
            pt,
        ),
        "unknown method": (
            ["distill", "--method", "magic", "--out", pt],
            "invalid choice: 'magic'",
            pt,
        ),
        "unknown profile": (
            ["distill", "--profile", "huge", "--out", pt],
            "invalid choice: 'huge'",
            pt,
        ),
        "wrong artifact suffix": (
            [*DISTILL, "--ipc", "1", "--out", root / "out.pt"],
            "must end in .tsgd.pt",
            root / "out.pt",
        ),
        "missing dataset root": (
            ["data", "--dataset", "ucf101", "--root", root / "nowhere", "--preview", gif]
            + ["--cache-dir", cache],
            "does not exist",
            gif,
        ),
        "dataset without root": (
            ["data", "--dataset", "hmdb51", "--preview", gif],
            "needs --root",
            gif,
        ),
        "missing artifact to export": (
            ["export", root / "missing.tsgd.pt", gif],
            "no distilled set",
            gif,
        ),
        "missing artifact to evaluate": (
            ["evaluate", root / "missing.tsgd.pt", "--cache-dir", cache, "--out", js],
            "no distilled set",
            js,
        ),
        "wrong export suffix": (
            ["export", artifact, root / "out.webm"],
            "must end in .gif or .mp4 or .png",
            root / "out.webm",
        ),
        "spec flags with an artifact": (
            ["evaluate", artifact, "--ipc", "2", "--cache-dir", cache, "--out", js],
            "records its own spec",
            js,
        ),
        "bad saliency parameter": (
            [*DISTILL, "--beta", "2", "--cache-dir", cache, "--out", pt],
            "argument --beta: must be in [0, 1], got 2",
            pt,
        ),
    }


CASES = sorted(bad_inputs(Path("r"), Path("c"), Path("a")))


def assert_one_line_error(code: int, out: str, err: str, needle: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tsgd: error:") and needle in lines[0], lines[0]
    assert "Traceback" not in err + out


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_exit_2_and_no_file(capsys, smoke_run, tmp_path, case):
    cache = tmp_path / "fresh-cache"  # the IPC check must come before any teacher training
    argv, needle, output = bad_inputs(tmp_path, cache, smoke_run["artifact"])[case]
    assert_one_line_error(*run_cli(capsys, *argv), needle)
    assert not output.exists()
    assert not (cache / "teachers").exists()


def edited_artifact(smoke_run: dict, path: Path, **changes) -> Path:
    ds = load_distilled(smoke_run["artifact"])
    for name, value in changes.items():
        setattr(ds, name, value)
    return save_distilled(ds, path)


def test_set_from_another_teacher_is_refused(capsys, smoke_run, tmp_path):
    artifact = edited_artifact(smoke_run, tmp_path / "other.tsgd.pt", teacher_key="0123456789ab")
    out = tmp_path / "results.json"
    code, stdout, err = run_cli(
        capsys, "evaluate", artifact, "--cache-dir", smoke_run["cache"], "--out", out
    )
    assert_one_line_error(
        code, stdout, err, "was distilled with teacher 0123456789ab, but here its profile"
    )
    assert not out.exists()


def test_relabel_teacher_key_is_the_key_of_the_teacher_that_made_the_set(smoke_run):
    """The key `tsgd evaluate` checks before training is the key get_teacher gives."""
    from tsgd_core.cli import relabel_teacher_key
    from tsgd_core.grid.profiles import load_data
    from tsgd_core.grid.spec import spec_from_params

    ds = load_distilled(smoke_run["artifact"])
    spec = spec_from_params(**ds.config["spec"])
    assert relabel_teacher_key(spec, load_data("smoke")) == ds.teacher_key


def test_set_of_other_classes_is_refused(capsys, smoke_run, tmp_path):
    artifact = edited_artifact(
        smoke_run, tmp_path / "classes.tsgd.pt", class_names=["a", "b", "c", "d"]
    )
    out = tmp_path / "results.json"
    code, stdout, err = run_cli(
        capsys, "evaluate", artifact, "--cache-dir", smoke_run["cache"], "--out", out
    )
    assert_one_line_error(code, stdout, err, "train a teacher on this dataset")
    assert not out.exists()


def test_set_without_a_stored_spec_is_refused(capsys, smoke_run, tmp_path):
    ds = load_distilled(smoke_run["artifact"])
    artifact = edited_artifact(
        smoke_run,
        tmp_path / "nospec.tsgd.pt",
        config={k: v for k, v in ds.config.items() if k != "spec"},
    )
    code, stdout, err = run_cli(capsys, "evaluate", artifact, "--cache-dir", smoke_run["cache"])
    assert_one_line_error(code, stdout, err, "does not record the spec")


@pytest.mark.slow
def test_evaluate_a_saved_set_reports_mean_interval_and_n_and_writes_json(
    capsys, smoke_run, tmp_path
):
    out = tmp_path / "results.json"
    code, stdout, err = run_cli(
        capsys,
        "evaluate",
        smoke_run["artifact"],
        "--labels",
        "hard",
        "--cache-dir",
        smoke_run["cache"],
        "--quiet",
        "--out",
        out,
    )
    assert code == 0, err
    row = json.loads(out.read_text())
    assert row["artifact"] == str(smoke_run["artifact"]) and row["labels"] == "hard"
    assert len(row["acc_hard_seeds"]) == 3 and 0.0 <= row["acc_hard_mean"] <= 1.0
    low, high = clip_accuracy_interval(*mean_ci(row["acc_hard_seeds"])[1:])
    mean = 100 * row["acc_hard_mean"]
    assert (
        f"{mean:.1f} % (95 % CI {100 * low:.1f} to {100 * high:.1f}, n = 3 student seeds)" in stdout
    )
    assert "acc_soft_mean" not in row

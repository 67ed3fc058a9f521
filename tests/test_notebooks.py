"""The tutorial notebooks: clean in the repository, and each one runs under papermill (smoke size).

The execution tests share one cache folder, so the teacher trains once for all of them; each
notebook gets a fresh kernel, as a reader opening it would.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

# under pytest-xdist (./run_tests.sh) these tests run on one worker, so they share its cache
pytestmark = pytest.mark.xdist_group("notebooks")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
EXPECTED = [
    "00_quickstart",
    "01_data_and_saliency",
    "02_teacher",
    "03_distill",
    "04_evaluate",
    "05_report",
    "06_real_video",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMOKE_SPEC = {"method": "tsgd", "ipc": 1}


# The long main table starts with these columns, in this order
LONG_TABLE_COLUMNS = ["method", "recipe", "ipc", "labels", "mean", "std", "n", "ci_low", "ci_high"]


def load(path: Path):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(path, as_version=4)


def test_every_notebook_is_there():
    assert [p.stem for p in ALL] == EXPECTED


def test_the_notebook_tests_share_one_worker(request):
    """Under ./run_tests.sh (pytest-xdist, --dist loadgroup) this file's tests carry their group,
    so they run on one worker and share its cache; pytest 9.2 with xdist 3.8 silently dropped
    the group (pytest-dev/pytest-xdist#1386): each worker then trained its own teacher."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or not request.config.getvalue("loadgroup"):
        pytest.skip("not under pytest-xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@notebooks"), request.node.nodeid


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_has_one_parameters_cell_and_no_outputs(path):
    nb = load(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one code cell tagged 'parameters'"
    assert code.index(tagged[0]) <= 1, "the parameters cell comes first among the code cells"
    for name in ("profile", "cache_dir", "out_dir", "device"):
        assert f"{name} = " in tagged[0].source, f"parameter {name} missing"
    assert 'profile = "' in tagged[0].source
    assert all(c.outputs == [] and c.execution_count is None for c in code), "clear the outputs"
    assert nb.metadata.kernelspec.name == "python3"


# ----------------------------------------------------------------------------- execution


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A cache shared by every notebook run, and kernels that use one CPU thread."""
    pytest.importorskip("papermill")
    pytest.importorskip("ipykernel")
    root = tmp_path_factory.mktemp("notebooks")
    with pytest.MonkeyPatch.context() as mp:
        # kernels inherit the environment: tiny models run fastest on one thread
        mp.setenv("OMP_NUM_THREADS", "1")
        mp.setenv(
            "PYTHONPATH", os.pathsep.join([str(NOTEBOOKS.parent), os.environ.get("PYTHONPATH", "")])
        )
        yield root


def run_notebook(workspace: Path, name: str, out_dir: Path, **params) -> Path:
    """Execute notebooks/<name>.ipynb at smoke size into out_dir; return the executed copy."""
    import papermill as pm

    params = {
        "profile": "smoke",
        "cache_dir": str(workspace / "cache"),
        "out_dir": str(out_dir),
        "device": "cpu",
        "progress": False,
        **params,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / f"{name}.ipynb"
    # each check cell runs again after its solution: the exercises are checked on every run
    from test_exercises import assert_exercises_solved, exercised_copy

    source = exercised_copy(name, Path(tempfile.mkdtemp(dir=workspace)))
    pm.execute_notebook(
        str(source),
        str(executed),
        parameters=params,
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
        execution_timeout=300,
    )
    assert_exercises_solved(name, executed)
    return executed


def assert_png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 2000, f"{path.name} is not a real PNG"


@pytest.fixture(scope="module")
def evaluated(workspace):
    """04_evaluate on the smoke TSGD spec, written where the grid would put it."""
    from tsgd_core.grid.spec import spec_from_params

    spec = spec_from_params(profile="smoke", **SMOKE_SPEC)
    out = workspace / "runs" / "main" / spec.name()
    run_notebook(workspace, "04_evaluate", out, spec=SMOKE_SPEC)
    return spec, out


@pytest.mark.notebooks
def test_00_quickstart(workspace):
    out = workspace / "00"
    run_notebook(workspace, "00_quickstart", out)
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"tsgd", "random"}
    for rec in results.values():
        assert 0.0 <= rec["acc_soft_mean"] <= 1.0 and len(rec["acc_hard_seeds"]) == 3
    for name in ("real_clips", "tsgd_clips", "quickstart_accuracy"):
        assert_png(out / f"{name}.png")


@pytest.mark.notebooks
def test_01_data_and_saliency(workspace):
    out = workspace / "01"
    run_notebook(workspace, "01_data_and_saliency", out, beta=0.3)
    summary = json.loads((out / "data_summary.json").read_text())
    assert len(summary["classes"]) == 4 and summary["clip_shape"] == [3, 8, 16, 16]
    accs = summary["single_frame_vs_3d"]
    assert set(accs) == {"one frame only", "all frames (3D teacher)"}
    assert all(0.0 <= a <= 1.0 for a in accs.values())
    # the beta parameter reached the filter: W' never drops below the floor
    assert all(0.3 <= v <= 1.0 for v in summary["mean_saliency"].values())
    for name in (
        "real_clips",
        "frame0_pair",
        "frames_pair",
        "single_frame_vs_3d",
        "saliency",
        "saliency_shake",
    ):
        assert_png(out / f"{name}.png")


@pytest.mark.notebooks
def test_02_teacher(workspace):
    out = workspace / "02"
    run_notebook(workspace, "02_teacher", out)
    teacher = json.loads((out / "teacher.json").read_text())
    assert 0.0 <= teacher["test_acc"] <= 1.0 and teacher["chance"] == 0.25
    assert teacher["train_wall_s"] > 0
    for name in ("teacher_curves", "teacher_confusion"):
        assert_png(out / f"{name}.png")


@pytest.mark.notebooks
def test_03_distill(workspace):
    out = workspace / "03"
    run_notebook(workspace, "03_distill", out, spec={**SMOKE_SPEC, "k": 2})
    info = json.loads((out / "distill.json").read_text())
    assert info["method"] == "tsgd" and info["shape"] == [4, 3, 8, 16, 16]
    assert "k-2" in info["name"], "the spec parameter reached the RunSpec"
    assert {"loss", "loss_ce", "loss_bn"} <= set(info["final"])
    for name in ("distill_loss", "distill_clips", "distill_saliency"):
        assert_png(out / f"{name}.png")
    assert (out / "distill_clips.gif").read_bytes()[:4] == b"GIF8"


@pytest.mark.notebooks
def test_04_evaluate(evaluated):
    from tsgd_core.grid.spec import RunSpec
    from tsgd_core.report import spec_from_record

    spec, out = evaluated
    record = json.loads((out / "record.json").read_text())
    expected = {f for f in RunSpec.__dataclass_fields__} | {
        "name",
        "method_label",
        "distill_wall_s",
        "distill_peak_mb",
        "acc_soft_mean",
        "acc_soft_std",
        "acc_soft_seeds",
        "acc_hard_mean",
        "acc_hard_std",
        "acc_hard_seeds",
        "eval_soft_wall_s",
        "eval_hard_wall_s",
    }
    assert expected <= set(record)
    assert spec_from_record(record) == spec and record["name"] == spec.name()
    assert len(record["acc_soft_seeds"]) == 3
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert [b["method"] for b in evaluation["baselines"]] == ["random"]
    assert set(evaluation["full_data"]) == {"soft", "hard"}
    assert_png(out / "eval_accuracy.png")


@pytest.mark.notebooks
def test_05_report(workspace, evaluated):
    from dataclasses import replace

    import pandas as pd

    from tsgd_core import report
    from tsgd_core.grid import experiments

    spec, _ = evaluated
    # the random baseline's record, from the evaluation 04 cached: a second run in runs/
    baseline = replace(spec, method="random", student_augment=spec.recipe)  # the same recipe
    _, rec = experiments.run(baseline, cache_dir=workspace / "cache", device="cpu", progress=False)
    folder = workspace / "runs" / "main" / baseline.name()
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(rec))

    out = workspace / "report"
    run_notebook(
        workspace,
        "05_report",
        out,
        runs_dir=str(workspace / "runs"),
        command="./run_all.sh --profile smoke",
    )
    table = pd.read_csv(out / "main_table.csv")
    assert list(table.columns[:9]) == LONG_TABLE_COLUMNS
    assert list(dict.fromkeys(table["method"])) == ["Random", "TSGD", report.FULL_DATA]
    assert set(table.loc[table["method"] != report.FULL_DATA, "recipe"]) == {"tsgfa"}
    readme = (out / "README.md").read_text()
    assert "./run_all.sh --profile smoke" in readme
    verdicts = report.tsgd_verdicts(report.collect_records(workspace / "runs"))
    assert len(verdicts) == 1, "TSGD + TSGFA against Random + TSGFA, the same recipe"
    tally = report.verdict_tally(verdicts)
    assert tally in readme, "the README states the verdict the numbers give"
    for name in ("accuracy_vs_ipc", "cost", "distilled_tsgd"):
        assert_png(out / "figures" / f"{name}.png")


@pytest.mark.notebooks
def test_06_real_video_on_a_folder_of_encoded_videos(workspace):
    out = workspace / "06"
    run_notebook(workspace, "06_real_video", out)  # no dataset: the demo UCF101 folder
    results = json.loads((out / "results.json").read_text())
    assert json.loads(results["dataset"])["kind"] == "ucf101"
    # 16 test clips: each is worth 6.25 points, which the notebook says
    assert any("16 clips: one clip is worth 6.25 points" in m for m in results["data_warnings"])
    assert sorted(p.suffix for p in (out / "demo_ucf101").rglob("v_*"))[0] == ".avi"
    for method in ("tsgd", "random"):
        assert results[method]["dataset"] == results["dataset"]
        assert 0.0 <= results[method]["acc_hard_mean"] <= 1.0
    assert (workspace / "cache" / "videos").is_dir()
    for name in ("real_clips", "real_accuracy"):
        assert_png(out / f"{name}.png")


@pytest.mark.notebooks
def test_run_grid_stops_at_a_failing_notebook_and_keeps_earlier_results(
    workspace, monkeypatch, capsys
):
    from tsgd_core.cli import run_grid
    from tsgd_core.grid import planner

    reports = workspace / "grid"
    common = {
        "profile": "smoke",
        "cache_dir": str(workspace / "cache"),
        "device": "cpu",
        "progress": False,
    }

    def tiny_plan(*args, **kwargs):
        steps = [
            planner.Step("teacher", "02_teacher.ipynb", reports / "teacher", {}),
            planner.Step(
                "main/bad",
                "03_distill.ipynb",
                reports / "runs" / "bad",
                {"spec": {"method": "nope"}},
            ),
            planner.Step("never", "02_teacher.ipynb", reports / "never", {}),
        ]
        for step in steps:
            step.params = {**common, "out_dir": str(step.out_dir), **step.params}
        return steps

    monkeypatch.setattr(run_grid, "plan", tiny_plan)  # the runner calls its own import
    for name in ("PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # main sets them: restore
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    code = run_grid.main(["--profile", "smoke", "--reports", str(reports), "--no-html"])
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED [2/3] main/bad (03_distill.ipynb)" in err
    assert "ValueError: unknown method 'nope'" in err
    assert (reports / "teacher" / "02_teacher.ipynb").is_file(), "earlier results are kept"
    assert (reports / "runs" / "bad" / "03_distill.failed.ipynb").is_file()
    assert not (reports / "runs" / "bad" / "03_distill.ipynb").exists()
    assert not list(reports.rglob(".*.running.ipynb")) and not (reports / "never").exists()
    # a rerun skips the step that succeeded
    assert planner.is_done(tiny_plan()[0]) and not planner.is_done(tiny_plan()[1])

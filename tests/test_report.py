"""The report on hand-made records: tables, verdict sentences computed from the numbers, figures."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pandas as pd
import pytest
import torch

from tsgd_core import report
from tsgd_core.artifact import DistilledSet
from tsgd_core.data import ClipSet
from tsgd_core.evaluate import EvalResult
from tsgd_core.experiments import RunSpec, build_grid, record
from tsgd_core.saliency import SaliencyConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CELL = re.compile(r"^\d+\.\d ± \d+\.\d$")
# accuracy of each method (fraction) before the IPC bonus; TSGD's own is set per test
BASE_ACC = {"random": 0.30, "herding": 0.35, "kcenter": 0.33, "dm": 0.40, "sre2l": 0.50}


def fake_record(spec: RunSpec, acc: float, spread: float = 0.02) -> dict:
    """A record exactly as experiments.run makes it, with seed accuracies acc -/0/+ spread."""
    k = 4
    ds = DistilledSet(
        videos=torch.zeros(k * spec.ipc, 3, 2, 4, 4),
        labels=torch.arange(k).repeat_interleave(spec.ipc),
        class_names=[f"c{i}" for i in range(k)],
        method=spec.method,
        ipc=spec.ipc,
        config={"distill_wall_s": 1.5 * spec.ipc, "distill_peak_mb": 10.0 + spec.ipc},
    )
    accs = [acc - spread, acc, acc + spread]
    results = {
        labels: EvalResult(accs, [0.1] * 3, [1.0] * 3, labels, spec.eval_augment, len(ds.labels))
        for labels in spec.labels
    }
    return record(spec, ds, results)


def accuracy_for(spec: RunSpec, tsgd_by_ipc: dict[int, float]) -> float:
    """A deterministic accuracy per spec; TSGD's comes from `tsgd_by_ipc`."""
    if spec.method == "tsgd":
        acc = tsgd_by_ipc[spec.ipc]
        acc -= 0.05 * (not spec.tsgfa) + 0.04 * (not spec.tsgfo) + 0.03 * (spec.init == "noise")
        acc -= (
            0.01 * abs(spec.k - 1) + 0.02 * (spec.beta == 1.0) + 0.01 * (spec.modulation == "frame")
        )
    else:
        acc = BASE_ACC[spec.method] + 0.05 * spec.ipc
    return acc - 0.1 * (spec.camera_shake > 0)


def grid_records(tsgd_by_ipc: dict[int, float]) -> pd.DataFrame:
    """Records for every spec of the smoke grid (IPC 1 and 2), grouped as the grid groups them."""
    rows = []
    for group, specs in build_grid("smoke").groups().items():
        for spec in specs:
            rows.append({**fake_record(spec, accuracy_for(spec, tsgd_by_ipc)), "group": group})
    return pd.DataFrame(rows).drop_duplicates(subset="name").reset_index(drop=True)


FULL = {"soft": (0.9, 0.01), "hard": (0.85, 0.02)}
WINS = {1: 0.70, 2: 0.80}  # above SRe2L-style (0.55, 0.60) at both IPCs
LOSES = {1: 0.45, 2: 0.50}  # below SRe2L-style at both IPCs
MIXED = {1: 0.70, 2: 0.50}


def test_main_table_rows_columns_and_cells():
    table = report.main_table(grid_records(WINS), FULL)
    assert list(table.index) == [
        "Random",
        "Herding",
        "K-Center",
        "DM",
        "SRe2L-style",
        "TSGD w/o TSGFA",
        "TSGD",
        report.FULL_DATA,
    ]
    accuracy_cols = ["IPC 1 soft", "IPC 1 hard", "IPC 2 soft", "IPC 2 hard"]
    assert list(table.columns) == [
        *accuracy_cols,
        "distill time [s] (IPC 2)",
        "peak memory [MiB] (IPC 2)",
    ]
    assert all(CELL.match(cell) for cell in table[accuracy_cols].to_numpy().ravel())
    assert table.loc["TSGD", "IPC 1 soft"] == "70.0 ± 2.0"
    assert table.loc["DM", "IPC 2 hard"] == "50.0 ± 2.0"
    assert table.loc[report.FULL_DATA, "IPC 2 hard"] == "85.0 ± 2.0"
    assert table.loc["DM", "distill time [s] (IPC 2)"] == "3"
    assert table.loc[report.FULL_DATA, "peak memory [MiB] (IPC 2)"] == "—"


def test_main_table_excludes_ablation_sensitivity_and_shake_runs():
    df = grid_records(WINS)
    main = report.main_records(df)
    assert set(main["group"]) == {"main"}
    assert len(main) == len(build_grid("smoke").main)


def test_format_mean_std():
    assert report.format_mean_std(0.4567, 0.0123) == "45.7 ± 1.2"
    assert report.format_mean_std(float("nan"), 0.1) == "—"


@pytest.mark.parametrize(
    "tsgd, overall, per_ipc",
    [
        (WINS, "beats the best baseline at every IPC tested (2 of 2)", ["ahead", "ahead"]),
        (LOSES, "does not beat the best baseline at any IPC tested (0 of 2)", ["behind", "behind"]),
        (MIXED, "beats the best baseline at 1 of 2 IPCs (IPC 1)", ["ahead", "behind"]),
    ],
)
def test_verdict_follows_the_numbers(tsgd, overall, per_ipc):
    df = grid_records(tsgd)
    verdicts = report.tsgd_verdicts(df, "soft")
    assert list(verdicts["best_baseline"]) == ["SRe2L-style", "SRe2L-style"]
    expected = [tsgd[ipc] > BASE_ACC["sre2l"] + 0.05 * ipc for ipc in (1, 2)]
    assert list(verdicts["beats"]) == expected
    lines = report.verdict_sentences(verdicts)
    assert overall in lines[0]
    for line, word in zip(lines[1:], per_ipc, strict=True):
        assert word in line
    text = report.readme_text(
        df, profile="smoke", command="./run_all.sh", figures={}, base=".", full=FULL
    )
    assert overall in text
    if not all(expected):
        assert "TSGD does not beat it" in text


def test_verdict_calls_a_gap_inside_the_seed_spread_not_clear():
    df = grid_records({1: 0.56, 2: 0.61})  # 1 point above SRe2L-style, seed std 2 points
    verdicts = report.tsgd_verdicts(df)
    assert verdicts["beats"].all() and not verdicts["clear"].any()
    assert "not a clear win" in report.verdict_sentences(verdicts)[1]


def test_ablation_sensitivity_shake_and_cost_tables():
    df = grid_records(WINS)
    ablation = report.ablation_results(df)
    variants = set(ablation["variant"])
    assert {
        "TSGD (full)",
        "TSGD -TSGFO",
        "TSGD -TSGFO -TSGFA, noise init",
        "SRe2L-style",
    } <= variants
    assert {"TSGD per-frame modulation", "TSGD + temporal low-pass"} <= variants
    assert set(ablation["ipc"]) == {2}
    sens = report.sensitivity_results(df)
    assert list(sens.loc[sens["param"] == "k", "value"]) == [0, 1, 2]
    assert list(sens.loc[sens["param"] == "beta", "value"]) == [0.0, 0.2, 1.0]
    assert set(sens.loc[sens["param"] == "alpha", "value"]) == {"gaussian", "uniform"}
    best_k = sens[sens["param"] == "k"].set_index("value")["mean"].idxmax()
    assert best_k == 1
    shake = report.shake_results(df)
    assert set(shake["camera_shake"]) == {0.0, 2.0} and set(shake["method"]) == {
        "SRe2L-style",
        "TSGD",
    }
    assert len(report.shake_sentences(shake)) == 2
    cost = report.cost_results(df)
    assert "TSGD w/o TSGFA" not in set(cost["method"])
    assert cost.loc[(cost["method"] == "DM") & (cost["ipc"] == 2), "distill_wall_s"].item() == 3.0


def test_write_report_writes_tables_figures_and_readme(tmp_path):
    df = grid_records(LOSES)
    files = report.write_report(
        df, tmp_path, profile="smoke", command="./run_all.sh --profile smoke", full=FULL
    )
    for key in ("accuracy_vs_ipc", "ablation", "sensitivity", "shake", "cost"):
        data = files[key].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, key
    md = (tmp_path / "main_table.md").read_text()
    assert "| TSGD " in md and report.FULL_DATA in md
    csv = pd.read_csv(tmp_path / "main_table.csv", index_col=0)
    assert csv.loc["TSGD", "IPC 2 soft"] == "50.0 ± 2.0"
    assert len(pd.read_csv(tmp_path / "all_runs.csv")) == len(df)
    readme = (tmp_path / "README.md").read_text()
    assert "./run_all.sh --profile smoke" in readme and "`smoke`" in readme
    assert "does not beat the best baseline at any IPC" in readme
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert len(links) == 5 and all((tmp_path / link).is_file() for link in links)
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files left behind"
    index = report.write_reports_index(tmp_path.parent)
    assert f"[`{tmp_path.name}`]({tmp_path.name}/README.md)" in index.read_text()


def test_collect_records_reads_groups_and_drops_duplicates(tmp_path):
    spec = RunSpec(method="tsgd", ipc=1, profile="smoke")
    rec = fake_record(spec, 0.5)
    for group in ("main", "ablation"):  # the same run in two groups is counted once
        folder = tmp_path / group / spec.name()
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps(rec))
    other = replace(spec, method="random")
    folder = tmp_path / "main" / other.name()
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(fake_record(other, 0.3)))
    df = report.collect_records(tmp_path)
    assert len(df) == 2 and set(df["method"]) == {"tsgd", "random"}
    assert set(df["group"]) <= {"main", "ablation"}
    assert report.spec_from_record(df[df["method"] == "tsgd"].iloc[0]) == spec
    with pytest.raises(FileNotFoundError, match="no record.json"):
        report.collect_records(_empty(tmp_path))
    with pytest.raises(FileNotFoundError, match="no runs folder"):
        report.collect_records(tmp_path / "missing")


def _empty(tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_spec_from_record_round_trips_every_grid_spec():
    for specs in build_grid("smoke").groups().values():
        for spec in specs:
            assert report.spec_from_record(fake_record(spec, 0.5)) == spec


def test_confusion_matrix_counts():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    preds = torch.tensor([0, 1, 1, 2, 0, 2])
    cm = report.confusion_matrix(labels, preds, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    with pytest.raises(ValueError, match="differ in shape"):
        report.confusion_matrix(labels, preds[:3], 3)


def test_frame_strip_image_layout(tiny_clips):
    videos, labels = tiny_clips.videos[:3], torch.tensor([1, 0, 1])
    image, rows = report.frame_strip_image(videos, labels, 2, scale=2, gap=1)
    _, _, t, h, w = videos.shape
    assert rows == [0, 1, 1]
    assert image.shape == (3 * (2 * h + 1) + 1, t * (2 * w + 2), 3)
    # row 0 holds clip 1 (class 0): its frame 3 sits in the 4th cell
    cell = image[1 : 1 + 2 * h, 3 * (2 * w + 2) + 1 : 3 * (2 * w + 2) + 1 + 2 * w]
    expected = (videos[1, :, 3].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
    assert torch.equal(torch.from_numpy(cell[::2, ::2].copy()), expected)


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data.startswith(PNG_MAGIC) and len(data) > 2000


def test_notebook_figures_are_written(tmp_path, tiny_clips):
    clips = ClipSet(tiny_clips.videos[:4], tiny_clips.labels[:4], tiny_clips.class_names)
    assert _is_png(
        report.plot_frame_strips(
            clips.videos, clips.labels, clips.class_names, tmp_path / "strips.png", title="clips"
        )
    )
    assert _is_png(
        report.plot_saliency(clips.videos[:2], tmp_path / "sal.png", cfg=SaliencyConfig(k=2))
    )
    history = {
        "loss": [3.0, 2.0, 1.5],
        "loss_ce": [2.5, 1.8, 1.2],
        "loss_bn": [0.5, 0.2, 0.3],
        "teacher_acc": [0.2, 0.5, 0.9],
    }
    assert _is_png(report.plot_loss_history(history, tmp_path / "loss.png", title="loss"))
    assert report.plot_loss_history({}, tmp_path / "none.png", title="none") is None
    assert not (tmp_path / "none.png").exists()
    fit = {
        "step": [0, 1, 2, 3],
        "loss": [2.0, 1.5, 1.0, 0.8],
        "val_acc": [0.4, 0.7],
        "val_step": [2, 4],
    }
    assert _is_png(report.plot_training_curves(fit, tmp_path / "fit.png", title="teacher"))
    cm = report.confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2)
    assert _is_png(report.plot_confusion(cm, ["a", "b"], tmp_path / "cm.png", title="cm"))
    recs = [fake_record(RunSpec(method=m, ipc=1, profile="smoke"), 0.5) for m in ("tsgd", "random")]
    assert _is_png(
        report.plot_accuracy_bars(recs, tmp_path / "bars.png", full=FULL, chance=0.25, title="t")
    )
    assert _is_png(report.plot_bars({"frame 0": 0.3, "3D": 0.8}, tmp_path / "b.png", title="t"))


def test_first_per_class_picks_the_first_clips_of_each_class():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 0])
    assert report.first_per_class(labels, 1).tolist() == [1, 2, 0]
    assert report.first_per_class(labels, 2).tolist() == [1, 3, 2, 5, 0, 4]
    with pytest.raises(ValueError, match="per_class"):
        report.first_per_class(labels, 0)


def test_report_without_main_runs_still_writes_a_readme(tmp_path):
    df = grid_records(WINS)
    df = df[df["group"] == "ablation"]
    assert report.main_table(df).empty
    files = report.write_report(df, tmp_path, profile="smoke", command="./run_all.sh")
    assert files["accuracy_vs_ipc"] is None and files["ablation"] is not None
    text = files["readme"].read_text()
    assert "No main-table runs" in text and "There are no TSGD and baseline runs" in text

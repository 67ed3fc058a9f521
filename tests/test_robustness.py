"""The robustness stage: its transforms, its table's columns and signs, and one smoke run."""

from __future__ import annotations

import functools
import math

import pandas as pd
import pytest
import torch

from tsgd_core.cli import robustness as robustness_cli
from tsgd_core.data.clips import ClipSet
from tsgd_core.grid import robustness as rb
from tsgd_core.training.evaluate import StudentConfig, evaluate_set
from tsgd_core.training.teacher import ModelConfig
from tsgd_core.training.train import FitConfig


def ramp_clips(n: int = 2, frames: int = 8, size: int = 8) -> torch.Tensor:
    """Clips whose every pixel of frame t is t / 10 (+ 0.01 per clip): frames are told apart."""
    t = torch.arange(frames, dtype=torch.float32).view(1, 1, frames, 1, 1) / 10
    clip = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1, 1) / 100
    return (t + clip).expand(n, 3, frames, size, size).contiguous()


def test_subsample_holds_every_kth_frame():
    videos = ramp_clips()
    out = rb.subsample_frames(videos, 2)
    assert out.shape == videos.shape
    kept = out[0, 0, :, 0, 0] * 10
    assert torch.allclose(kept, torch.tensor([0.0, 0, 2, 2, 4, 4, 6, 6]))
    quarter = rb.subsample_frames(videos, 4)[1, 2, :, 3, 3]
    assert torch.allclose(quarter, torch.tensor([0.0, 0, 0, 0, 0.4, 0.4, 0.4, 0.4]) + 0.01)
    assert torch.equal(rb.subsample_frames(videos, 1), videos)
    with pytest.raises(ValueError, match="frame step"):
        rb.subsample_frames(videos, 0)


def test_resize_changes_the_frame_size_and_keeps_values():
    videos = ramp_clips(size=16)
    small = rb.resize_clips(videos, (8, 8))
    large = rb.resize_clips(videos, (32, 24))
    assert small.shape == (2, 3, 8, 8, 8)
    assert large.shape == (2, 3, 8, 32, 24)
    # flat frames stay flat at any size
    assert torch.allclose(small[1, 0, 5], torch.full((8, 8), 0.51), atol=1e-5)
    assert torch.allclose(large[0, 1, 7], torch.full((32, 24), 0.7), atol=1e-5)
    edge = torch.zeros(1, 3, 1, 16, 16)
    edge[..., :, 8:] = 1.0
    half = rb.resize_clips(edge, (8, 8))[0, 0, 0]
    assert half[:, :3].max() < 0.01 and half[:, 5:].min() > 0.99  # the edge stays in the middle
    assert torch.allclose(half[:, 3] + half[:, 4], torch.ones(8))  # blurred symmetrically
    assert 0.0 <= float(rb.resize_clips(edge, (13, 13)).min())
    assert float(rb.resize_clips(edge, (13, 13)).max()) <= 1.0


def test_codec_round_trip_is_lossy_deterministic_and_keeps_shape():
    g = torch.Generator().manual_seed(0)
    videos = torch.rand(2, 3, 8, 16, 16, generator=g) * 0.5 + 0.25
    videos[:, :, :, 4:10, 4:10] = 1.0  # a bright square, to see it survive
    out = rb.codec_round_trip(videos, 23)
    assert out.shape == videos.shape and out.dtype == torch.float32
    assert 0.0 < float((out - videos).abs().mean()) < 0.1
    assert float(out[:, :, :, 5:9, 5:9].mean()) > 0.85
    worse = rb.codec_round_trip(videos, 45)
    assert float((worse - videos).abs().mean()) > float((out - videos).abs().mean())
    odd = rb.codec_round_trip(videos[:, :, :, :15, :13], 23)  # padded for yuv420p, cut back
    assert odd.shape == (2, 3, 8, 15, 13)


def test_compressed_test_clips_are_encoded_once_and_read_back(tmp_path, monkeypatch):
    """x264 through PyAV is not bit-reproducible on a loaded machine: 30 of 1,200 encodes gave
    another file (three runs of scripts/codec_determinism.py at once on 2 cores). So the stage
    encodes each setting once, and every later run reads the cached clips: the same pixels, no
    second encode."""
    g = torch.Generator().manual_seed(0)
    test = ClipSet(torch.rand(2, 3, 8, 16, 16, generator=g), torch.tensor([0, 1]), ["a", "b"])
    first = rb.compressed_test(test, 35, tmp_path)
    monkeypatch.setattr(rb, "codec_round_trip", lambda *a, **k: pytest.fail("encoded again"))
    again = rb.compressed_test(test, 35, tmp_path)
    assert torch.equal(again.videos, first.videos) and again.class_names == ["a", "b"]
    assert not torch.equal(first.videos, test.videos), "the clips went through the codec"


def test_settings_of_every_axis_start_clean():
    shape = (3, 8, 16, 16)
    names = {axis: [s.name for s in rb.axis_settings(axis, shape)] for axis in rb.AXES}
    assert names["frame_rate"] == ["clean (8x16x16)", "1/2 frame rate", "1/4 frame rate"]
    assert names["resolution"] == ["clean (8x16x16)", "8x8x8", "8x32x32"]
    assert names["compression"][1:] == ["H.264 CRF 35", "H.264 CRF 45"]
    arch = rb.axis_settings("teacher_arch", shape)
    assert len(arch) == 9 and [s.clean for s in arch].count(True) == 1
    assert arch[0].clean and arch[0].name == "ConvNet3D teacher -> ConvNet3D student"
    ranks = rb.setting_ranks(rb.AXES, shape)
    assert ranks[("teacher_arch", "(2+1)D teacher -> ConvNet3D student")] == 3
    assert ranks[("teacher_arch", "C3D teacher")] == ranks[("teacher_arch", arch[8].name)] == 8
    assert ranks[("compression", "H.264 CRF 45")] == 2
    with pytest.raises(ValueError, match="unknown axis"):
        rb.axis_settings("colour", shape)


def test_students_accuracies_are_the_protocols(tiny_clips, tiny_test_clips):
    """The stage's students are evaluate_set's: the clean pairing holds seed by seed."""
    cfg = StudentConfig(
        model=ModelConfig(width=4, depth=1, norm="instance"),
        fit=FitConfig(steps=3, batch_size=8, lr=2e-3, optimizer="adamw"),
        labels="soft",
    )
    teacher = ModelConfig(width=4, depth=1).build(2, tiny_clips.clip_shape, seed=0).eval()
    expected = evaluate_set(
        tiny_clips, tiny_test_clips, cfg, teacher=teacher, seeds=(0, 1), progress=False
    )
    got = rb.students_accuracies(
        tiny_clips,
        {"a": tiny_test_clips, "b": tiny_test_clips.subset(range(5))},
        cfg,
        teacher=teacher,
        seeds=(0, 1),
    )
    assert got["a"] == expected.accs
    assert len(got["b"]) == 2


def fabricated_rows() -> list[dict]:
    """Clean 80 % for every pair, 1/2 frame rate 60 % for Random and 85 % for TSGD."""
    rows = []
    for method, perturbed in (("random", 0.6), ("tsgd", 0.85)):
        for seed in (0, 1, 2):
            for setting, clean, acc in (("clean", True, 0.8), ("1/2 frame rate", False, perturbed)):
                accs = [acc + 0.01 * seed, acc + 0.01 * seed + 0.02]
                rows.append(
                    dict(
                        axis="frame_rate",
                        setting=setting,
                        clean=clean,
                        method=method,
                        ipc=5,
                        distill_seed=seed,
                        accs=accs,
                    )
                )
    rows.append(dict(axis="frame_rate", setting="clean", clean=True, method="teacher", ipc=5,
                     distill_seed=0, accs=[0.9]))  # fmt: skip
    rows.append(dict(axis="frame_rate", setting="1/2 frame rate", clean=False, method="teacher",
                     ipc=5, distill_seed=0, accs=[0.7]))  # fmt: skip
    return rows


def test_table_columns_and_the_drops_sign():
    table = rb.robustness_table(fabricated_rows())
    assert list(table.columns) == rb.COLUMNS
    assert set(table["axis"]) <= set(rb.AXES)
    assert list(table["setting"])[:3] == ["clean"] * 3  # clean first
    row = table.set_index(["setting", "method"])
    random, tsgd = row.loc[("1/2 frame rate", "Random")], row.loc[("1/2 frame rate", "TSGD")]
    assert random["drop"] == pytest.approx(20.0)  # clean 80 minus 60: a loss is positive
    assert tsgd["drop"] == pytest.approx(-5.0)  # 85 > 80: a gain is negative
    assert random["mean"] == pytest.approx(62.0) and random["n"] == 6
    assert random["drop_ci_low"] == pytest.approx(20.0) == random["drop_ci_high"]
    assert random["ipc"] == 5 and random["labels"] == "soft"
    spread = [
        dict(fabricated_rows()[0], distill_seed=d, accs=[a, a]) for d, a in ((0, 1), (1, 0.9))
    ]
    wide = rb.robustness_table(spread).iloc[0]
    assert (wide["ci_low"], wide["ci_high"]) == (pytest.approx(31.47, abs=0.01), 100.0)  # clipped
    assert row.loc[("clean", "TSGD"), "drop"] == 0.0
    teacher = row.loc[("1/2 frame rate", "Teacher")]
    assert teacher["drop"] == pytest.approx(20.0) and math.isnan(teacher["ci_low"])
    assert pd.isna(teacher["ipc"]) and teacher["n"] == 1


def test_sentences_read_the_drop_the_right_way_round():
    table = rb.robustness_table(fabricated_rows())
    row = table.set_index(["setting", "method"])
    assert rb.drop_text(row.loc[("1/2 frame rate", "Random")].to_dict() | {"n": 6}).startswith(
        "62.0 %, 20.0 points below clean"
    )
    tsgd = rb.drop_text(row.loc[("1/2 frame rate", "TSGD")].to_dict())
    assert "5.0 points above clean" in tsgd and "resolved" in tsgd
    teacher = rb.drop_text(row.loc[("1/2 frame rate", "Teacher")].to_dict())
    assert teacher == "70.0 %, 20.0 points below clean (no interval)"
    level = {"mean": 50.0, "drop": 0.0, "drop_ci_low": -1.0, "drop_ci_high": 1.0, "n": 6}
    assert rb.drop_text(level) == "50.0 %, level with clean (drop [-1.0, +1.0], not resolved)"
    lines = rb.robustness_sentences(table)
    assert lines[0].startswith("frame rate, Random (clean: 82.0 %): 1/2 frame rate: 62.0 %, 20.0")
    assert any(line.startswith("frame rate, TSGD") and "above clean" in line for line in lines)


def test_best_other_method_comes_from_the_main_table(tmp_path):
    path = tmp_path / "main_table.csv"
    assert rb.best_other_method(path, 5) == "herding"  # no table yet
    pd.DataFrame(
        [
            ("Random", 5, "soft", 41.9),
            ("TSGD", 5, "soft", 50.0),
            ("DM", 5, "soft", 43.1),
            ("Herding", 5, "soft", 37.5),
            ("K-Center", 5, "hard", 60.0),
            ("K-Center", 1, "soft", 70.0),
        ],
        columns=["method", "ipc", "labels", "mean"],
    ).to_csv(path, index=False)
    assert rb.best_other_method(path, 5) == "dm"


@pytest.fixture
def torch_threads():
    """The stage sets one torch thread (the grid's teachers' keys name it): restore it after."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.xdist_group("robustness")
def test_smoke_run_writes_every_axis(tmp_path, torch_threads):
    out = tmp_path / "reports"
    run = functools.partial(
        rb.robustness,
        "smoke",
        methods=["random", "tsgd"],
        ipc=2,
        draws=(0, 1),
        out=out,
        cache_dir=tmp_path / "cache",
        workers=1,
    )
    table = run()
    csv = pd.read_csv(out / "robustness.csv")
    assert list(csv.columns) == rb.COLUMNS
    assert set(csv["axis"]) == set(rb.AXES)
    assert (out / "robustness.png").stat().st_size > 10_000
    assert "teacher -> student architecture" in (out / "robustness.md").read_text()
    students = table[table["method"] != "Teacher"]
    assert len(students) == 2 * (9 + 3 + 3 + 3)
    assert (students["n"] == 2 * 3).all()  # 2 draws x the smoke profile's 3 student seeds
    clean = students[students["setting"].str.startswith("clean")]
    assert (clean["drop"] == 0).all()
    assert students["mean"].between(0, 100).all()
    jobs = sorted((tmp_path / "cache" / "robustness").glob("*.json"))
    assert len(jobs) == 2 * 2 * (3 + 3)  # methods x draws x (3 teachers + 3 other axes)
    stamps = [p.stat().st_mtime_ns for p in jobs]
    again = run()
    pd.testing.assert_frame_equal(again, table)
    assert [p.stat().st_mtime_ns for p in jobs] == stamps  # the rerun computed nothing


def test_main_names_a_bad_ipc(capsys, tmp_path, torch_threads):
    code = robustness_cli.main(["--profile", "smoke", "--ipc", "99", "--cache", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "IPC 99" in err[0] and "smallest class" in err[0]

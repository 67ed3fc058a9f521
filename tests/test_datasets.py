"""Real datasets as part of an experiment: DataSpec, cache keys, uint8 clips, resumable decoding.

The dataset folders are the built-in benchmark's smoke clips written by `write_video_tree` as
encoded videos (H.264 .mp4 and MPEG-4 .avi, UCF101 / HMDB51 layouts) or PNG frame folders.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tsgd_core.cli import main
from tsgd_core.data import video_base, video_cache, video_decode
from tsgd_core.data.clips import ClipSet, DataError, UInt8Clips, single_frame, to_uint8
from tsgd_core.data.datasets import (
    DATASET_KINDS,
    MIN_STEPS_PER_EPOCH,
    DataSpec,
    WeakTeacherWarning,
    as_text,
    class_weights,
    data_warnings,
    folder_name,
    forget_identities,
    one_frame_sentence,
    one_frame_warning,
    small_test_warning,
    teacher_steps,
    val_test_gap_warning,
    warn_about_data,
    write_video_tree,
)
from tsgd_core.grid import experiments
from tsgd_core.training.teacher import ModelConfig, teacher_key, teacher_warnings

SIZE = (16, 16)


@pytest.fixture(scope="module")
def smoke():
    return experiments.load_data("smoke")


@pytest.fixture(scope="module")
def trees(smoke, tmp_path_factory):
    """The smoke benchmark as a UCF101, an HMDB51 and a frame-folder dataset."""
    root = tmp_path_factory.mktemp("trees")
    return {
        layout: write_video_tree(smoke, root / layout, layout)
        for layout in ("ucf101", "hmdb51", "frames")
    }


def spec_of(tree: Path, kind: str = "ucf101", **options) -> DataSpec:
    return DataSpec(kind, str(tree), frames=8, size=SIZE, **options)


# ----------------------------------------------------------------------------- UInt8Clips


@pytest.mark.parametrize("in_file", [False, True])
def test_uint8_clips_index_like_the_float_tensor(tmp_path, in_file):
    dense = torch.rand(7, 3, 4, 5, 6)
    raw = to_uint8(dense).reshape(7, -1).numpy()
    if in_file:
        raw.tofile(tmp_path / "clips.u8")
    clips = UInt8Clips(tmp_path / "clips.u8" if in_file else raw, (3, 4, 5, 6))
    expected = to_uint8(dense).float() / 255
    assert len(clips) == 7 and clips.shape == expected.shape and clips.ndim == 5
    index = torch.tensor([5, 1, 2, 3, 5])
    for key in (
        3,
        torch.tensor(4),
        slice(2, 6),
        index,
        [0, 6],
        (slice(None), slice(None), slice(1, 2)),
    ):
        assert torch.equal(clips[key], expected[key]), key
    assert torch.equal(torch.stack(list(clips)), expected)
    taken = clips.take(index)
    assert torch.equal(taken.float(), expected[index])
    one_frame = clips.select_time(slice(2, 3))
    assert one_frame.shape == (7, 3, 1, 5, 6)
    assert torch.equal(one_frame[[1, 2]], expected[[1, 2]][:, :, 2:3])


def test_clipset_on_uint8_clips_trains_per_batch():
    dense = torch.rand(6, 3, 2, 4, 4)
    clips = ClipSet(
        UInt8Clips(to_uint8(dense).reshape(6, -1).numpy(), (3, 2, 4, 4)),
        torch.arange(6) % 2,
        ["a", "b"],
    )
    assert clips.clip_shape == (3, 2, 4, 4)
    videos, labels = next(clips.batches(4))
    assert videos.dtype == torch.float32 and videos.shape == (4, 3, 2, 4, 4)
    assert torch.allclose(videos, dense[:4], atol=1 / 255)
    sub = clips.subset([1, 3])
    assert isinstance(sub.videos, torch.Tensor) and torch.equal(sub.labels, torch.tensor([1, 1]))
    split = single_frame(experiments.load_data("smoke"))  # dense data keeps its own path
    assert split.clip_shape[1] == 1


# ----------------------------------------------------------------------------- DataSpec


def test_dataspec_text_round_trip_and_bad_input(tmp_path):
    spec = DataSpec("hmdb51", str(tmp_path), frames=4, size=[8, 12], classes=["a", "b"])
    assert spec.size == (8, 12) and spec.classes == ("a", "b")
    assert DataSpec.from_text(spec.to_text()) == spec
    assert (
        as_text(
            {
                "kind": "hmdb51",
                "root": str(tmp_path),
                "frames": 4,
                "size": [8, 12],
                "classes": ["a", "b"],
            }
        )
        == spec.to_text()
    )
    assert as_text("") == "" and as_text(None) == ""
    for bad, message in (
        (dict(kind="youtube", root="x"), "unknown dataset"),
        (dict(kind="ucf101", root=""), "needs a root"),
        (dict(kind="ucf101", root="x", frames=0), "must be positive"),
    ):
        with pytest.raises(DataError, match=message):
            DataSpec(**bad)
    with pytest.raises(DataError, match="unknown dataset field"):
        DataSpec.from_text('{"kind": "ucf101", "root": "x", "fps": 3}')
    with pytest.raises(DataError, match="JSON"):
        DataSpec.from_text("ucf101:/data")
    assert DATASET_KINDS == video_base.KINDS


def test_identity_follows_content_and_settings_not_paths(trees, tmp_path):
    tree = trees["ucf101"]
    spec = spec_of(tree)
    moved = Path(shutil.copytree(tree, tmp_path / "copy"))
    assert spec_of(moved).identity() == spec.identity()
    assert replace(spec, frames=4).identity() != spec.identity()
    assert replace(spec, classes=("TranslateLeft", "TranslateUp")).identity() != spec.identity()
    assert replace(spec, val_fraction=0.3).identity() != spec.identity()
    # other pixels in one file: another dataset
    a, b = sorted((moved / "TranslateLeft").glob("*.mp4"))[:2]
    shutil.copyfile(a, b)
    forget_identities()  # identities are remembered per process
    assert spec_of(moved).identity() != spec.identity()


def test_run_keys_hold_the_dataset_only_for_real_data(trees, tmp_path):
    bench = experiments.RunSpec(method="tsgd", ipc=1, profile="smoke")
    assert set(bench.data_fields()) == {"profile", "data_key", "camera_shake"}
    ucf = replace(bench, dataset=spec_of(trees["ucf101"]).to_text())
    hmdb = replace(bench, dataset=spec_of(trees["hmdb51"], "hmdb51").to_text())
    keys = {s.distill_key() for s in (bench, ucf, hmdb)} | {
        s.eval_key() for s in (bench, ucf, hmdb)
    }
    assert len(keys) == 6
    # the same folder elsewhere: the same keys (results are found again)
    moved = shutil.copytree(trees["ucf101"], tmp_path / "moved")
    assert replace(ucf, dataset=spec_of(moved).to_text()).eval_key() == ucf.eval_key()
    with pytest.raises(ValueError, match="camera_shake"):
        replace(ucf, camera_shake=1.0)
    grid = experiments.build_dataset_grid("smoke", ucf.dataset)
    assert grid.shake == [] and all(s.dataset == ucf.dataset for s in grid.main + grid.ablation)
    assert len(grid.main) == len(experiments.build_grid("smoke").main)


def test_decoded_clips_and_teacher_key_do_not_depend_on_the_cache_path(trees, tmp_path, smoke):
    spec = spec_of(trees["ucf101"])
    first = spec.load(tmp_path / "a", progress=False)
    second = spec.load(tmp_path / "b" / ".." / "b", progress=False)
    assert first.config["identity"] == second.config["identity"] == spec.identity()
    cfg = ModelConfig(width=4, depth=1)
    fit = experiments.get_profile("smoke").teacher_fit
    assert teacher_key(first, cfg, fit, True) == teacher_key(second, cfg, fit, True)
    assert isinstance(first.train.videos, UInt8Clips)
    assert (tmp_path / "a" / "videos").is_dir()  # the one decode cache of CLI and API
    # the smoke clips survive encoding: class by class, the decoded test clips match
    assert first.class_names == ["TranslateRight", "TranslateLeft", "TranslateUp", "TranslateDown"]
    assert torch.equal(first.test.labels, smoke.test.labels)
    assert (first.test.videos.float() - smoke.test.videos).abs().mean() < 0.05


@pytest.mark.parametrize("layout", ["hmdb51", "frames"])
def test_other_layouts_of_the_same_clips(trees, smoke, tmp_path, layout):
    splits = spec_of(trees[layout], layout).load(tmp_path, progress=False)
    assert sorted(splits.class_names) == sorted(folder_name(n) for n in smoke.class_names)
    assert len(splits.train) + len(splits.val) == len(smoke.train) + len(smoke.val)
    assert splits.test.class_counts().tolist() == smoke.test.class_counts().tolist()
    by_name = {folder_name(n): i for i, n in enumerate(smoke.class_names)}
    # same clip order inside each class: compare the first test clip of every class
    for c, name in enumerate(splits.class_names):
        ours = splits.test.videos[splits.test.indices_of_class(c)[:1]]
        theirs = smoke.test.videos[smoke.test.indices_of_class(by_name[name])[:1]]
        assert (ours - theirs).abs().mean() < 0.05


# ----------------------------------------------------------------------------- decoding


def test_interrupted_decode_resumes_where_it_stopped(trees, tmp_path, monkeypatch):
    spec = spec_of(trees["ucf101"])
    reference = spec.load(tmp_path / "ref", progress=False)
    real_read = video_decode.read_clip
    calls = []

    def read_then_stop(path, *args, **kwargs):
        if len(calls) == 20:
            raise KeyboardInterrupt
        calls.append(path)
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(video_cache, "CHECKPOINT_S", 0.0)
    monkeypatch.setattr(video_cache, "read_clip", read_then_stop)
    with pytest.raises(KeyboardInterrupt):
        spec.load(tmp_path / "cache", progress=False, workers=1)
    (store,) = (tmp_path / "cache" / "videos").iterdir()
    status = np.load(store / video_cache.STATUS_FILE)
    assert (status == 1).sum() == 20 and not (store / video_cache.META_FILE).exists()
    calls.clear()
    monkeypatch.setattr(
        video_cache,
        "read_clip",
        lambda path, *a, **k: calls.append(path) or real_read(path, *a, **k),
    )
    resumed = spec.load(tmp_path / "cache", progress=False, workers=2)
    assert len(calls) == len(status) - 20  # only what was left
    for part in ("train", "val", "test"):
        a, b = getattr(resumed, part), getattr(reference, part)
        assert torch.equal(a.videos.float(), b.videos.float()) and torch.equal(a.labels, b.labels)


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_pyav_seeking_gives_the_pixels_of_a_full_decode(tmp_path, monkeypatch, ext):
    import av

    path = tmp_path / f"long{ext}"
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (90, 32, 48, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264" if ext == ".mp4" else "mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.gop_size = 10
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    sampled, seeks = video_decode._pyav_sampled_frames, []

    def counted(container, *args):
        seek = container.seek
        container_seeks = lambda *a, **k: seeks.append(a) or seek(*a, **k)  # noqa: E731
        return sampled(_SeekSpy(container, container_seeks), *args)

    monkeypatch.setattr(video_decode, "_pyav_sampled_frames", counted)
    seeking = video_decode.read_clip(path, 6, (16, 24), backend="pyav")
    # one seek to rewind after the keyframe scan, then one per sampled frame after the first
    # (keyframes every 10 frames, samples every 18): nothing decoded between them
    assert len(seeks) == 6
    monkeypatch.setattr(video_decode, "_pyav_sampled_frames", lambda *args: None)
    everything = video_decode.read_clip(path, 6, (16, 24), backend="pyav")
    assert np.array_equal(seeking, everything)


class _SeekSpy:
    """A PyAV container whose seek calls are recorded."""

    def __init__(self, container, seek) -> None:
        self._container, self.seek = container, seek

    def decode(self, *args, **kwargs):
        return self._container.decode(*args, **kwargs)

    def demux(self, *args, **kwargs):
        return self._container.demux(*args, **kwargs)


# ----------------------------------------------------------------------------- budgets and warnings


def test_teacher_budget_follows_the_dataset_size():
    assert teacher_steps(40, epochs=20, batch_size=32) == 20 * MIN_STEPS_PER_EPOCH
    assert teacher_steps(9500, epochs=20, batch_size=32) == 20 * 297
    assert class_weights(torch.tensor([0, 0, 1, 1]), 2) is None
    weights = class_weights(torch.tensor([0, 0, 0, 1]), 2)
    assert weights[1] == pytest.approx(3 * weights[0]) and weights.mean() == pytest.approx(1.0)


def test_weak_teacher_and_flat_soft_labels_are_named(smoke):
    teacher = ModelConfig(width=4, depth=1).build(smoke.num_classes, smoke.clip_shape, seed=0)
    messages = teacher_warnings(teacher, smoke.val, tau=4.0, profile="smoke")
    text = " ".join(messages)
    assert "teacher is weak" in text and "teacher_fit" in text
    assert "near uniform at tau 4" in text and "tau" in text and "labels='hard'" in text
    with torch.no_grad():  # a teacher that answers the label with certainty: nothing to say
        oracle = torch.nn.Module()
        oracle.forward = lambda x: (
            50 * torch.nn.functional.one_hot(smoke.val.labels[: len(x)], 4).float()
        )
        assert teacher_warnings(oracle, smoke.val, tau=1.0) == []


# ----------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_cli_teacher_and_evaluate_on_a_dataset_folder(trees, tmp_path, capsys):
    common = [
        "--profile",
        "smoke",
        "--dataset",
        "hmdb51",
        "--root",
        trees["hmdb51"],
        "--size",
        "16",
        "--cache-dir",
        tmp_path,
        "--quiet",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakTeacherWarning)
        assert main(["teacher", *map(str, common)]) == 0
        out = capsys.readouterr().out
        assert "dataset: hmdb51 split 1 (8x16x16): 48 train / 4 val / 16 test clips" in out
        artifact = tmp_path / "random.tsgd.pt"
        assert (
            main(
                [
                    "distill",
                    "--method",
                    "random",
                    "--ipc",
                    "1",
                    "--out",
                    str(artifact),
                    *map(str, common),
                ]
            )
            == 0
        )
        assert (
            main(
                [
                    "evaluate",
                    str(artifact),
                    "--labels",
                    "hard",
                    "--cache-dir",
                    str(tmp_path),
                    "--quiet",
                ]
            )
            == 0
        )
    out = capsys.readouterr().out
    assert "random_ipc1" in out and "hard labels" in out
    code = main(
        [
            "evaluate",
            str(artifact),
            "--dataset",
            "ucf101",
            "--root",
            str(trees["ucf101"]),
            "--cache-dir",
            str(tmp_path),
        ]
    )
    assert code == 2 and "records its own spec" in capsys.readouterr().err
    root = ["--root", str(trees["hmdb51"]), "--cache-dir", str(tmp_path)]
    assert main(["teacher", "--profile", "smoke", *root]) == 2
    assert "--root applies to a real dataset" in capsys.readouterr().err


def test_prediction_batches_hold_at_most_the_byte_budget(monkeypatch):
    import tsgd_core.training.train as train

    seen = []

    class Counting(torch.nn.Module):
        def forward(self, x):
            seen.append(len(x))
            return x.flatten(1)[:, :2]

    videos = torch.rand(10, 3, 2, 4, 4)
    monkeypatch.setattr(train, "PREDICT_BATCH_BYTES", 3 * 4 * videos[0].numel())
    logits = train.predict_logits(Counting(), videos, batch_size=256)
    assert seen == [3, 3, 3, 1] and torch.equal(logits, videos.flatten(1)[:, :2])


# ----------------------------------------------------------------------------- data checks


def test_test_far_below_val_is_warned_only_past_15_points():
    assert val_test_gap_warning(0.85, 1.0) is None  # exactly 15 points: not more than 15
    assert val_test_gap_warning(0.90, 0.80) is None  # test above val
    assert val_test_gap_warning(0.5, None) is None  # no validation split
    message = val_test_gap_warning(0.526, 1.0, num_val=6)
    assert "47.4 points below its validation accuracy (100.0 % on 6 validation clips)" in message
    assert val_test_gap_warning(0.849, 1.0) is not None


def test_one_frame_control_near_the_teacher_is_warned():
    assert one_frame_warning(0.10, 0.927) is None  # the benchmark: 82.7 points apart
    assert one_frame_warning(0.80, 0.90) is not None  # exactly 10 points: within 10
    assert one_frame_warning(0.799, 0.90) is None
    above = one_frame_warning(0.947, 0.526)
    assert "42.1 points above the teacher's 52.6 %" in above
    assert "temporal methods have little to find here" in above and "chance" not in above
    near_chance = one_frame_warning(0.25, 0.30, num_classes=4)
    assert "within 20 points of chance" in near_chance


def test_a_small_test_split_is_warned_below_50_clips():
    assert small_test_warning(50) is None  # one clip = 2 points exactly
    assert "49 clips: one clip is worth 2.04 points" in small_test_warning(49)
    assert "19 clips: one clip is worth 5.26 points" in small_test_warning(19)


def test_one_frame_sentence_reads_the_comparison_the_right_way_round():
    assert one_frame_sentence(0.927, 0.098) == (
        "The teacher on whole clips is 82.9 points above the one-frame control "
        "(92.7 % against 9.8 %)."
    )
    assert one_frame_sentence(0.526, 0.947) == (
        "The teacher on whole clips is 42.1 points below the one-frame control "
        "(52.6 % against 94.7 %)."
    )
    assert "level with" in one_frame_sentence(0.5, 0.5)


def test_data_warnings_print_one_line_each(capsys):
    found = data_warnings(
        test_acc=0.526, val_acc=1.0, num_val=6, num_test=19, num_classes=5, single_acc=0.947
    )
    assert [m.split()[1] for m in found] == ["teacher's", "one-frame", "test"]
    assert data_warnings(test_acc=0.9, val_acc=0.92, num_test=200, single_acc=0.1) == []
    warn_about_data(found)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith("tsgd: warning: the ") for line in lines)

"""Validation carved by source group, frames at the clip's own speed, and the shortcut check
(issue 29), on real UCF101 footage where it is at hand (a few clips of ../shared/ucf101-5,
copied) and on generated videos where a test needs control over the content."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tsgd_core.data.clips import DataError
from tsgd_core.data.datasets import DataSpec
from tsgd_core.data.real_video import carve_validation, list_video_dataset, load_video_dataset
from tsgd_core.data.video_base import REFERENCE_FPS, STRIDE
from tsgd_core.data.video_decode import read_clip, stride_indices
from tsgd_core.data.video_lists import group_rule, source_groups
from tsgd_core.data.video_properties import (
    ShortcutWarning,
    one_feature_accuracy,
    shortcut_scores,
    shortcut_warnings,
)

ROOT = Path(__file__).resolve().parents[1]
UCF5 = ROOT.parent / "shared" / "ucf101-5" / "UCF101"
CLASSES = ("ApplyEyeMakeup", "BasketballDunk")
TRAIN_GROUPS, TEST_GROUPS = range(8, 14), range(1, 3)  # 6 train / 2 test groups a class
CLIPS = (1, 2)  # c01, c02 of every group
TINY = dict(frames=2, size=(24, 32), progress=False, workers=1)  # decord needs >= 32 wide

needs_ucf5 = pytest.mark.skipif(
    not UCF5.is_dir(),
    reason=f"real footage {UCF5} is absent (the shared ucf101-5 folder of issue 29)",
)


def ucf_name(name: str, group: int, clip: int) -> str:
    return f"v_{name}_g{group:02d}_c{clip:02d}.avi"


@pytest.fixture(scope="module")
def ucf_subset(tmp_path_factory) -> Path:
    """UCF101 layout: 2 classes x (6 train + 2 test groups) x 2 clips, real files, copied."""
    if not UCF5.is_dir():
        pytest.skip(f"real footage {UCF5} is absent (the shared ucf101-5 folder of issue 29)")
    root = tmp_path_factory.mktemp("ucf5") / "UCF101"
    lines: dict[str, list[str]] = {"train": [], "test": []}
    for label, name in enumerate(CLASSES, start=1):
        (root / name).mkdir(parents=True)
        for part, groups in (("train", TRAIN_GROUPS), ("test", TEST_GROUPS)):
            for g in groups:
                for c in CLIPS:
                    shutil.copyfile(
                        UCF5 / name / ucf_name(name, g, c), root / name / ucf_name(name, g, c)
                    )
                    rel = f"{name}/{ucf_name(name, g, c)}"
                    lines[part].append(f"{rel} {label}" if part == "train" else rel)
    notes = root / "ucfTrainTestlist"
    notes.mkdir()
    crlf = "\r\n"
    (notes / "classInd.txt").write_text("".join(f"{i} {n}{crlf}" for i, n in enumerate(CLASSES, 1)))
    (notes / "trainlist01.txt").write_text("".join(f"{line}{crlf}" for line in lines["train"]))
    (notes / "testlist01.txt").write_text("".join(f"{line}{crlf}" for line in lines["test"]))
    return root


def group_of(path: str | Path) -> str:
    """A UCF101 clip's source: class and gXX."""
    match = re.search(r"v_(\w+)_(g\d+)_c\d+", Path(path).name)
    assert match, path
    return f"{match.group(1)}/{match.group(2)}"


# ----------------------------------------------------------------------------- val by group


@needs_ucf5
def test_ucf101_val_takes_whole_groups_never_shared_with_train(ucf_subset, tmp_path):
    # real footage gives itself away: BasketballDunk clips are 1.4-5 s, ApplyEyeMakeup's ~6.5 s
    with pytest.warns(ShortcutWarning) as warned:
        splits = load_video_dataset(
            "ucf101", ucf_subset, val_fraction=0.34, cache_dir=tmp_path / "cache", **TINY
        )
    given_away = {str(w.message).split(" predicts")[0] for w in warned}
    assert "clip length in seconds" in given_away  # and in frames: both, one warning each
    listing = list_video_dataset("ucf101", ucf_subset)
    # rows of train and val are rows of the listing's train part: name them through the carve
    groups = source_groups(listing, group_rule("ucf101"))
    labels = np.array([e.label for e in listing.train])
    for seed in range(4):
        train_idx, val_idx, _ = carve_validation(labels, groups, 0.34, seed, "ucf101 gXX")
        train_groups = {group_of(listing.train[i].path) for i in train_idx.tolist()}
        val_groups = {group_of(listing.train[i].path) for i in val_idx.tolist()}
        assert not train_groups & val_groups, f"seed {seed}: shared {train_groups & val_groups}"
        assert sorted(g.split("/")[0] for g in val_groups) == sorted(CLASSES * 2)  # 2 a class
        assert len(val_idx) == 2 * len(CLIPS) * len(CLASSES)  # whole groups: both clips
    # the loader's val is that carve (seed 0): 2 whole groups of each class
    assert len(splits.val) == 8 and len(splits.train) == 16
    assert splits.val.class_counts().tolist() == [4, 4]
    assert splits.config["val_carving"] == (
        "val: 2 of 6 groups per class, carved by group (ucf101 gXX)"
    )


@needs_ucf5
def test_group_carving_is_seeded_and_moves_the_identity(ucf_subset):
    listing = list_video_dataset("ucf101", ucf_subset)
    groups = source_groups(listing, group_rule("ucf101"))
    labels = np.array([e.label for e in listing.train])
    draws = [carve_validation(labels, groups, 0.34, seed)[1].tolist() for seed in (0, 0, 1, 2)]
    assert draws[0] == draws[1] and len({tuple(d) for d in draws}) > 1
    spec = DataSpec("ucf101", str(ucf_subset), frames=2, size=(24, 32))
    by_clip = replace(spec, group_pattern=r"(_c\d+)$")  # another rule: another val, another key
    assert by_clip.identity() != spec.identity()
    assert replace(spec, sampling="stride").identity() != spec.identity()
    assert DataSpec.from_text(spec.to_text()) == spec


def hmdb_tree(root: Path, titles: dict[str, list[str]]) -> Path:
    """HMDB51 layout of empty files (listing only): class -> titles, two clips a title; the
    first title of each class is its test video."""
    notes = root / "testTrainMulti_7030_splits"
    notes.mkdir(parents=True)
    for action, names in titles.items():
        (root / action).mkdir()
        lines = []
        for t, title in enumerate(names):
            for n in range(2):
                video = f"{title}_{action}_f_cm_np1_fr_med_{n}.avi"
                (root / action / video).write_bytes(b"")
                lines.append(f"{video} {2 if t == 0 else 1} ")
        (notes / f"{action}_test_split1.txt").write_text("\n".join(lines) + "\n")
    return root


def test_hmdb51_val_takes_whole_source_videos(tmp_path):
    # the film "Shared_Film" holds clips of both actions: it is one source, kept on one side
    titles = {
        "brush_hair": ["Test_A", "Film_1", "Film_2", "Film_3", "Shared_Film", "Film_4"],
        "ride_bike": ["Test_B", "Ride_1", "Ride_2", "Ride_3", "Shared_Film", "Ride_4"],
    }
    listing = list_video_dataset("hmdb51", hmdb_tree(tmp_path / "hmdb", titles))
    groups = source_groups(listing, group_rule("hmdb51"))
    assert groups[:2] == ["Film_1", "Film_1"]
    labels = np.array([e.label for e in listing.train])
    for seed in range(8):
        train_idx, val_idx, line = carve_validation(labels, groups, 0.3, seed, "hmdb51 title")
        train_titles = {groups[i] for i in train_idx.tolist()}
        val_titles = {groups[i] for i in val_idx.tolist()}
        assert not train_titles & val_titles, f"seed {seed}: shared {train_titles & val_titles}"
        assert set(labels[val_idx.numpy()].tolist()) == {0, 1}  # both actions have val clips
        assert line.startswith("val: ") and "carved by group (hmdb51 title)" in line


def test_frames_group_pattern_and_kinds_without_groups(tmp_path):
    root = tmp_path / "frames"
    for name in ("a", "b"):
        for source in range(4):
            for clip in range(3):
                (root / name / f"{name}_src{source}_clip{clip}").mkdir(parents=True)
    listing = list_video_dataset("frames", root)
    rule = group_rule("frames", r"_(src\d+)_")
    groups = source_groups(listing, rule)
    labels = np.array([e.label for e in listing.train])
    _, val_idx, line = carve_validation(labels, groups, 0.25, 0, rule)
    val_names = {listing.train[i].path.name.rsplit("_", 1)[0] for i in val_idx.tolist()}
    train_names = {e.path.name.rsplit("_", 1)[0] for e in listing.train} - val_names
    assert val_names and not val_names & {
        listing.train[i].path.name.rsplit("_", 1)[0]
        for i in range(len(listing.train))
        if i not in val_idx.tolist()
    }
    assert train_names and "carved by group (pattern _(src\\d+)_)" in line
    # without list files the test share takes whole sources too
    grouped = list_video_dataset("frames", root, test_fraction=0.25, group_pattern=r"_(src\d+)_")
    test_sources = {e.path.name.rsplit("_", 1)[0] for e in grouped.test}
    train_sources = {e.path.name.rsplit("_", 1)[0] for e in grouped.train}
    assert len(test_sources) == 2 and not test_sources & train_sources  # 1 of 4 a class
    assert len(grouped.test) == 6 and grouped.sources["test"].endswith(
        "by group (pattern _(src\\d+)_)"
    )
    spec = DataSpec("frames", str(root), frames=2, size=(24, 32))
    assert replace(spec, group_pattern=r"_(src\d+)_").identity() != spec.identity()
    # no rule (Kinetics, SSv2, frames without a pattern): clip by clip, as before
    assert group_rule("kinetics") is None and group_rule("frames") is None
    _, _, line = carve_validation(labels, source_groups(listing, None), 0.25, 0)
    assert "carved by clip (the clips come from distinct videos)" in line
    with pytest.raises(DataError, match="exactly one"):
        group_rule("frames", r"src\d+")
    with pytest.raises(DataError, match="matches no video name"):
        source_groups(listing, group_rule("frames", r"(nothing\d)"))
    with pytest.raises(DataError, match="not a regular expression"):
        DataSpec("frames", str(root), group_pattern="(")


# ----------------------------------------------------------------------------- stride sampling


BITS = 8  # a counter video's frame shows its index in binary: 8 stripes of 8 pixels


def encode_counter(path: Path, count: int, fps: int) -> Path:
    """A 64x32 video whose frame t shows t in binary (stripe b white where bit b is set)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 8 * BITS, 32, "yuv420p"
        stream.options = {"qscale": "1"}
        for t in range(count):
            bits = np.array([(t >> b) & 1 for b in range(BITS)], dtype=np.uint8) * 200 + 20
            image = np.repeat(np.repeat(bits, 8)[None, :, None], 32, 0).repeat(3, 2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def indices_seen(clip: np.ndarray) -> list[int]:
    """The index each frame of a counter clip (T, 32, 64, 3) shows."""
    centres = clip[:, 16, 4::8].astype(np.float64).mean(-1)  # the middle of every stripe
    return [int(sum(1 << b for b in range(BITS) if row[b] > 120)) for row in centres]


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_stride_takes_frames_at_the_clip_own_speed(tmp_path, backend):
    if backend == "decord":
        pytest.importorskip("decord")
    # 25 fps: STRIDE frames apart; 50 fps: twice as many source frames for the same time
    for fps, count in ((25, 60), (50, 60)):
        path = encode_counter(tmp_path / f"counter{fps}.avi", count, fps)
        step = STRIDE * fps // int(REFERENCE_FPS)
        start = (count - 1 - 7 * step) // 2  # centred window of 8 frames
        expected = np.clip(start + step * np.arange(8), 0, count - 1).tolist()
        clip = read_clip(path, 8, (32, 8 * BITS), backend=backend, sampling="stride")
        assert indices_seen(clip) == expected, (fps, indices_seen(clip), expected)
        spread = read_clip(path, 8, (32, 8 * BITS), backend=backend, sampling="spread")
        assert indices_seen(spread) == np.linspace(0, count - 1, 8).round().astype(int).tolist()
    # a video shorter than the window repeats its ends, centred
    assert stride_indices(10, 8, 25.0).tolist() == [0, 0, 0, 2, 6, 9, 9, 9]
    assert stride_indices(100, 4, None).tolist() == [43, 47, 51, 55]  # frame folder: 25 fps


@needs_ucf5
def test_stride_on_real_footage_reads_the_expected_source_frames(ucf_subset):
    import av

    path = ucf_subset / CLASSES[1] / ucf_name(CLASSES[1], 8, 1)
    with av.open(str(path)) as container:
        every = [
            f.to_ndarray(format="rgb24", width=16, height=12) for f in container.decode(video=0)
        ]
    expected = stride_indices(len(every), 8, 25.0)
    assert np.diff(expected).tolist() == [STRIDE] * 7  # UCF101 is 25 fps: the reference stride
    clip = read_clip(path, 8, (12, 16), backend="pyav", sampling="stride")
    assert np.array_equal(clip, np.stack([every[i] for i in expected]))


# ----------------------------------------------------------------------------- shortcut check


def length_tree(root: Path, lengths: dict[str, list[int]]) -> Path:
    """UCF101 layout of generated clips: class -> each training clip's frame count (one test
    clip a class); the pixels are the same noise in every class."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (40, 16, 16, 3), dtype=np.uint8)
    notes = root / "ucfTrainTestlist"
    notes.mkdir(parents=True)
    train, test = [], []
    for label, (name, counts) in enumerate(lengths.items(), start=1):
        (root / name).mkdir()
        for g, count in enumerate([counts[0], *counts], start=1):
            rel = f"{name}/{ucf_name(name, g, 1)}"
            write_video(root / rel, noise[:count])
            (test if g == 1 else train).append(rel if g == 1 else f"{rel} {label}")
    (notes / "classInd.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(lengths, 1)))
    (notes / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (notes / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


def write_video(path: Path, frames: np.ndarray) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def shortcut_messages(root: Path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_video_dataset("ucf101", root, val_fraction=0.2, **TINY)
    found = [str(w.message) for w in caught if issubclass(w.category, ShortcutWarning)]
    assert found == splits.config["shortcuts"]
    return found


def test_shortcut_warning_fires_when_clip_length_gives_the_class_away(tmp_path):
    short, long = [8, 9, 10, 11, 12, 13, 9, 11], [30, 31, 32, 33, 34, 35, 31, 33]
    found = shortcut_messages(length_tree(tmp_path / "ucf", {"Short": short, "Long": long}))
    assert len(found) == 2, found  # in frames and in seconds; fps, size and audio are equal
    assert found[0].startswith("clip length in frames predicts the class")
    assert found[1].startswith("clip length in seconds predicts the class")
    assert "try --sampling stride" in found[0]


def test_shortcut_warning_stays_silent_when_lengths_do_not_differ_by_class(tmp_path):
    lengths = [8, 12, 16, 20, 24, 28, 32, 36]
    mixed = {"Short": lengths, "Long": lengths[::-1]}
    assert shortcut_messages(length_tree(tmp_path / "ucf", mixed)) == []


def test_shortcut_check_names_categorical_properties_and_holds_chance():
    labels = np.repeat(np.arange(4), 10)
    audio = [{"audio": int(label == 0), "fps": 25.0} for label in labels.tolist()]
    scores = shortcut_scores(audio, labels, 4)
    assert set(scores) == {"audio"}  # fps is the same for every clip: not scored
    # audio tells class 0 from the rest, and its absence names one other class: balanced
    # accuracy (1 + 1) / 4 = 50 %, twice chance but not above it
    assert scores["audio"] == pytest.approx(0.5)
    assert shortcut_warnings(scores, 4, "spread") == []
    sizes = [{"frame_size": f"{160 * (1 + label)}x120"} for label in labels.tolist()]
    (message,) = shortcut_warnings(shortcut_scores(sizes, labels, 4), 4, "stride")
    assert message.startswith("frame size predicts the class") and "100 %" in message
    rng = np.random.default_rng(1)
    noise = [one_feature_accuracy(rng.normal(size=40), labels, 4) for _ in range(20)]
    assert np.mean(noise) < 0.35  # unrelated values stay near 25 % chance


def test_names_without_sources_are_groups_of_their_own_and_no_val_is_an_error(tmp_path):
    # HMDB51's rule reads only HMDB51-made names: a UCF-style name there has no title
    titles = {"clap": ["Test_A", "Film_1", "Film_2"], "run": ["Test_B", "Run_1", "Run_2"]}
    root = hmdb_tree(tmp_path / "hmdb", titles)
    (root / "clap" / "v_Clap_g01_c01.avi").write_bytes(b"")
    split_file = root / "testTrainMulti_7030_splits" / "clap_test_split1.txt"
    split_file.write_text(split_file.read_text() + "v_Clap_g01_c01.avi 1\n")
    listing = list_video_dataset("hmdb51", root)
    groups = source_groups(listing, group_rule("hmdb51"))
    assert groups == ["Film_1", "Film_1", "Film_2", "Film_2", None, "Run_1", "Run_1"] + [
        "Run_2",
        "Run_2",
    ]
    labels = np.array([e.label for e in listing.train])
    *_, line = carve_validation(labels, groups, 0.3, 0, "hmdb51 title")
    assert line.endswith("; clips without a group name (1) are groups of their own")
    one_source = np.array([0, 0, 1, 1, 1, 1])  # class 0 from one film, class 1 from two
    *_, line = carve_validation(one_source, ["A", "A", "B", "B", "C", "C"], 0.3, 0, "hmdb51 title")
    assert line == (
        "val: 0-1 of 1-2 groups per class, carved by group (hmdb51 title); "
        "1 class(es) with one group have no val clip"
    )
    # every training clip of each class from one source: nothing can be kept apart
    noise = np.random.default_rng(0).integers(0, 255, (6, 16, 16, 3), dtype=np.uint8)
    ucf = tmp_path / "ucf"
    (ucf / "ucfTrainTestlist").mkdir(parents=True)
    train, test = [], []
    for label, name in enumerate(("Clap", "Run"), start=1):
        (ucf / name).mkdir()
        for group, clip in ((1, 1), (8, 1), (8, 2), (8, 3)):
            rel = f"{name}/{ucf_name(name, group, clip)}"
            write_video(ucf / rel, noise)
            (test if group == 1 else train).append(rel if group == 1 else f"{rel} {label}")
    (ucf / "ucfTrainTestlist" / "classInd.txt").write_text("1 Clap\n2 Run\n")
    (ucf / "ucfTrainTestlist" / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (ucf / "ucfTrainTestlist" / "testlist01.txt").write_text("\n".join(test) + "\n")
    with pytest.raises(DataError, match="carved no validation clip: no class has two source"):
        load_video_dataset("ucf101", ucf, **TINY)
    assert len(load_video_dataset("ucf101", ucf, val_fraction=0.0, **TINY).val) == 0


def test_header_properties_are_kept_in_the_decode_cache_index(tmp_path, monkeypatch):
    from tsgd_core.data import video_properties

    lengths = {"Short": [8, 9, 10, 11], "Long": [30, 31, 32, 33]}
    root = length_tree(tmp_path / "ucf", lengths)
    cache = tmp_path / "cache"
    with pytest.warns(ShortcutWarning):
        load_video_dataset("ucf101", root, val_fraction=0.25, cache_dir=cache, **TINY)
    (store,) = cache.iterdir()
    meta = json.loads((store / "meta.json").read_text())
    assert [p["frames"] for p in meta["properties"]] == lengths["Short"] + lengths["Long"]
    assert {(p["fps"], p["frame_size"], p["audio"]) for p in meta["properties"]} == {
        (25.0, "16x16", 0)
    }

    def no_header_reads(path):
        raise AssertionError(f"read {path} although the index holds its properties")

    monkeypatch.setattr(video_properties, "video_properties", no_header_reads)
    with pytest.warns(ShortcutWarning):  # the check runs again, from the index
        again = load_video_dataset("ucf101", root, val_fraction=0.25, cache_dir=cache, **TINY)
    assert (
        again.config["shortcuts"]
        and "clip length in frames 100 %" in (again.config["shortcut_check"])
    )


def test_cli_data_prints_the_carving_and_takes_sampling_and_group_pattern(tmp_path, capsys):
    from tsgd_core.cli import main

    root = length_tree(tmp_path / "ucf", {"Clap": [8, 20, 12, 16], "Run": [16, 8, 20, 12]})
    common = ["data", "--dataset", "ucf101", "--root", str(root), "--frames", "4"]
    common += ["--size", "32", "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main([*common, "--sampling", "stride", "--val-fraction", "0.25"]) == 0
    out = capsys.readouterr().out
    assert "  val: 1 of 4 groups per class, carved by group (ucf101 gXX)\n" in out
    assert "shortcut check (one property, balanced, cross-validated): clip length" in out
    assert (tmp_path / "cache" / "videos").is_dir()
    # gXX across classes: a group named in both classes is one source, on one side
    assert main([*common, "--group-pattern", r"_(g\d+)_c", "--val-fraction", "0.25"]) == 0
    assert "carved by group (pattern _(g\\d+)_c)" in capsys.readouterr().out
    assert main([*common, "--group-pattern", "(g"]) == 2
    assert "is not a regular expression" in capsys.readouterr().err
    assert main(["data", "--profile", "smoke", "--sampling", "stride"]) == 2
    assert "--sampling applies to a real dataset" in capsys.readouterr().err

"""Real video loaders, tested on small video files encoded here with PyAV (H.264, MPEG-4, VP8).

Every clip shows a bright square sliding over a dark background; its class is the direction
(right, down, left), so reading a clip back and finding the square's motion checks decoding,
frame sampling and the label mapping at once.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from tsgd_core.data import video_cache, video_decode
from tsgd_core.data.clips import DataError
from tsgd_core.data.real_video import list_video_dataset, load_video_dataset
from tsgd_core.data.video_base import MINIUCF_CLASSES, SkippedVideoWarning, VideoDecodeError
from tsgd_core.data.video_decode import read_clip

ROOT = Path(__file__).resolve().parents[1]

HEIGHT, WIDTH = 48, 64
DIRECTIONS = ("right", "down", "left")
FRAMES, SIZE = 8, (24, 32)
UCF_CLASSES = ("ApplyEyeMakeup", "ApplyLipstick", "BalanceBeam")  # moving right, down, left
CODECS = {".avi": "mpeg4", ".mp4": "libx264", ".webm": "libvpx"}


def square_frames(direction: str, n: int) -> np.ndarray:
    """(n, H, W, 3) uint8: a 10x10 bright square crossing the frame in `direction`."""
    frames = np.full((n, HEIGHT, WIDTH, 3), 20, dtype=np.uint8)
    for t in range(n):
        s = t / (n - 1)
        x, y = {
            "right": (6 + 30 * s, 19),
            "left": (46 - 30 * s, 19),
            "down": (27, 4 + 28 * s),
        }[direction]
        frames[t, int(round(y)) : int(round(y)) + 10, int(round(x)) : int(round(x)) + 10] = 235
    return frames


def encode(path: Path, frames: np.ndarray) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(CODECS[path.suffix], rate=10)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def pool(tmp_path_factory) -> dict:
    """Encoded once: pool[(ext, direction)] = 4 files of 12-20 frames; plus a corrupt file."""
    folder = tmp_path_factory.mktemp("video_pool")
    videos = {}
    for ext in CODECS:
        for direction in DIRECTIONS:
            videos[(ext, direction)] = [
                encode(
                    folder / f"{direction}{i}{ext}", square_frames(direction, 12 + 2 * i + i % 2)
                )
                for i in range(4 if ext == ".avi" else 2)
            ]
    videos["short"] = encode(folder / "short.mp4", square_frames("right", 5))
    videos["corrupt"] = folder / "corrupt.avi"
    videos["corrupt"].write_bytes(os.urandom(3000))
    return videos


def direction_of(clip: np.ndarray | torch.Tensor) -> str:
    """Which way the bright square moves in a (T, H, W, 3) uint8 or (3, T, H, W) float clip."""
    if isinstance(clip, torch.Tensor):
        clip = (clip.permute(1, 2, 3, 0).numpy() * 255).astype(np.uint8)
    bright = clip.astype(np.float32).mean(-1) > 128
    ys, xs = np.arange(bright.shape[1]), np.arange(bright.shape[2])
    mass = bright.sum((1, 2))
    assert (mass > 0).all(), "the square vanished in some frame"
    cy = (bright.sum(2) * ys).sum(1) / mass
    cx = (bright.sum(1) * xs).sum(1) / mass
    dx, dy = cx[-1] - cx[0], cy[-1] - cy[0]
    assert max(abs(dx), abs(dy)) > 8, f"the square barely moved ({dx:.1f}, {dy:.1f})"
    return {0: "right", 1: "down", 2: "left"}[int(np.argmax([dx, dy, -dx]))]


def copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def make_ucf_tree(root: Path, pool: dict, corrupt_in: str | None = "ApplyEyeMakeup") -> Path:
    """3 classes x (3 train + 1 test) .avi, official split files, one corrupt train video."""
    notes = root / "ucfTrainTestlist"
    write_lines(notes / "classInd.txt", [f"{i + 1} {c}" for i, c in enumerate(UCF_CLASSES)])
    train, test = [], []
    for i, (name, direction) in enumerate(zip(UCF_CLASSES, DIRECTIONS, strict=True)):
        for g, src in enumerate(pool[(".avi", direction)]):
            rel = f"{name}/v_{name}_g{g + 1:02d}_c01.avi"
            copy(src, root / rel)
            (test if g == 0 else train).append(f"{rel} {i + 1}" if g else rel)
        if name == corrupt_in:
            rel = f"{name}/v_{name}_g09_c01.avi"
            copy(pool["corrupt"], root / rel)
            train.append(f"{rel} {i + 1}")
    write_lines(notes / "trainlist01.txt", train)
    write_lines(notes / "testlist01.txt", test)
    return root


def assert_labels_follow_motion(splits, directions: dict[str, str]) -> None:
    for part in (splits.train, splits.val, splits.test):
        for clip, label in zip(part.videos, part.labels.tolist(), strict=True):
            assert direction_of(clip) == directions[part.class_names[label]]


# ----------------------------------------------------------------------------- read_clip


@pytest.mark.parametrize("backend", ["decord", "pyav", "auto"])
@pytest.mark.parametrize("ext", [".avi", ".mp4", ".webm"])
def test_read_clip_samples_resizes_and_keeps_motion(pool, backend, ext):
    for direction in DIRECTIONS:
        clip = read_clip(pool[(ext, direction)][1], FRAMES, SIZE, backend=backend)
        assert clip.shape == (FRAMES, *SIZE, 3) and clip.dtype == np.uint8
        assert direction_of(clip) == direction


@pytest.mark.parametrize("ext", [".avi", ".mp4", ".webm"])
def test_decord_and_pyav_agree(pool, ext):
    path = pool[(ext, "down")][0]
    a = read_clip(path, FRAMES, SIZE, backend="decord").astype(np.int16)
    b = read_clip(path, FRAMES, SIZE, backend="pyav").astype(np.int16)
    assert np.abs(a - b).mean() < 2.0


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_short_video_repeats_frames_uniformly(pool, backend):
    clip = read_clip(pool["short"], FRAMES, SIZE, backend=backend)  # 5 frames -> 8
    assert clip.shape[0] == FRAMES
    distinct = [0] + [t for t in range(1, FRAMES) if not np.array_equal(clip[t], clip[t - 1])]
    assert len(distinct) == 5  # every source frame appears, in order, some twice
    assert direction_of(clip) == "right"
    assert video_decode.sample_indices(5, 8).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]
    assert video_decode.sample_indices(100, 4).tolist() == [0, 33, 66, 99]


def test_read_clip_frame_folder_sorts_naturally(tmp_path):
    import imageio.v3 as iio

    frames = square_frames("left", 12)
    for t, image in enumerate(frames):  # unpadded names: frame_10 must come after frame_9
        iio.imwrite(tmp_path / f"frame_{t}.png", image)
    clip = read_clip(tmp_path, FRAMES, SIZE)
    assert clip.shape == (FRAMES, *SIZE, 3)
    assert direction_of(clip) == "left"
    full = read_clip(tmp_path, 12, (HEIGHT, WIDTH))
    assert np.array_equal(full, frames)  # PNG is lossless and no resize was needed


@pytest.mark.parametrize("backend", ["decord", "pyav", "auto"])
def test_read_clip_raises_on_corrupt_or_missing(pool, tmp_path, backend):
    with pytest.raises(VideoDecodeError, match="corrupt.avi"):
        read_clip(pool["corrupt"], FRAMES, SIZE, backend=backend)
    with pytest.raises(VideoDecodeError, match="no such file"):
        read_clip(tmp_path / "nope.mp4", FRAMES, SIZE, backend=backend)
    with pytest.raises(DataError, match="backend"):
        read_clip(pool["short"], FRAMES, SIZE, backend="opencv")


def test_auto_backend_falls_back_to_pyav_without_decord(pool, monkeypatch):
    path = pool[(".mp4", "right")][0]
    expected = read_clip(path, FRAMES, SIZE, backend="pyav")
    monkeypatch.setattr(video_decode, "_decord_available", lambda: False)
    assert np.array_equal(read_clip(path, FRAMES, SIZE, backend="auto"), expected)
    with pytest.raises(DataError, match="pip install decord"):
        read_clip(path, FRAMES, SIZE, backend="decord")


# ----------------------------------------------------------------------------- UCF101 / MiniUCF


def test_ucf101_splits_labels_and_skipped_corrupt_video(pool, tmp_path):
    root = make_ucf_tree(tmp_path / "ucf", pool)
    with pytest.warns(SkippedVideoWarning) as caught:
        splits = load_video_dataset(
            "ucf101", root, frames=FRAMES, size=SIZE, val_fraction=0.34, progress=False
        )
    messages = [str(w.message) for w in caught]
    per_file = [m for m in messages if m.startswith("skipping")]
    assert len(per_file) == 1 and "v_ApplyEyeMakeup_g09_c01.avi" in per_file[0]
    summary = [m for m in messages if m.startswith("skipped")]
    assert len(summary) == 1 and summary[0].startswith("skipped 1 of 13 videos")

    assert splits.name == "ucf101-split1"
    assert splits.class_names == list(UCF_CLASSES)
    assert splits.clip_shape == (3, FRAMES, *SIZE)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 3, 3)
    assert splits.val.class_counts().tolist() == [1, 1, 1]
    assert splits.test.class_counts().tolist() == [1, 1, 1]
    v = splits.train.videos.float()
    assert v.dtype == torch.float32 and v.min() >= 0 and v.max() <= 1 and v.max() > 0.8
    assert_labels_follow_motion(splits, dict(zip(UCF_CLASSES, DIRECTIONS, strict=True)))
    assert splits.config["skipped"] == [str(root / "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi")]

    # same seed -> same validation clips; the train/val union never changes
    with pytest.warns(SkippedVideoWarning) as caught:
        again = load_video_dataset(
            "ucf101", root, frames=FRAMES, size=SIZE, val_fraction=0.34, progress=False
        )
    assert sum(str(w.message).startswith("skipped 1 of 13") for w in caught) == 1
    assert torch.equal(again.val.videos.float(), splits.val.videos.float())
    assert torch.equal(again.test.videos.float(), splits.test.videos.float())


def test_cache_is_reused_and_invalidated_by_file_changes(pool, tmp_path, monkeypatch):
    root = make_ucf_tree(tmp_path / "ucf", pool, corrupt_in=None)
    cache = tmp_path / "cache"
    kwargs = dict(frames=FRAMES, size=SIZE, cache_dir=cache, progress=False)
    first = load_video_dataset("ucf101", root, **kwargs)
    folders = list(cache.iterdir())
    assert len(folders) == 1 and folders[0].is_dir()
    # the rows, their status and the completion record; no temporary file left behind
    assert sorted(p.name for p in folders[0].iterdir()) == [
        "clips.u8",
        "meta.json",
        "rows.npy",
        "status.npy",
    ]
    assert first.config["cache_file"] == str(folders[0] / "clips.u8")

    def no_decoding(*args, **kwargs):
        raise RuntimeError("decoded although the cache should have been used")

    monkeypatch.setattr(video_cache, "read_clip", no_decoding)
    second = load_video_dataset("ucf101", root, **kwargs)
    for a, b in ((first.train, second.train), (first.val, second.val), (first.test, second.test)):
        assert torch.equal(a.videos.float(), b.videos.float()) and torch.equal(a.labels, b.labels)

    with pytest.raises(RuntimeError, match="decoded although"):  # other settings: new entry
        load_video_dataset("ucf101", root, **{**kwargs, "frames": FRAMES + 1})
    video = root / "BalanceBeam/v_BalanceBeam_g02_c01.avi"
    stat = video.stat()
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = load_video_dataset("ucf101", root, **kwargs)  # the content decides, not the date
    assert torch.equal(touched.test.videos.float(), first.test.videos.float())
    moved = shutil.copytree(root, tmp_path / "elsewhere")  # nor where the files are
    assert (
        load_video_dataset("ucf101", moved, **kwargs).config["identity"] == first.config["identity"]
    )
    copy(pool[(".avi", "right")][1], video)  # other pixels: decode again
    with pytest.raises(RuntimeError, match="decoded although"):
        load_video_dataset("ucf101", root, **kwargs)


def test_classes_and_max_per_class_restrict_the_listing(pool, tmp_path):
    root = make_ucf_tree(tmp_path / "ucf", pool, corrupt_in=None)
    listing = list_video_dataset("ucf101", root, classes=["BalanceBeam", "ApplyEyeMakeup"])
    assert listing.class_names == ["BalanceBeam", "ApplyEyeMakeup"]
    assert listing.counts("train") == [3, 3] and listing.counts("test") == [1, 1]
    assert all("BalanceBeam" in str(e.path) for e in listing.train if e.label == 0)
    capped = list_video_dataset("ucf101", root, max_per_class=2)
    assert capped.counts("train") == [2, 2, 2]
    kept = [e.path.name for e in capped.train if e.label == 0]
    assert kept == ["v_ApplyEyeMakeup_g02_c01.avi", "v_ApplyEyeMakeup_g04_c01.avi"]  # spread
    with pytest.raises(DataError, match="Skiing"):
        list_video_dataset("ucf101", root, classes=["Skiing"])


def test_ucf_accepts_frame_folders_and_letter_case_differences(pool, tmp_path):
    import imageio.v3 as iio

    root = make_ucf_tree(tmp_path / "ucf", pool, corrupt_in=None)
    video = root / "ApplyLipstick/v_ApplyLipstick_g02_c01.avi"
    video.unlink()  # replaced by its extracted frames
    video.with_suffix("").mkdir()
    for t, image in enumerate(square_frames("down", 14)):
        iio.imwrite(video.with_suffix("") / f"{t:04d}.png", image)
    renamed = root / "BalanceBeam/v_BalanceBeam_g03_c01.avi"
    renamed.rename(renamed.with_name("V_BALANCEBEAM_G03_C01.AVI"))
    listing = list_video_dataset("ucf101", root)
    paths = {e.path.name for e in listing.train}
    assert {"v_ApplyLipstick_g02_c01", "V_BALANCEBEAM_G03_C01.AVI"} <= paths
    splits = load_video_dataset("ucf101", root, frames=FRAMES, size=SIZE, progress=False)
    assert_labels_follow_motion(splits, dict(zip(UCF_CLASSES, DIRECTIONS, strict=True)))


def test_miniucf_class_list_and_loading(pool, tmp_path):
    assert len(MINIUCF_CLASSES) == 50 and len(set(MINIUCF_CLASSES)) == 50
    assert list(MINIUCF_CLASSES) == sorted(MINIUCF_CLASSES)
    assert "ApplyLipstick" not in MINIUCF_CLASSES and "BalanceBeam" in MINIUCF_CLASSES
    root = make_ucf_tree(tmp_path / "ucf", pool, corrupt_in=None)
    splits = load_video_dataset(
        "miniucf", root, frames=FRAMES, size=SIZE, classes=["ApplyEyeMakeup", "BalanceBeam"],
        progress=False,
    )  # fmt: skip
    assert splits.name == "miniucf-split1"
    assert splits.class_names == ["ApplyEyeMakeup", "BalanceBeam"]
    assert len(splits.test) == 2 and len(splits.train) + len(splits.val) == 6
    assert_labels_follow_motion(splits, {"ApplyEyeMakeup": "right", "BalanceBeam": "left"})
    with pytest.raises(DataError, match="MiniUCF needs UCF101 classes"):
        list_video_dataset("miniucf", root)  # this tiny classInd lacks most of the 50
    with pytest.raises(DataError, match="not MiniUCF classes"):
        list_video_dataset("miniucf", root, classes=["ApplyLipstick"])


# ----------------------------------------------------------------------------- other formats


def test_hmdb51_split_files(pool, tmp_path):
    root = tmp_path / "hmdb"
    classes = {"brush_hair": "right", "fall_floor": "down", "ride_bike": "left"}
    for name, direction in classes.items():
        lines = []
        for i, src in enumerate(pool[(".avi", direction)]):
            video = f"{name}_clip{i}.avi"
            flag = ["1", "1", "2", "0"][i]
            if flag != "0":  # videos marked unused need not be on disk
                copy(src, root / name / video)
            lines.append(f"{video} {flag} ")
        write_lines(root / "testTrainMulti_7030_splits" / f"{name}_test_split1.txt", lines)
    splits = load_video_dataset("hmdb51", root, frames=FRAMES, size=SIZE, progress=False)
    assert splits.class_names == sorted(classes)
    assert len(splits.train) + len(splits.val) == 6 and len(splits.test) == 3
    assert_labels_follow_motion(splits, classes)
    with pytest.raises(DataError, match="_test_split2.txt"):
        list_video_dataset("hmdb51", root, split=2)


def test_kinetics_csv_with_youtube_ids_and_with_paths(pool, tmp_path):
    root = tmp_path / "k400"
    labels = {"air drumming": "right", "abseiling": "left"}
    rows = []
    for label, direction in labels.items():
        for part, src, start in (("train", 0, 10), ("validate", 1, 30)):
            youtube_id = f"{label[:3]}-{part[:3]}_X"  # ids may hold '-' and '_'
            name = f"{youtube_id}_{start:06d}_{start + 10:06d}.mp4"
            # train videos under <split>/<label>/, validation videos flat under val/
            folder = root / "train" / label if part == "train" else root / "val"
            copy(pool[(".mp4", direction)][src], folder / name)
            rows.append([label, youtube_id, start, start + 10, part])
    for part in ("train", "validate"):
        with open(write_lines(root / "annotations" / f"{part}.csv", []), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            writer.writerows(r for r in rows if r[4] == part)
    splits = load_video_dataset(
        "kinetics", root, frames=FRAMES, size=SIZE, val_fraction=0.0, progress=False
    )
    assert splits.class_names == ["abseiling", "air drumming"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (2, 0, 2)
    assert_labels_follow_motion(splits, labels)

    # a "path" column instead of youtube ids, in a single CSV given explicitly
    table = tmp_path / "paths.csv"
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "path", "split"])
        for p in sorted(root.rglob("*.mp4")):
            label = "abseiling" if p.name.startswith("abs") else "air drumming"
            writer.writerow(
                [label, p.relative_to(root).as_posix(), "val" if "val" in p.parts else "train"]
            )
    listing = list_video_dataset("kinetics", root, annotations=table)
    assert listing.counts("train") == [1, 1] and listing.counts("test") == [1, 1]

    (root / "val" / next(iter((root / "val").iterdir())).name).unlink()
    with pytest.raises(DataError, match="on_missing='skip'"):
        list_video_dataset("kinetics", root)


def test_ssv2_json_annotations(pool, tmp_path):
    root = tmp_path / "ssv2"
    templates = {
        "Pushing something from left to right": "right",
        "Pushing something from right to left": "left",
    }
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "labels.json").write_text(
        json.dumps({name: str(i) for i, name in enumerate(templates)})
    )
    items = {"train": [], "validation": []}
    for k, (name, direction) in enumerate(templates.items()):
        for i, part in enumerate(("train", "validation")):
            video_id = str(1000 + 10 * k + i)
            copy(pool[(".webm", direction)][i], root / f"{video_id}.webm")
            template = name.replace("something", "[something]")
            items[part].append(
                {"id": video_id, "label": f"pushing a cup {k}", "template": template}
            )
    for part, entries in items.items():
        (root / "labels" / f"{part}.json").write_text(json.dumps(entries))
    splits = load_video_dataset(
        "ssv2", root, frames=FRAMES, size=SIZE, val_fraction=0.0, progress=False
    )
    assert splits.class_names == list(templates)
    assert (len(splits.train), len(splits.test)) == (2, 2)
    assert_labels_follow_motion(splits, templates)


def test_frame_folders_with_fraction_and_with_list_files(tmp_path):
    import imageio.v3 as iio

    root = tmp_path / "frames"
    for direction in ("right", "left"):
        for v in range(5):
            folder = root / direction / f"clip{v}"
            folder.mkdir(parents=True)
            for t, image in enumerate(square_frames(direction, 10 + v)):
                iio.imwrite(folder / f"img_{t:05d}.jpg", image, quality=95)
    splits = load_video_dataset(
        "frames", root, frames=FRAMES, size=SIZE, val_fraction=0.25, seed=3, progress=False
    )
    assert splits.class_names == ["left", "right"]
    assert splits.test.class_counts().tolist() == [1, 1]  # 0.2 of 5 per class
    assert splits.val.class_counts().tolist() == [1, 1]
    assert_labels_follow_motion(splits, {"left": "left", "right": "right"})
    other_seed = load_video_dataset(
        "frames", root, frames=FRAMES, size=SIZE, val_fraction=0.25, seed=4, progress=False
    )
    assert torch.equal(
        other_seed.test.videos.float(), splits.test.videos.float()
    )  # test does not move with seed

    write_lines(root / "testlist.txt", ["left/clip0", "left/clip1", "right/clip4"])
    listing = list_video_dataset("frames", root)
    assert listing.counts("test") == [2, 1] and listing.counts("train") == [3, 4]
    write_lines(root / "testlist.txt", ["left/clip9"])
    with pytest.raises(DataError, match="left/clip9"):
        list_video_dataset("frames", root)


# ----------------------------------------------------------------------------- errors


def test_missing_root_unknown_kind_and_bad_arguments(tmp_path, pool):
    with pytest.raises(DataError, match="does not exist"):
        load_video_dataset("ucf101", tmp_path / "absent", frames=FRAMES, size=SIZE)
    with pytest.raises(DataError, match="unknown kind"):
        load_video_dataset("ucf202", tmp_path, frames=FRAMES, size=SIZE)
    root = make_ucf_tree(tmp_path / "ucf", pool, corrupt_in=None)
    with pytest.raises(DataError, match="unknown split"):
        list_video_dataset("ucf101", root, split=4)
    with pytest.raises(DataError, match="trainlist02.txt"):
        list_video_dataset("ucf101", root, split=2)
    with pytest.raises(DataError, match="val_fraction"):
        load_video_dataset("ucf101", root, frames=FRAMES, size=SIZE, val_fraction=1.0)
    with pytest.raises(DataError, match="no classInd.txt"):
        list_video_dataset("ucf101", tmp_path / "ucf" / "ApplyEyeMakeup")


def test_split_file_naming_a_missing_video(pool, tmp_path):
    root = make_ucf_tree(tmp_path / "ucf", pool, corrupt_in=None)
    (root / "ApplyLipstick/v_ApplyLipstick_g03_c01.avi").unlink()
    with pytest.raises(DataError) as error:
        list_video_dataset("ucf101", root)
    message = str(error.value)
    assert "v_ApplyLipstick_g03_c01.avi" in message and "trainlist01.txt" in message
    with pytest.warns(SkippedVideoWarning, match="v_ApplyLipstick_g03_c01.avi"):
        listing = list_video_dataset("ucf101", root, on_missing="skip")
    assert listing.counts("train") == [3, 2, 3]


def test_class_without_any_readable_video(pool, tmp_path):
    root = make_ucf_tree(tmp_path / "ucf", pool, corrupt_in=None)
    copy(pool["corrupt"], root / "BalanceBeam/v_BalanceBeam_g01_c01.avi")  # its only test video
    with pytest.warns(SkippedVideoWarning), pytest.raises(DataError) as error:
        load_video_dataset("ucf101", root, frames=FRAMES, size=SIZE, progress=False)
    message = str(error.value)
    assert "'BalanceBeam'" in message and "test split" in message
    assert "v_BalanceBeam_g01_c01.avi" in message

    empty = tmp_path / "frames"
    (empty / "walk" / "clip0").mkdir(parents=True)
    (empty / "run").mkdir()
    with pytest.raises(DataError, match="run holds no video folders"):
        list_video_dataset("frames", empty)


# ----------------------------------------------------------------------------- stderr is kept


def test_overlapping_native_stderr_captures_restore_fd2(capfd):
    """Thread A enters, B enters, A leaves, B leaves: fd 2 must be the real one afterwards
    (swapping fd 2 per thread restored B's saved sink last and lost stderr for good)."""
    import threading

    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    caught: dict[str, list[str]] = {}

    def first() -> None:
        with video_decode._native_stderr_captured() as lines:
            os.write(2, b"noise from A\n")
            a_in.set()
            b_in.wait(5)
        caught["a"] = lines
        a_out.set()

    def second() -> None:
        a_in.wait(5)
        with video_decode._native_stderr_captured() as lines:
            b_in.set()
            a_out.wait(5)
            os.write(2, b"noise from B\n")
        caught["b"] = lines

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    os.write(2, b"marker after the decoders\n")
    err = capfd.readouterr().err
    assert "marker after the decoders" in err
    assert "noise from" not in err  # the decoders' lines stay out of the terminal
    assert caught["a"] == ["noise from A"] and "noise from B" in caught["b"]


def test_stderr_reaches_fd2_after_decoding_with_several_workers(pool, tmp_path, capfd):
    from concurrent.futures import ThreadPoolExecutor

    files = [p for key, paths in pool.items() if isinstance(key, tuple) for p in paths]
    files = (files + [pool["corrupt"]] * 4) * 3

    def decode(path: Path) -> str:
        try:
            read_clip(path, FRAMES, SIZE, backend="decord")
        except VideoDecodeError as error:
            return error.reason
        return ""

    with ThreadPoolExecutor(max_workers=4) as workers:
        reasons = [r for r in workers.map(decode, files) if r]
    assert len(reasons) == 12 and all(r.startswith("decord") for r in reasons)
    os.write(2, b"marker after decoding\n")
    assert "marker after decoding" in capfd.readouterr().err


def test_progress_and_warnings_stay_visible_while_decoders_silence_fd2(capfd):
    import sys

    with video_decode.python_stderr_visible(), video_decode._native_stderr_captured() as lines:
        os.write(2, b"decoder noise\n")
        print("a warning for the user", file=sys.stderr)
    err = capfd.readouterr().err
    assert "a warning for the user" in err and "decoder noise" not in err
    assert lines == ["decoder noise"]


def test_capturing_fd2_while_sys_stderr_is_kept_visible_does_not_deadlock(monkeypatch):
    """The redirect flushes sys.stderr under its lock; while decoding, sys.stderr is the wrapper
    that takes the same lock (with a plain Lock the first decode of a grid run hung forever)."""
    import sys
    import threading

    from tsgd_core.data.video_decode import _native_stderr_captured, python_stderr_visible

    # a sys.stderr on fd 2, as in a terminal or run_grid's workers (pytest's capture is not)
    monkeypatch.setattr(sys, "stderr", open(2, "w", closefd=False))  # noqa: SIM115
    done = threading.Event()

    def decode_like() -> None:
        with python_stderr_visible():
            with _native_stderr_captured() as lines:
                os.write(2, b"native noise\n")
            assert lines == ["native noise"]
        done.set()

    worker = threading.Thread(target=decode_like, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done.is_set(), "capturing fd 2 under the visible-stderr wrapper deadlocked"


def test_webm_encodes_after_the_decord_backend_was_loaded(tmp_path):
    """decord brings its own FFmpeg into the global symbol scope; loaded before PyAV's, PyAV's
    libvpx encoder failed (EINVAL). Loading the decord backend keeps PyAV's FFmpeg first."""
    pytest.importorskip("decord")
    code = textwrap.dedent(
        f"""
        from tsgd_core.data.video_decode import _decord_available
        assert _decord_available()
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_real_video import encode, square_frames
        encode(__import__("pathlib").Path({str(tmp_path / "after.webm")!r}), square_frames("right", 12))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "after.webm").stat().st_size > 0

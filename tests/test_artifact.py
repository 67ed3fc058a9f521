"""Distilled-set files (save/load, format, atomic writes) and watchable GIF/MP4 exports."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tsgd_core.data import artifact
from tsgd_core.data.artifact import (
    DistilledSet,
    clip_grid_frames,
    export,
    export_gif,
    export_mp4,
    load_distilled,
    read_distilled_record,
    save_distilled,
)
from tsgd_core.data.clips import ClipSet, DataError

# exactly representable in uint8 and in a GIF palette
COLOURS = torch.tensor(
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
)


def make_set(
    num_classes: int = 3, ipc: int = 2, t: int = 4, size: int = 6, soft: bool = True
) -> DistilledSet:
    g = torch.Generator().manual_seed(0)
    n = num_classes * ipc
    return DistilledSet(
        videos=torch.rand(n, 3, t, size, size, generator=g),
        labels=torch.arange(num_classes).repeat_interleave(ipc),
        class_names=[f"class_{c}" for c in range(num_classes)],
        method="tsgd",
        ipc=ipc,
        config={"lr": 0.1, "steps": 5, "nested": {"frames": [1, 2], "flag": True, "x": None}},
        seed=7,
        soft_labels=torch.softmax(torch.randn(n, num_classes, generator=g), 1) if soft else None,
        teacher_key="convnet3d-abc123",
        history={"loss": [1.0, 0.5, 0.25], "acc": [0.1, 0.2]},
    )


def solid_clips(num_classes: int, ipc: int, t: int = 3, size: int = 4) -> ClipSet:
    """Clip (c, i) is one solid colour COLOURS[(c + i) % 5]; frame k is darkened by k/(t+1)."""
    c = torch.arange(num_classes).repeat_interleave(ipc)
    i = torch.arange(ipc).repeat(num_classes)
    colours = COLOURS[(c + i) % len(COLOURS)]  # (N, 3)
    fade = 1 - torch.arange(t) / (t + 1)  # frames differ so GIF writers keep them all
    videos = colours[:, :, None, None, None] * fade[None, None, :, None, None]
    videos = videos.expand(-1, -1, -1, size, size).contiguous()
    return ClipSet(videos, c, [f"c{k}" for k in range(num_classes)])


def cell_centre(row: int, col: int, cell: int, gap: int = 2) -> tuple[int, int]:
    return gap + row * (cell + gap) + cell // 2, gap + col * (cell + gap) + cell // 2


def assert_sets_equal(a: DistilledSet, b: DistilledSet) -> None:
    assert torch.equal(a.videos, b.videos) and b.videos.dtype == torch.float32
    assert torch.equal(a.labels, b.labels) and b.labels.dtype == torch.int64
    if a.soft_labels is None:
        assert b.soft_labels is None
    else:
        assert torch.equal(a.soft_labels, b.soft_labels)
    assert (a.class_names, a.method, a.ipc, a.seed) == (b.class_names, b.method, b.ipc, b.seed)
    assert (a.config, a.teacher_key, a.history) == (b.config, b.teacher_key, b.history)


# ----------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("soft", [True, False])
def test_round_trip_keeps_everything(tmp_path: Path, soft: bool) -> None:
    ds = make_set(soft=soft)
    ds.teacher_key = ds.teacher_key if soft else None
    path = save_distilled(ds, tmp_path / "deep" / "er" / "set.tsgd.pt")
    assert path == tmp_path / "deep" / "er" / "set.tsgd.pt" and path.is_file()
    assert_sets_equal(ds, load_distilled(path))
    assert_sets_equal(ds, DistilledSet.load(ds.save(tmp_path / "again.tsgd.pt")))


def test_file_is_a_plain_dict_loadable_with_torch_alone(tmp_path: Path) -> None:
    ds = make_set(soft=False)
    record = torch.load(save_distilled(ds, tmp_path / "s.tsgd.pt"), weights_only=True)
    assert record["format"] == "tsgd.distilled" and record["format_version"] == 1
    assert record["videos"].dtype == torch.float32 and torch.equal(record["videos"], ds.videos)
    assert torch.equal(record["labels"], ds.labels)
    assert "soft_labels" not in record
    assert record["method"] == "tsgd" and record["ipc"] == 2 and record["seed"] == 7
    assert set(record["versions"]) == {"tsgd", "torch", "numpy", "python"}
    assert record["versions"]["torch"] == torch.__version__
    assert record["created"].endswith("+00:00") and record["created"][:2] == "20"
    assert set(artifact.REQUIRED_KEYS) <= set(record)


def test_half_stores_float16_and_loads_float32(tmp_path: Path) -> None:
    ds = make_set()
    path = save_distilled(ds, tmp_path / "h.tsgd.pt", half=True)
    assert torch.load(path, weights_only=True)["videos"].dtype == torch.float16
    back = load_distilled(path)
    assert back.videos.dtype == torch.float32
    assert torch.allclose(back.videos, ds.videos, atol=1e-3)
    assert not torch.equal(back.videos, ds.videos)


def test_saving_a_view_stores_only_the_view(tmp_path: Path) -> None:
    big = torch.rand(200, 3, 4, 8, 8)
    ds = make_set(num_classes=2, ipc=1, size=8, soft=False)
    ds.videos = big[:2]
    small = save_distilled(ds, tmp_path / "view.tsgd.pt").stat().st_size
    assert small < big.numel() * 4 / 20


def test_numpy_scalars_in_config_become_python_numbers(tmp_path: Path) -> None:
    ds = make_set()
    ds.config = {"acc": np.float32(0.5), "n": np.int64(3)}
    back = load_distilled(save_distilled(ds, tmp_path / "np.tsgd.pt"))
    assert back.config == {"acc": 0.5, "n": 3} and type(back.config["n"]) is int


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    save_distilled(make_set(), tmp_path / "a.tsgd.pt")
    export_gif(solid_clips(2, 1), tmp_path / "a.gif")
    export_mp4(solid_clips(2, 1), tmp_path / "a.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4", "a.tsgd.pt"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_distilled(make_set(), tmp_path / "keep.tsgd.pt")
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_distilled(make_set(num_classes=2, ipc=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tsgd.pt"]


def test_failed_export_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tsgd_core.data import artifact

    path = export_gif(solid_clips(2, 1), tmp_path / "keep.gif")
    before = path.read_bytes()

    def broken_write(tmp, *args, **kwargs):
        Path(tmp).write_bytes(b"GIF89a")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(artifact, "_write_gif", broken_write)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        export_gif(solid_clips(3, 2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.gif"]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.tsgd.pt"
    with pytest.raises(DataError, match="no distilled set at .*nope.tsgd.pt"):
        load_distilled(path)
    with pytest.raises(DataError, match="not a file"):
        load_distilled(tmp_path)


def test_not_a_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.tsgd.pt"
    path.write_text("hello")
    with pytest.raises(DataError, match="not a tsgd distilled-set file.*save_distilled"):
        load_distilled(path)


def test_other_torch_file_says_what_was_found(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.ones(2)}, path)
    with pytest.raises(DataError, match="found format=None"):
        load_distilled(path)
    torch.save(torch.ones(2), path)
    with pytest.raises(DataError, match="found a Tensor"):
        load_distilled(path)


def test_unpicklable_objects_are_refused_as_not_tsgd(tmp_path: Path) -> None:
    path = tmp_path / "obj.tsgd.pt"
    torch.save({"format": "tsgd.distilled", "thing": Path("x")}, path)
    with pytest.raises(DataError, match="Python objects other than tensors") as caught:
        load_distilled(path)
    assert "weights_only" not in str(caught.value) and "\n" not in str(caught.value)


def test_wrong_format_version(tmp_path: Path) -> None:
    path = save_distilled(make_set(), tmp_path / "v.tsgd.pt")
    record = torch.load(path, weights_only=True)
    record["format_version"] = 2
    torch.save(record, path)
    with pytest.raises(DataError, match="format_version=2 .* reads version 1"):
        load_distilled(path)
    record["format_version"] = 1
    del record["history"]
    torch.save(record, path)
    with pytest.raises(DataError, match=r"missing keys \['history'\]"):
        load_distilled(path)
    assert read_distilled_record(save_distilled(make_set(), path))["ipc"] == 2


def test_save_checks_ipc_per_class(tmp_path: Path) -> None:
    ds = make_set(num_classes=3, ipc=2)
    ds.labels = torch.tensor([0, 0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"ipc=2 .* 'class_0' has 3, 'class_2' has 1"):
        save_distilled(ds, tmp_path / "bad.tsgd.pt")
    ds = make_set(num_classes=3, ipc=2)
    ds.ipc = 1
    with pytest.raises(ValueError, match="ipc=1"):
        save_distilled(ds, tmp_path / "bad.tsgd.pt")
    assert not (tmp_path / "bad.tsgd.pt").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: setattr(d, "videos", d.videos[:, 0]), "5-D"),
        (lambda d: setattr(d, "videos", (d.videos * 255).to(torch.uint8)), "float"),
        (lambda d: d.videos.__setitem__((0, 0, 0, 0, 0), float("nan")), "NaN"),
        (lambda d: setattr(d, "labels", d.labels[:-1]), r"labels must be .* shape \(6,\)"),
        (lambda d: setattr(d, "labels", d.labels + 1), r"\[0, 3\)"),
        (lambda d: setattr(d, "soft_labels", torch.ones(6, 2)), r"soft_labels .* \(6, 3\)"),
        (lambda d: setattr(d, "config", {"path": Path("x")}), r"config\['path'\] is a"),
        (lambda d: setattr(d, "history", {"loss": ["a"]}), r"history\['loss'\]"),
        (lambda d: setattr(d, "method", ""), "method"),
    ],
)
def test_save_refuses_bad_sets(tmp_path: Path, change, message: str) -> None:
    ds = make_set()
    change(ds)
    with pytest.raises(ValueError, match=message):
        save_distilled(ds, tmp_path / "bad.tsgd.pt")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- grids and export


def test_grid_places_class_c_instance_i_at_row_c_column_i() -> None:
    clips = solid_clips(num_classes=3, ipc=2, t=3, size=4)
    order = torch.tensor([5, 0, 3, 1, 4, 2])  # shuffled: the grid must not depend on set order
    frames = clip_grid_frames(clips.videos[order], clips.labels[order], 3, scale=2)
    cell, gap = 4 * 2, 2
    assert frames.shape == (3, 3 * cell + 4 * gap, 2 * cell + 3 * gap, 3)
    assert frames.dtype == np.uint8
    for c in range(3):
        for i in range(2):
            # instance i of class c is the i-th clip of class c in the (shuffled) set
            src = order[clips.labels[order] == c][i]
            y, x = cell_centre(c, i, cell)
            for k in range(3):
                want = (clips.videos[src, :, k, 0, 0] * 255).round().byte().numpy()
                assert np.array_equal(frames[k, y, x], want)
    assert (frames[:, :gap] == 255).all() and (
        frames[:, :, cell + gap : cell + 2 * gap] == 255
    ).all()


def test_grid_short_classes_grey_clips_and_per_row() -> None:
    videos = torch.full((3, 1, 2, 2, 2), 0.5)
    frames = clip_grid_frames(videos, torch.tensor([0, 0, 2]), 3, scale=1, gap=1)
    assert frames.shape == (2, 3 * 3 + 1, 2 * 3 + 1, 3)
    assert (frames[:, 1:3, 1:3] == 128).all() and (frames[:, 1:3, 4:6] == 128).all()
    assert (frames[:, 4:6, 1:3] == 255).all()  # class 1 has no clips: an empty row
    assert (frames[:, 7:9, 1:3] == 128).all() and (frames[:, 7:9, 4:6] == 255).all()
    wrapped = clip_grid_frames(torch.rand(5, 3, 2, 4, 4), None, None, 1, per_row=2)
    assert wrapped.shape == (2, 3 * 4 + 4 * 2, 2 * 4 + 3 * 2, 3)


def test_grid_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(RGB\\)"):
        clip_grid_frames(torch.rand(2, 2, 2, 4, 4), None, None, 1)
    with pytest.raises(ValueError, match="5-D"):
        clip_grid_frames(torch.rand(2, 3, 4, 4), None, None, 1)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        clip_grid_frames(torch.rand(2, 3, 2, 4, 4), torch.tensor([0, 2]), 2, 1)


def test_gif_has_t_frames_grid_size_and_colours(tmp_path: Path) -> None:
    import imageio.v3 as iio

    clips = solid_clips(num_classes=3, ipc=2, t=4, size=4)
    ds = DistilledSet(clips.videos, clips.labels, clips.class_names, "random", ipc=2)
    path = export_gif(ds, tmp_path / "grid.gif", fps=5, scale=3, captions=False)
    frames = iio.imread(path, index=None)
    cell = 4 * 3
    assert frames.shape == (4, 3 * cell + 4 * 2, 2 * cell + 3 * 2, 3)
    assert iio.immeta(path)["duration"] == 200 and iio.immeta(path)["loop"] == 0
    assert np.array_equal(frames, clip_grid_frames(ds.videos, ds.labels, 3, 3))
    y, x = cell_centre(2, 1, cell)
    assert np.array_equal(frames[0, y, x], [255, 255, 0])  # COLOURS[(2 + 1) % 5]


def test_mp4_decodes_with_pyav_and_decord(tmp_path: Path) -> None:
    import av
    import decord

    clips = solid_clips(num_classes=3, ipc=3, t=5, size=5)  # 3 * 5 + 4 * 2 = 23: odd sizes
    path = export_mp4(clips, tmp_path / "grid.mp4", fps=4, scale=1, captions=False)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 5
    h, w, _ = decoded[0].shape
    assert (h, w) == (24, 32) and h % 2 == 0 and w % 32 == 0
    y, x = cell_centre(1, 0, 5)
    assert np.abs(decoded[0][y, x].astype(int) - [0, 255, 0]).max() < 40  # lossy, but green
    reader = decord.VideoReader(str(path))
    assert len(reader) == 5 and reader[0].shape == (24, 32, 3)
    assert math.isclose(reader.get_avg_fps(), 4.0)


def test_export_dispatches_on_suffix(tmp_path: Path) -> None:
    videos = solid_clips(2, 1).videos
    assert export(videos, tmp_path / "x.gif", scale=1).is_file()
    assert export(videos, tmp_path / "x.MP4", scale=2).is_file()
    with pytest.raises(ValueError, match=r"unknown suffix '\.avi'.*\.gif, \.mp4"):
        export(videos, tmp_path / "x.avi")
    with pytest.raises(ValueError, match="must end in .gif"):
        export_gif(videos, tmp_path / "x.png")
    for fps in (0, 0.0001, float("inf"), float("nan")):  # a rate no GIF or MP4 keeps
        with pytest.raises(ValueError, match=r"fps must lie in \[0.01, 50\]"):
            export_mp4(videos, tmp_path / "y.mp4", fps=fps)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.MP4", "x.gif"]


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os

    from tsgd_core.data.storage import save_json

    path = save_json({"a": 1}, tmp_path / "x.json")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask

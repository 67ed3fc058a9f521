"""The decode cache checks its entries before use: damaged rows are decoded again, never used."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tsgd_core.data import video_cache
from tsgd_core.data.real_video import load_video_dataset
from tsgd_core.data.storage import CacheRepairWarning

FRAMES, SIZE = 4, (16, 16)
VIDEOS_PER_CLASS = 4


@pytest.fixture(scope="module")
def frames_root(tmp_path_factory) -> Path:
    """Two classes of frame folders: a bright bar moving right or left."""
    import imageio.v3 as iio

    root = tmp_path_factory.mktemp("frames")
    for direction in ("right", "left"):
        for v in range(VIDEOS_PER_CLASS):
            folder = root / direction / f"clip{v}"
            folder.mkdir(parents=True)
            for t in range(6):
                image = np.full((16, 16, 3), 20 + 10 * v, dtype=np.uint8)
                x = (2 * t) if direction == "right" else 15 - 2 * t
                image[:, x] = 250
                iio.imwrite(folder / f"img_{t:05d}.png", image)
    return root


def load(root: Path, cache: Path):
    return load_video_dataset(
        "frames", root, frames=FRAMES, size=SIZE, cache_dir=cache, progress=False, workers=1
    )


def store_of(cache: Path) -> Path:
    (store,) = [p for p in cache.iterdir() if not p.name.endswith(".damaged")]
    return store


def pixels(splits) -> list[torch.Tensor]:
    return [getattr(splits, part).videos.float() for part in ("train", "val", "test")]


@pytest.fixture
def counted(monkeypatch) -> list[Path]:
    """The videos decoded from now on."""
    calls: list[Path] = []
    real = video_cache.read_clip
    monkeypatch.setattr(
        video_cache, "read_clip", lambda path, *a, **k: calls.append(path) or real(path, *a, **k)
    )
    return calls


@pytest.fixture
def built(frames_root, tmp_path) -> tuple[Path, list[torch.Tensor]]:
    cache = tmp_path / "cache"
    return cache, pixels(load(frames_root, cache))


def reload_healed(frames_root: Path, cache: Path, reference: list[torch.Tensor]) -> None:
    with pytest.warns(CacheRepairWarning, match="damaged decode cache entry"):
        again = load(frames_root, cache)
    for a, b in zip(pixels(again), reference, strict=True):
        assert torch.equal(a, b)


def test_a_complete_store_is_read_back_without_decoding(frames_root, built, counted):
    cache, reference = built
    assert sorted(p.name for p in store_of(cache).iterdir()) == [
        "clips.u8",
        "meta.json",
        "rows.npy",
        "status.npy",
    ]
    for a, b in zip(pixels(load(frames_root, cache)), reference, strict=True):
        assert torch.equal(a, b)
    assert counted == []


def test_a_zero_filled_entry_is_decoded_again(frames_root, built, counted):
    cache, reference = built
    clips = store_of(cache) / video_cache.CLIPS_FILE
    clips.write_bytes(bytes(clips.stat().st_size))
    reload_healed(frames_root, cache, reference)
    assert len(counted) == 2 * VIDEOS_PER_CLASS
    counted.clear()
    load(frames_root, cache)  # healed for good
    assert counted == []


def test_one_damaged_row_is_the_only_one_decoded_again(frames_root, built, counted):
    cache, reference = built
    clips = store_of(cache) / video_cache.CLIPS_FILE
    row_bytes = 3 * FRAMES * SIZE[0] * SIZE[1]
    with open(clips, "r+b") as handle:
        handle.seek(2 * row_bytes)
        handle.write(bytes(row_bytes))
    reload_healed(frames_root, cache, reference)
    assert len(counted) == 1


def test_a_truncated_entry_keeps_its_intact_rows(frames_root, built, counted):
    cache, reference = built
    clips = store_of(cache) / video_cache.CLIPS_FILE
    row_bytes = 3 * FRAMES * SIZE[0] * SIZE[1]
    os.truncate(clips, 3 * row_bytes + 17)  # three whole rows and a piece of the fourth
    reload_healed(frames_root, cache, reference)
    assert len(counted) == 2 * VIDEOS_PER_CLASS - 3


@pytest.mark.parametrize(
    "name", [video_cache.CLIPS_FILE, video_cache.STATUS_FILE, video_cache.META_FILE, "rows.npy"]
)
def test_an_entry_replaced_by_a_folder_is_moved_aside_and_rebuilt(frames_root, built, name):
    cache, reference = built
    path = store_of(cache) / name
    path.unlink()
    path.mkdir()
    (path / "keep.txt").write_text("someone's file")
    reload_healed(frames_root, cache, reference)
    aside = path.with_name(f"{name}.damaged")
    assert (aside / "keep.txt").read_text() == "someone's file"  # nothing of theirs is lost
    assert path.is_file()


def test_a_store_replaced_by_a_file_is_moved_aside(frames_root, built):
    cache, reference = built
    store = store_of(cache)
    shutil.rmtree(store)
    store.write_text("not a folder")
    reload_healed(frames_root, cache, reference)
    assert store.is_dir() and store.with_name(store.name + ".damaged").is_file()


def test_a_store_without_fingerprints_decodes_only_its_zero_rows(frames_root, built, counted):
    cache, reference = built
    store = store_of(cache)
    (store / "rows.npy").unlink()  # as written before rows had fingerprints
    row_bytes = 3 * FRAMES * SIZE[0] * SIZE[1]
    with open(store / video_cache.CLIPS_FILE, "r+b") as handle:
        handle.seek(5 * row_bytes)
        handle.write(bytes(row_bytes))
    reload_healed(frames_root, cache, reference)
    assert len(counted) == 1
    assert (np.load(store / "rows.npy") != 0).all()  # the intact rows' fingerprints are kept


def test_a_decode_larger_than_the_free_disk_is_refused_before_anything_is_written(
    frames_root, tmp_path, counted, monkeypatch
):
    from tsgd_core.runtime import budget

    monkeypatch.setattr(budget, "free_disk_bytes", lambda path: 1000)  # fault injection
    cache = tmp_path / "cache"
    with pytest.raises(budget.DiskSpaceError, match=r"decoding 8 videos into the cache needs"):
        load(frames_root, cache)
    assert counted == [], "nothing was decoded"
    assert not cache.exists() or [p for p in cache.rglob("*") if p.is_file()] == []
    monkeypatch.undo()  # room again: the decode runs and gives what a clean cache gives
    again = pixels(load(frames_root, cache))
    for a, b in zip(again, pixels(load(frames_root, tmp_path / "clean")), strict=True):
        assert torch.equal(a, b)

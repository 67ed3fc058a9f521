"""Real video datasets on disk as `Splits`: UCF101, MiniUCF, HMDB51, Kinetics, SSv2, frame folders.

Nothing is downloaded: point `root` at a copy you already have. Every clip becomes T frames,
spread uniformly over the whole video (`sampling="spread"`) or taken at the video's own speed
from a centred window (`"stride"`, see video_base.SAMPLINGS), resized to (H, W); a ClipSet's
videos are `UInt8Clips` that read (N, 3, T, H, W) uint8 and give float in [0, 1] per batch.
Validation clips are carved from the training split per class, by whole source groups where the
names give them (UCF101's gXX, HMDB51's title, a frames folder's `group_pattern`; Kinetics and
SSv2 clips come from distinct videos and are carved one by one); the test split is the
dataset's own (UCF101/HMDB51 test lists, Kinetics and SSv2 validation sets). The training
videos' header properties (length, frame rate, size, audio) are checked for shortcuts.

Decoding uses decord where it imports (Linux, x86 macOS) and PyAV otherwise; both resize with
FFmpeg's bilinear scaler, so their pixels agree. A video that cannot be decoded is
skipped with a warning; a missing file named by a split list, a missing root, or a class with
no readable video is a `DataError` that says what to fix. Decoded clips are kept as uint8 in
a folder of `cache_dir`, keyed by the decode settings and the files' content (not their path:
a copy of the dataset elsewhere finds the same cache), and read back per batch.

Expected layouts (`annotations` overrides where the split files are looked for):

* ucf101 / miniucf: root/<Class>/<video>.avi, with classInd.txt, trainlist0{1,2,3}.txt and
  testlist0{1,2,3}.txt in root/ucfTrainTestlist/ or in root.
* hmdb51: root/<class>/<video>.avi, with <class>_test_split{1,2,3}.txt (lines "<video> <flag>",
  1 = train, 2 = test, 0 = unused) in root/testTrainMulti_7030_splits/, root/splits/ or root.
* kinetics: CSV files (label, youtube_id, time_start, time_end, split; or label, path, split)
  in root/annotations/ or root; videos <youtube_id>_<start:06d>_<end:06d>.<ext> up to three
  folders below root (root/<split>/<label>/, root/<split>/, ...). Train rows are the train
  split; validation rows the test split (Kinetics test rows only when there are none).
* ssv2: labels.json, train.json and validation.json (or their something-something-v2-*.json
  names) in root/labels/ or root; videos root/<id>.webm. Validation is the test split.
* frames: root/<class>/<video_folder>/*.jpg|png; the test split is given by
  trainlist.txt/testlist.txt (lines "<class>/<video_folder>") or, without them, a fixed
  per-class fraction (`test_fraction`, seed 0, so it does not move with `seed`).

Every video layout also accepts a folder of extracted frames in place of a video file
(root/<Class>/<video>/ for root/<Class>/<video>.avi).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..runtime.budget import check_decode_fits
from .clips import ClipSet, DataError, Splits
from .storage import config_key
from .video_base import (
    BACKENDS,
    KINDS,
    REFERENCE_FPS,
    SAMPLINGS,
    STRIDE,
    VideoListing,
    as_class_names,
    check_choice,
    check_geometry,
    existing_dir,
    require_training_clips,
)
from .video_cache import (
    CLIPS_FILE,
    decode_key,
    decode_listing,
    listing_entries,
    require_readable_classes,
    store_folder,
    warn_skipped_summary,
)
from .video_lists import (
    cap_per_class,
    group_rule,
    list_frame_folders,
    list_hmdb51,
    list_kinetics,
    list_ssv2,
    list_ucf101,
    require_listed_classes,
    restrict_classes,
    restrict_to_miniucf,
    source_groups,
    split_by_group,
)
from .video_properties import (
    listing_properties,
    shortcut_line,
    shortcut_scores,
    shortcut_warnings,
    warn_about_shortcuts,
)


def load_video_dataset(
    kind: str,
    root: str | Path,
    *,
    frames: int,
    size: tuple[int, int],
    split: int = 1,
    classes: Sequence[str] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    backend: str = "auto",
    max_per_class: int | None = None,
    progress: bool = True,
    annotations: str | Path | None = None,
    on_missing: str = "error",
    test_fraction: float = 0.2,
    workers: int | None = None,
    sampling: str = "spread",
    group_pattern: str | None = None,
) -> Splits:
    """Decode a real video dataset into train / val / test ClipSets.

    kind: one of KINDS (see the module docstring for each layout). frames, size=(H, W): the
    clip shape. split: the official split (1-3) of UCF101 / MiniUCF / HMDB51. classes: keep
    only these classes, labelled 0..K-1 in the order given (for MiniUCF a subset of
    MINIUCF_CLASSES). val_fraction of each training class (at least one clip where a class
    has two or more) becomes the validation set, drawn with `seed` by whole source groups
    (`group_rule`; group_pattern: a regex with one capturing group matched against each video's
    name, for a layout whose names hold their source). cache_dir: keep decoded
    uint8 clips there and reuse them while the files are unchanged. max_per_class: keep at
    most this many videos per class and split, evenly spread over the listing (so UCF groups
    stay mixed). annotations: where the split files are when not in the usual places.
    on_missing: "error" (default) or "skip" for videos a split file names that are not on disk
    (Kinetics copies usually miss some). test_fraction: the frames kind's test share when no
    list files are given. workers: decoding threads (default: one per CPU core, at most 8).
    sampling: "spread" (frames over the whole video) or "stride" (at the video's own speed).

    The clips stay uint8 (`UInt8Clips`, read from the cache file when there is one) and
    become float per batch, so a dataset larger than memory in float32 can be trained on.
    """
    frames, size = check_geometry(frames, size)
    check_choice("backend", backend, BACKENDS)
    check_choice("sampling", sampling, SAMPLINGS)
    rule = group_rule(kind.lower() if isinstance(kind, str) else kind, group_pattern)
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    classes = as_class_names(classes)
    listing = list_video_dataset(
        kind,
        root,
        split=split,
        classes=classes,
        max_per_class=max_per_class,
        annotations=annotations,
        on_missing=on_missing,
        test_fraction=test_fraction,
        group_pattern=group_pattern,
    )
    check_decode_fits(len(listing.train) + len(listing.test), frames, size)
    key = sampled_key(listing, frames, size, backend, sampling)
    store = store_folder(cache_dir, listing.name, frames, size, key)
    clips, labels, decoded = decode_listing(
        listing,
        frames,
        size,
        backend,
        progress=progress,
        workers=workers,
        store=store,
        sampling=sampling,
    )
    skipped = [e.path for e, ok in zip(listing_entries(listing), decoded, strict=True) if not ok]
    total = len(listing.train) + len(listing.test)
    if skipped:
        warn_skipped_summary(skipped, total)
    rows = np.arange(total)
    is_train = rows < len(listing.train)
    train_rows, test_rows = rows[is_train & decoded], rows[~is_train & decoded]
    require_readable_classes(listing, {"train": labels[train_rows], "test": labels[test_rows]})
    groups = source_groups(listing, rule)
    train_idx, val_idx, carving = _carve_checked(
        labels[train_rows],
        [groups[i] for i in train_rows.tolist()],
        listing.class_names,
        val_fraction,
        seed,
        rule,
    )
    properties = listing_properties(listing.train, store, workers)
    num_classes = len(listing.class_names)
    scores = shortcut_scores(
        [properties[i] for i in train_rows.tolist()], labels[train_rows], num_classes
    )
    shortcuts = shortcut_warnings(scores, num_classes, sampling)
    warn_about_shortcuts(shortcuts)
    train, val, test = (
        ClipSet(clips.take(part), torch.from_numpy(labels[part]), list(listing.class_names))
        for part in (train_rows[train_idx.numpy()], train_rows[val_idx.numpy()], test_rows)
    )
    config = {
        # what the clips are, without any path: moving the dataset or the cache keeps it
        "identity": splits_key(key, val_fraction, seed, rule),
        "kind": kind.lower(),
        "root": str(listing.root),
        "frames": frames,
        "size": list(size),
        "split": split,
        "classes": list(listing.class_names),
        "val_fraction": val_fraction,
        "seed": seed,
        "backend": backend,
        "sampling": sampling,
        "group_rule": rule,
        "val_carving": carving,
        "shortcut_check": shortcut_line(scores, num_classes),
        "shortcuts": shortcuts,
        "max_per_class": max_per_class,
        "sources": dict(listing.sources),
        "skipped": [str(p) for p in skipped],
        "cache_file": str(store / CLIPS_FILE) if store else None,
    }
    return Splits(train=train, val=val, test=test, name=listing.name, config=config)


def sampled_key(
    listing: VideoListing, frames: int, size: tuple[int, int], backend: str, sampling: str
) -> str:
    """The decode cache's key: `decode_key`, and the sampling when it is not "spread" (so
    caches decoded before there was a choice keep their key)."""
    key = decode_key(listing, frames, size, backend)
    if sampling == "spread":
        return key
    return config_key(key, sampling, REFERENCE_FPS, STRIDE, length=16)


def splits_key(key: str, val_fraction: float, seed: int, rule: str | None) -> str:
    """The splits' identity: the decode key and the validation carve-out (its group rule
    where there is one: carving by group gives another val than carving by clip)."""
    by_group = () if rule is None else (rule,)
    return config_key("splits", key, val_fraction, seed, *by_group, length=16)


def carve_validation(
    labels: np.ndarray,
    groups: list[str | None],
    val_fraction: float,
    seed: int,
    rule: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Training and validation rows, and a line saying how val was carved.

    Whole groups go to val, `val_fraction` of each class's groups (at least one where a class
    has two or more), drawn with `seed`; a clip whose group is None is a group of its own, so
    without groups this is `stratified_split` over clips. A group counts for the class most of
    its clips have (HMDB51 cuts clips of several actions from one film).
    """
    unit_of, unit_labels, in_val = split_by_group(labels, groups, val_fraction, seed)
    val_rows = in_val[unit_of]
    train_idx = torch.from_numpy(np.flatnonzero(~val_rows))
    val_idx = torch.from_numpy(np.flatnonzero(val_rows))
    return train_idx, val_idx, _carving_line(unit_labels, in_val, groups, rule)


def _carve_checked(
    labels: np.ndarray,
    groups: list[str | None],
    class_names: list[str],
    val_fraction: float,
    seed: int,
    rule: str | None,
) -> tuple[torch.Tensor, torch.Tensor, str]:
    """`carve_validation`, refused (DataError) when it leaves a class without training clips
    or carves no validation clip at all."""
    train_idx, val_idx, carving = carve_validation(labels, groups, val_fraction, seed, rule)
    require_training_clips(labels, train_idx, class_names, val_fraction)
    if val_fraction > 0 and not len(val_idx):
        raise DataError(
            f"val_fraction={val_fraction:g} carved no validation clip: no class has two source "
            f"groups ({rule or 'each clip its own'}) to keep one apart; add videos of other "
            "sources, or give a group_pattern (--group-pattern) that finds the sources in the "
            "names"
        )
    return train_idx, val_idx, carving


def _carving_line(
    unit_labels: np.ndarray, in_val: np.ndarray, groups: list[str | None], rule: str | None
) -> str:
    """E.g. 'val: 6 of 18 groups per class, carved by group (ucf101 gXX)'."""

    def spread(counts: np.ndarray) -> str:
        low, high = int(counts.min()), int(counts.max())
        return str(low) if low == high else f"{low}-{high}"

    present = np.unique(unit_labels)
    total = np.bincount(unit_labels)[present]
    chosen = np.bincount(unit_labels[in_val], minlength=len(np.bincount(unit_labels)))[present]
    named = sum(g is not None for g in groups)
    if not named:
        why = "no clip name gives its source" if rule else "the clips come from distinct videos"
        return f"val: {spread(chosen)} of {spread(total)} clips per class, carved by clip ({why})"
    alone = len(groups) - named
    rest = f"; clips without a group name ({alone}) are groups of their own" if alone else ""
    single = int((total == 1).sum())
    if single:  # val cannot hold them without sharing their one source with train
        rest += f"; {single} class(es) with one group have no val clip"
    return (
        f"val: {spread(chosen)} of {spread(total)} groups per class, carved by group ({rule}){rest}"
    )


def list_video_dataset(
    kind: str,
    root: str | Path,
    *,
    split: int = 1,
    classes: Sequence[str] | None = None,
    max_per_class: int | None = None,
    annotations: str | Path | None = None,
    on_missing: str = "error",
    test_fraction: float = 0.2,
    group_pattern: str | None = None,
) -> VideoListing:
    """The videos `load_video_dataset` would decode (same arguments), without decoding them."""
    kind = kind.lower() if isinstance(kind, str) else kind
    check_choice("kind", kind, KINDS)
    classes = as_class_names(classes)
    check_choice("on_missing", on_missing, ("error", "skip"))
    root = existing_dir(root, f"the {kind} root folder")
    notes = Path(annotations) if annotations is not None else None
    if notes is not None and not notes.exists():
        raise DataError(f"annotations path {notes} does not exist")
    if kind in ("ucf101", "miniucf"):
        listing = list_ucf101(root, split=split, annotations=notes, on_missing=on_missing)
        if kind == "miniucf":
            listing = restrict_to_miniucf(listing, classes, split)
            classes = None
    elif kind == "hmdb51":
        listing = list_hmdb51(root, split=split, annotations=notes, on_missing=on_missing)
    elif kind == "kinetics":
        listing = list_kinetics(root, annotations=notes, on_missing=on_missing)
    elif kind == "ssv2":
        listing = list_ssv2(root, annotations=notes, on_missing=on_missing)
    else:
        listing = list_frame_folders(
            root,
            annotations=notes,
            test_fraction=test_fraction,
            on_missing=on_missing,
            group_pattern=group_pattern,
        )
    if classes is not None:
        listing = restrict_classes(listing, classes)
    listing = cap_per_class(listing, max_per_class)
    require_listed_classes(listing)
    return listing

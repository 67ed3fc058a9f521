"""Listing a dataset on disk: which videos form the train and test splits, per layout (UCF101,
HMDB51, Kinetics CSV, SSv2 JSON, frame folders), with missing files named."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .clips import DataError, stratified_split
from .video_base import (
    FRAMES_TEST_SEED,
    MINIUCF_CLASSES,
    VIDEO_EXTENSIONS,
    SkippedVideoWarning,
    VideoEntry,
    VideoListing,
    check_choice,
    existing_dir,
    natural_key,
    shorten,
)
from .video_decode import refuse_special_file


def list_ucf101(
    root: str | Path,
    *,
    split: int = 1,
    annotations: str | Path | None = None,
    on_missing: str = "error",
) -> VideoListing:
    """UCF101 from classInd.txt and the official trainlist0k / testlist0k files."""
    root = existing_dir(root, "the UCF101 root folder")
    check_choice("split", split, (1, 2, 3))
    folder = _find_notes_folder(
        root, annotations, ("ucfTrainTestlist", "annotations"), "classInd.txt"
    )
    class_file = folder / "classInd.txt"
    class_names = [line.split(None, 1)[1] for line in _lines(class_file) if len(line.split()) >= 2]
    if not class_names:
        raise DataError(f"{class_file} lists no classes (expected lines like '1 ApplyEyeMakeup')")
    index = {name: i for i, name in enumerate(class_names)}
    resolver = _PathResolver(root)
    parts: dict[str, list[VideoEntry]] = {}
    sources = {}
    seen = _ListedOnce()
    for part, stem in (("train", "trainlist"), ("test", "testlist")):
        list_file = folder / f"{stem}{split:02d}.txt"
        if not list_file.is_file():
            raise DataError(f"UCF101 split file {list_file} is missing (official ucfTrainTestlist)")
        named = []
        for line_no, line in _numbered_lines(list_file):
            rel = _listed_path(line)
            class_name = rel.split("/")[0]
            if class_name not in index:
                raise DataError(
                    f"{list_file} names {rel!r}, whose class {class_name!r} is not in {class_file}"
                )
            named.append((rel, index[class_name]))
            seen.note(rel, part, list_file, line_no)
        parts[part] = _resolve_all(named, resolver, list_file, on_missing)
        sources[part] = str(list_file)
    return VideoListing(
        f"ucf101-split{split}", root, class_names, parts["train"], parts["test"], sources
    )


def list_hmdb51(
    root: str | Path,
    *,
    split: int = 1,
    annotations: str | Path | None = None,
    on_missing: str = "error",
) -> VideoListing:
    """HMDB51 from the official <class>_test_split<k>.txt files (1 = train, 2 = test, 0 = unused)."""
    root = existing_dir(root, "the HMDB51 root folder")
    check_choice("split", split, (1, 2, 3))
    suffix = f"_test_split{split}.txt"
    folder = _find_notes_folder(
        root,
        annotations,
        ("testTrainMulti_7030_splits", "splits", "test_train_splits", "annotations"),
        f"*{suffix}",
    )
    split_files = sorted(folder.glob(f"*{suffix}"))
    class_names = [f.name[: -len(suffix)] for f in split_files]
    resolver = _PathResolver(root)
    train: list[VideoEntry] = []
    test: list[VideoEntry] = []
    for label, (class_name, split_file) in enumerate(zip(class_names, split_files, strict=True)):
        named: dict[str, list[tuple[str, int]]] = {"1": [], "2": []}
        seen = _ListedOnce()
        for line_no, line in _numbered_lines(split_file):
            words = line.rsplit(None, 1)
            if len(words) != 2 or words[1] not in ("0", "1", "2"):
                raise DataError(f"{split_file}: expected '<video> <0|1|2>', got {line!r}")
            seen.note(words[0], _HMDB_PARTS[words[1]], split_file, line_no)
            if words[1] in named:
                named[words[1]].append((f"{class_name}/{words[0]}", label))
        train += _resolve_all(named["1"], resolver, split_file, on_missing)
        test += _resolve_all(named["2"], resolver, split_file, on_missing)
    sources = {"train": str(folder / f"*{suffix}"), "test": str(folder / f"*{suffix}")}
    return VideoListing(f"hmdb51-split{split}", root, class_names, train, test, sources)


_HMDB_PARTS = {"0": "unused", "1": "train", "2": "test"}  # the flags of HMDB51's split files


def restrict_to_miniucf(
    listing: VideoListing, classes: Sequence[str] | None, split: int
) -> VideoListing:
    wanted = list(MINIUCF_CLASSES if classes is None else classes)
    outside = [c for c in wanted if c not in MINIUCF_CLASSES]
    if outside:
        raise DataError(f"not MiniUCF classes: {outside}; see MINIUCF_CLASSES")

    def absent(names: list[str]) -> str:
        return (
            f"MiniUCF needs UCF101 classes that {listing.sources.get('train', 'the split files')} "
            f"and classInd.txt do not list: {shorten(names)}. Use the full UCF101 annotations, "
            "or pass classes=[...] to load only some MiniUCF classes."
        )

    restricted = restrict_classes(listing, wanted, absent)
    return replace(restricted, name=f"miniucf-split{split}")


def list_kinetics(
    root: str | Path, *, annotations: str | Path | None = None, on_missing: str = "error"
) -> VideoListing:
    """Kinetics-style CSV annotations; train rows are train, validation rows the test split."""
    root = existing_dir(root, "the Kinetics root folder")
    csv_files = _kinetics_csv_files(root, annotations)
    rows = [row for csv_file in csv_files for row in _kinetics_rows(csv_file)]
    train_rows = [r for r in rows if r["part"] == "train"]
    test_rows = [r for r in rows if r["part"] == "val"] or [r for r in rows if r["part"] == "test"]
    if not train_rows or not test_rows:
        raise DataError(
            f"{', '.join(map(str, csv_files))}: need rows whose split is 'train' and rows whose "
            "split is 'val'/'validate' (or 'test'), got "
            f"{dict(Counter(r['part'] for r in rows))}"
        )
    class_names = sorted({r["label"] for r in train_rows + test_rows})
    index = {name: i for i, name in enumerate(class_names)}
    needs_search = [r for r in train_rows + test_rows if r["path"] is None]
    stems = _index_by_stem(root, {r["stem"] for r in needs_search}) if needs_search else {}
    resolver = _PathResolver(root)
    parts = {}
    for part, part_rows in (("train", train_rows), ("test", test_rows)):
        found, missing = [], []
        for r in part_rows:
            path = resolver.resolve(r["path"]) if r["path"] is not None else stems.get(r["stem"])
            if path is None:
                missing.append(r["path"] or r["stem"])
            else:
                found.append(VideoEntry(path, index[r["label"]]))
        _report_missing(
            missing, " / ".join(sorted({r["source"] for r in part_rows})), root, on_missing
        )
        parts[part] = found
    sources = {
        part: ", ".join(sorted({r["source"] for r in part_rows}))
        for part, part_rows in (("train", train_rows), ("test", test_rows))
    }
    return VideoListing("kinetics", root, class_names, parts["train"], parts["test"], sources)


def _kinetics_csv_files(root: Path, annotations: Path | str | None) -> list[Path]:
    if annotations is not None and Path(annotations).is_file():
        return [Path(annotations)]
    folders = [Path(annotations)] if annotations is not None else [root / "annotations", root]
    for folder in folders:
        found = sorted(folder.glob("*.csv")) if folder.is_dir() else []
        if found:
            return found
    raise DataError(
        f"no Kinetics CSV annotations in {' or '.join(map(str, folders))}: put train.csv / "
        "validate.csv (columns label, youtube_id, time_start, time_end, split) there, "
        "or pass annotations=<file or folder>"
    )


def _kinetics_rows(csv_file: Path) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(_read_text(csv_file), newline=""))
    columns = {c.strip() for c in reader.fieldnames or []}
    has_id = {"youtube_id", "time_start", "time_end"} <= columns
    if "label" not in columns or not (has_id or "path" in columns):
        raise DataError(
            f"{csv_file}: needs a 'label' column and either 'path' or 'youtube_id', "
            f"'time_start', 'time_end'; found columns {sorted(columns)}"
        )
    rows = []
    for line_no, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        part = _kinetics_part(row.get("split") or csv_file.stem)
        if part is None:
            raise DataError(f"{csv_file}:{line_no}: unknown split {row.get('split')!r}")
        path = row.get("path") or None
        stem = None
        if path is None:
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (KeyError, ValueError) as error:
                raise DataError(
                    f"{csv_file}:{line_no}: needs a path or youtube_id with numeric "
                    "time_start / time_end"
                ) from error
            stem = f"{row['youtube_id']}_{start:06d}_{end:06d}"
        source = str(csv_file)
        rows.append(dict(label=row["label"], part=part, path=path, stem=stem, source=source))
    return rows


def _kinetics_part(split_name: str) -> str | None:
    """'train' / 'val' / 'test' from a split column value or a CSV file name."""
    name = split_name.lower()
    for part, marker in (("train", "train"), ("val", "val"), ("test", "test")):
        if marker in name:
            return part
    return None


def list_ssv2(
    root: str | Path, *, annotations: str | Path | None = None, on_missing: str = "error"
) -> VideoListing:
    """Something-Something v2 from labels / train / validation JSON; validation is the test split."""
    root = existing_dir(root, "the Something-Something v2 root folder")
    folder = _find_notes_folder(root, annotations, ("labels", "annotations"), "*labels.json")
    labels_file = _first_existing(folder, ("labels.json", "something-something-v2-labels.json"))
    label_of = {str(k): int(v) for k, v in _read_json(labels_file).items()}
    class_names = [name for name, _ in sorted(label_of.items(), key=lambda kv: kv[1])]
    if sorted(label_of.values()) != list(range(len(class_names))):
        raise DataError(f"{labels_file}: class indices must be 0..{len(class_names) - 1}")
    named: dict[str, list[tuple[str, int]]] = {}
    sources = {}
    for part, names in (
        ("train", ("train.json", "something-something-v2-train.json")),
        ("test", ("validation.json", "something-something-v2-validation.json")),
    ):
        list_file = _first_existing(folder, names)
        sources[part] = str(list_file)
        named[part] = []
        for item in _read_json(list_file):
            template = item.get("template")
            if template is None or "id" not in item:
                raise DataError(f"{list_file}: every item needs 'id' and 'template', got {item}")
            # "[something]" -> "something", "[number of]" -> "number of": the labels.json key
            key = re.sub(r"\[(.*?)\]", r"\1", template)
            if key not in label_of:
                raise DataError(
                    f"{list_file}: template {template!r} matches no class in {labels_file}"
                )
            named[part].append((str(item["id"]), label_of[key]))
    stems = _index_by_stem(root, {vid for pairs in named.values() for vid, _ in pairs})
    parts = {}
    for part, pairs in named.items():
        missing = [vid for vid, _ in pairs if vid not in stems]
        _report_missing(missing, sources[part], root, on_missing)
        parts[part] = [VideoEntry(stems[vid], label) for vid, label in pairs if vid in stems]
    return VideoListing("ssv2", root, class_names, parts["train"], parts["test"], sources)


def list_frame_folders(
    root: str | Path,
    *,
    annotations: str | Path | None = None,
    test_fraction: float = 0.2,
    on_missing: str = "error",
    group_pattern: str | None = None,
) -> VideoListing:
    """root/<class>/<video_folder>/ frames; test split from testlist.txt or a fixed per-class share.

    on_missing: "error" or "skip" for list-file lines naming a folder that is not on disk.
    group_pattern: the fixed share takes whole source groups (see `group_rule`), as val does.
    """
    root = existing_dir(root, "the frame-folder root")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root} holds no class folders (expected root/<class>/<video_folder>/)")
    class_names = [p.name for p in class_dirs]
    entries: list[VideoEntry] = []
    for label, class_dir in enumerate(class_dirs):
        videos = sorted(
            (p for p in class_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: natural_key(p.name),
        )
        if not videos:
            raise DataError(
                f"class folder {class_dir} holds no video folders; remove it or fill it"
            )
        entries += [VideoEntry(v, label) for v in videos]
    folder = Path(annotations) if annotations is not None else root
    test_list, train_list = folder / "testlist.txt", folder / "trainlist.txt"
    if test_list.is_file():
        by_name = {f"{e.path.parent.name}/{e.path.name}": e for e in entries}
        seen = _ListedOnce()
        named_train = (
            _listed_names(train_list, by_name, on_missing, seen, "train")
            if train_list.is_file()
            else None
        )
        named_test = _listed_names(test_list, by_name, on_missing, seen, "test")
        test = [e for name, e in by_name.items() if name in named_test]
        train = [
            e
            for name, e in by_name.items()
            if name not in named_test and (named_train is None or name in named_train)
        ]
        sources = {"train": str(train_list if named_train else root), "test": str(test_list)}
    else:
        if not 0.0 < test_fraction < 1.0:
            raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
        rule = group_rule("frames", group_pattern)
        groups = _groups_of(entries, class_names, rule)
        labels = np.array([e.label for e in entries], dtype=np.int64)
        unit_of, _, in_test = split_by_group(labels, groups, test_fraction, FRAMES_TEST_SEED)
        train = [e for e, unit in zip(entries, unit_of, strict=True) if not in_test[unit]]
        test = [e for e, unit in zip(entries, unit_of, strict=True) if in_test[unit]]
        by_group = f", by group ({rule})" if rule else ""
        sources = {
            "train": str(root),
            "test": f"{test_fraction:g} of each class of {root}{by_group}",
        }
    return VideoListing("frames", root, class_names, train, test, sources)


def _listed_names(
    list_file: Path, known: dict[str, VideoEntry], on_missing: str, seen: _ListedOnce, part: str
) -> set[str]:
    names = set()
    for line_no, line in _numbered_lines(list_file):
        name = _listed_path(line).rstrip("/")
        seen.note(name, part, list_file, line_no)
        names.add(name)
    unknown = sorted(names - set(known))
    if unknown and on_missing == "skip":
        warnings.warn(
            f"{list_file} names {len(unknown)} video folder(s) not on disk, skipped: "
            f"{shorten(unknown)}",
            SkippedVideoWarning,
            stacklevel=4,
        )
    elif unknown:
        raise DataError(
            f"{list_file} names {len(unknown)} video folder(s) that do not exist under "
            f"{list_file.parent}: {shorten(unknown)}; lines must read '<class>/<video_folder>' "
            "(or pass on_missing='skip')"
        )
    return names & set(known)


class _PathResolver:
    """root-relative names to paths; tolerates frame folders and letter-case differences."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[Path, dict[str, str]] = {}

    def resolve(self, rel: str) -> Path | None:
        path = self.root / rel
        if path.exists():
            return path
        if path.suffix and path.with_suffix("").is_dir():  # extracted frames instead of a file
            return path.with_suffix("")
        return self._resolve_ignoring_case(Path(rel))

    def _resolve_ignoring_case(self, rel: Path) -> Path | None:
        current = self.root
        for i, part in enumerate(rel.parts):
            children = self._children(current)
            name = children.get(part.lower())
            if name is None and i == len(rel.parts) - 1 and Path(part).suffix:
                name = children.get(Path(part).stem.lower())  # frame folder
            if name is None:
                return None
            current = current / name
        return current

    def _children(self, folder: Path) -> dict[str, str]:
        if folder not in self._listings:
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            self._listings[folder] = {n.lower(): n for n in reversed(names)}
        return self._listings[folder]


def _index_by_stem(root: Path, wanted: set[str], max_depth: int = 4) -> dict[str, Path]:
    """Find videos named <stem>.<ext> (or frame folders named <stem>) anywhere under root."""
    files: dict[str, Path] = {}
    folders: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames.sort()
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS and stem in wanted and stem not in files:
                files[stem] = Path(dirpath) / name
        for name in dirnames:
            if name in wanted and name not in folders:
                folders[name] = Path(dirpath) / name
        # never walk into frame folders (thousands of images) nor deeper than needed
        dirnames[:] = [] if depth + 1 >= max_depth else [d for d in dirnames if d not in wanted]
    return {**folders, **files}  # a video file wins over a frame folder of the same name


def _resolve_all(
    named: Iterable[tuple[str, int]], resolver: _PathResolver, source: Path, on_missing: str
) -> list[VideoEntry]:
    found, missing = [], []
    for rel, label in named:
        path = resolver.resolve(rel)
        if path is None:
            missing.append(rel)
        else:
            found.append(VideoEntry(path, label))
    _report_missing(missing, str(source), resolver.root, on_missing)
    return found


def _report_missing(missing: list[str], source: str, root: Path, on_missing: str) -> None:
    if not missing:
        return
    what = (
        f"{len(missing)} video(s) named in {source} do not exist under {root}: {shorten(missing)}"
    )
    if on_missing == "skip":
        warnings.warn(f"left out {what}", SkippedVideoWarning, stacklevel=3)
        return
    raise DataError(
        f"{what}. Point root at the folder that holds them (and annotations at the split files "
        "of the same copy), restore the files, or pass on_missing='skip' to leave them out."
    )


def _find_notes_folder(
    root: Path, annotations: Path | str | None, subfolders: Sequence[str], pattern: str
) -> Path:
    """The folder holding split files matching `pattern`: `annotations`, a usual subfolder, or root."""
    candidates = (
        [Path(annotations)] if annotations is not None else [root / s for s in subfolders] + [root]
    )
    for folder in candidates:
        if folder.is_dir() and any(folder.glob(pattern)):
            return folder
    raise DataError(
        f"no {pattern} found in {' or '.join(map(str, candidates))}: put the dataset's split "
        "files there or pass annotations=<folder>"
    )


def _first_existing(folder: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise DataError(f"none of {', '.join(names)} in {folder}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON: {error}") from error


def _read_text(path: Path) -> str:
    # a named pipe in a list's place would block the read (issue 28 #9's kind)
    refuse_special_file(path, expected=("a text file", "put the list file there"))
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}): save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from error


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """The file's non-empty lines, stripped, with their line numbers (from 1)."""
    lines = enumerate(_read_text(path).splitlines(), start=1)
    return [(n, line.strip()) for n, line in lines if line.strip()]


def _lines(path: Path) -> list[str]:
    return [line for _, line in _numbered_lines(path)]


class _ListedOnce:
    """Split-file lines seen so far: a video named twice, in one list or in two parts, is an
    error naming both lines (a test video in the train list leaks test clips into training,
    and a repeated line counts its video twice)."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[str, Path, int]] = {}

    def note(self, name: str, part: str, path: Path, line_no: int) -> None:
        key = name.strip().replace("\\", "/").casefold()  # the resolver ignores letter case too
        if key not in self._first:
            self._first[key] = (part, path, line_no)
            return
        first_part, first_path, first_line = self._first[key]
        how = "twice" if first_part == part else f"in both the {first_part} and the {part} split"
        raise DataError(
            f"{first_path}:{first_line} and {path}:{line_no} list {name!r} {how}: a video "
            "belongs to one split, once; remove one of the lines"
        )


def _listed_path(line: str) -> str:
    """The video of a split-file line '<path>' or '<file.ext> <class index>'.

    Paths may hold spaces: a trailing number is a class index only after a file name with an
    extension ('Punch/v_Punch 1.avi 5'); 'Punch/clip 0' is a folder named 'clip 0'.
    """
    words = line.rsplit(None, 1)
    numbered = len(words) == 2 and words[1].isdigit() and Path(words[0]).suffix != ""
    return (words[0] if numbered else line).strip().replace("\\", "/")


def restrict_classes(
    listing: VideoListing,
    classes: Sequence[str],
    absent: Callable[[list[str]], str] | None = None,
) -> VideoListing:
    """The listing of `classes` alone, relabeled in their order; `absent(names)` words the error
    for classes the listing lacks (default: the listing's name and some of its classes)."""
    wanted = list(classes)
    if not wanted or len(set(wanted)) != len(wanted):
        raise DataError(f"classes must be distinct class names, got {wanted}")
    unknown = [c for c in wanted if c not in listing.class_names]
    if unknown and absent is not None:
        raise DataError(absent(unknown))
    if unknown:
        raise DataError(
            f"classes {unknown} are not in {listing.name}; its classes include "
            f"{shorten(listing.class_names)}"
        )
    new_label = {listing.class_names.index(c): i for i, c in enumerate(wanted)}

    def keep(entries: list[VideoEntry]) -> list[VideoEntry]:
        return [VideoEntry(e.path, new_label[e.label]) for e in entries if e.label in new_label]

    return replace(listing, class_names=wanted, train=keep(listing.train), test=keep(listing.test))


def cap_per_class(listing: VideoListing, max_per_class: int | None) -> VideoListing:
    if max_per_class is None:
        return listing
    if int(max_per_class) < 1:
        raise DataError(f"max_per_class must be >= 1 or None, got {max_per_class}")

    def cap(entries: list[VideoEntry]) -> list[VideoEntry]:
        positions: dict[int, list[int]] = {}
        for i, e in enumerate(entries):
            positions.setdefault(e.label, []).append(i)
        keep = set()
        for idx in positions.values():
            k = min(int(max_per_class), len(idx))
            keep.update(idx[j] for j in np.linspace(0, len(idx) - 1, k).round().astype(int))
        return [e for i, e in enumerate(entries) if i in keep]

    return replace(listing, train=cap(listing.train), test=cap(listing.test))


def require_listed_classes(listing: VideoListing) -> None:
    for part in ("train", "test"):
        empty = [listing.class_names[c] for c, n in enumerate(listing.counts(part)) if n == 0]
        if empty:
            raise DataError(
                f"{listing.name}: class(es) {shorten(empty)} have no video in the {part} split "
                f"({listing.sources.get(part, listing.root)}). Add their videos, or leave the "
                "classes out with classes=[...]."
            )


# ----------------------------------------------------------------------------- source groups
# Clips cut from one source video share its actor, scene and camera: a validation split that
# holds some clips of a source video and trains on the others measures memory of the scene.
# So val is carved by whole source groups where the clip names give them.

UCF_GROUP = re.compile(r"_(g\d+)_c\d+", re.IGNORECASE)  # v_<Class>_g08_c01: group g08 of <Class>


def group_rule(kind: str, pattern: str | None = None) -> str | None:
    """How the training clips' source groups are found (None: every clip is its own).

    `pattern`, a regex with one capturing group matched against each video's name, overrides
    the layout's rule: UCF101's gXX, HMDB51's title (the name before the action tag).
    """
    if pattern is not None:
        check_group_pattern(pattern)
        return f"pattern {pattern}"
    return {"ucf101": "ucf101 gXX", "miniucf": "ucf101 gXX", "hmdb51": "hmdb51 title"}.get(kind)


def check_group_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled group pattern; a DataError unless it is a regex with one capturing group."""
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError) as error:
        raise DataError(
            f"group pattern {pattern!r} is not a regular expression: {error}"
        ) from error
    if compiled.groups != 1:
        raise DataError(
            f"group pattern {pattern!r} has {compiled.groups} capturing groups: it needs exactly "
            r"one, the part of the video name that names its source, e.g. '^(.*)_c\d+$'"
        )
    return compiled


def video_stem(path: Path) -> str:
    """A video's name without its extension (a frame folder's name as it is)."""
    return path.stem if path.suffix.lower() in VIDEO_EXTENSIONS else path.name


def source_groups(listing: VideoListing, rule: str | None) -> list[str | None]:
    """Each training video's source group under `rule` (`group_rule`); None where its name
    gives none (it is then a group of its own). Groups are global: a name two classes share
    is one group (HMDB51 cuts clips of several actions from one film)."""
    return _groups_of(listing.train, listing.class_names, rule)


def _groups_of(
    entries: Sequence[VideoEntry], class_names: Sequence[str], rule: str | None
) -> list[str | None]:
    if rule is None:
        return [None] * len(entries)
    if rule.startswith("pattern "):
        compiled = check_group_pattern(rule[len("pattern ") :])
        found = [compiled.search(video_stem(e.path)) for e in entries]
        groups = [m.group(1) if m and m.group(1) else None for m in found]
        if entries and not any(groups):
            raise DataError(
                f"group pattern {compiled.pattern!r} matches no video name (e.g. "
                f"{video_stem(entries[0].path)!r}): fix the pattern or leave it out"
            )
        return groups
    if rule == "hmdb51 title":
        return [_hmdb_title(video_stem(e.path), class_names[e.label]) for e in entries]
    groups = []
    for e in entries:
        match = UCF_GROUP.search(video_stem(e.path))
        groups.append(f"{class_names[e.label]}/{match.group(1).lower()}" if match else None)
    return groups


def split_by_group(
    labels: np.ndarray, groups: Sequence[str | None], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole groups to a second part: `fraction` of each class's groups (at least one where a
    class has two or more; none when fraction is 0), drawn with `seed` by `stratified_split`.

    Returns each clip's group number, each group's class (the class most of its clips have)
    and which groups go to the second part. A clip whose group is None is a group of its own,
    so without groups this is `stratified_split` over the clips.
    """
    keys = [g if g is not None else f"\0clip {i}" for i, g in enumerate(groups)]
    index: dict[str, int] = {}  # in listing order: the draw is reproducible
    unit_of = np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
    votes = np.zeros((len(index), int(labels.max(initial=0)) + 1), dtype=np.int64)
    np.add.at(votes, (unit_of, labels), 1)
    unit_labels = votes.argmax(axis=1)
    second = np.zeros(len(index), dtype=bool)
    if fraction > 0 and len(index):
        _, chosen = stratified_split(torch.from_numpy(unit_labels), fraction, seed)
        second[chosen.numpy()] = True
    return unit_of, unit_labels, second


# what follows the action in an HMDB51 name: body part, camera motion, people, viewpoint,
# quality and the clip's number ('_f_cm_np1_fr_med_0')
HMDB_TAGS = re.compile(r"_[a-z]_[a-z]{2}_np\d+_[a-z]{2}_[a-z]{3}_\d+", re.IGNORECASE)


def _hmdb_title(stem: str, action: str) -> str | None:
    """HMDB51's '<title>_<action>_<tags>_<n>': the title, the film the clip was cut from;
    None for a name not made that way."""
    at = stem.casefold().rfind(f"_{action.casefold()}_")
    if at <= 0 or not HMDB_TAGS.fullmatch(stem[at + len(action) + 1 :]):
        return None
    return stem[:at]

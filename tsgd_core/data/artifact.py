"""A distilled set as an artifact: the clips, their labels and everything that made them.

File format ``tsgd.distilled``, version 1
-----------------------------------------
One file, by convention named ``<name>.tsgd.pt``, written by ``torch.save`` of a plain dict.
It holds only tensors, str, int, float, bool, None, lists, tuples and dicts, so it loads
without tsgd installed and without unpickling arbitrary code::

    import torch

    record = torch.load("ucf_tsgd_ipc1.tsgd.pt", weights_only=True, map_location="cpu")
    videos = record["videos"].float()  # (N, C, T, H, W) in [0, 1]
    labels = record["labels"]  # (N,) int64, indexes record["class_names"]

Keys:

============== ==================================================================================
format         ``"tsgd.distilled"``
format_version ``1`` (an int; a reader refuses versions it does not know)
videos         tensor (N, C, T, H, W), values in [0, 1]. float32 by default: the clips are the
               optimised variables, so they are kept exactly; ``save_distilled(..., half=True)``
               stores float16 to halve the size (lossy, about 3 decimal digits). Readers should
               call ``.float()``.
labels         int64 tensor (N,), hard labels in [0, K)
soft_labels    float tensor (N, K) of teacher probabilities; the key is absent when there are none
class_names    list of K str
method         str, e.g. ``"tsgd"``, ``"random"``, ``"herding"``
ipc            int, instances (clips) per class; every class has exactly ``ipc`` clips, N = ipc * K
seed           int, the seed the set was made with
config         dict of plain values: how the set was made
teacher_key    str or None: cache key of the teacher that distilled or relabels the set
history        dict str -> list of float: loss curves by name
versions       dict with the ``tsgd``, ``torch``, ``numpy`` and ``python`` versions that wrote it
created        str, ISO 8601 UTC timestamp of writing
============== ==================================================================================

Files are written atomically (a temporary file in the same folder, then ``os.replace``).

For people to watch, ``export_gif`` / ``export_mp4`` (or ``export``, by suffix) write one
animation of all clips as a grid: one row per class, one column per instance.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import torch
from typing_extensions import Unpack  # typing.Unpack from Python 3.11 (torch requires it)

from .. import __version__
from ..runtime.budget import check_disk_fits, check_export_fits
from .clips import ClipSet, DataError, to_uint8
from .storage import atomic_path, discard_bad_entry, load_failure, load_torch, tensor_digest

FORMAT = "tsgd.distilled"
FORMAT_VERSION = 1
SUFFIX = ".tsgd.pt"
# GIF frame delays are whole hundredths of a second (at most 655.35 s; browsers slow delays
# under 0.02 s down); MP4 rates are kept as fractions with denominators up to 1000
MIN_FPS, MAX_FPS = 0.01, 50.0
REQUIRED_KEYS = (
    "format",
    "format_version",
    "videos",
    "labels",
    "class_names",
    "method",
    "ipc",
    "seed",
    "config",
    "teacher_key",
    "history",
    "versions",
    "created",
)


@dataclass
class DistilledSet:
    """Synthetic (or selected) clips with labels and the metadata that reproduces them."""

    videos: torch.Tensor  # (N, C, T, H, W) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64 hard labels
    class_names: list[str]
    method: str
    ipc: int
    config: dict[str, Any] = field(default_factory=dict)  # JSON-able: how it was made
    seed: int = 0
    soft_labels: torch.Tensor | None = None  # (N, K) teacher probabilities, optional
    teacher_key: str | None = None  # cache key of the teacher that distilled / relabels it
    history: dict[str, list[float]] = field(default_factory=dict)  # loss curves by name

    def to_clipset(self) -> ClipSet:
        return ClipSet(self.videos, self.labels, list(self.class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistency (shapes, per-class counts, metadata)."""
        _check_videos(self.videos)
        n = int(self.videos.shape[0])
        _check_labels(self.labels, n, self.class_names)
        _check_ipc(self.labels, self.ipc, self.class_names)
        if self.soft_labels is not None:
            _check_soft_labels(self.soft_labels, n, len(self.class_names))
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"method must be a non-empty str, got {self.method!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int, got {type(self.seed).__name__}")
        if self.teacher_key is not None and not isinstance(self.teacher_key, str):
            raise ValueError(
                f"teacher_key must be a str or None, got {type(self.teacher_key).__name__}"
            )
        _plain_history(self.history)
        _plain_value(self.config, "config")

    def save(self, path: str | os.PathLike[str], *, half: bool = False) -> Path:
        """Same as `save_distilled(self, path, half=half)`."""
        return save_distilled(self, path, half=half)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DistilledSet:
        """Same as `load_distilled(path)`."""
        return load_distilled(path)


# ----------------------------------------------------------------------------- validation


def _check_videos(videos: Any) -> None:
    if not isinstance(videos, torch.Tensor) or videos.ndim != 5:
        shape = tuple(videos.shape) if isinstance(videos, torch.Tensor) else type(videos).__name__
        raise ValueError(f"videos must be a 5-D tensor (N, C, T, H, W), got {shape}")
    if not videos.is_floating_point():
        raise ValueError(f"videos must be a float tensor in [0, 1], got dtype {videos.dtype}")
    if videos.shape[0] == 0:
        raise ValueError("videos is empty (N = 0): a distilled set needs at least one clip")
    if not bool(torch.isfinite(videos).all()):
        raise ValueError("videos contain NaN or inf: the distillation diverged; lower its lr")


def _check_labels(labels: Any, n: int, class_names: Any) -> None:
    if not isinstance(class_names, list | tuple) or not class_names:
        raise ValueError("class_names must be a non-empty list of str")
    if not all(isinstance(name, str) for name in class_names):
        raise ValueError("class_names must hold only str")
    if not isinstance(labels, torch.Tensor) or labels.shape != (n,):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor of shape ({n},) (one per clip), got {shape}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    k = len(class_names)
    if int(labels.min()) < 0 or int(labels.max()) >= k:
        raise ValueError(
            f"labels must lie in [0, {k}) for {k} class names, "
            f"found {int(labels.min())}..{int(labels.max())}"
        )


def _check_ipc(labels: torch.Tensor, ipc: Any, class_names: Sequence[str]) -> None:
    if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
        raise ValueError(f"ipc must be a positive int, got {ipc!r}")
    counts = torch.bincount(labels.long(), minlength=len(class_names))
    wrong = torch.nonzero(counts != ipc).flatten().tolist()
    if wrong:
        found = ", ".join(f"{class_names[c]!r} has {int(counts[c])}" for c in wrong[:5])
        more = f" (and {len(wrong) - 5} more classes)" if len(wrong) > 5 else ""
        raise ValueError(
            f"ipc={ipc} means exactly {ipc} clip(s) per class, but {found}{more}; "
            "fix the labels or pass the ipc the set was made with"
        )


def _check_soft_labels(soft_labels: Any, n: int, k: int) -> None:
    if not isinstance(soft_labels, torch.Tensor) or soft_labels.shape != (n, k):
        shape = (
            tuple(soft_labels.shape)
            if isinstance(soft_labels, torch.Tensor)
            else type(soft_labels).__name__
        )
        raise ValueError(f"soft_labels must be a tensor of shape ({n}, {k}) or None, got {shape}")
    if not soft_labels.is_floating_point():
        raise ValueError(f"soft_labels must be a float tensor, got dtype {soft_labels.dtype}")


def _plain_value(value: Any, where: str) -> Any:
    """A copy of `value` made of plain Python values (numpy scalars become Python numbers)."""
    if value is None:
        return value
    for kind in (bool, int, float, str):  # bool first: it is an int
        if isinstance(value, kind):
            return kind(value)  # subclasses (enums, TorchVersion) do not load with weights_only
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a non-str key {key!r}; use str keys")
            out[key] = _plain_value(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        items = [_plain_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise ValueError(
        f"{where} is a {type(value).__name__}; it must hold plain Python values (str, int, "
        "float, bool, None, lists, dicts) so the file loads with weights_only=True: convert it "
        "(e.g. str(path), tensor.tolist())"
    )


def _plain_history(history: Any) -> dict[str, list[float]]:
    if not isinstance(history, Mapping):
        raise ValueError(f"history must be a dict of name -> list of float, got {history!r}")
    out = {}
    for name, values in history.items():
        if not isinstance(name, str):
            raise ValueError(f"history has a non-str key {name!r}; use str keys")
        try:
            out[name] = [float(v) for v in values]
        except (TypeError, ValueError) as err:
            raise ValueError(f"history[{name!r}] must be a list of numbers: {err}") from err
    return out


# ----------------------------------------------------------------------------- save / load


def _atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary file next to `path` (same suffix), then rename it; an
    OSError names `path` (the temporary is gone), so a full disk reads as writing `path`."""
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except OSError as error:
        if error.filename is None or Path(error.filename).name.startswith("."):
            raise OSError(error.errno, error.strerror or str(error), os.fspath(path)) from error
        raise
    return Path(path)


def _versions() -> dict[str, str]:
    return {
        "tsgd": __version__,
        "torch": str(torch.__version__),  # a str subclass that weights_only refuses
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


def _own_cpu_copy(tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    # a copy, so torch.save never writes the whole storage behind a view
    return tensor.detach().to("cpu", dtype=dtype, copy=True).contiguous()


def distilled_record(ds: DistilledSet, *, half: bool = False) -> dict[str, Any]:
    """The plain dict stored in a `.tsgd.pt` file (see the module docstring); validates `ds`."""
    ds.validate()
    record: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "videos": _own_cpu_copy(ds.videos, torch.float16 if half else torch.float32),
        "labels": _own_cpu_copy(ds.labels, torch.int64),
        "class_names": [str(name) for name in ds.class_names],
        "method": str(ds.method),
        "ipc": int(ds.ipc),
        "seed": int(ds.seed),
        "config": _plain_value(ds.config, "config"),
        "teacher_key": None if ds.teacher_key is None else str(ds.teacher_key),
        "history": _plain_history(ds.history),
        "versions": _versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if ds.soft_labels is not None:
        record["soft_labels"] = _own_cpu_copy(ds.soft_labels)
    return record


def save_distilled(ds: DistilledSet, path: str | os.PathLike[str], *, half: bool = False) -> Path:
    """Validate `ds` and write it atomically to `path` (conventionally `<name>.tsgd.pt`).

    `half=True` stores the videos as float16 (half the size, lossy); the default keeps float32.
    """
    record = distilled_record(ds, half=half)
    tensors = [v for v in record.values() if isinstance(v, torch.Tensor)]
    size = sum(t.numel() * t.element_size() for t in tensors)
    check_disk_fits(path, size, f"the set {Path(path).name}")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(record, f)
            f.flush()
            os.fsync(f.fileno())

    return _atomic_write(path, write)


def read_distilled_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and check the raw dict of a `.tsgd.pt` file (to read `versions`, `created`, ...)."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"no distilled set at {path}: check the path, or create it with save_distilled"
        )
    if not path.is_file():
        raise DataError(f"{path} is not a file: pass the path of a {SUFFIX} file")
    try:
        record = load_torch(path)
    except Exception as err:
        raise DataError(
            f"{path} is not a tsgd distilled-set file ({load_failure(err)}); "
            f"pass a {SUFFIX} file written by save_distilled"
        ) from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = (
            f"format={record.get('format')!r}"
            if isinstance(record, dict)
            else f"a {type(record).__name__}"
        )
        raise DataError(
            f"{path} is not a tsgd distilled-set file: expected a dict with format={FORMAT!r}, "
            f"found {found}; pass a {SUFFIX} file written by save_distilled"
        )
    version = record.get("format_version")
    if version != FORMAT_VERSION:
        raise DataError(
            f"{path} has format_version={version!r} but this tsgd ({__version__}) reads version "
            f"{FORMAT_VERSION}: use the tsgd version that wrote it (versions: "
            f"{record.get('versions')}) or re-save the set with this one"
        )
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise DataError(
            f"{path} is a damaged {FORMAT} file: missing keys {missing}; re-save the set"
        )
    return record


def load_distilled(path: str | os.PathLike[str]) -> DistilledSet:
    """Read a `.tsgd.pt` file written by `save_distilled`; videos come back as float32.

    Every field is checked (type, dtype, shape, finite values, the pixel range) before it is
    used: a damaged or edited file is a DataError naming the file and the field.
    """
    record = read_distilled_record(path)
    try:
        _check_field_types(record)
        ds = DistilledSet(
            videos=record["videos"].float(),
            labels=record["labels"].long(),
            class_names=list(record["class_names"]),
            method=record["method"],
            ipc=record["ipc"],
            config=record["config"],
            seed=record["seed"],
            soft_labels=record.get("soft_labels"),
            teacher_key=record["teacher_key"],
            history={name: list(values) for name, values in record["history"].items()},
        )
        _check_header(record)
        ds.validate()
        _check_loaded(ds)
    except ValueError as err:
        raise DataError(
            f"{path} holds an invalid distilled set: {err}; it was damaged or edited: distil it "
            "again or re-save it with save_distilled"
        ) from err
    return ds


PIXEL_TOLERANCE = 1e-3  # float16 storage and clamping round a little past [0, 1], never more

# the Python types every field of a record may have, and their words (tensors have their own)
FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "class_names": ((list, tuple), "a list of str"),
    "method": ((str,), "a str"),
    "ipc": ((int,), "an int"),
    "seed": ((int,), "an int"),
    "config": ((dict,), "a dict"),
    "teacher_key": ((str, type(None)), "a str or None"),
    "history": ((dict,), "a dict of name -> list of numbers"),
}


def _check_field_types(record: dict[str, Any]) -> None:
    """Each field's type, and each tensor's dtype and rank, before any of them is used."""
    for name, (kinds, wanted) in FIELD_TYPES.items():
        value = record[name]
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ValueError(f"{name} is {_a_type(value)}, not {wanted}")
    _check_tensor(record, "videos", 5, "a float", lambda t: t.is_floating_point())
    _check_tensor(record, "labels", 1, "an integer", _is_integer)
    if record.get("soft_labels") is not None:
        _check_tensor(record, "soft_labels", 2, "a float", lambda t: t.is_floating_point())
    for name, values in record["history"].items():
        if not isinstance(values, list | tuple):
            raise ValueError(f"history[{name!r}] is {_a_type(values)}, not a list")


def _a_type(value: Any) -> str:
    """'a str', 'an int': the type of `value` with its article."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _is_integer(tensor: torch.Tensor) -> bool:
    return not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)


def _check_tensor(
    record: dict[str, Any], name: str, ndim: int, kind: str, has_dtype: Callable[[Any], bool]
) -> None:
    value = record[name]
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} is {_a_type(value)}, not a tensor")
    if value.ndim != ndim:
        raise ValueError(f"{name} is a {value.ndim}-D tensor, not {ndim}-D")
    if not has_dtype(value):
        raise ValueError(f"{name} holds {value.dtype}, not {kind} dtype")


def _check_header(record: dict[str, Any]) -> None:
    """The tensors against the header: N = classes x IPC clips, one label per clip."""
    videos, names, ipc = record["videos"], record["class_names"], record["ipc"]
    if not isinstance(videos, torch.Tensor) or videos.ndim != 5:
        return  # validate() names it
    if not isinstance(names, list | tuple) or not isinstance(ipc, int) or isinstance(ipc, bool):
        return
    if len(names) != len(set(names)):
        repeated = sorted({n for n in names if list(names).count(n) > 1})
        raise ValueError(f"class_names repeat {repeated}: every class needs its own name")
    if any(not isinstance(n, str) or not n.strip() for n in names):
        raise ValueError("class_names hold an empty or non-str name")
    n, expected = int(videos.shape[0]), len(names) * ipc
    if ipc >= 1 and n != expected:
        raise ValueError(
            f"the header says {len(names)} classes x IPC {ipc} = {expected} clips, but videos "
            f"holds {n}"
        )
    spec = record["config"].get("spec") if isinstance(record["config"], dict) else None
    if isinstance(spec, dict) and "ipc" in spec and spec["ipc"] != ipc:
        raise ValueError(f"the header says IPC {ipc}, its recorded spec IPC {spec['ipc']!r}")


def _check_loaded(ds: DistilledSet) -> None:
    """What a file may hold that a set in memory never does: pixels outside [0, 1]."""
    low, high = float(ds.videos.min()), float(ds.videos.max())
    if low < -PIXEL_TOLERANCE or high > 1 + PIXEL_TOLERANCE:
        raise ValueError(f"videos hold values in [{low:.3g}, {high:.3g}], outside [0, 1]")
    if ds.soft_labels is not None:
        soft = ds.soft_labels
        if soft.is_floating_point() and not (
            bool(torch.isfinite(soft).all())
            and float(soft.min()) >= -PIXEL_TOLERANCE
            and float(soft.max()) <= 1 + PIXEL_TOLERANCE
        ):
            raise ValueError("soft_labels hold values that are not probabilities in [0, 1]")


# ----------------------------------------------------------------------------- cache entries


def content_digest(ds: DistilledSet) -> str:
    """A hash of what evaluation sees: clips, labels, soft labels and the relabelling teacher."""
    return tensor_digest(ds.videos.float(), ds.labels.long(), ds.soft_labels) + str(ds.teacher_key)


def cache_entry_key(path: str | os.PathLike[str]) -> str:
    """The key a cached set is stored under: its file name without the suffix."""
    name = Path(path).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else Path(path).stem


def save_cached_distilled(ds: DistilledSet, path: str | os.PathLike[str]) -> Path:
    """save_distilled, recording the cache key (the file name) and a digest of the contents."""
    ds.config = {
        **ds.config,
        "cache_key": cache_entry_key(path),
        "content_digest": content_digest(ds),
    }
    return save_distilled(ds, path)


def load_cached_distilled(path: str | os.PathLike[str]) -> DistilledSet | None:
    """The set cached at `path`, or None when there is none or it cannot be trusted.

    A file that does not load, records another cache key (a set copied over another entry) or
    whose contents changed is reported by path (CacheRepairWarning) and removed.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        ds = load_distilled(path)
    except (DataError, OSError) as error:
        discard_bad_entry(path, load_failure(error.__cause__ or error))
        return None
    key = ds.config.get("cache_key")
    if key != cache_entry_key(path):
        discard_bad_entry(path, f"recorded key {key!r}, expected {cache_entry_key(path)!r}")
        return None
    if ds.config.get("content_digest") != content_digest(ds):
        discard_bad_entry(path, "its contents do not match the digest recorded when it was saved")
        return None
    return ds


# ----------------------------------------------------------------------------- watchable export


def _layout(
    labels: torch.Tensor, num_classes: int, per_row: int | None
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Grid (row, col) of every clip and the grid size (rows, cols)."""
    n = labels.shape[0]
    order = torch.sort(labels, stable=True).indices  # by class, then by position in the set
    counts = torch.bincount(labels, minlength=num_classes)
    if per_row is None:
        starts = torch.cumsum(counts, 0) - counts
        instance = torch.empty_like(labels)
        instance[order] = torch.arange(n) - starts[labels[order]]
        return labels, instance, num_classes, max(int(counts.max()), 1)
    position = torch.empty_like(labels)
    position[order] = torch.arange(n)
    return position // per_row, position % per_row, -(-n // per_row), min(per_row, n)


def clip_grid_frames(
    videos: torch.Tensor,
    labels: torch.Tensor | None = None,
    num_classes: int | None = None,
    scale: int = 1,
    *,
    per_row: int | None = None,
    gap: int = 2,
    gap_value: int = 255,
) -> np.ndarray:
    """All clips as one animation: uint8 frames (T, H_grid, W_grid, 3).

    Without `per_row`, row c holds the clips of class c in their order in the set (column i is
    the i-th instance); with `per_row`, clips sorted by class fill rows of `per_row` cells.
    Every cell is upscaled `scale` times (nearest neighbour); `gap` pixels of `gap_value`
    separate the cells and frame the grid, and fill the cells of short classes.
    Videos are (N, C, T, H, W) float in [0, 1] (or uint8), C = 1 (grey) or 3 (RGB).
    """
    if not isinstance(videos, torch.Tensor) or videos.ndim != 5:
        shape = tuple(videos.shape) if isinstance(videos, torch.Tensor) else type(videos).__name__
        raise ValueError(f"videos must be a 5-D tensor (N, C, T, H, W), got {shape}")
    n, c = int(videos.shape[0]), int(videos.shape[1])
    if n == 0:
        raise ValueError("videos is empty: nothing to show")
    if c not in (1, 3):
        raise ValueError(f"clip grids show 1 (grey) or 3 (RGB) channels, got C = {c}")
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    if per_row is not None and (not isinstance(per_row, int) or per_row < 1):
        raise ValueError(f"per_row must be a positive int or None, got {per_row!r}")
    if gap < 0 or not 0 <= gap_value <= 255:
        raise ValueError(f"gap must be >= 0 and gap_value in [0, 255], got {gap}, {gap_value}")
    labels = torch.zeros(n, dtype=torch.long) if labels is None else labels.detach().cpu().long()
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}) for num_classes={num_classes}")

    row, col, rows, cols = _layout(labels, num_classes, per_row)
    check_export_fits(rows, cols, *videos.shape[2:], scale)
    clips = videos.detach().cpu()
    clips = clips if clips.dtype == torch.uint8 else to_uint8(clips)
    clips = clips.permute(0, 2, 3, 4, 1).expand(-1, -1, -1, -1, 3)  # (N, T, H, W, 3)
    clips = clips.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    _, t, h, w, _ = clips.shape
    # each cell carries its top/left separator; the grid's bottom/right border is added last
    cells = torch.full((rows, cols, t, h + gap, w + gap, 3), gap_value, dtype=torch.uint8)
    cells[row, col, :, gap:, gap:] = clips
    body = cells.permute(2, 0, 3, 1, 4, 5).reshape(t, rows * (h + gap), cols * (w + gap), 3)
    grid = torch.full(
        (t, rows * (h + gap) + gap, cols * (w + gap) + gap, 3), gap_value, dtype=torch.uint8
    )
    grid[:, : body.shape[1], : body.shape[2]] = body
    return grid.numpy()


def row_names(labels: torch.Tensor, class_names: Sequence[str], per_row: int | None) -> list[str]:
    """The caption of every grid row: its class, or with `per_row` the classes it holds."""
    if per_row is None:
        return list(class_names)
    ordered = torch.sort(labels.detach().cpu().long(), stable=True).values.tolist()
    rows = [ordered[i : i + per_row] for i in range(0, len(ordered), per_row)]
    return [", ".join(class_names[c] for c in dict.fromkeys(row)) for row in rows]


CAPTION_PAD = 4  # pixels around a caption


def with_row_captions(frames: np.ndarray, names: Sequence[str], gap: int = 2) -> np.ndarray:
    """The grid with a white strip on its left holding each row's caption in black."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    width = max(int(draw.textlength(name, font=font)) for name in names) + 2 * CAPTION_PAD
    t, height = frames.shape[0], frames.shape[1]
    row_h = (height - gap) // max(len(names), 1)
    strip = Image.new("RGB", (width, height), (255, 255, 255))
    pen = ImageDraw.Draw(strip)
    for i, name in enumerate(names):
        pen.text((CAPTION_PAD, gap + i * row_h + CAPTION_PAD), name, fill=(0, 0, 0), font=font)
    left = np.broadcast_to(np.asarray(strip, dtype=np.uint8), (t, height, width, 3))
    return np.concatenate([left, frames], axis=2)


def _grid_from(
    ds_or_videos: DistilledSet | ClipSet | torch.Tensor,
    scale: int,
    per_row: int | None,
    captions: bool = True,
) -> np.ndarray:
    if isinstance(ds_or_videos, DistilledSet | ClipSet):
        frames = clip_grid_frames(
            ds_or_videos.videos,
            ds_or_videos.labels,
            len(ds_or_videos.class_names),
            scale,
            per_row=per_row,
        )
        if not captions:
            return frames
        names = row_names(ds_or_videos.labels, list(ds_or_videos.class_names), per_row)
        return with_row_captions(frames, names)
    if isinstance(ds_or_videos, torch.Tensor):
        return clip_grid_frames(ds_or_videos, None, None, scale, per_row=per_row)
    raise ValueError(
        f"expected a DistilledSet, ClipSet or (N, C, T, H, W) tensor, got "
        f"{type(ds_or_videos).__name__}"
    )


def _check_export(path: Path, suffix: str, fps: float) -> None:
    if path.suffix.lower() != suffix:
        raise ValueError(f"{path} must end in {suffix} for this export (got {path.suffix!r})")
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"fps must lie in [{MIN_FPS:g}, {MAX_FPS:g}], got {fps!r}")


class GridOptions(TypedDict, total=False):
    """How `export_gif` / `export_mp4` draw the clip grid.

    fps: frames per second (MIN_FPS to MAX_FPS; default 4); scale: every pixel becomes
    scale x scale (default 4); per_row: cells per row instead of one row per class; captions:
    a set's rows carry their class names in a strip on the left (default True).
    """

    fps: float
    scale: int
    per_row: int | None
    captions: bool


Clips = DistilledSet | ClipSet | torch.Tensor


def _export_frames(
    ds_or_videos: Clips,
    path: str | os.PathLike[str],
    suffix: str,
    options: GridOptions,
) -> tuple[Path, np.ndarray, float]:
    """The checked path, the grid's frames and the frame rate of an export."""
    unknown = sorted(set(options) - set(GridOptions.__annotations__))
    if unknown:
        raise TypeError(f"unknown export option(s) {', '.join(unknown)}: use fps, scale, ...")
    path, fps = Path(path), options.get("fps", 4)
    _check_export(path, suffix, fps)
    frames = _grid_from(
        ds_or_videos,
        options.get("scale", 4),
        options.get("per_row"),
        options.get("captions", True),
    )
    return path, frames, fps


def _write_gif(tmp: Path, frames: np.ndarray, fps: float) -> None:
    """The frames as a looping GIF, written by Pillow itself: imageio's writer retries a failed
    write when it is garbage-collected and prints a second traceback (a full disk)."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    more = {"save_all": True, "append_images": images[1:]} if len(images) > 1 else {}
    images[0].save(tmp, format="GIF", duration=1000 / fps, loop=0, **more)


def export_gif(
    ds_or_videos: Clips, path: str | os.PathLike[str], **options: Unpack[GridOptions]
) -> Path:
    """Write one looping GIF of the clip grid (rows = classes, columns = instances; see
    GridOptions for fps, scale, per_row and captions).

    GIF stores a 256-colour palette per frame, and identical consecutive frames are merged into
    one longer frame (the playing time stays T / fps).
    """
    path, frames, fps = _export_frames(ds_or_videos, path, ".gif", options)
    return _atomic_write(path, lambda tmp: _write_gif(tmp, frames, fps))


def _write_mp4(tmp: Path, frames: np.ndarray, fps: float) -> None:
    import av

    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}  # visually lossless; the clips are small
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush delayed frames
            container.mux(packet)


def export_mp4(
    ds_or_videos: Clips, path: str | os.PathLike[str], **options: Unpack[GridOptions]
) -> Path:
    """Write the clip grid as an H.264 MP4 (yuv420p; see GridOptions for the options).

    The grid is padded at the bottom/right to an even height and a width that is a multiple
    of 32, which every decoder (PyAV, decord) reads back at its true size.
    """
    path, frames, fps = _export_frames(ds_or_videos, path, ".mp4", options)
    _, h, w, _ = frames.shape
    # yuv420p needs even sizes; decord misreads narrow frames of some widths (e.g. 24, 48, 72)
    # unless the width is a multiple of 32. Pad bottom/right with the separator colour.
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, -w % 32), (0, 0)), constant_values=255)
    return _atomic_write(path, lambda tmp: _write_mp4(tmp, frames, fps))


EXPORTERS = {".gif": export_gif, ".mp4": export_mp4}


def export(
    ds_or_videos: DistilledSet | ClipSet | torch.Tensor,
    path: str | os.PathLike[str],
    **options: Any,
) -> Path:
    """Write the clip grid as a GIF or MP4, chosen by the suffix of `path`."""
    path = Path(path)
    exporter = EXPORTERS.get(path.suffix.lower())
    if exporter is None:
        raise ValueError(
            f"cannot export to {path}: unknown suffix {path.suffix!r}; use one of "
            f"{', '.join(EXPORTERS)} (save_distilled writes the {SUFFIX} data file)"
        )
    return exporter(ds_or_videos, path, **options)

"""Files on disk: atomic writes (nothing half-written survives a crash), configuration keys, and
cache entries that are checked on load (a damaged or misplaced entry is reported and rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import torch

from ..runtime.paths import host_name, owner_gone, owner_token


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples, paths and tensors to plain JSON values (for keys and metadata)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return obj


def config_key(*parts: Any, length: int = 12) -> str:
    """A short stable hash of JSON-able configuration: equal configs give equal keys."""
    text = json.dumps(to_jsonable(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files of `atomic_path`: ".<stem>.<host>~<pid>~<stamp>~<random>.tmp<suffix>" (the
# stamp, runtime.paths.owner_token, digests the boot and the process's start time; older names
# lack it). The owner in the name lets a later run remove what a killed process left behind.
_TEMP_NAME = re.compile(
    r"^\..*\.(?P<host>[A-Za-z0-9-]+)~(?P<pid>\d+)~(?:(?P<stamp>[0-9a-f]{8})~)?[^.~]*\.tmp[^/]*$"
)
_ANY_TEMP_NAME = re.compile(r"^\..+\.tmp(\.[^/]*)?$")
# Temporaries whose writer cannot be told gone (another host, the old naming, a live process of
# that id without a stamp to compare) are removed only when this old.
STALE_TEMP_AGE_S = 24 * 3600
# a modification time this far ahead of the clock is no live writer's (a copy, a touch, a skew)
FUTURE_SLACK_S = 300


def is_stale_temporary(path: Path, now: float | None = None) -> bool:
    """A hidden `.tmp` file whose writer is gone (this host, a dead process, or another process
    of the same id), that is a day old, or whose modification time lies in the future."""
    if not _ANY_TEMP_NAME.match(path.name):
        return False
    match = _TEMP_NAME.match(path.name)
    if match and match["host"] == host_name():
        gone = owner_gone(int(match["pid"]), match["stamp"])
        if gone is not None:
            return gone
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age > STALE_TEMP_AGE_S or age < -FUTURE_SLACK_S


def remove_stale_temporaries(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Delete the temporaries that interrupted writes left in `folder`; returns what went."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    candidates = folder.rglob(".*.tmp*") if recursive else folder.glob(".*.tmp*")
    removed = []
    for path in candidates:
        if path.is_file() and is_stale_temporary(path):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass  # another process got there first, or no permission: harmless
    return removed


def sweep_cache(cache_dir: str | Path) -> list[Path]:
    """remove_stale_temporaries in a cache folder and its entry folders (teachers, sets, ...)."""
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        return []
    folders = [cache_dir, *(p for p in cache_dir.iterdir() if p.is_dir())]
    return [path for folder in folders for path in remove_stale_temporaries(folder)]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.{owner_token()}", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_torch(obj: Any, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_torch(path: str | Path) -> Any:
    """torch.load of plain tensors and values only (never code), on the CPU.

    torch's own warnings about the file (a damaged header reads as an unknown pickle protocol)
    are silenced: the caller reports an unreadable file once, in one line of its own.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
        return torch.load(path, map_location="cpu", weights_only=True)


def save_json(obj: Any, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n")
    return Path(path)


def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


# ----------------------------------------------------------------------------- checks before work

# one check of every path a user gives, in the bottom room (the CLI, the runner, the stages and
# the notebooks' parameters call it): re-exported here, where the writers are
from ..runtime.paths import check_writable_dir, check_writable_file  # noqa: E402, F401

# ----------------------------------------------------------------------------- verified cache entries


class CacheRepairWarning(UserWarning):
    """A cache entry was damaged or belonged to another key; it was removed and is rebuilt."""


def discard_bad_entry(path: str | Path, reason: str) -> None:
    """Warn (naming the file) and remove a cache entry that cannot be trusted."""
    warnings.warn(
        f"damaged cache entry {path} ({reason}); rebuilding it", CacheRepairWarning, stacklevel=3
    )
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:150]}" if text else type(error).__name__


def load_failure(error: BaseException) -> str:
    """Why torch.load failed, in one line of our own (not torch's advice on weights_only)."""
    if "weights only load failed" in str(error).lower():
        return (
            "it holds Python objects other than tensors and plain values, which are never "
            "loaded because loading them could run code"
        )
    return first_line(error)


def json_digest(value: Any) -> str:
    """A short hash of a JSON value (key order ignored)."""
    return config_key("json", value, length=16)


def save_json_keyed(value: Any, path: str | Path, key: str) -> Path:
    """Write a cache entry that records its key and a digest of its value (see load_json_keyed)."""
    value = to_jsonable(value)
    return save_json({"cache_key": key, "digest": json_digest(value), "value": value}, path)


def load_json_keyed(path: str | Path, key: str, parse: Callable[[Any], Any] = lambda v: v) -> Any:
    """The parsed value of a cache entry written by save_json_keyed, or None when there is none.

    An entry that is not JSON, records another key, whose value changed since it was written, or
    that `parse` rejects is reported by path
    (CacheRepairWarning) and removed, so the caller computes it again.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        blob = load_json(path)
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        discard_bad_entry(path, first_line(error))
        return None
    if not isinstance(blob, dict):
        discard_bad_entry(path, f"holds a JSON {type(blob).__name__}, not a cache record")
        return None
    if blob.get("cache_key") != key:
        discard_bad_entry(path, f"recorded key {blob.get('cache_key')!r}, expected {key!r}")
        return None
    if blob.get("digest") != json_digest(blob.get("value")):
        discard_bad_entry(path, "its value does not match the digest recorded when it was saved")
        return None
    try:
        return parse(blob.get("value"))
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        discard_bad_entry(path, first_line(error))
        return None


def tensor_digest(*tensors: torch.Tensor | None) -> str:
    """A short hash of tensor contents (shape, dtype and bytes): equal data, equal digest."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- report files

DPI = 120  # resolution of every written figure


def save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write `fig` as PNG atomically and close it."""
    import matplotlib.pyplot as plt  # only the writers of figures need matplotlib

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_table(table: Any, path_stem: str | os.PathLike[str]) -> tuple[Path, Path]:
    """`<stem>.md` (GitHub markdown) and `<stem>.csv` of a table."""
    stem = Path(path_stem)
    md = write_text(table.to_markdown() + "\n", stem.with_suffix(".md"))
    csv = write_text(table.to_csv(), stem.with_suffix(".csv"))
    return md, csv

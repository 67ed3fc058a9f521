"""Small builders the test files share (importable as `helpers`: pytest puts tests/ on the path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tsgd_core.data.clips import Splits
from tsgd_core.data.synthetic import make_motion_benchmark


def small_benchmark(
    classes: int,
    per_class: tuple[int, int, int],
    *,
    size: tuple[int, int] | None = None,
    **options: Any,
) -> Splits:
    """The motion benchmark with `classes` classes, (train, val, test) clips per class and
    frames of `size` (height, width); unset and `options`: make_motion_benchmark's defaults."""
    train, val, test = per_class
    frame = {} if size is None else {"height": size[0], "width": size[1]}
    return make_motion_benchmark(
        num_classes=classes,
        clips_per_class=train,
        val_per_class=val,
        test_per_class=test,
        **frame,
        **options,
    )


def shared_refusals(ipc: int, class_name: str, class_size: int) -> list[tuple[dict, str]]:
    """The config refusals every set-optimising method shares, as (keywords, message) cases:
    IPC 0, an IPC above the smallest class (`class_name`, `class_size` clips) and an unknown init."""
    return [
        ({"ipc": 0}, "ipc must be >= 1"),
        (
            {"ipc": ipc},
            f"IPC {ipc} needs {ipc} real clips per class to initialise from; "
            f"class '{class_name}' has {class_size}",
        ),
        ({"init": "zeros"}, "unknown init 'zeros'"),
    ]


TIMING = ("wall_s", "peak_mb")  # record fields that measure the run, not its result


def run_records(reports: Path) -> dict[str, dict]:
    """Every run's record under a report folder, without the fields that time the run."""
    out = {}
    for path in sorted((reports / "runs").rglob("record.json")):
        row = json.loads(path.read_text())
        key = str(path.parent.relative_to(reports / "runs"))
        out[key] = {k: v for k, v in row.items() if not k.endswith(TIMING)}
    return out

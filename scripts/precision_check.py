#!/usr/bin/env python
"""Does bfloat16 change the students' accuracy? float32 against bf16, paired, on the validation split.

    python scripts/precision_check.py                       # the default profile, ~40 min on 2 cores
    python scripts/precision_check.py --profile smoke --out /tmp/pc   # seconds: a pipeline check

Every cell (Random and TSGD at IPC 1 and 5, over the profile's draws, soft and hard labels)
is evaluated twice on the validation split, once per precision, by the same student seeds
(the same initialisation and batch order): the pairs differ in arithmetic alone. The teacher
and recovery are shared, in float32. The verdict: bf16 may become the default when every
paired difference's 95 % interval (two-level, over draws: grid.stats) lies within
+-TOLERANCE points. Writes precision_check.json / .md into --out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsgd_core.data.storage import save_json, write_text  # noqa: E402
from tsgd_core.grid import experiments, stats  # noqa: E402
from tsgd_core.grid.profiles import get_profile  # noqa: E402
from tsgd_core.grid.spec import RunSpec  # noqa: E402
from tsgd_core.runtime.progress import progress_bar  # noqa: E402

TOLERANCE = 1.5  # points: the interval of bf16 - fp32 must lie inside +-TOLERANCE
METHODS = ("random", "tsgd")
IPCS = (1, 5)
PRECISIONS = ("fp32", "bf16")


def cells(profile: str) -> list[RunSpec]:
    """Every (method, IPC, draw, precision) cell of the check, validation split."""
    prof = get_profile(profile)
    ipcs = [i for i in IPCS if i in prof.ipcs] or list(prof.ipcs[:2])
    return [
        RunSpec(method=m, ipc=i, profile=profile, eval_split="val", distill_seed=d, precision=p)
        for m in METHODS
        for i in ipcs
        for d in prof.distill_seeds
        for p in PRECISIONS
    ]


def summarise(records: list[dict]) -> list[dict]:
    """bf16 - fp32 per (method, IPC, labels), paired by draw and student seed, in points."""
    rows = []
    for method in METHODS:
        for ipc in sorted({r["ipc"] for r in records}):
            for labels in ("soft", "hard"):
                pick = [r for r in records if r["method"] == method and r["ipc"] == ipc]
                a = [r for r in pick if r["precision"] == "bf16"]
                b = [r for r in pick if r["precision"] == "fp32"]
                pairs = stats.paired_differences(a, b, labels)
                if pairs.empty:
                    continue
                s = stats.difference_summary(pairs)
                rows.append(
                    {
                        "method": method,
                        "ipc": ipc,
                        "labels": labels,
                        "fp32": 100 * pairs["b"].mean(),
                        "bf16": 100 * pairs["a"].mean(),
                        "diff": 100 * s["mean_diff"],
                        "ci_low": 100 * s["ci_low"],
                        "ci_high": 100 * s["ci_high"],
                        "n": s["n"],
                        "within": bool(
                            -TOLERANCE <= 100 * s["ci_low"] and 100 * s["ci_high"] <= TOLERANCE
                        ),
                    }
                )
    return rows


def markdown(rows: list[dict], command: str, timing: dict) -> str:
    ok = bool(rows) and all(r["within"] for r in rows)
    lines = [
        "# bfloat16 against float32: the students' accuracy on the validation split",
        "",
        f"`{command}`. Paired by draw and student seed; 95 % interval "
        f"over draws; points. Within: the interval lies inside +-{TOLERANCE} points.",
        "",
        "| method | IPC | labels | fp32 | bf16 | bf16 - fp32 [95 % CI] | n | within |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['ipc']} | {r['labels']} | {r['fp32']:.1f} | {r['bf16']:.1f} "
            f"| {r['diff']:+.1f} [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] | {r['n']} "
            f"| {'yes' if r['within'] else 'no'} |"
        )
    lines += [
        "",
        f"Evaluation time, summed over cells: fp32 {timing['fp32']:.0f} s, bf16 "
        f"{timing['bf16']:.0f} s (ratio {timing['fp32'] / max(timing['bf16'], 1e-9):.2f}).",
        "",
        "Verdict: "
        + (
            "every interval lies within the tolerance: bf16 may be the default."
            if ok
            else "some interval leaves the tolerance: float32 stays the default."
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--cache", default=str(ROOT / "cache"))
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench"))
    parser.add_argument("--shard", default="0/1", help="K/N: run every N-th cell from K")
    parser.add_argument("--summarise-only", action="store_true", help="read the cached cells")
    args = parser.parse_args()
    k, n = (int(x) for x in args.shard.split("/"))
    todo = cells(args.profile)
    records = []
    for i, spec in enumerate(progress_bar(todo, desc="precision check")):
        if not args.summarise_only and i % n != k:
            continue
        _, rec = experiments.run(spec, cache_dir=args.cache, progress=False)
        records.append(rec)
    if n > 1 and not args.summarise_only:
        print(f"shard {args.shard} done: run with --summarise-only once every shard is")
        return
    rows = summarise(records)
    timing = {
        p: sum(
            r.get(f"eval_{m}_wall_s") or 0.0
            for r in records
            if r["precision"] == p
            for m in ("soft", "hard")
        )
        for p in PRECISIONS
    }
    command = "python scripts/precision_check.py" + (
        f" --profile {args.profile}" if args.profile != "default" else ""
    )
    out = Path(args.out)
    save_json(
        {"rows": rows, "timing_s": timing, "tolerance": TOLERANCE}, out / "precision_check.json"
    )
    write_text(markdown(rows, command, timing), out / "precision_check.md")
    print((out / "precision_check.md").read_text())


if __name__ == "__main__":
    main()

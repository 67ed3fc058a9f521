#!/usr/bin/env python
"""Why are the default profile's distilled sets all close together? A study of the student's
training budget and of the soft-label temperature, on the VALIDATION split (never the test split).

    python scripts/student_budget.py --out reports/default/student_budget.md

For the sets that `./run_all.sh` cached (random and TSGD at one IPC), it trains the
profile's students with more steps and with other temperatures and writes a table of validation
accuracy (mean ± std over the profile's seeds).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tsgd_core import experiments  # noqa: E402
from tsgd_core.evaluate import evaluate_set  # noqa: E402
from tsgd_core.storage import atomic_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--ipc", type=int, default=5)
    parser.add_argument("--long", type=int, default=300, help="the longer student budget (steps)")
    parser.add_argument("--taus", type=float, nargs="+", default=[1.0, 4.0])
    parser.add_argument("--cache", default=str(ROOT / "cache"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    prof = experiments.get_profile(args.profile)
    splits = experiments.load_data(args.profile)
    teacher, _ = experiments.get_teacher(args.profile, cache_dir=args.cache, progress=False)
    rows = []
    short = prof.student.fit.steps
    for method in ("random", "tsgd"):
        spec = experiments.RunSpec(method=method, ipc=args.ipc, profile=args.profile, tsgfa=False)
        ds = experiments.make_distilled(spec, cache_dir=args.cache, progress=False)
        # the profile's budget, a longer one, and the temperature at the longer budget
        settings = [("hard", None, short), ("hard", None, args.long)]
        settings += [("soft", tau, args.long) for tau in args.taus]
        for labels, tau, steps in settings:
            cfg = replace(
                prof.student,
                labels=labels,
                augment="base",
                fit=replace(prof.student.fit, steps=steps),
            )
            if tau is not None:
                cfg = replace(cfg, tau=tau)
            res = evaluate_set(
                ds.to_clipset(),
                splits.val,
                cfg,
                teacher=teacher,
                seeds=prof.seeds,
                device="cpu",
                progress=False,
            )
            name = experiments.METHOD_LABELS[method] + (" w/o TSGFA" if method == "tsgd" else "")
            rows.append(
                {
                    "method": name,
                    "labels": labels,
                    "tau": tau if tau is not None else "-",
                    "steps": steps,
                    "val acc [%]": f"{100 * res.mean:.1f} ± {100 * res.std:.1f}",
                }
            )
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows).to_markdown(index=False)
    text = (
        f"# Student budget and temperature (profile `{args.profile}`, IPC {args.ipc}, validation split)\n\n"
        f"Command: `python scripts/student_budget.py --out {args.out}`\n\n{table}\n"
    )
    with atomic_path(args.out) as tmp:
        tmp.write_text(text)


if __name__ == "__main__":
    main()

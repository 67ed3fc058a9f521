"""Equal tuning on the validation split: every optimised method gets the same grid shape and
budget, and the settings chosen by validation accuracy become the defaults of every later run.

Two passes, the same shape for every method (`./run_all.sh --tune`):

1. coarse: eight settings per method (TSGD and SRe2L-style: eight Adam pixel learning rates,
   down to 3e-5; DM: eight SGD pixel learning rates over its own range; Salient windows: its
   six window x packing choices) at one iteration count, 2 draws x 3 students each;
2. refine: each method's best two settings at two iteration counts, and at 0 iterations (the
   start set itself: "no recovery" is a candidate, whose students are the start set's, trained
   once: `RunSpec.is_start_set`), 5 draws x 3 students each (Salient windows has no
   iterations); the best of them by mean validation accuracy is chosen.

Each method is tuned under each student recipe (the base augmentation, and TSGFA on top of
it), because the report trains every set under both. The start set (Random under the same
recipe, the same draws) is evaluated beside them as the line to beat. The test split never
takes part. Output: `reports/tuning/` (tuning.csv, all_runs.csv, figures, README)
and `tsgd_core/tuned.json`, which `RunSpec` reads for every setting a spec leaves unset.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ..data.storage import save_figure, save_json, write_table, write_text  # noqa: E402
from . import experiments  # noqa: E402
from .profiles import TUNED_PATH, tuned_table  # noqa: E402
from .spec import RunSpec  # noqa: E402
from .stats import two_level_interval  # noqa: E402

# Adam on [0, 1] pixels; the earlier tuning chose its smallest value, 3e-4, everywhere, so the
# grid reaches two steps below it (and refine adds 0 iterations)
RECOVER_LRS = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001, 0.00003)
# DM's SGD on pixels: its own range, spanning barely moving to several times the clips' motion
# signal (measured at IPC 1, 100 iterations: lr 0.1 moves pixels 0.9x the mean frame
# difference, lr 1 4x; tuning.csv's change_over_motion has every setting's)
DM_LRS = (3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
SALIENT_SETTINGS = tuple(
    {"window": w, "pack": p} for w in ("salient", "random") for p in ("none", "time", "tiles")
)
COARSE_SEEDS = (0, 1)
REFINE_SEEDS = (0, 1, 2, 3, 4)
STUDENTS = 3
# iteration counts, as fractions of the profile's recover budget (default: 100 and 400), the
# same for DM; the coarse pass runs the first
ITERATION_SCALES = (0.25, 1.0)
KEEP = 2  # settings of each method that go on to the refine pass
# the tuned variants, each method under each student recipe: (table label, spec fields); the
# keys are `RunSpec.variant` (TSGD under the base recipe keeps its older name)
VARIANTS = {
    "tsgd": ("TSGD + TSGFA", {"method": "tsgd"}),
    "tsgd-notsgfa": ("TSGD", {"method": "tsgd", "student_augment": "base"}),
    "sre2l": ("SRe2L-style", {"method": "sre2l"}),
    "sre2l-tsgfa": ("SRe2L-style + TSGFA", {"method": "sre2l", "student_augment": "tsgfa"}),
    "dm": ("DM", {"method": "dm"}),
    "dm-tsgfa": ("DM + TSGFA", {"method": "dm", "student_augment": "tsgfa"}),
    "salient": ("Salient windows", {"method": "salient"}),
    "salient-tsgfa": ("Salient windows + TSGFA", {"method": "salient", "student_augment": "tsgfa"}),
}
START = "random"
# the start set under each recipe: (table label, spec fields), keyed by `RunSpec.variant`
STARTS = {
    "random": ("Random (start set)", {"method": "random"}),
    "random-tsgfa": (
        "Random + TSGFA (start set)",
        {"method": "random", "student_augment": "tsgfa"},
    ),
}
KNOBS = ("lr", "iterations", "r_bn", "window", "pack")
CSV_COLUMNS = ["method", "variant", "recipe", "ipc", "labels", *KNOBS]
CSV_COLUMNS += ["mean", "ci_low", "ci_high", "n"]
CSV_COLUMNS += ["n_distill", "gain_vs_start", "gain_ci_low", "gain_ci_high"]
CSV_COLUMNS += ["change_over_motion", "stage", "chosen"]


def iteration_counts(profile: str) -> tuple[int, ...]:
    budget = experiments.get_profile(profile).distill_iterations
    return tuple(max(1, round(budget * s)) for s in ITERATION_SCALES)


def settings(profile: str, variant: str) -> list[dict[str, Any]]:
    """The coarse settings of one variant (their knobs as RunSpec fields)."""
    if variant.startswith("salient"):
        return [dict(s) for s in SALIENT_SETTINGS]
    iterations = iteration_counts(profile)[0]
    if variant.startswith("dm"):
        return [{"dm_lr": lr, "iterations": iterations} for lr in DM_LRS]
    return [{"lr": lr, "iterations": iterations} for lr in RECOVER_LRS]


def spec_for(
    profile: str, variant: str, ipc: int, knobs: dict[str, Any], seed: int, dataset: str = ""
) -> RunSpec:
    """One tuning cell: the variant with these knobs, soft labels, validation split."""
    return RunSpec(
        profile=profile,
        ipc=ipc,
        dataset=dataset,
        labels=("soft",),
        eval_split="val",
        distill_seed=seed,
        n_students=STUDENTS,
        **(VARIANTS | STARTS)[variant][1],
        **knobs,
    )


def coarse_specs(profile: str, ipcs: Sequence[int], dataset: str = "") -> list[RunSpec]:
    """Pass 1: every variant's six settings and the start set, over the coarse draws."""
    specs = []
    for ipc in ipcs:
        for seed in COARSE_SEEDS:
            specs += [spec_for(profile, start, ipc, {}, seed, dataset) for start in STARTS]
            for variant in VARIANTS:
                for knobs in settings(profile, variant):
                    specs.append(spec_for(profile, variant, ipc, knobs, seed, dataset))
    return specs


def knobs_of(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """A table row's knobs as RunSpec fields."""
    if row["variant"].startswith("salient"):
        return {"window": row["window"], "pack": row["pack"]}
    if row["variant"] in STARTS:
        return {}
    key = "dm_lr" if row["variant"].startswith("dm") else "lr"
    return {key: float(row["lr"]), "iterations": int(row["iterations"])}


def refine_specs(
    profile: str, coarse: pd.DataFrame, ipcs: Sequence[int], dataset: str = ""
) -> list[RunSpec]:
    """Pass 2: the best KEEP coarse settings of each variant at every iteration count and at 0
    iterations (no recovery: the start set under the variant's own spec), and the start sets,
    over the refine draws."""
    specs = []
    for ipc in ipcs:
        for seed in REFINE_SEEDS:
            specs += [spec_for(profile, start, ipc, {}, seed, dataset) for start in STARTS]
        for variant in VARIANTS:
            rows = coarse[(coarse["variant"] == variant) & (coarse["ipc"] == ipc)]
            for rank, (_, row) in enumerate(rows.nlargest(KEEP, "mean").iterrows()):
                knobs = knobs_of(row)
                counts = iteration_counts(profile) + ((0,) if rank == 0 else ())
                variants = (
                    [knobs]
                    if variant.startswith("salient")
                    else [{**knobs, "iterations": i} for i in counts]
                )
                for k in variants:
                    specs += [spec_for(profile, variant, ipc, k, s, dataset) for s in REFINE_SEEDS]
    return list(dict.fromkeys(specs))  # a setting kept at both iteration counts runs once


# ----------------------------------------------------------------------------- running


def _run_one(
    spec: RunSpec, cache_dir: str, device: str, cached_only: bool = False
) -> dict[str, Any] | None:
    """One cell in a worker process (one torch thread: the teacher's key names the count);
    with `cached_only`, its cached record or None."""
    import torch

    torch.set_num_threads(1)
    if cached_only:
        return experiments.cached_record(spec, cache_dir=cache_dir, device=device)
    _, rec = experiments.run(spec, cache_dir=cache_dir, device=device, progress=False)
    return rec


def _teacher_one(profile: str, cache_dir: str, device: str) -> str:
    """One profile's teacher, trained (or found) in a worker process with one torch thread."""
    import torch

    torch.set_num_threads(1)
    _, info = experiments.get_teacher(profile, cache_dir=cache_dir, device=device, progress=False)
    return info.key


def in_workers(fn: Any, calls: Sequence[tuple], *, workers: int, desc: str) -> list[Any]:
    """fn(*call) for every call, in `workers` spawned processes (no fork after torch's thread
    pools started); results in the calls' order, with a progress bar over completions."""
    results: dict[int, Any] = {}
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(fn, *call): i for i, call in enumerate(calls)}
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc):
            results[futures[future]] = future.result()
    return [results[i] for i in range(len(calls))]


def run_specs(
    specs: Sequence[RunSpec],
    *,
    cache_dir: str | Path,
    device: str,
    workers: int,
    desc: str,
    cached_only: bool = False,
) -> list[dict[str, Any]]:
    """Every spec's record, in the specs' order, computed by `workers` processes (cached cells
    come back at once). The most expensive cells (largest IPC) are submitted first. With
    `cached_only` nothing is computed: the cells not in the cache are left out."""
    order = sorted(range(len(specs)), key=lambda i: -specs[i].ipc)
    calls = [(specs[i], str(cache_dir), device, cached_only) for i in order]
    records = in_workers(_run_one, calls, workers=workers, desc=desc)
    by_index = dict(zip(order, records, strict=True))
    return [by_index[i] for i in range(len(specs)) if by_index[i] is not None]


def train_teachers(
    profiles: Sequence[str], *, cache_dir: str | Path, device: str, workers: int
) -> list[str]:
    """The profiles' teachers, one per worker at a time (so no two workers train the same)."""
    calls = [(p, str(cache_dir), device) for p in dict.fromkeys(profiles)]
    return in_workers(_teacher_one, calls, workers=workers, desc="teachers")


# ----------------------------------------------------------------------------- the table


def _spec_fields(record: dict[str, Any]) -> dict[str, Any]:
    names = {f for f in RunSpec.__dataclass_fields__}
    out = {k: v for k, v in record.items() if k in names}
    out["labels"] = tuple(str(record["labels"]).split(","))
    out["tsgfa_parts"] = tuple(out.get("tsgfa_parts", ()))
    return out


def setting_row(record: dict[str, Any]) -> dict[str, Any]:
    """The knobs of one record, as tuning.csv names them."""
    spec = RunSpec(**_spec_fields(record))  # once: its variant and its recipe
    return {
        "method": (VARIANTS | STARTS)[spec.variant][0],
        "variant": spec.variant,
        "recipe": spec.recipe,
        "ipc": int(record["ipc"]),
        "labels": "soft",
        "lr": record.get("lr_used"),
        "iterations": record.get("iterations_used"),
        "r_bn": record.get("r_bn_used"),
        "window": record.get("window_used"),
        "pack": record.get("pack_used"),
    }


def summarise(records: Sequence[dict[str, Any]], stage: str) -> pd.DataFrame:
    """One row per setting: mean and 95 % interval over draws x students, and the paired gain
    over the start set (Random, the same draw and student seeds), in percent."""
    groups: dict[tuple, dict[str, Any]] = {}
    start = {
        (setting_row(r)["recipe"], int(r["ipc"]), int(r["distill_seed"])): list(r["acc_soft_seeds"])
        for r in records
        if r["method"] == START
    }
    for rec in records:
        row = setting_row(rec)
        key = tuple((k, str(v)) for k, v in row.items())
        entry = groups.setdefault(key, {"row": row, "accs": {}, "change": []})
        entry["accs"][int(rec["distill_seed"])] = list(rec["acc_soft_seeds"])
        if rec.get("change_over_motion") is not None:
            entry["change"].append(float(rec["change_over_motion"]))
    rows = []
    for entry in groups.values():
        interval = two_level_interval(entry["accs"])
        at = (entry["row"]["recipe"], entry["row"]["ipc"])  # the start set under the same recipe
        gains = {
            seed: [a - b for a, b in zip(accs, start[(*at, seed)], strict=True)]
            for seed, accs in entry["accs"].items()
            if (*at, seed) in start and entry["row"]["variant"] not in STARTS
        }
        gain = two_level_interval(gains)
        change = entry["change"]
        rows.append(
            {
                **entry["row"],
                "mean": 100 * interval.mean,
                "ci_low": 100 * interval.low,
                "ci_high": 100 * interval.high,
                "n": interval.n,
                "n_distill": interval.n_distill,
                "gain_vs_start": 100 * gain.mean,
                "gain_ci_low": 100 * gain.low,
                "gain_ci_high": 100 * gain.high,
                "change_over_motion": sum(change) / len(change) if change else math.nan,
                "stage": stage,
                "chosen": False,
            }
        )
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def mark_chosen(table: pd.DataFrame) -> pd.DataFrame:
    """Mark, per variant and IPC, the setting with the best mean validation accuracy among the
    last pass that ran (refine; coarse when the refine pass was not run)."""
    table = table.copy()
    table["chosen"] = False
    last = "refine" if (table["stage"] == "refine").any() else "coarse"
    candidates = table[(table["stage"] == last) & ~table["variant"].isin(list(STARTS))]
    for _, rows in candidates.groupby(["variant", "ipc"]):
        table.loc[rows["mean"].idxmax(), "chosen"] = True
    return table


def chosen_settings(table: pd.DataFrame, profile: str) -> dict[str, Any]:
    """tuned.json's entry of one profile: {variant: {ipc: RunSpec fields}}."""
    out: dict[str, dict[str, Any]] = {}
    for _, row in table[table["chosen"]].iterrows():
        out.setdefault(row["variant"], {})[str(int(row["ipc"]))] = knobs_of(row)
    return out


def write_tuned(table: pd.DataFrame, profile: str, path: Path = TUNED_PATH) -> Path:
    """Merge this profile's choices into the committed tuned.json (atomically)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        data = {}
    data["source"] = "reports/tuning/tuning.csv (./run_all.sh --tune): best validation accuracy"
    data.setdefault("profiles", {})[profile] = chosen_settings(table, profile)
    save_json(data, path)
    tuned_table.cache_clear()
    return path


# ----------------------------------------------------------------------------- figures


def plot_lr_curves(table: pd.DataFrame, path: Path) -> Path:
    """Validation accuracy against the pixel lr, one panel per IPC, the start set as a line."""
    ipcs = sorted(table["ipc"].unique())
    fig, axes = plt.subplots(1, len(ipcs), figsize=(6 * len(ipcs), 4.2), squeeze=False)
    for ax, ipc in zip(axes[0], ipcs, strict=True):
        at = table[table["ipc"] == ipc]
        for variant in (v for v in VARIANTS if not v.startswith("salient")):
            rows = at[(at["variant"] == variant) & (at["iterations"] > 0)].dropna(subset=["lr"])
            for iterations, part in rows.groupby("iterations"):
                part = part.sort_values("lr")
                ax.errorbar(
                    part["lr"],
                    part["mean"],
                    yerr=[part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]],
                    marker="o" if variant != "dm" else "s",
                    capsize=2,
                    label=f"{VARIANTS[variant][0]}, {int(iterations)} it.",
                )
        salient = at[(at["variant"] == "salient") & (at["stage"] == "refine")]
        if len(salient):
            best = salient.loc[salient["mean"].idxmax()]
            ax.axhline(
                best["mean"],
                color="tab:olive",
                ls=":",
                label=f"Salient windows ({best['window']}, pack {best['pack']})",
            )
        start = at[at["variant"] == START]  # the base recipe's start set, as a reference line
        if len(start):
            best = start.loc[start["n"].idxmax()]
            ax.axhline(best["mean"], color="k", ls="--", label=f"start set (n={best['n']})")
            ax.axhspan(best["ci_low"], best["ci_high"], color="k", alpha=0.08)
        ax.set_xscale("log")
        ax.set_ylim(max(0.0, ax.get_ylim()[0]), min(100.0, ax.get_ylim()[1]))
        ax.set_xlabel("pixel learning rate (Adam; DM: SGD, its own range)")
        ax.set_ylabel("validation accuracy [%]")
        ax.set_title(f"IPC {ipc}, soft labels")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_change_vs_accuracy(table: pd.DataFrame, path: Path) -> Path:
    """Accuracy against how far pixels moved, in units of the clips' own motion signal."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    rows = table.dropna(subset=["change_over_motion"])
    for (variant, ipc), part in rows.groupby(["variant", "ipc"]):
        ax.scatter(
            part["change_over_motion"],
            part["mean"],
            label=f"{VARIANTS[variant][0]}, IPC {ipc}",
            marker="o" if ipc == rows["ipc"].min() else "^",
        )
    ax.set_xscale("log")
    ax.set_xlabel("mean |pixel change| / mean |frame difference| of the start clips")
    ax.set_ylabel("validation accuracy [%]")
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- the stage


def write_tables(table: pd.DataFrame, records: list[dict[str, Any]], out: Path) -> None:
    """tuning.csv / .md (one row per setting) and all_runs.csv (one row per run, with the pass
    it served), atomically."""
    out.mkdir(parents=True, exist_ok=True)
    table = table.astype({"iterations": "Int64", "n": int, "n_distill": int})
    # accuracies to 3 decimals; settings (lr 3e-5) at full precision
    rounded = [
        c for c in CSV_COLUMNS if c.startswith(("mean", "ci_", "gain")) or c == "change_over_motion"
    ]
    table = table.round({c: 3 for c in rounded})
    write_table(table.set_index("method"), out / "tuning")
    write_text(pd.DataFrame(records).to_csv(index=False), out / "all_runs.csv")


def knob_text(row: pd.Series | dict[str, Any]) -> str:
    """'lr 0.001, 100 iterations' or 'saliency-chosen windows, packed in time'."""
    if row["variant"].startswith("salient"):
        packing = {"none": "one clip each", "time": "packed in time", "tiles": "2x2 tiles"}
        return f"{row['window']} windows, {packing[row['pack']]}"
    iterations = int(row["iterations"])
    if iterations == 0:
        return "0 iterations (no recovery: the start set itself)"
    return f"lr {row['lr']:g}, {iterations} iteration{'' if iterations == 1 else 's'}"


def gain_text(row: pd.Series | dict[str, Any]) -> str:
    """The paired gain over the start set with its interval and whether it is resolved."""
    from .stats import resolved

    gain, low, high = row["gain_vs_start"], row["gain_ci_low"], row["gain_ci_high"]
    if math.isnan(gain):
        return "no paired start set"
    where = "above" if gain >= 0.05 else "below" if gain <= -0.05 else "level with"
    amount = "" if where == "level with" else f"{abs(gain):.1f} points "
    verdict = "resolved" if resolved(low, high, int(row["n"])) else "not resolved"
    return f"{amount}{where} the start set ({gain:+.1f} [{low:+.1f}, {high:+.1f}], {verdict})"


def readme_lines(table: pd.DataFrame) -> list[str]:
    """One sentence per IPC and tuned method, computed from the table."""
    lines = []
    for ipc, at in table.groupby("ipc"):
        for variant in STARTS:
            start = at[at["variant"] == variant].sort_values("n").tail(1)
            if len(start):
                s = start.iloc[0]
                lines.append(
                    f"IPC {ipc}: {s['method']} scores {s['mean']:.1f} % "
                    f"[{s['ci_low']:.1f}, {s['ci_high']:.1f}] (n = {s['n']})."
                )
        for _, row in at[at["chosen"]].sort_values("mean", ascending=False).iterrows():
            lines.append(
                f"IPC {ipc}, {row['method']}: chosen {knob_text(row)} ({row['stage']} pass), "
                f"{row['mean']:.1f} % [{row['ci_low']:.1f}, {row['ci_high']:.1f}] "
                f"(n = {row['n']}), {gain_text(row)}."
            )
    return lines


def write_readme(table: pd.DataFrame, out: Path, invocations: list[dict[str, Any]]) -> Path:
    bullets = "\n".join(f"* {line}" for line in readme_lines(table))
    text = (
        "# Tuning on the validation split\n\n"
        f"Made by `./run_all.sh --tune`. {invocation_text(invocations)} Every optimised method, under each student recipe, gets the same shape: eight settings (Salient windows: its six) at "
        f"{ITERATION_SCALES[0]:g} of the profile's recover budget over {len(COARSE_SEEDS)} "
        f"draws x {STUDENTS} students, then its best {KEEP} at every iteration count over "
        f"{len(REFINE_SEEDS)} draws x {STUDENTS} students, and at 0 iterations (no recovery); "
        "the best mean validation accuracy "
        "is chosen (`chosen` in tuning.csv) and merged into `tsgd_core/tuned.json`. Gains are "
        "paired with the start set (Random under the same recipe, the same draws and student "
        "seeds); resolved: the "
        "95 % interval excludes 0 and rests on at least 5 pairs. The test split never takes "
        f"part.\n\n{bullets}\n\n"
        "![validation accuracy against the pixel learning rate](tuning_lr.png)\n\n"
        "![accuracy against pixel change](pixel_change.png)\n\n"
        "Every setting with its interval: [tuning.md](tuning.md); every run: `all_runs.csv`.\n"
    )
    return write_text(text, out / "README.md")


def invocation_text(invocations: list[dict[str, Any]]) -> str:
    """What the invocations that made the files did: time, workers, runs found or computed."""
    parts = []
    for i, inv in enumerate(invocations, 1):
        how = "from the cache alone" if inv.get("cached_only") else "computing what was missing"
        runs = f", {inv['runs']} of {inv['planned']} planned runs" if "planned" in inv else ""
        workers = inv.get("workers", "?")
        workers = f"{workers} worker{'' if workers == 1 else 's'}"
        stopped = ", stopped by hand (resumed by the next)" if inv.get("stopped") else ""
        parts.append(f"{i}: {inv['wall_s'] / 60:.1f} min, {workers}, {how}{runs}{stopped}")
    last = invocations[-1]
    text = "Invocations: " + "; ".join(parts) + "."
    if last.get("planned") and last["runs"] < last["planned"]:
        text += (
            f" **Incomplete: {last['planned'] - last['runs']} planned runs are not in the cache"
            "** (rerun `./run_all.sh --tune` to compute them); a setting with fewer draws than "
            "the protocol's shows it in `n`."
        )
    return text


def invocation_history(path: Path) -> list[dict[str, Any]]:
    """The invocations recorded in tuning.json, oldest first ([] when there is none)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return data.get("invocations", [data] if "wall_s" in data else [])


def tune(
    profile: str,
    *,
    ipcs: Sequence[int] = (1, 5),
    out: Path = Path("reports/tuning"),
    cache_dir: Path = Path("cache"),
    device: str = "cpu",
    workers: int = 2,
    dataset: str = "",
    tuned_path: Path = TUNED_PATH,
    passes: int = 2,
    cached_only: bool = False,
) -> pd.DataFrame:
    """Both passes (or the coarse one alone), the table, the figures and the chosen settings;
    returns the table."""
    start = time.perf_counter()
    import torch

    torch.set_num_threads(1)  # the workers' teacher: trained once here, found by every worker
    experiments.get_teacher(profile, dataset=dataset, cache_dir=cache_dir, device=device)
    common = {"cache_dir": cache_dir, "device": device, "workers": workers}
    common["cached_only"] = cached_only
    coarse_records = run_specs(coarse_specs(profile, ipcs, dataset), desc="coarse", **common)
    coarse = summarise(coarse_records, "coarse")
    refine_records = (
        run_specs(refine_specs(profile, coarse, ipcs, dataset), desc="refine", **common)
        if passes == 2
        else []
    )
    refine = summarise(refine_records, "refine")
    table = mark_chosen(pd.concat([coarse, refine] if len(refine) else [coarse], ignore_index=True))
    table = table.sort_values(["ipc", "variant", "stage", "lr", "iterations"], ignore_index=True)
    records = [{**r, "stage": "coarse"} for r in coarse_records]
    records += [{**r, "stage": "refine"} for r in refine_records]
    write_tables(table, records, out)
    plot_lr_curves(table, out / "tuning_lr.png")
    plot_change_vs_accuracy(table, out / "pixel_change.png")
    write_tuned(table, profile, tuned_path)
    invocations = invocation_history(out / "tuning.json")
    planned = len(coarse_specs(profile, ipcs, dataset))
    planned += len(refine_specs(profile, coarse, ipcs, dataset)) if passes == 2 else 0
    invocations.append(
        {
            "wall_s": time.perf_counter() - start,
            "workers": workers,
            "passes": passes,
            "cached_only": cached_only,
            "runs": len(records),
            "planned": planned,
        }
    )
    save_json({"invocations": invocations}, out / "tuning.json")
    write_readme(table, out, invocations)
    return table


def default_out(profile: str) -> Path:
    """The tuning report's folder: reports/tuning (default profile), else reports/tuning-<profile>."""
    return Path("reports") / ("tuning" if profile == "default" else f"tuning-{profile}")


# what `tune` leaves beside its README.md: an --out holding a README.md without them is another
# program's folder
OUT_MARKS = ("tuning.csv", "tuning.json")

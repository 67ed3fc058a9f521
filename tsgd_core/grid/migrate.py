"""Move a cache to teacher keys that name the recipe alone: `python -m tsgd_core.grid.migrate`.

A teacher trained on the CPU was cached under a key that named torch's thread count as well as
its recipe, so a run with another count trained it again. Its key now names the recipe alone;
this moves what an old cache holds to the new keys, for every teacher recipe this project
knows (each profile's, with every camera shake, dataset and teacher network a cached set or the
robustness stage names, and the one-frame control's):

* the teacher, under its new key (its metadata keeps the old one as `former_key`);
* every set it made or relabelled (`distilled/`: the file name and the set name the teacher);
* every evaluation of those sets (`evals/`: keyed by the set's contents, which include the
  teacher's key), the full-data bounds (`evals/full_*`) and the robustness stage's entries.

Nothing is deleted: old entries stay where they are (remove them by hand once the new ones
serve), and a second run finds everything moved and changes nothing. `--dry-run` only counts.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..data.artifact import DistilledSet, content_digest, load_distilled, save_cached_distilled
from ..data.clips import DataError, Splits, single_frame
from ..data.storage import config_key, load_json, load_torch, save_json_keyed
from ..training.teacher import (
    ModelConfig,
    legacy_teacher_keys,
    load_teacher,
    save_teacher,
    teacher_key,
    teacher_path,
)
from . import experiments, ladder, robustness, tuning
from .cells import DEFAULT_SHAKE, STUDENT_SCALES, build_dataset_grid
from .spec import TSGFA_PARTS, RunSpec, spec_from_params


@dataclass(frozen=True)
class Recipe:
    """One teacher recipe: where it comes from, its old keys (by thread count) and its new key."""

    profile: str
    camera_shake: float
    dataset: str
    arch: str
    single_frame: bool
    old: tuple[tuple[int, str], ...]
    new: str
    clip_shape: tuple[int, ...]  # of the profile's clips (before the one-frame control)


@dataclass
class Counts:
    """What the migration moved (or, with --dry-run, would move)."""

    moved: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- recipes


def recipe_of(
    profile: str, splits: Splits, dataset: str, arch: str | None
) -> tuple[ModelConfig, Any, bool]:
    model_cfg, fit_cfg, balanced = experiments.teacher_recipe(profile, splits, dataset)
    return (replace(model_cfg, name=arch) if arch else model_cfg), fit_cfg, balanced


def recipes_of_data(profile: str, camera_shake: float, dataset: str, cache_dir: Path):
    """The teacher recipes of one profile's data: its own network and the robustness stage's
    others, and the one-frame control's."""
    splits = experiments.load_data(profile, camera_shake, dataset=dataset, cache_dir=cache_dir)
    own = experiments.get_profile(profile).teacher_model.name
    variants = [(splits, arch, False) for arch in dict.fromkeys((own, *robustness.ARCHS))]
    variants.append((single_frame(splits), own, True))
    for data, arch, one_frame in variants:
        model_cfg, fit_cfg, balanced = recipe_of(profile, data, dataset, arch)
        old = legacy_teacher_keys(data, model_cfg, fit_cfg, True, balanced)
        yield Recipe(
            profile,
            camera_shake,
            dataset,
            arch,
            one_frame,
            tuple(old.items()),
            teacher_key(data, model_cfg, fit_cfg, True, balanced),
            tuple(splits.clip_shape),
        )


def old_teachers(cache_dir: Path) -> list[dict[str, Any]]:
    """The metadata of every cached teacher that was not moved to a new key yet."""
    infos = []
    for path in sorted((cache_dir / "teachers").glob("*.pt")):
        try:
            info = load_torch(path)["info"]
        except Exception:  # a damaged file is the loader's to report
            continue
        if info.get("former_key") is None and info.get("key") == path.stem:
            infos.append(info)
    return infos


def could_have_trained(profile: str, infos: Sequence[dict[str, Any]]) -> bool:
    """Whether one of these teachers has the benchmark profile's classes, clip size (or one
    frame of it), network (any architecture) and training: its data is worth generating."""
    prof = experiments.get_profile(profile)
    data, model = prof.data, asdict(prof.teacher_model)
    for info in infos:
        _, frames, height, width = info["clip_shape"]
        same_model = {**info["model"], "name": model["name"]} == model
        if (
            len(info["class_names"]) == data["num_classes"]
            and frames in (data["frames"], 1)
            and (height, width) == (data["height"], data["width"])
            and same_model
            and info["fit"] == asdict(prof.teacher_fit)
        ):
            return True
    return False


def data_in_use(
    sets: Sequence[tuple[Path, DistilledSet]], infos: Sequence[dict[str, Any]]
) -> set[tuple[str, float, str]]:
    """(profile, camera shake, dataset) of every cached set, and each benchmark profile with
    and without the grid's camera shake, where an old teacher could be of that profile."""
    specs = [ds.config["spec"] for _, ds in sets if isinstance(ds.config.get("spec"), dict)]
    found = {(s["profile"], float(s.get("camera_shake", 0.0)), s.get("dataset", "")) for s in specs}
    found |= {(p, shake, "") for p in experiments.PROFILES for shake in (0.0, DEFAULT_SHAKE)}
    return {(p, shake, d) for p, shake, d in found if d or could_have_trained(p, infos)}


def known_recipes(data: set[tuple[str, float, str]], cache_dir: Path, counts: Counts):
    for profile, shake, dataset in sorted(data):
        try:
            yield from recipes_of_data(profile, shake, dataset, cache_dir)
        except (DataError, ValueError, OSError) as error:  # a folder that is gone, say
            counts.notes.append(f"skipped {profile} {dataset or 'benchmark'}: {error}")


# ----------------------------------------------------------------------------- teachers


def migrate_teacher(recipe: Recipe, cache_dir: Path, dry_run: bool, counts: Counts) -> str | None:
    """Rewrite this recipe's old-key teacher under its new key; the old key moved, or None.

    Where the cache holds the recipe under several thread counts, this process's count wins,
    else the smallest; the others' sets stay under their old keys (named in the notes).
    """
    new_path = teacher_path(cache_dir, recipe.new)
    old = {n: key for n, key in recipe.old if teacher_path(cache_dir, key).is_file()}
    if new_path.is_file():  # moved by an earlier run (or trained since): keep what it names
        former = load_teacher(new_path)[1].former_key
        return former if former in old.values() else None
    if not old:
        return None
    threads = torch.get_num_threads()
    chosen = threads if threads in old else min(old)
    for n, key in old.items():
        if n != chosen:
            counts.notes.append(
                f"teacher {key} ({n} threads) left: {old[chosen]} took {recipe.new}"
            )
    model, info = load_teacher(teacher_path(cache_dir, old[chosen]))
    if info.key != old[chosen]:
        counts.notes.append(f"teacher file {old[chosen]} records key {info.key}: left")
        return None
    counts.moved["teachers"] += 1
    if not dry_run:
        save_teacher(model, replace(info, key=recipe.new, former_key=info.key), new_path)
    return old[chosen]


# ----------------------------------------------------------------------------- sets


def cached_sets(cache_dir: Path, counts: Counts) -> list[tuple[Path, DistilledSet]]:
    sets = []
    for path in sorted((cache_dir / "distilled").glob("*.tsgd.pt")):
        try:
            sets.append((path, load_distilled(path)))
        except Exception as error:  # a damaged entry is the loader's to report, not ours
            counts.notes.append(f"unreadable set {path.name}: {str(error).splitlines()[0]}")
    return sets


@dataclass(frozen=True)
class MovedSet:
    spec: RunSpec
    old_digest: str
    new_digest: str


def migrate_set(
    path: Path,
    ds: DistilledSet,
    keys: dict[str, str],
    cache_dir: Path,
    dry_run: bool,
    counts: Counts,
) -> MovedSet | None:
    """The set under the new key of its teacher (None: not a moved teacher's, or a file that
    the current code would not look up under its old key either)."""
    old_key = ds.teacher_key
    if old_key not in keys or not isinstance(ds.config.get("spec"), dict):
        return None
    spec = spec_from_params(**ds.config["spec"])
    if experiments.distilled_path(spec, old_key, cache_dir).name != path.name:
        return None
    old_digest = content_digest(ds)
    ds.teacher_key = keys[old_key]
    moved = MovedSet(spec, old_digest, content_digest(ds))
    new_path = experiments.distilled_path(spec, ds.teacher_key, cache_dir)
    if not new_path.is_file():
        counts.moved["sets"] += 1
        if not dry_run:
            save_cached_distilled(ds, new_path)
    return moved


# ----------------------------------------------------------------------------- keyed entries


def move_json_entry(old: Path, new: Path, old_key: str, new_key: str, dry_run: bool) -> bool:
    """Rewrite a keyed JSON entry under another key; False when there is nothing to move."""
    if not old.is_file() or new.is_file():
        return False
    blob = load_json(old)
    if not isinstance(blob, dict) or blob.get("cache_key") != old_key:
        return False
    if not dry_run:
        save_json_keyed(blob["value"], new, new_key)
    return True


def eval_variants(spec: RunSpec) -> Iterator[RunSpec]:
    """Specs that evaluate the set of `spec`: its own with every evaluation-only switch the
    grid, its studies, the tuning and the CLI set (labels, split, students, scale, TSGFA)."""
    seeds = experiments.get_profile(spec.profile).seeds
    methods = [spec]
    if spec.method == "sre2l":  # TSGD without its filter evaluates SRe2L-style's set
        methods.append(replace(spec, method="tsgd", tsgfo=False))
    labels = (("soft", "hard"), ("hard", "soft"), ("soft",), ("hard",))
    students = (None, *range(1, len(seeds)))
    scales = (1.0, *STUDENT_SCALES)
    for base in methods:
        tsgfa = [replace(base, tsgfa=False)]
        if base.method == "tsgd":
            parts = ((), ("crop",), ("mix",), ("temporal",), TSGFA_PARTS)
            tsgfa += [replace(base, tsgfa=True, tsgfa_parts=p) for p in parts]
        for aug, lab, split, n, scale in itertools.product(
            tsgfa, labels, ("test", "val"), students, scales
        ):
            yield replace(aug, labels=lab, eval_split=split, n_students=n, student_scale=scale)


def grid_specs(data: set[tuple[str, float, str]]) -> dict[str, list[RunSpec]]:
    """Every spec the grids, the ladder and the tuning's first pass name, by distill key."""
    specs: list[RunSpec] = []
    for profile, _, dataset in data:
        for group in build_dataset_grid(profile, dataset).groups().values():
            specs += group
        try:
            specs += tuning.coarse_specs(profile, experiments.get_profile(profile).ipcs, dataset)
        except ValueError:  # a profile with fewer student seeds than the tuning trains
            pass
    for frames, size in experiments.LADDER_RUNGS:
        specs += ladder.rung_specs(frames, size)
    out: dict[str, list[RunSpec]] = defaultdict(list)
    for spec in specs:
        out[spec.distill_key()].append(spec)
    return out


def migrate_evals(
    moved: Sequence[MovedSet],
    pool: dict[str, list[RunSpec]],
    cache_dir: Path,
    dry_run: bool,
    counts: Counts,
) -> None:
    """Each moved set's evaluations, found through every spec that could have made them."""
    evals = cache_dir / "evals"
    for item in moved:
        candidates = [*pool.get(item.spec.distill_key(), []), *eval_variants(item.spec)]
        for eval_key in dict.fromkeys(s.eval_key() for s in candidates):
            old, new = config_key(eval_key, item.old_digest), config_key(eval_key, item.new_digest)
            if move_json_entry(evals / f"{old}.json", evals / f"{new}.json", old, new, dry_run):
                counts.moved["evaluations"] += 1


def migrate_full_data(recipe: Recipe, old: str, cache_dir: Path, dry_run: bool, counts: Counts):
    """The full-data bounds of the profile's own teacher."""
    for scale, split in itertools.product((1.0, *STUDENT_SCALES), ("test", "val")):
        where = (recipe.profile, recipe.camera_shake, recipe.dataset, scale, split)
        a = experiments.full_data_key(where[0], old, *where[1:])
        b = experiments.full_data_key(where[0], recipe.new, *where[1:])
        evals = cache_dir / "evals"
        if move_json_entry(evals / f"{a}.json", evals / f"{b}.json", a, b, dry_run):
            counts.moved["full-data bounds"] += 1


def migrate_robustness(recipe: Recipe, old: str, cache_dir: Path, dry_run: bool, counts: Counts):
    """The robustness stage's entries of this teacher network, for every cell it can run."""
    prof = experiments.get_profile(recipe.profile)
    ipcs = sorted({*prof.ipcs, robustness.IPC})
    draws = sorted({*range(10), *prof.distill_seeds})
    specs = [
        s
        for ipc in ipcs
        for s in robustness.clean_specs(
            recipe.profile, recipe.dataset, experiments.METHODS, ipc, draws
        )
    ]
    folder = cache_dir / "robustness"
    for job in robustness.jobs_for(specs, robustness.AXES, recipe.clip_shape):
        if job.teacher != recipe.arch:
            continue
        a, b = robustness.job_key(job, old), robustness.job_key(job, recipe.new)
        if move_json_entry(folder / f"{a}.json", folder / f"{b}.json", a, b, dry_run):
            counts.moved["robustness entries"] += 1


# ----------------------------------------------------------------------------- the whole cache


def migrate_cache(cache_dir: str | Path, *, dry_run: bool = False) -> Counts:
    """Move every old-key teacher of a known recipe, its sets and their results to new keys."""
    cache_dir = Path(cache_dir)
    counts = Counts()
    sets = cached_sets(cache_dir, counts)
    infos = old_teachers(cache_dir)
    if not infos:
        return counts
    data = data_in_use(sets, infos)
    keys: dict[str, str] = {}
    for recipe in known_recipes(data, cache_dir, counts):
        old = migrate_teacher(recipe, cache_dir, dry_run, counts)
        if old is None:
            continue
        keys[old] = recipe.new
        if recipe.arch == experiments.get_profile(recipe.profile).teacher_model.name:
            if not recipe.single_frame:
                migrate_full_data(recipe, old, cache_dir, dry_run, counts)
        if not recipe.single_frame and not recipe.camera_shake:
            migrate_robustness(recipe, old, cache_dir, dry_run, counts)
    moved = [
        m for path, ds in sets if (m := migrate_set(path, ds, keys, cache_dir, dry_run, counts))
    ]
    if moved:
        migrate_evals(moved, grid_specs(data), cache_dir, dry_run, counts)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tsgd_core.grid.migrate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cache", type=Path, default=Path("cache"), help="the cache folder")
    parser.add_argument("--dry-run", action="store_true", help="count, write nothing")
    args = parser.parse_args(argv)
    if not (args.cache / "teachers").is_dir():
        print(f"error: {args.cache} holds no teachers/ folder: pass the cache with --cache")
        return 2
    counts = migrate_cache(args.cache, dry_run=args.dry_run)
    verb = "would move" if args.dry_run else "moved"
    kinds = ("teachers", "sets", "evaluations", "full-data bounds", "robustness entries")
    print(f"{verb}: " + ", ".join(f"{counts.moved[k]} {k}" for k in kinds))
    for note in counts.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

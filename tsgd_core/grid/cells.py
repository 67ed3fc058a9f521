"""The grid: which cells (`RunSpec`s) each profile runs, grouped by the question they answer."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .profiles import METHODS, Profile, get_profile
from .spec import DM_NETS, RECIPES, TSGFA_PARTS, RunSpec

GROUPS = (
    "main",
    "controls",
    "ablation",
    "sensitivity",
    "shake",
    "recover",
    "convergence",
    "tsgfa",
    "dm",
)


# what `./run_all.sh` runs unless --groups says otherwise: camera shake needs a teacher of its
# own (a quarter of the budget), so it is asked for by name (--groups shake); the recover
# budget and DM's lr are chosen by the tuning stage (./run_all.sh --tune), whose report
# supersedes the old `recover` and `dm` studies (still there by name)
DEFAULT_GROUPS = tuple(g for g in GROUPS if g not in ("shake", "recover", "dm"))


@dataclass
class Grid:
    """Groups of specs that make the report.

    Test split: `main` (every method at every IPC under both student recipes, over the
    profile's distillation seeds),
    `controls` (pixels or labels: where a recovered set's accuracy comes from), `ablation`
    (TSGD's parts) and `shake` (camera motion). Validation split, where budgets and
    settings are chosen: `recover` (iterations to the plateau), `convergence` (student steps),
    `dm` (DM's pixel lr), `tsgfa` (TSGFA's parts) and `sensitivity` (the filter's parameters).
    """

    main: list[RunSpec] = field(default_factory=list)
    controls: list[RunSpec] = field(default_factory=list)
    ablation: list[RunSpec] = field(default_factory=list)
    sensitivity: list[RunSpec] = field(default_factory=list)
    shake: list[RunSpec] = field(default_factory=list)
    recover: list[RunSpec] = field(default_factory=list)
    convergence: list[RunSpec] = field(default_factory=list)
    tsgfa: list[RunSpec] = field(default_factory=list)
    dm: list[RunSpec] = field(default_factory=list)

    def groups(self) -> dict[str, list[RunSpec]]:
        return {name: getattr(self, name) for name in GROUPS}


# Camera shake of the shake group (std of the per-frame offset, px of a 32-px frame): at 0.5
# the saliency maps barely change; at 2 raw frame differences fire over the whole background.
DEFAULT_SHAKE = 2.0


# Settings tried on the validation split (multiples of the profile's budget where a budget)
RECOVER_SCALES = (0.0, 0.25, 0.5, 1.0, 2.0)  # 0: the start set itself, the curve's origin


STUDENT_SCALES = (1.0, 2.0)  # does doubling the student's steps still move the numbers?


DM_LRS = (0.1, 1.0)


def _per_seed(spec: RunSpec, seeds: tuple[int, ...]) -> list[RunSpec]:
    return [replace(spec, distill_seed=s) for s in seeds]


# Selections that need the teacher's features for every clip, and DM, skip the largest IPC when
# a profile has more than two: it costs the most and their ranking is settled below it.
SKIP_LARGEST = ("herding", "kcenter", "dm")


# Where a recovered set's accuracy comes from (`controls`): its pixels with the soft labels of
# its start pixels, the reverse, the start pixels moved as far as recovery moved them but in a
# random direction, and recovery without augmentation.
CONTROLS = (
    {"train_pixels": "set", "label_pixels": "start"},
    {"train_pixels": "start", "label_pixels": "set"},
    {"train_pixels": "perturbed", "label_pixels": "perturbed"},
    {"recover_augment": False},
)


def study_settings(prof: Profile) -> dict[str, float | int]:
    """The recovery settings the studies of recovery's parts fix (`Profile.study_recover`):
    none where the profile leaves them to the tuned values."""
    if prof.study_recover is None:
        return {}
    lr, iterations = prof.study_recover
    return {"lr": lr, "iterations": iterations}


def as_method(spec: RunSpec, method: str) -> RunSpec:
    """`spec` for another method: the recovery settings a study fixed stay TSGD's and
    SRe2L-style's; Random's has none, DM's are its own (tuned)."""
    if method in ("tsgd", "sre2l"):
        return replace(spec, method=method)
    return replace(spec, method=method, lr=None, iterations=None)


def build_grid(profile: str = "default", shake: float = DEFAULT_SHAKE) -> Grid:
    """The experiments of the report, as specs (what run_all.sh executes).

    Every main-table method runs over every draw of the profile with both label modes, so
    each row pools draws x student seeds and every method pairs with its own start set
    (Random, the same draw)."""
    prof = get_profile(profile)
    seeds = prof.distill_seeds
    mid = prof.ipcs[min(1, len(prof.ipcs) - 1)]  # ablations and studies at the middle IPC
    grid = Grid()
    pinned = study_settings(prof)
    for ipc in prof.ipcs:
        for method in METHODS:
            if method in SKIP_LARGEST and ipc == max(prof.ipcs) and len(prof.ipcs) > 2:
                continue
            # every set under every student recipe: what the data adds, apart from the training
            for recipe in RECIPES:
                spec = RunSpec(method=method, ipc=ipc, profile=profile, student_augment=recipe)
                grid.main += _per_seed(spec, seeds)
    soft = RunSpec(method="tsgd", ipc=mid, profile=profile, labels=("soft",), **pinned)
    # SRe2L-style and TSGD under the base recipe, and TSGD under TSGFA (where recovery helps)
    # where the studies fix their own recovery, the recovered set itself at that setting is
    # what each control is compared with (the main table's cell recovers otherwise)
    controls = ({}, *CONTROLS) if pinned else CONTROLS
    for method in (replace(soft, method="sre2l"), replace(soft, student_augment="base"), soft):
        for control in controls:
            grid.controls += _per_seed(replace(method, **control), seeds)
    # TSGD's parts and the open choices of docs/METHOD.md, on the test split like the main table
    base = RunSpec(method="tsgd", ipc=mid, profile=profile, **pinned)
    for variant in (
        replace(base, tsgfo=False),  # SRe2L-style set + TSGFA
        replace(base, init="noise", student_augment="base"),
        replace(base, init="noise", tsgfo=False, student_augment="base"),
        replace(base, modulation="frame", student_augment="base"),
        replace(base, lowpass=True, student_augment="base"),
        replace(base, saliency_source="real", student_augment="base"),
    ):
        grid.ablation += _per_seed(replace(variant, labels=("soft",)), seeds[:1])
    # validation split from here on: the test split stays for the reported numbers
    val = replace(base, eval_split="val", student_augment="base")
    grid.sensitivity += [replace(val, labels=("soft",), k=k) for k in (0, 2)]
    grid.sensitivity += [replace(val, labels=("soft",), beta=b) for b in (0.0, 1.0)]
    grid.sensitivity += [replace(val, labels=("soft",), alpha="uniform")]
    grid.sensitivity += [replace(val, labels=("soft",))]  # the defaults, for reference
    # recover's plateau, with the protocol's soft labels (at IPC 1 every set is near chance)
    study = replace(val, labels=("soft",))
    for method in ("sre2l", "tsgd"):
        for init, scales in (("real", RECOVER_SCALES), ("noise", RECOVER_SCALES[-2:])):
            for scale in scales:
                iterations = max(1, round(prof.distill_iterations * scale)) if scale else 0
                grid.recover.append(replace(study, method=method, init=init, iterations=iterations))
        grid.recover.append(replace(study, method=method, first_bn=10.0))
    # every draw, as the main table: with one draw (3 pairs) no doubling could be decided
    for scale in STUDENT_SCALES:
        for m in ("random", "tsgd"):
            grid.convergence += _per_seed(replace(as_method(val, m), student_scale=scale), seeds)
    parts = [(), ("crop",), ("mix",), ("temporal",), TSGFA_PARTS]
    grid.tsgfa += [
        replace(val, student_augment="tsgfa", tsgfa_parts=p, labels=("soft",)) for p in parts
    ]
    grid.dm += [
        replace(as_method(val, "dm"), dm_lr=lr, dm_net=net, labels=("hard",))
        for net in DM_NETS
        for lr in DM_LRS
    ]
    # camera shake: TSGD vs SRe2L-style when raw frame differences fire everywhere
    for ipc in prof.ipcs[:2]:
        for spec in (
            RunSpec(method="sre2l", ipc=ipc, profile=profile, camera_shake=shake, **pinned),
            RunSpec(
                method="tsgd",
                ipc=ipc,
                profile=profile,
                camera_shake=shake,
                student_augment="base",
                **pinned,
            ),
        ):
            grid.shake += _per_seed(spec, seeds[:1])
    return grid


def build_dataset_grid(profile: str, dataset: str, shake: float = DEFAULT_SHAKE) -> Grid:
    """The report's grid on a real dataset (`RunSpec.dataset` text): every spec of `build_grid`
    with the dataset, without the camera-shake group (a knob of the built-in benchmark)."""
    if not dataset:
        return build_grid(profile, shake)
    out = Grid()
    for name, specs in build_grid(profile, shake).groups().items():
        setattr(
            out,
            name,
            []
            if name == "shake"
            else [replace(s, dataset=dataset, camera_shake=0.0) for s in specs],
        )
    return out

"""`RunSpec`: one cell of the grid, the settings it resolves, and the cache keys of its distilled
set and of its evaluation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..data.datasets import (
    REAL_TEACHER_RECIPE,
    data_spec,
)
from ..data.storage import config_key
from ..methods.distill import LR_SCHEDULES
from ..methods.salient import PACKINGS, WINDOW_CHOICES
from ..training.evaluate import StudentConfig
from ..training.saliency import SaliencyConfig
from ..training.train import check_precision
from .profiles import METHODS, Profile, get_profile, scaled_fit, tuned_settings

# The temporal filter's RunSpec fields (named in a run's name where they leave the default)
FILTER_SWITCHES = (
    "modulation",
    "lowpass",
    "saliency_source",
    "k",
    "alpha",
    "eps",
    "beta",
    "spatial_pool",
    "r_bn",
)

# RunSpec fields that change how TSGD / SRe2L-style distil (CLI flags, report variant labels)
DISTILL_SWITCHES = (
    "tsgfo",
    "init",
    *FILTER_SWITCHES,
    "first_bn",
    "iterations",
    "dm_lr",
    "dm_net",
    "lr",
    "lr_schedule",
    "recover_augment",
    "window",
    "pack",
    "train_pixels",
    "label_pixels",
    "distill_seed",
)


# DM's embedding network: DM's ConvNet (average pooling, flat head) or the student's network
DM_NETS = ("literature", "student")


# The students' precision unless a spec says otherwise: float32 (scripts/precision_check.py
# decides whether bf16 ("auto") may replace it: reports/bench/precision_check.md)
DEFAULT_PRECISION = "fp32"


# the parts of TSGFA (student-time saliency-guided augmentation) that a spec can switch on
TSGFA_PARTS = ("crop", "mix", "temporal")


# The student recipes (how students train on a set): the base augmentation, or TSGFA on top of
# it. A recipe is an axis of its own, independent of the set: every set is evaluated under each.
RECIPES = ("base", "tsgfa")


def published_recipe(method: str) -> str:
    """The recipe a method was published with: TSGFA for TSGD, the base augmentation otherwise
    (what a spec without `student_augment` uses, so the cache keys of earlier runs hold)."""
    return "tsgfa" if method == "tsgd" else "base"


# which clips a student sees, and which the teacher labels: the set's or its start set's
# "perturbed": the start clips plus random noise of the recovered set's per-clip L2 change (is
# recovery's gain its direction, or would any change of that size do?)
PIXEL_SOURCES = ("set", "start", "perturbed")


# The range of every numeric RunSpec field, where its meaning bounds it: the one place the
# command line (flag types), the run spec and notebook parameters (through RunSpec) check.
# name -> (lowest, highest, integer?)
FIELD_RANGES: dict[str, tuple[float, float, bool]] = {
    "ipc": (1, 10_000_000, True),  # large IPCs reach the memory estimate, which names the need
    "camera_shake": (0.0, 32.0, False),  # std in pixels of a 32-pixel frame
    "k": (0, 32, True),  # temporal half-window; clips are at most 64 frames long
    "eps": (1e-12, 1.0, False),
    "beta": (0.0, 1.0, False),
    "spatial_pool": (1, 63, True),  # odd, checked by SaliencyConfig
    "r_bn": (0.0, 1e4, False),
    "first_bn": (0.0, 1e4, False),
    "iterations": (0, 1_000_000, True),
    "dm_lr": (0.0, 1e4, False),
    "lr": (1e-9, 10.0, False),
    "distill_seed": (0, 2**31 - 1, True),
    "student_scale": (1e-3, 100.0, False),
    "n_students": (1, 100, True),  # and at most the profile's seeds
}
# The numeric flags that are not RunSpec fields (data, export and runner options), bounded by
# the same table rules: the CLI, the runner and the notebooks check them with out_of_range.
FLAG_RANGES: dict[str, tuple[float, float, bool]] = {
    "fps": (0.01, 50.0, False),  # GIF delays are whole hundredths of a second (data.artifact)
    "scale": (1, 1_000_000, True),  # large scales reach the export's memory estimate
    "per_row": (1, 100_000, True),
    "preview_clips": (1, 100_000, True),
    "frames": (1, 1024, True),  # clips of a real dataset
    "size": (1, 4096, True),  # each side of a frame, in pixels
    "val_fraction": (0.0, 0.95, False),  # at least one clip in 20 stays for training
    "max_per_class": (1, 10_000_000, True),
    "decode_workers": (1, 256, True),
    "threads": (1, 1024, True),
    "workers": (1, 1024, True),
}


def range_text(name: str) -> str:
    """'in [0, 32]' or 'an integer in [1, 63]' for a field of FIELD_RANGES or FLAG_RANGES."""
    low, high, integer = (FIELD_RANGES | FLAG_RANGES)[name]
    return f"{'an integer ' if integer else ''}in [{low:g}, {high:g}]"


def out_of_range(name: str, value: Any) -> bool:
    """Whether `value` (not None) lies outside its range (or is not an integer there)."""
    low, high, integer = (FIELD_RANGES | FLAG_RANGES)[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    if integer and not float(value).is_integer():
        return True
    return not (math.isfinite(value) and low <= value <= high)


# the filter's settings: a set made with the filter is keyed by each of them, under its own name
FILTER_KEY_FIELDS = "modulation lowpass saliency_source k alpha eps beta spatial_pool".split()


# Which part of a run each RunSpec field sets (the table in RunSpec's docstring; a test holds
# the two equal and every field in exactly one part)
RUNSPEC_PARTS: dict[str, tuple[str, ...]] = {
    "cell": ("method", "ipc", "profile", "camera_shake", "dataset", "distill_seed"),
    "recovery": (
        "init", "r_bn", "first_bn", "iterations", "lr", "lr_schedule", "recover_augment",
        "dm_lr", "dm_net",
    ),
    "saliency": (
        "tsgfo", "modulation", "lowpass", "saliency_source", "k", "alpha", "eps", "beta",
        "spatial_pool",
    ),
    "selection": ("window", "pack"),
    "student": (
        "student_augment", "tsgfa", "tsgfa_parts", "labels", "eval_split", "student_scale",
        "n_students", "train_pixels", "label_pixels", "precision",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid. Fields that do not apply to a method are ignored by its key.

    The fields are flat (a nested spec would change every cache key); each belongs to one part:

    | part      | fields                                              | read by                      |
    |-----------|-----------------------------------------------------|------------------------------|
    | cell      | method, ipc, profile, camera_shake, dataset,        | every key; `data_fields`     |
    |           | distill_seed                                        |                              |
    | recovery  | init, r_bn, first_bn, iterations, lr, lr_schedule,  | `experiments.tsgd_config`    |
    |           | recover_augment, dm_lr, dm_net                      | (TSGD, SRe2L-style), DM;     |
    |           |                                                     | the distill key              |
    | saliency  | tsgfo, modulation, lowpass, saliency_source, k,     | `saliency()`, `tsgd_config`; |
    |           | alpha, eps, beta, spatial_pool                      | the distill key (filter on)  |
    | selection | window, pack                                        | `experiments.salient_config` |
    | student   | student_augment, tsgfa, tsgfa_parts, labels,        | `experiments.student_config`,|
    |           | eval_split, student_scale, n_students,              | `evaluate_distilled`; the    |
    |           | train_pixels, label_pixels, precision               | eval key                     |

    A recovery setting left None resolves through one path: the spec's own value, else what
    tuning chose (`tsgd_core/tuned.json`, nearest IPC), else the profile's (`recover_lr`,
    `recover_iterations`); `TSGDConfig()` equals the default profile's resolved values.
    """

    method: str = "tsgd"
    ipc: int = 1
    profile: str = "default"
    camera_shake: float = 0.0
    dataset: str = ""  # a real dataset (DataSpec.to_text()); empty: the built-in benchmark
    # TSGD / SRe2L-style switches (sre2l is tsgd with the filter off)
    tsgfo: bool = True
    # the student recipe (RECIPES); None: the method's published one (`published_recipe`).
    # `tsgfa=False` is the older spelling of student_augment="base" (records and parameters
    # written before the recipe was an axis); a spec is normalised so both compare equal
    student_augment: str | None = None
    tsgfa: bool = True
    init: str = "real"
    modulation: str = "pixel"
    lowpass: bool = False
    saliency_source: str = "synthetic"
    k: int = 1
    alpha: str = "gaussian"
    eps: float = 1e-3
    beta: float = 0.2
    spatial_pool: int = 3
    r_bn: float = 0.01
    first_bn: float | None = None  # None: the profile's
    iterations: int | None = None  # recover / DM iterations; None: the profile's
    dm_lr: float | None = None  # None: tuned, else the profile's
    dm_net: str | None = None  # None: the profile's; see DM_NETS
    # recovery (TSGD / SRe2L-style): None means what tuning chose, else the profile's
    lr: float | None = None  # Adam's pixel lr
    lr_schedule: str = "cosine"  # "cosine" | "constant"
    recover_augment: bool = True  # differentiable augmentation while recovering
    # Salient windows: None means what tuning chose, else "salient" / "none"
    window: str | None = None  # see salient.WINDOW_CHOICES
    pack: str | None = None  # see salient.PACKINGS
    # evaluation
    labels: tuple[str, ...] = ("soft", "hard")
    eval_split: str = "test"  # "val" for hyperparameter search: the test split stays untouched
    distill_seed: int = 0
    student_scale: float = 1.0  # student steps relative to the profile's (convergence study)
    tsgfa_parts: tuple[str, ...] = TSGFA_PARTS
    n_students: int | None = None  # the first n of the profile's student seeds; None: all
    # pixels-or-labels control: the students train on the set's pixels or on its start set's,
    # with soft labels that the teacher gives the set's pixels or the start set's
    train_pixels: str = "set"  # see PIXEL_SOURCES
    label_pixels: str = "set"
    # the students' and the relabelling teacher's arithmetic (training.train.PRECISIONS)
    precision: str = DEFAULT_PRECISION

    def __post_init__(self) -> None:
        self._normalise_recipe()
        for name in FIELD_RANGES:
            value = getattr(self, name)
            if value is not None and out_of_range(name, value):
                raise ValueError(f"{name} must be {range_text(name)}, got {value!r}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: use {', '.join(METHODS)}")
        if self.ipc < 1:
            raise ValueError(f"IPC must be >= 1, got {self.ipc}")
        if self.eval_split not in ("val", "test"):
            raise ValueError(f"eval_split must be val or test, got {self.eval_split!r}")
        if self.iterations is not None and self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        for name in ("first_bn", "dm_lr"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}: use {', '.join(LR_SCHEDULES)}"
            )
        for name in ("train_pixels", "label_pixels"):
            if getattr(self, name) not in PIXEL_SOURCES:
                raise ValueError(
                    f"unknown {name} {getattr(self, name)!r}: use {', '.join(PIXEL_SOURCES)}"
                )
        if self.window is not None and self.window not in WINDOW_CHOICES:
            raise ValueError(f"unknown window {self.window!r}: use {', '.join(WINDOW_CHOICES)}")
        if self.pack is not None and self.pack not in PACKINGS:
            raise ValueError(f"unknown pack {self.pack!r}: use {', '.join(PACKINGS)}")
        if not (math.isfinite(self.student_scale) and self.student_scale > 0):
            raise ValueError(f"student_scale must be a finite number > 0, got {self.student_scale}")
        if self.dm_net is not None and self.dm_net not in DM_NETS:
            raise ValueError(f"unknown dm_net {self.dm_net!r}: use {', '.join(DM_NETS)}")
        unknown = sorted(set(self.tsgfa_parts) - set(TSGFA_PARTS))
        if unknown:
            raise ValueError(
                f"unknown TSGFA part(s) {', '.join(unknown)}: use {', '.join(TSGFA_PARTS)}"
            )
        check_precision(self.precision)
        # the one look-up of the profile: every setting of the spec reads `self.prof`
        object.__setattr__(self, "_profile", get_profile(self.profile))
        seeds = len(self.prof.seeds)
        if self.n_students is not None and not 1 <= self.n_students <= seeds:
            raise ValueError(
                f"n_students must be 1 to {seeds} (the profile's student seeds), "
                f"got {self.n_students}"
            )
        if data_spec(self.dataset) is not None and self.camera_shake:
            raise ValueError(
                "camera_shake applies to the built-in benchmark, not to a real dataset"
            )

    def _normalise_recipe(self) -> None:
        """One spelling per recipe: `tsgfa=False` becomes student_augment="base", and the
        method's published recipe becomes None (frozen: set through object.__setattr__)."""
        recipe = self.student_augment
        if recipe is not None and recipe not in RECIPES:
            raise ValueError(f"unknown student_augment {recipe!r}: use {', '.join(RECIPES)}")
        if not self.tsgfa:
            if recipe == "tsgfa":
                raise ValueError("tsgfa=False contradicts student_augment='tsgfa': give one")
            recipe = "base"
        if recipe == published_recipe(self.method):
            recipe = None
        object.__setattr__(self, "student_augment", recipe)
        object.__setattr__(self, "tsgfa", True)

    @property
    def prof(self) -> Profile:
        """The profile this spec names (sizes and budgets), looked up once when it was made."""
        return self._profile

    @property
    def recipe(self) -> str:
        """The student recipe this spec evaluates with ("base" or "tsgfa")."""
        return self.student_augment or published_recipe(self.method)

    @property
    def variant(self) -> str:
        """The method and recipe as tuned: TSGD's set without the filter is SRe2L-style's; a
        recipe other than the method's published one is named after it ("sre2l-tsgfa"), and
        TSGD under the base recipe keeps its older name, "tsgd-notsgfa"."""
        method = "sre2l" if self.method == "tsgd" and not self.tsgfo else self.method
        if self.recipe == published_recipe(method):
            return method
        return "tsgd-notsgfa" if method == "tsgd" else f"{method}-{self.recipe}"

    @property
    def tuned_variant(self) -> str:
        """The variant whose tuned settings this spec reads: its own, else (not tuned under this
        recipe) the same method under its published recipe."""
        own = self.variant
        if tuned_settings(self.profile, own, self.ipc):
            return own
        return "sre2l" if self.method == "tsgd" and not self.tsgfo else self.method

    def tuned(self, name: str) -> Any:
        """This spec's `name` (one of TUNED_FIELDS): its own value, else what tuning chose."""
        own = getattr(self, name)
        if own is not None:
            return own
        return tuned_settings(self.profile, self.tuned_variant, self.ipc).get(name)

    @property
    def recover_iterations(self) -> int:
        iterations = self.tuned("iterations")
        if iterations is not None:
            return int(iterations)
        prof = self.prof
        return prof.dm_iterations if self.method == "dm" else prof.distill_iterations

    def tuned_or_profile(self, name: str, profile_field: str) -> float:
        """The tuned (or own) number `name`, else the profile's `profile_field`."""
        value = self.tuned(name)
        return getattr(self.prof, profile_field) if value is None else float(value)

    @property
    def recover_lr(self) -> float:
        return self.tuned_or_profile("lr", "distill_lr")

    @property
    def salient_window(self) -> str:
        return self.tuned("window") or "salient"

    @property
    def salient_pack(self) -> str:
        # untuned: one whole clip per stored clip; packing in time or tiles lost 15-30 points
        # at IPC 5 in the default profile's tuning (reports/tuning/tuning.csv)
        return self.tuned("pack") or "none"

    @property
    def student_seeds(self) -> tuple[int, ...]:
        seeds = self.prof.seeds
        return seeds if self.n_students is None else seeds[: self.n_students]

    @property
    def first_bn_weight(self) -> float:
        return self.prof.first_bn if self.first_bn is None else self.first_bn

    @property
    def dm_pixel_lr(self) -> float:
        return self.tuned_or_profile("dm_lr", "dm_lr")

    @property
    def dm_embedding(self) -> str:
        return self.prof.dm_net if self.dm_net is None else self.dm_net

    @property
    def uses_filter(self) -> bool:
        return self.method == "tsgd" and self.tsgfo

    def data_fields(self) -> dict[str, Any]:
        # the profile's data and teacher, not only its name: resized profiles must not reuse old
        # results; budgets enter the distill and eval keys as resolved values, so changing a
        # profile's default budget keeps the cells that name their budget explicitly
        prof = self.prof
        out = {
            "profile": self.profile,
            "data_key": config_key(prof.data, prof.teacher_model, prof.teacher_fit),
            "camera_shake": self.camera_shake,
        }
        if self.dataset:  # only for real data: the benchmark's keys stay as they were
            out.update(
                dataset=data_spec(self.dataset).identity(), teacher_recipe=REAL_TEACHER_RECIPE
            )
        return out

    @property
    def is_start_set(self) -> bool:
        """An optimised method at 0 iterations from real clips: no step is taken, so its set is
        Random's of the same draw, clip for clip (tests/test_tuning.py compares the contents)."""
        optimised = self.method in ("sre2l", "tsgd", "dm") and self.init == "real"
        return optimised and self.recover_iterations == 0

    def draw_fields(self, method: str) -> dict[str, Any]:
        """The data, the method and the draw: what every set's key starts from."""
        return {**self.data_fields(), "method": method, "ipc": self.ipc, "seed": self.distill_seed}

    def distill_fields(self) -> dict[str, Any]:
        """What changes the distilled set (evaluation-only switches excluded, so sets are shared)."""
        # TSGD with its filter off optimises exactly what SRe2L-style does: share that set
        method = "sre2l" if self.method == "tsgd" and not self.tsgfo else self.method
        out = self.draw_fields(method)
        if self.method in ("sre2l", "tsgd"):
            out.update(
                init=self.init,
                r_bn=self.r_bn,
                filter=self.uses_filter,
                first_bn=self.first_bn_weight,
                iterations=self.recover_iterations,
                lr=self.recover_lr,
            )
            # added only where they differ from what every earlier set used
            if self.lr_schedule != "cosine":
                out["lr_schedule"] = self.lr_schedule
            if not self.recover_augment:
                out["augment"] = False
        if self.method == "salient":
            out.update(window=self.salient_window, pack=self.salient_pack)
        if self.uses_filter:
            out.update({name: getattr(self, name) for name in FILTER_KEY_FIELDS})
        if self.method == "dm":
            out.update(
                init=self.init,
                iterations=self.recover_iterations,
                lr=self.dm_pixel_lr,
                net=self.dm_embedding,
                batch_real=self.prof.dm_batch_real,
            )
            if self.dm_embedding == "student":  # DM's own net is always instance-normalised
                out["norm"] = self.prof.student.model.norm
        return out

    def eval_fields(self) -> dict[str, Any]:
        # the start set's students are trained once, whichever method's 0 iterations asks
        start = self.draw_fields("random") if self.is_start_set else self.distill_fields()
        out = {
            **start,
            "augment": self.recipe,
            "labels": list(self.labels),
            "split": self.eval_split,
            "seeds": list(self.student_seeds),
            # 2: TSGFA on top of the base augmentation; seeds share one relabel plan
            "protocol": 2,
            # the resolved recipe: a scaled study cell shares its key with the profile's own
            # cell when the steps agree
            "student": asdict(self.student_recipe()),
        }
        if self.recipe == "tsgfa":
            out["tsgfa_saliency"] = asdict(self.saliency())
            out["tsgfa_parts"] = sorted(self.tsgfa_parts)
        if (self.train_pixels, self.label_pixels) != ("set", "set"):
            out["pixels"] = [self.train_pixels, self.label_pixels]
        if not self.recover_augment:  # the distill fields' "augment" is replaced just above
            out["recover_augment"] = False
        if self.precision != "fp32":  # every evaluation before the setting ran in float32
            out["precision"] = self.precision
        return out

    def distill_key(self) -> str:
        return config_key("distill", self.distill_fields())

    def eval_key(self) -> str:
        return config_key("eval", self.eval_fields())

    def name(self) -> str:
        """A readable, unique-enough name for folders and figure titles."""
        parts = [self.method, f"ipc{self.ipc}"]
        if self.camera_shake:
            parts.append(f"shake{self.camera_shake:g}")
        if self.method == "tsgd":
            parts += [] if self.tsgfo else ["noTSGFO"]
        if self.student_augment is not None:  # a recipe other than the method's published one
            parts.append("noTSGFA" if self.method == "tsgd" else self.recipe.upper())
        if self.method in ("tsgd", "sre2l", "dm") and self.init != "real":
            parts.append(f"init-{self.init}")
        defaults = {f.name: f.default for f in fields(RunSpec)}  # no spec made: no look-up
        for f in FILTER_SWITCHES:
            if self.uses_filter and getattr(self, f) != defaults[f]:
                parts.append(f"{f}-{getattr(self, f)}")
        for f in ("first_bn", "iterations", "dm_lr", "dm_net", "lr", "window", "pack"):
            if getattr(self, f) is not None:
                parts.append(f"{f}-{getattr(self, f)}")
        if self.lr_schedule != "cosine":
            parts.append(f"schedule-{self.lr_schedule}")
        if not self.recover_augment:
            parts.append("noaug")
        if (self.train_pixels, self.label_pixels) != ("set", "set"):
            parts.append(f"pixels-{self.train_pixels}-labels-{self.label_pixels}")
        if self.n_students is not None:
            parts.append(f"students{self.n_students}")
        if self.recipe == "tsgfa" and tuple(self.tsgfa_parts) != TSGFA_PARTS:
            parts.append("tsgfa-" + ("+".join(self.tsgfa_parts) or "none"))
        if self.student_scale != 1.0:
            parts.append(f"steps-x{self.student_scale:g}")
        if self.precision != DEFAULT_PRECISION:
            parts.append(self.precision)
        if self.eval_split != "test":
            parts.append(self.eval_split)
        if self.distill_seed:
            parts.append(f"dseed{self.distill_seed}")
        return "_".join(parts) + f"_{self.eval_key()[:6]}"

    def student_recipe(self) -> StudentConfig:
        """The profile's student recipe with this spec's steps (labels and augmentation aside)."""
        base = self.prof.student
        return replace(base, fit=scaled_fit(base.fit, self.student_scale))

    def saliency(self) -> SaliencyConfig:
        return SaliencyConfig(
            k=self.k, alpha=self.alpha, eps=self.eps, beta=self.beta, spatial_pool=self.spatial_pool
        )


def spec_from_params(**params: Any) -> RunSpec:
    """A RunSpec from notebook/CLI parameters: unknown names are a clear error, lists become tuples."""
    known = {f.name for f in fields(RunSpec)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"unknown run parameter(s) {', '.join(unknown)}: known are {', '.join(sorted(known))}"
        )
    return RunSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})

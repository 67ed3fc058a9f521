"""Robustness of the sets: the start set (random real clips), TSGD and the best other method of
the main table, at one IPC with soft labels, when the conditions of distillation change.

Four axes, each against its clean setting (the profile's own protocol), paired by draw and
student seed:

* teacher_arch: sets distilled (or selected, and relabelled) with a ConvNet3D, a (2+1)D and a
  C3D teacher, each evaluated on ConvNet3D, (2+1)D and C3D students;
* frame_rate: the set, the teacher's labels and the test clips at 1/2 and 1/4 of the frame
  rate (every k-th frame, held k times: clips keep their length and shape);
* resolution: students trained and tested at half and at twice the frame size the set was
  distilled at (set and test clips resized, bilinear with antialiasing);
* compression: the test clips written through H.264 at a low and a very low quality (CRF) with
  PyAV and decoded back with the pipeline's reader; the students of the clean set and the
  teacher are tested on them.

`./run_all.sh --robustness [--profile P] [--dataset KIND --root DIR]` writes
`reports/<profile>/robustness.csv`, `.md` and `.png`. Teachers, sets and evaluations are cached
(`<cache>/robustness/` holds this stage's own), so a rerun computes nothing twice.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ..data.artifact import DistilledSet, load_cached_distilled, save_cached_distilled  # noqa: E402
from ..data.clips import ClipSet, DataError, from_uint8, to_uint8  # noqa: E402
from ..data.storage import (  # noqa: E402
    config_key,
    load_json_keyed,
    load_torch,
    save_json_keyed,
    save_torch,
)
from ..methods.selection import SELECTION_METHODS, select_subset  # noqa: E402
from ..runtime import resolve_device  # noqa: E402
from ..runtime.progress import progress_bar  # noqa: E402
from ..training.evaluate import StudentConfig, build_relabel_plan, train_student  # noqa: E402
from ..training.teacher import TeacherInfo, load_or_train_teacher  # noqa: E402
from ..training.train import accuracy  # noqa: E402
from . import experiments  # noqa: E402
from .experiments import METHOD_LABELS, RunSpec  # noqa: E402
from .stats import resolved, two_level_interval  # noqa: E402
from .tuning import in_workers  # noqa: E402

AXES = ("teacher_arch", "frame_rate", "resolution", "compression")
AXIS_TITLES = {
    "teacher_arch": "teacher -> student architecture",
    "frame_rate": "frame rate",
    "resolution": "frame size",
    "compression": "H.264 compression of the test clips",
}
ARCHS = ("convnet3d", "r2plus1d", "c3d")
ARCH_LABELS = {"convnet3d": "ConvNet3D", "r2plus1d": "(2+1)D", "c3d": "C3D"}
FRAME_STEPS = (2, 4)  # keep every k-th frame
SIZE_SCALES = (0.5, 2.0)  # of the distilled frame size
CRFS = (35, 45)  # H.264 constant-rate factors: low and very low quality (51 is the worst)
CODEC_FPS = 8
IPC = 5
DRAWS = (0, 1, 2, 3, 4)  # x 3 student seeds: n = 15 per drop, as the main table
START = "random"
FALLBACK_OTHER = "herding"  # the third method when no main table names a better one
TEACHER = "teacher"  # the method column of the teacher's own rows
# 1: the first protocol of this stage (bump when a transform changes, to recompute)
VERSION = 1
COLUMNS = ["axis", "setting", "method", "ipc", "labels", "mean", "ci_low", "ci_high", "drop"]
COLUMNS += ["drop_ci_low", "drop_ci_high", "n"]


@dataclass(frozen=True)
class Setting:
    """One condition of an axis; the clean one is the profile's protocol."""

    axis: str
    name: str
    teacher: str = "convnet3d"  # the architecture of the teacher that makes / labels the set
    student: str = "convnet3d"  # the students' architecture
    frame_step: int = 1
    size: tuple[int, int] | None = None  # (H, W) students train and test at; None: the set's
    crf: int | None = None  # H.264 quality of the test clips; None: uncompressed
    clean: bool = False


def axis_settings(axis: str, clip_shape: Sequence[int]) -> list[Setting]:
    """The settings of one axis, the clean one first."""
    _, frames, height, width = clip_shape
    if axis == "teacher_arch":
        return [
            Setting(
                axis,
                f"{ARCH_LABELS[t]} teacher -> {ARCH_LABELS[s]} student",
                teacher=t,
                student=s,
                clean=(t, s) == (ARCHS[0], ARCHS[0]),
            )
            for t in ARCHS
            for s in ARCHS
        ]
    clean = Setting(axis, f"clean ({frames}x{height}x{width})", clean=True)
    if axis == "frame_rate":
        return [clean] + [
            Setting(axis, f"1/{k} frame rate", frame_step=k) for k in FRAME_STEPS if k < frames
        ]
    if axis == "resolution":
        sizes = [(max(2, round(height * s)), max(2, round(width * s))) for s in SIZE_SCALES]
        return [clean] + [Setting(axis, f"{frames}x{h}x{w}", size=(h, w)) for h, w in sizes]
    if axis == "compression":
        return [clean] + [Setting(axis, f"H.264 CRF {crf}", crf=crf) for crf in CRFS]
    raise ValueError(f"unknown axis {axis!r}: use {', '.join(AXES)}")


# ----------------------------------------------------------------------------- the transforms


def subsample_frames(videos: torch.Tensor, step: int) -> torch.Tensor:
    """(N, C, T, H, W) at 1/step of the frame rate: every step-th frame, held step times."""
    if step < 1:
        raise ValueError(f"the frame step must be >= 1, got {step}")
    frames = videos.shape[2]
    keep = (torch.arange(frames) // step) * step
    return videos[:, :, keep].contiguous()


def resize_clips(videos: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, T, H, W) with every frame resized to `size` (bilinear, antialiased), in [0, 1]."""
    n, c, t, h, w = videos.shape
    if (h, w) == tuple(size):
        return videos
    frames = videos.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w).float()
    out = F.interpolate(frames, size=tuple(size), mode="bilinear", antialias=True)
    return out.reshape(n, t, c, *size).permute(0, 2, 1, 3, 4).clamp(0, 1).contiguous()


def codec_round_trip(videos: torch.Tensor, crf: int, *, progress: bool = False) -> torch.Tensor:
    """(N, C, T, H, W) in [0, 1], each clip encoded as H.264 (yuv420p, `crf`) with PyAV and
    decoded back with the pipeline's reader (`real_video.read_clip`)."""
    from ..data.video_decode import read_clip

    n, _, frames, height, width = videos.shape
    # yuv420p needs even sizes: pad with the edge, decode, cut the padding off again
    pad = (0, width % 2, 0, height % 2)
    out = torch.empty(n, 3, frames, height, width)
    with tempfile.TemporaryDirectory(prefix="tsgd-codec-") as folder:
        path = Path(folder) / "clip.mp4"
        for i in progress_bar(range(n), desc=f"H.264 CRF {crf}", enabled=progress, leave=False):
            clip = F.pad(videos[i].float().permute(1, 0, 2, 3), pad, mode="replicate")
            pixels = np.ascontiguousarray(to_uint8(clip).permute(0, 2, 3, 1).numpy())  # T,H,W,C
            encode_h264(pixels, path, crf)
            back = read_clip(path, frames, pixels.shape[1:3], backend="pyav")
            out[i] = from_uint8(torch.from_numpy(back[:, :height, :width]).permute(3, 0, 1, 2))
    return out


def encode_h264(pixels: np.ndarray, path: Path, crf: int) -> Path:
    """uint8 (T, H, W, 3) frames as an H.264 MP4 at constant quality `crf`, on one thread.

    Not bit-reproducible on a loaded machine: 30 of 1,200 encodes gave another file (three runs
    of scripts/codec_determinism.py at once on 2 cores), hence compressed_test's cache."""
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=CODEC_FPS)
        stream.height, stream.width = pixels.shape[1], pixels.shape[2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "threads": "1"}
        stream.codec_context.thread_count = 1
        for frame in pixels:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush delayed frames
            container.mux(packet)
    return path


def compressed_test(
    test: ClipSet, crf: int, cache_dir: str | Path, *, progress: bool = False
) -> ClipSet:
    """The test clips through H.264 at `crf`, computed once and cached (uint8)."""
    from ..data.storage import tensor_digest

    videos = test.videos[:]
    key = config_key("codec", "libx264", crf, CODEC_FPS, tensor_digest(videos))
    path = Path(cache_dir) / "robustness" / f"test-{key}.pt"
    if path.is_file():
        return ClipSet(from_uint8(load_torch(path)), test.labels, test.class_names)
    out = codec_round_trip(videos, crf, progress=progress)
    save_torch(to_uint8(out), path)
    return ClipSet(out, test.labels, list(test.class_names))


def transformed(clips: ClipSet, setting: Setting) -> ClipSet:
    """The clips under a setting's frame rate and frame size (compression is the test's alone)."""
    videos = clips.videos[:]
    if setting.frame_step > 1:
        videos = subsample_frames(videos, setting.frame_step)
    if setting.size is not None:
        videos = resize_clips(videos, setting.size)
    return ClipSet(videos, clips.labels, list(clips.class_names))


# ----------------------------------------------------------------------------- teachers and sets


def arch_teacher(
    spec: RunSpec, arch: str, *, cache_dir: str | Path, device: str
) -> tuple[torch.nn.Module, TeacherInfo]:
    """The profile's teacher recipe with another architecture (the profile's own for its own
    architecture: the same key, the same cached teacher)."""
    splits = experiments.spec_data(spec, cache_dir)
    model_cfg, fit_cfg, balanced = experiments.teacher_recipe(spec.prof, splits, spec.dataset)
    return load_or_train_teacher(
        splits,
        replace(model_cfg, name=arch),
        fit_cfg,
        balanced=balanced,
        cache_dir=cache_dir,
        device=device,
        progress=False,
    )


def set_with_teacher(
    spec: RunSpec,
    teacher: torch.nn.Module,
    info: TeacherInfo,
    *,
    cache_dir: str | Path,
    device: str,
) -> DistilledSet:
    """The set of `spec` made with this teacher, cached beside the grid's sets (their path
    names the teacher's key). Sets that need no teacher (Random, DM) are the grid's own."""
    default_key = experiments.expected_teacher_key(
        spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir
    )
    if info.key == default_key or spec.method in (START, "dm"):
        return experiments.make_distilled(spec, cache_dir=cache_dir, device=device, progress=False)
    path = experiments.distilled_path(spec, info.key, cache_dir)
    cached = load_cached_distilled(path)
    if cached is not None:
        return cached
    train = experiments.load_data(
        spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir
    ).train
    if spec.method in SELECTION_METHODS:
        ds = select_subset(
            spec.method, train, spec.ipc, teacher=teacher, seed=spec.distill_seed, device=device
        )
    elif spec.method in ("tsgd", "sre2l"):
        from ..methods.distill import distill_tsgd

        cfg = experiments.tsgd_config(spec)
        ds = distill_tsgd(teacher, train, cfg, device=resolve_device(device), progress=False)
    elif spec.method == "salient":
        from ..methods.salient import select_salient_windows

        cfg = experiments.salient_config(spec)
        ds = select_salient_windows(train, spec.ipc, teacher=teacher, cfg=cfg, device=device)
    else:
        raise ValueError(f"no robustness set for method {spec.method!r}")
    ds.teacher_key = info.key
    ds.config = {**ds.config, "spec": asdict(spec)}
    save_cached_distilled(ds, path)
    return ds


# ----------------------------------------------------------------------------- evaluation


def students_accuracies(
    data: ClipSet,
    tests: dict[str, ClipSet],
    cfg: StudentConfig,
    *,
    teacher: torch.nn.Module,
    seeds: Sequence[int],
    device: str = "cpu",
) -> dict[str, list[float]]:
    """`evaluate.evaluate_set`'s students (one shared relabel plan, one student per seed, the
    same accuracies), each tested on every test set: {test name: [accuracy per seed]}."""
    dev = resolve_device(device)
    plan = build_relabel_plan(data, cfg, teacher=teacher, seed=seeds[0], device=dev)
    out: dict[str, list[float]] = {name: [] for name in tests}
    for seed in seeds:
        student = train_student(data, cfg, teacher=teacher, seed=seed, device=dev, plan=plan)
        for name, test in tests.items():
            out[name].append(accuracy(student, test, device=dev))
    return out


@dataclass(frozen=True)
class Job:
    """The non-clean settings of one axis for one cell (method, IPC, draw) and one teacher."""

    spec: RunSpec
    settings: tuple[Setting, ...]
    teacher: str = "convnet3d"


def jobs_for(specs: Sequence[RunSpec], axes: Sequence[str], clip_shape: Sequence[int]) -> list[Job]:
    """Every cell's jobs: one per teacher architecture, one per other axis."""
    jobs = []
    for spec in specs:
        for axis in axes:
            settings = [s for s in axis_settings(axis, clip_shape) if not s.clean]
            if axis == "teacher_arch":
                for arch in ARCHS:
                    mine = tuple(s for s in settings if s.teacher == arch)
                    jobs.append(Job(spec, mine, arch))
            else:
                jobs.append(Job(spec, tuple(settings)))
    # distillations with a new teacher first: they are the longest
    return sorted(jobs, key=lambda j: (j.teacher == ARCHS[0], j.spec.method != "tsgd"))


def job_key(job: Job, teacher_key: str) -> str:
    settings = [asdict(s) for s in job.settings]
    return config_key("robustness", VERSION, job.spec.eval_key(), teacher_key, settings)


def run_job(job: Job, cache_dir: str, device: str) -> list[dict[str, Any]]:
    """The job's rows ({axis, setting, method, draw, accs}), from the cache or computed (in a
    worker process with one torch thread: workers share the cores)."""
    torch.set_num_threads(1)
    spec = job.spec
    teacher, info = arch_teacher(spec, job.teacher, cache_dir=cache_dir, device=device)
    key = job_key(job, info.key)
    path = Path(cache_dir) / "robustness" / f"{key}.json"
    cached = load_json_keyed(path, key)
    if cached is not None:
        return cached
    ds = set_with_teacher(spec, teacher, info, cache_dir=cache_dir, device=device)
    test = experiments.load_data(
        spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir
    ).test
    base = experiments.student_config(spec, "soft")
    accs: dict[str, list[float]] = {}
    compressed = {s.name: compressed_test(test, s.crf, cache_dir) for s in job.settings if s.crf}
    if compressed:  # the clean set's students, tested on every compressed test split
        accs.update(
            students_accuracies(
                ds.to_clipset(),
                compressed,
                base,
                teacher=teacher,
                seeds=spec.student_seeds,
                device=device,
            )
        )
    for setting in (s for s in job.settings if not s.crf):
        cfg = replace(base, model=replace(base.model, name=setting.student))
        accs.update(
            students_accuracies(
                transformed(ds.to_clipset(), setting),
                {setting.name: transformed(test, setting)},
                cfg,
                teacher=teacher,
                seeds=spec.student_seeds,
                device=device,
            )
        )
    rows = [row_of(spec, s, accs[s.name]) for s in job.settings]
    save_json_keyed(rows, path, key)
    return rows


def row_of(spec: RunSpec, setting: Setting, accs: Sequence[float]) -> dict[str, Any]:
    return {
        "axis": setting.axis,
        "setting": setting.name,
        "clean": setting.clean,
        "method": spec.method,
        "ipc": spec.ipc,
        "distill_seed": spec.distill_seed,
        "accs": [float(a) for a in accs],
    }


def teacher_rows(
    spec: RunSpec, axes: Sequence[str], *, cache_dir: str | Path, device: str
) -> list[dict[str, Any]]:
    """Each setting's teacher accuracy on the (transformed) test split: one value, no interval."""
    test = experiments.load_data(
        spec.profile, spec.camera_shake, dataset=spec.dataset, cache_dir=cache_dir
    ).test
    rows = []
    for axis in axes:
        for setting in axis_settings(axis, test.clip_shape):
            if axis == "teacher_arch":
                if setting.student != setting.teacher:
                    continue  # one row per teacher: its own test accuracy
                _, info = arch_teacher(spec, setting.teacher, cache_dir=cache_dir, device=device)
                acc = info.test_acc
            else:
                teacher, _ = arch_teacher(spec, setting.teacher, cache_dir=cache_dir, device=device)
                clips = (
                    compressed_test(test, setting.crf, cache_dir)
                    if setting.crf
                    else transformed(test, setting)
                )
                acc = accuracy(teacher, clips, device=device)
            rows.append(
                {
                    **row_of(spec, setting, [acc]),
                    "setting": f"{ARCH_LABELS[setting.teacher]} teacher"
                    if axis == "teacher_arch"
                    else setting.name,
                    "method": TEACHER,
                    "distill_seed": 0,
                }
            )
    return rows


def setting_ranks(axes: Sequence[str], clip_shape: Sequence[int]) -> dict[tuple[str, str], int]:
    """(axis, setting) -> its place in `axis_settings` (a teacher's own row: its clean pair)."""
    ranks = {}
    for axis in axes:
        for i, setting in enumerate(axis_settings(axis, clip_shape)):
            ranks[(axis, setting.name)] = i
            if axis == "teacher_arch" and setting.teacher == setting.student:
                ranks[(axis, f"{ARCH_LABELS[setting.teacher]} teacher")] = i
    return ranks


def clean_rows(
    records: Sequence[dict[str, Any]], axes: Sequence[str], clip_shape: Sequence[int]
) -> list[dict[str, Any]]:
    """The grid's clean cells as every axis's clean setting."""
    rows = []
    for axis in axes:
        clean = next(s for s in axis_settings(axis, clip_shape) if s.clean)
        for rec in records:
            spec = RunSpec(method=rec["method"], ipc=int(rec["ipc"]), profile=rec["profile"])
            rows.append(
                {**row_of(spec, clean, rec["acc_soft_seeds"]), "distill_seed": rec["distill_seed"]}
            )
    return rows


# ----------------------------------------------------------------------------- the table


def method_label(method: str) -> str:
    return "Teacher" if method == TEACHER else METHOD_LABELS[method]


def robustness_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (axis, setting, method): accuracy with its 95 % interval and the drop from the
    clean setting, paired by draw and student seed, in points (positive: a loss)."""
    from .stats import clip_accuracy_interval

    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        entry = groups.setdefault(
            (row["axis"], row["setting"], row["method"]),
            {"accs": {}, "clean": row["clean"], "ipc": row["ipc"]},
        )
        entry["accs"][int(row["distill_seed"])] = list(row["accs"])
    clean = {(a, m): g["accs"] for (a, _, m), g in groups.items() if g["clean"]}
    out = []
    for (axis, setting, method), entry in groups.items():
        acc = two_level_interval(entry["accs"])
        base = clean.get((axis, method), {})
        drops = {
            d: [c - a for c, a in zip(base[d], accs, strict=True)]
            for d, accs in entry["accs"].items()
            if d in base
        }
        drop = two_level_interval(drops)
        low, high = clip_accuracy_interval(acc.low, acc.high)  # the drop's is never clipped
        out.append(
            {
                "axis": axis,
                "setting": setting,
                "method": method_label(method),
                "ipc": pd.NA if method == TEACHER else entry["ipc"],
                "labels": "" if method == TEACHER else "soft",
                "mean": 100 * acc.mean,
                "ci_low": 100 * low,
                "ci_high": 100 * high,
                "drop": 100 * drop.mean,
                "drop_ci_low": 100 * drop.low,
                "drop_ci_high": 100 * drop.high,
                "n": acc.n,
                "_clean": entry["clean"],
            }
        )
    table = pd.DataFrame(out, columns=[*COLUMNS, "_clean"]).astype({"ipc": "Int64"})
    return sort_table(table).drop(columns="_clean")


def sort_table(table: pd.DataFrame) -> pd.DataFrame:
    """Axes in AXES order, each axis's clean setting first, methods as first seen."""
    axis_rank = table["axis"].map({a: i for i, a in enumerate(AXES)})
    setting_rank = table.groupby("axis", sort=False)["setting"].transform(
        lambda s: s.map({v: i for i, v in enumerate(dict.fromkeys(s))})
    )
    method_rank = table["method"].map({m: i for i, m in enumerate(dict.fromkeys(table["method"]))})
    keys = pd.DataFrame(
        {"a": axis_rank, "c": ~table["_clean"], "s": setting_rank, "m": method_rank}
    )
    return table.loc[keys.sort_values(["a", "c", "s", "m"]).index].reset_index(drop=True)


def drop_text(row: dict[str, Any] | pd.Series) -> str:
    """'28.1 %, 2.9 points below clean [-1.0, +6.8], not resolved' (the drop's interval)."""
    mean, drop = row["mean"], row["drop"]
    if drop is None or math.isnan(drop):
        return f"{mean:.1f} % (no clean value to pair with)"
    where = "below" if drop >= 0.05 else "above" if drop <= -0.05 else "level with"
    amount = "" if where == "level with" else f"{abs(drop):.1f} points "
    low, high = row["drop_ci_low"], row["drop_ci_high"]
    if math.isnan(low) or math.isnan(high):
        return f"{mean:.1f} %, {amount}{where} clean (no interval)"
    verdict = "resolved" if resolved(low, high, int(row["n"])) else "not resolved"
    return f"{mean:.1f} %, {amount}{where} clean (drop [{low:+.1f}, {high:+.1f}], {verdict})"


def robustness_sentences(table: pd.DataFrame) -> list[str]:
    """One line per axis and method: its clean accuracy, then every setting against it."""
    lines = []
    for axis in (a for a in AXES if a in set(table["axis"])):
        at = table[table["axis"] == axis]
        for method in dict.fromkeys(at["method"]):
            rows = at[at["method"] == method]
            clean = rows.iloc[0]  # the table lists each axis's clean setting first
            parts = [f"{r['setting']}: {drop_text(r)}" for _, r in rows.iloc[1:].iterrows()]
            head = f"{AXIS_TITLES[axis]}, {method} ({clean['setting']}: {clean['mean']:.1f} %)"
            lines.append(head + ": " + "; ".join(parts) + ".")
    return lines


def plot_robustness(table: pd.DataFrame, path: Path) -> Path:
    """One panel per axis: accuracy per setting, a line per method with 95 % intervals."""
    from ..data.storage import save_figure

    axes_present = [a for a in AXES if a in set(table["axis"])]
    cols = 2 if len(axes_present) > 1 else 1
    nrows = math.ceil(len(axes_present) / cols)
    fig, panels = plt.subplots(nrows, cols, figsize=(7 * cols, 4.6 * nrows), squeeze=False)
    for ax, axis in zip(panels.flat, axes_present, strict=False):
        at = table[(table["axis"] == axis) & (table["method"] != "Teacher")]
        settings = list(dict.fromkeys(at["setting"]))
        for method, part in at.groupby("method", sort=False):
            part = part.set_index("setting").reindex(settings)
            ax.errorbar(
                range(len(settings)),
                part["mean"],
                yerr=[part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]],
                marker="o",
                capsize=3,
                label=method,
            )
        teacher = table[(table["axis"] == axis) & (table["method"] == "Teacher")]
        if axis != "teacher_arch" and len(teacher):
            part = teacher.set_index("setting").reindex(settings)
            ax.plot(range(len(settings)), part["mean"], "k--", marker="x", label="Teacher")
        ax.set_xticks(range(len(settings)))
        ax.set_xticklabels([s.replace(" -> ", "\n-> ") for s in settings], fontsize=7)
        if len(settings) > 4:
            plt.setp(ax.get_xticklabels(), rotation=35, ha="right")
        ax.set_title(AXIS_TITLES[axis])
        ax.set_ylabel("test accuracy [%]")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    for ax in list(panels.flat)[len(axes_present) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, path)


def write_outputs(table: pd.DataFrame, out: Path, about: str) -> list[Path]:
    """robustness.csv, robustness.md and robustness.png in `out`, each written atomically."""
    from ..data.storage import write_text

    out.mkdir(parents=True, exist_ok=True)
    csv = write_text(table.round(2).to_csv(index=False), out / "robustness.csv")
    png = plot_robustness(table, out / "robustness.png")
    bullets = "\n".join(f"* {line}" for line in robustness_sentences(table))
    text = (
        f"# Robustness\n\n{about}\n\n{bullets}\n\n![robustness](robustness.png)\n\n"
        f"{table.round(1).to_markdown(index=False)}\n"
    )
    md = write_text(text, out / "robustness.md")
    return [csv, md, png]


# ----------------------------------------------------------------------------- the stage


def best_other_method(main_table: Path, ipc: int) -> str:
    """The best method of the main table at `ipc` (soft labels) other than the start set and
    TSGD; Herding when there is no table."""
    try:
        table = pd.read_csv(main_table)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return FALLBACK_OTHER
    keys = {label: key for key, label in METHOD_LABELS.items() if key not in (START, "tsgd")}
    rows = table[(table["ipc"] == ipc) & (table["labels"] == "soft")]
    rows = rows[rows["method"].isin(keys)]
    return keys[rows.loc[rows["mean"].idxmax(), "method"]] if len(rows) else FALLBACK_OTHER


def clean_specs(
    profile: str, dataset: str, methods: Sequence[str], ipc: int, draws: Sequence[int]
) -> list[RunSpec]:
    """The grid's main cells (both label modes, the same keys): nothing to compute after
    ./run_all.sh."""
    return [
        RunSpec(method=m, ipc=ipc, profile=profile, dataset=dataset, distill_seed=d)
        for m in methods
        for d in draws
    ]


def map_calls(fn: Any, calls: Sequence[tuple], *, workers: int, desc: str) -> list[Any]:
    """fn(*call) for every call: in this process for one worker (no start-up cost), else in
    `workers` spawned processes (tuning.in_workers); a progress bar either way."""
    if workers == 1:
        return [fn(*call) for call in progress_bar(calls, desc=desc, unit="job")]
    return in_workers(fn, calls, workers=workers, desc=desc)


def _record(spec: RunSpec, cache_dir: str, device: str, cached_only: bool) -> dict | None:
    """One clean cell's record (one torch thread, as the grid's workers); with `cached_only`,
    its cached record or None."""
    torch.set_num_threads(1)
    if cached_only:
        return experiments.cached_record(spec, cache_dir=cache_dir, device=device)
    return experiments.run(spec, cache_dir=cache_dir, device=device, progress=False)[1]


def clean_records(
    specs: Sequence[RunSpec], *, cache_dir: str | Path, device: str, workers: int
) -> list[dict[str, Any]]:
    """The clean cells' records: the grid's where cached, else computed with soft labels alone."""
    calls = [(s, str(cache_dir), device, True) for s in specs]
    found = [r for r in map_calls(_record, calls, workers=workers, desc="clean (cached)") if r]
    have = {(r["method"], int(r["distill_seed"])) for r in found}
    calls = [
        (replace(s, labels=("soft",)), str(cache_dir), device, False)
        for s in specs
        if (s.method, s.distill_seed) not in have
    ]
    return found + (map_calls(_record, calls, workers=workers, desc="clean") if calls else [])


def _teacher_job(spec: RunSpec, arch: str, cache_dir: str, device: str) -> str:
    torch.set_num_threads(1)
    return arch_teacher(spec, arch, cache_dir=cache_dir, device=device)[1].key


def robustness(
    profile: str,
    *,
    dataset: str = "",
    methods: Sequence[str] | None = None,
    ipc: int = IPC,
    draws: Sequence[int] = DRAWS,
    axes: Sequence[str] = AXES,
    out: Path | None = None,
    cache_dir: Path = Path("cache"),
    device: str = "cpu",
    workers: int = 1,
) -> pd.DataFrame:
    """The whole stage: teachers, clean cells, every axis's jobs, the table, figure and text."""
    start = time.perf_counter()
    torch.set_num_threads(
        1
    )  # as the grid's workers: teachers trained here match theirs bit for bit
    folder = f"{profile}-{data_kind(dataset)}" if dataset else profile
    out = out or Path("reports") / folder
    splits = experiments.load_data(profile, dataset=dataset, cache_dir=cache_dir)
    smallest = int(splits.train.class_counts().min())
    if ipc > smallest:
        raise DataError(
            f"IPC {ipc} is more than the smallest class has ({smallest} clips): use --ipc up "
            f"to {smallest}"
        )
    methods = list(methods or (START, "tsgd", best_other_method(out / "main_table.csv", ipc)))
    probe = RunSpec(profile=profile, dataset=dataset)
    calls = [(probe, arch, str(cache_dir), device) for arch in ARCHS]
    map_calls(_teacher_job, calls, workers=min(workers, len(ARCHS)), desc="teachers")
    specs = clean_specs(profile, dataset, methods, ipc, draws)
    records = clean_records(specs, cache_dir=cache_dir, device=device, workers=workers)
    for crf in (s.crf for a in axes for s in axis_settings(a, splits.clip_shape) if s.crf):
        compressed_test(splits.test, crf, cache_dir, progress=True)  # once, before the workers
    jobs = jobs_for(specs, axes, splits.clip_shape)
    calls = [(job, str(cache_dir), device) for job in jobs]
    results = map_calls(run_job, calls, workers=workers, desc="robustness")
    rows = clean_rows(records, axes, splits.clip_shape)
    rows += [row for result in results for row in result]
    rows += teacher_rows(probe, axes, cache_dir=cache_dir, device=device)
    ranks = setting_ranks(axes, splits.clip_shape)  # the table lists settings as first seen
    rows.sort(key=lambda row: ranks.get((row["axis"], row["setting"]), len(ranks)))
    table = robustness_table(rows)
    wall = time.perf_counter() - start
    about = (
        f"Made by `./run_all.sh --robustness --profile {profile}"
        f"{' --dataset ' + data_kind(dataset) if dataset else ''}` in {wall / 60:.1f} min "
        f"({len(jobs)} jobs, {workers} worker{'s' if workers != 1 else ''}). IPC {ipc}, soft "
        f"labels, test split, {len(draws)} draws x the profile's student seeds; drop = clean "
        "minus the setting, in points, paired by draw and student seed (positive: a loss); "
        "resolved: the drop's 95 % interval excludes 0 and rests on at least 5 pairs. Frame "
        "rate: every k-th frame held k times (set, teacher labels and test clips); frame size: "
        "set and test clips resized, the students trained at that size; compression: the test "
        f"clips through H.264 (PyAV, yuv420p, {CODEC_FPS} fps) and decoded back; teacher "
        "architecture: the profile's teacher recipe with another network, and the set made or "
        "selected with it (Random and DM sets need no teacher: only their labels change)."
    )
    write_outputs(table, out, about)
    return table


def data_kind(dataset: str) -> str:
    from ..data.datasets import data_spec

    return data_spec(dataset).kind

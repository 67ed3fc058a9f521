"""The built-in motion-video benchmark: seeded, generated clips whose class is carried by motion.

Each clip shows one textured object (disc, square, triangle, cross or ring, striped or
checkered, with an off-centre mark so that rotation shows) over a smooth colour field that
drifts on its own, with 1-3 small distractor blobs drifting in random directions, plus pixel
noise. The class is the object's motion (translation, rotation, zoom, circling, oscillation).

Motion happens at a time (`timing="window"`, the default): the class motion fills one window of
consecutive frames, its start and length drawn per clip so that it covers `event_fraction` of the
clip (at least two frames); before and after it the object rests in the pose it has at the
window's edge, while the background and the distractors keep moving throughout, so raw frame
differences alone are not the class. Inside the window the object moves EVENT_SPEEDUP times as
fast as in `timing="constant"`, where it moves at one speed from the first frame to the last
(the first version of the benchmark, kept as an option). `RenderedClips.event_mask` and
`benchmark_event_masks` give the true window of every clip.

A single frame carries no class at the default `appearance_cue=0`:
* the scene lives on a torus (what leaves one edge re-enters at the opposite one), and every
  class draws its start position uniformly, so the object's position is uniform at every frame;
* orientation is uniform at every frame (a uniform start angle plus any spin stays uniform);
* the event window only changes how far along its path the object is at each frame, and every
  path is an offset from a uniform start, so the three points above hold for either timing;
* log-size is uniform in a fixed range at every frame for every class: zoom is a sawtooth in
  log-size (the object grows, or shrinks, steadily and jumps back when it leaves the range);
* shape, texture, colour, background and distractors are drawn independently of the class.
`appearance_cue > 0` mixes a class colour into the object's colour, making single frames
informative (the control condition). `camera_shake > 0` jitters the whole frame each frame.

Everything is rendered analytically (signed distance functions, Fourier-mode backgrounds,
Gaussian blobs) on the pixel grid, vectorised over clips with torch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch

from .clips import ClipSet, DataError, Splits

MOTION_CLASSES: tuple[str, ...] = (
    "translate_right",
    "translate_left",
    "translate_up",
    "translate_down",
    "rotate_cw",
    "rotate_ccw",
    "zoom_in",
    "zoom_out",
    "circle_cw",
    "circle_ccw",
    "oscillate_horizontal",
    "oscillate_vertical",
)

_DESCRIPTIONS = {
    "translate_right": "the object slides right at a constant speed (wrapping around the edge)",
    "translate_left": "the object slides left at a constant speed (wrapping around the edge)",
    "translate_up": "the object slides up at a constant speed (wrapping around the edge)",
    "translate_down": "the object slides down at a constant speed (wrapping around the edge)",
    "rotate_cw": "the object spins clockwise in place",
    "rotate_ccw": "the object spins counter-clockwise in place",
    "zoom_in": "the object grows steadily in place (jumping back to small past the largest size)",
    "zoom_out": "the object shrinks steadily in place (jumping back to large past the smallest size)",
    "circle_cw": "the object's centre travels clockwise around a circle, orientation fixed",
    "circle_ccw": "the object's centre travels counter-clockwise around a circle, orientation fixed",
    "oscillate_horizontal": "the object swings left and right, several frames per swing",
    "oscillate_vertical": "the object swings up and down, several frames per swing",
}

SHAPES: tuple[str, ...] = ("disc", "square", "triangle", "cross", "ring")

# Motion and size ranges are in pixels of a 32-pixel frame and scale with min(H, W) / 32.
REFERENCE_SIZE = 32.0
RADIUS_RANGE = (2.5, 8.5)  # object "radius": 5-17 px across at 32x32 (geometric mean 9 px)
TRANSLATE_SPEED = (1.5, 3.0)  # px / frame
SPIN_DEGREES = (20.0, 35.0)  # deg / frame
ZOOM_RATE = (0.10, 0.15)  # relative size change / frame
CIRCLE_RADIUS = (4.0, 6.0)  # px
CIRCLE_SPEED = (1.5, 3.0)  # px / frame along the circle
OSCILLATION_AMPLITUDE = (3.0, 5.0)  # px
OSCILLATION_PERIOD = (4.0, 7.0)  # frames
BACKGROUND_DRIFT = (0.2, 0.6)  # px / frame
DISTRACTOR_SPEED = (0.3, 1.2)  # px / frame
DISTRACTOR_SIGMA = (1.0, 2.0)  # px
DISTRACTOR_OPACITY = (0.4, 0.7)
BACKGROUND_WAVE_AMPLITUDE = 0.04  # per wave and channel
TEXTURE_FREQUENCY = (0.8, 1.6)  # cycles per object radius
TEXTURE_DEPTH = (0.4, 0.7)  # darkening of the texture's dark phase
MARK_OFFSET = 0.6  # the mark's distance from the object centre, in object radii
MARK_RADIUS = 0.28  # in object radii
MAX_DISTRACTORS = 3
BACKGROUND_MODES = 5
MAX_PIXELS_PER_CHUNK = 1 << 22  # clips x frames x height x width rendered at once
# Inside its window the class motion runs this many times as fast as with constant timing, so a
# window of 2-4 of 7 steps covers roughly the path of a whole constant clip (oscillation: the
# amplitude grows, the period stays, so a swing never aliases).
EVENT_SPEEDUP = 2.0
DEFAULT_EVENT_FRACTION = (1 / 3, 2 / 3)

_SPLITS = ("train", "val", "test")
TIMINGS = ("window", "constant")


def describe_motion_classes(num_classes: int | None = None) -> dict[str, str]:
    """One-line description of each motion class (the first `num_classes`, or all)."""
    names = MOTION_CLASSES if num_classes is None else _class_names(num_classes)
    return {name: _DESCRIPTIONS[name] for name in names}


def split_seed(seed: int, split: str) -> int:
    """Seed of one split: a SHA-256 hash of (seed, split), so the three splits never share one."""
    if split not in _SPLITS:
        raise DataError(f"unknown split {split!r}: choose one of {', '.join(_SPLITS)}")
    digest = hashlib.sha256(f"tsgd-motion/{int(seed)}/{split}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # 63 bits: a valid torch seed


def make_motion_benchmark(
    num_classes: int = 10,
    clips_per_class: int = 100,
    val_per_class: int = 20,
    test_per_class: int = 50,
    frames: int = 8,
    height: int = 32,
    width: int = 32,
    camera_shake: float = 0.0,
    appearance_cue: float = 0.0,
    noise: float = 0.02,
    seed: int = 0,
    timing: str = "window",
    event_fraction: tuple[float, float] = DEFAULT_EVENT_FRACTION,
    classes: Sequence[str] | None = None,
) -> Splits:
    """Balanced train / val / test splits of motion clips, each split from its own seed.

    The classes are the first `num_classes` of MOTION_CLASSES, or `classes` (names from
    MOTION_CLASSES, in that order; `num_classes` is then their number). `camera_shake` is the std of
    a per-frame random offset of the whole frame, in pixels of a 32-pixel frame (scaled with
    the frame); `appearance_cue` in [0, 1] is how much of the object's colour is the class's
    colour; `noise` is the std of Gaussian pixel noise. `timing` is "window" (the class motion
    fills a window covering `event_fraction` of each clip, see the module docstring) or
    "constant" (motion from the first frame to the last). Split "train", "val" and "test" use
    the seeds `split_seed(seed, split)`; labels are shuffled within each split.
    `benchmark_event_masks(splits.config, split)` gives each clip's true event window.
    """
    config = {
        "num_classes": num_classes,
        "clips_per_class": clips_per_class,
        "val_per_class": val_per_class,
        "test_per_class": test_per_class,
        "frames": frames,
        "height": height,
        "width": width,
        "camera_shake": camera_shake,
        "appearance_cue": appearance_cue,
        "noise": noise,
        "seed": seed,
        "timing": timing,
        "event_fraction": tuple(float(f) for f in event_fraction),
    }
    if classes is not None:
        names = _chosen_classes(classes)
        num_classes = config["num_classes"] = len(names)
        config["classes"] = list(names)
    else:
        names = _class_names(num_classes)
    motion_index = torch.tensor([MOTION_CLASSES.index(name) for name in names])
    if clips_per_class < 1:
        raise DataError(f"clips_per_class must be >= 1, got {clips_per_class}")
    for key in ("val_per_class", "test_per_class"):
        if config[key] < 0:
            raise DataError(f"{key} must be >= 0, got {config[key]}")
    per_class = dict(zip(_SPLITS, (clips_per_class, val_per_class, test_per_class), strict=True))
    sets = {}
    for split, count in per_class.items():
        g = torch.Generator().manual_seed(split_seed(seed, split))
        labels = _split_labels(num_classes, count, g)
        videos = generate_motion_clips(
            motion_index[labels],
            frames,
            height,
            width,
            camera_shake=camera_shake,
            appearance_cue=appearance_cue,
            noise=noise,
            generator=g,
            timing=timing,
            event_fraction=event_fraction,
        )
        sets[split] = ClipSet(videos, labels, list(names))
    return Splits(sets["train"], sets["val"], sets["test"], name="motion", config=config)


def benchmark_event_masks(config: Mapping[str, Any], split: str) -> torch.Tensor:
    """True event window (N, T) float, 1 where the object moves, of one benchmark split.

    `config` is the `Splits.config` of make_motion_benchmark; the rows follow the split's clip
    order. Only the labels' shuffle and the windows are redrawn (the clips are not rendered):
    they are the split generator's first draws.
    """
    _chosen_classes(config["classes"]) if "classes" in config else _class_names(
        config["num_classes"]
    )
    per_class = {
        "train": config["clips_per_class"],
        "val": config["val_per_class"],
        "test": config["test_per_class"],
    }
    g = torch.Generator().manual_seed(split_seed(config["seed"], split))
    labels = _split_labels(config["num_classes"], per_class[split], g)
    timing = config.get("timing", "constant")  # configs from before timing existed: constant
    fraction = tuple(config.get("event_fraction", DEFAULT_EVENT_FRACTION))
    _check_timing(timing, fraction, config["frames"])
    return _draw_event_windows(len(labels), config["frames"], timing, fraction, g).mask


def _split_labels(num_classes: int, per_class: int, g: torch.Generator) -> torch.Tensor:
    """`per_class` labels of each class, shuffled: a split generator's first draw."""
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    return labels[torch.randperm(len(labels), generator=g)]


def generate_motion_clips(
    labels: torch.Tensor, frames: int, height: int, width: int, **options: Any
) -> torch.Tensor:
    """Clips (N, 3, T, H, W) float32 in [0, 1] showing the motion class `labels[i]` each.

    Labels index MOTION_CLASSES; the other arguments are as in make_motion_benchmark, and all
    randomness comes from `generator`. `clutter=False` drops the background field and the
    distractors (a flat grey backdrop, for inspection). `chunk_size` clips are rendered at a
    time (default: about 4M pixel-frames); the result does not depend on it. The keyword
    options are render_motion_clips's (camera_shake, appearance_cue, noise, generator, ...).
    """
    return render_motion_clips(labels, frames, height, width, **options).videos


@dataclass
class RenderedClips:
    """Rendered clips with the object's coverage and when it moves.

    videos (N, 3, T, H, W); object_alpha (N, T, H, W), before noise; event_mask (N, T) float,
    1.0 on the frames that a class-motion step touches (the event window), else 0.0.
    """

    videos: torch.Tensor
    object_alpha: torch.Tensor
    event_mask: torch.Tensor


def render_motion_clips(
    labels: torch.Tensor,
    frames: int,
    height: int,
    width: int,
    *,
    camera_shake: float = 0.0,
    appearance_cue: float = 0.0,
    noise: float = 0.02,
    generator: torch.Generator,
    clutter: bool = True,
    chunk_size: int | None = None,
    timing: str = "window",
    event_fraction: tuple[float, float] = DEFAULT_EVENT_FRACTION,
) -> RenderedClips:
    """Like generate_motion_clips, also returning where the object is and when it moves."""
    labels = _check_labels(labels)
    _check_render_args(frames, height, width, camera_shake, appearance_cue, noise, chunk_size)
    _check_timing(timing, event_fraction, frames)
    n = len(labels)
    # Every random draw happens here, up front and in a fixed order, so that chunking and the
    # nuisance switches (clutter, shake, cue, noise level) never change the other draws. The
    # event windows come first (benchmark_event_masks relies on it); constant timing draws none,
    # so its clips are those of the first version of the benchmark.
    window = _draw_event_windows(n, frames, timing, tuple(event_fraction), generator)
    scene = _draw_scene(
        labels, frames, height, width, camera_shake, appearance_cue, window, generator
    )
    videos = torch.empty(n, 3, frames, height, width)
    if noise > 0 and n > 0:
        videos.normal_(0.0, noise, generator=generator)
    else:
        videos.zero_()
    alpha = torch.empty(n, frames, height, width)
    # Render in shape order so that each shape is a contiguous slice of a chunk; every clip is
    # rendered on its own terms, so neither the order nor the chunks change it.
    order = torch.argsort(scene.shape, stable=True)
    step = chunk_size or max(1, MAX_PIXELS_PER_CHUNK // (frames * height * width))
    for start in range(0, n, step):
        index = order[start : start + step]
        frame, obj_alpha = _render_scene(scene.rows(index), height, width, clutter)
        videos.index_add_(0, index, frame)
        alpha[index] = obj_alpha
    return RenderedClips(videos.clamp_(0.0, 1.0), alpha, window.mask)


# --- input checks -------------------------------------------------------------------------


def _chosen_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """Named motion classes: known, distinct, at least two (a lone string is one name)."""
    names = (classes,) if isinstance(classes, str) else tuple(classes)
    unknown = [name for name in names if name not in MOTION_CLASSES]
    if unknown:
        raise DataError(
            f"unknown motion class(es) {', '.join(map(repr, unknown))}: choose from "
            f"{', '.join(MOTION_CLASSES)}"
        )
    if len(set(names)) != len(names) or len(names) < 2:
        raise DataError(f"classes must be at least two distinct names, got {list(names)}")
    return names


def _class_names(num_classes: int) -> tuple[str, ...]:
    if not 2 <= num_classes <= len(MOTION_CLASSES):
        raise DataError(
            f"num_classes must be between 2 and {len(MOTION_CLASSES)} "
            f"(the motion classes available), got {num_classes}"
        )
    return MOTION_CLASSES[:num_classes]


def _check_labels(labels: torch.Tensor) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.is_floating_point() or labels.is_complex():
        raise DataError(
            f"labels must be a 1-D integer tensor, got dtype {labels.dtype} shape {tuple(labels.shape)}"
        )
    labels = labels.long()
    if len(labels) and (labels.min() < 0 or labels.max() >= len(MOTION_CLASSES)):
        raise DataError(
            f"labels must index MOTION_CLASSES (0..{len(MOTION_CLASSES) - 1}), "
            f"got values {int(labels.min())}..{int(labels.max())}"
        )
    return labels


def _check_render_args(
    frames: int,
    height: int,
    width: int,
    camera_shake: float,
    appearance_cue: float,
    noise: float,
    chunk_size: int | None,
) -> None:
    if frames < 2:
        raise DataError(f"frames must be >= 2 (motion needs two frames), got {frames}")
    if height < 8 or width < 8:
        raise DataError(f"height and width must be >= 8 pixels, got {height}x{width}")
    if not camera_shake >= 0:
        raise DataError(f"camera_shake must be >= 0 (pixels of jitter), got {camera_shake}")
    if not 0 <= appearance_cue <= 1:
        raise DataError(f"appearance_cue must be in [0, 1], got {appearance_cue}")
    if not noise >= 0:
        raise DataError(f"noise must be >= 0 (pixel noise std), got {noise}")
    if chunk_size is not None and chunk_size < 1:
        raise DataError(f"chunk_size must be >= 1 or None (automatic), got {chunk_size}")


def _check_timing(timing: str, event_fraction: tuple[float, float], frames: int) -> None:
    if timing not in TIMINGS:
        raise DataError(f"timing must be one of {', '.join(TIMINGS)}, got {timing!r}")
    if len(event_fraction) != 2 or not 0 < event_fraction[0] <= event_fraction[1] <= 1:
        raise DataError(
            "event_fraction must be (low, high) with 0 < low <= high <= 1 (the share of the "
            f"clip the motion window covers), got {tuple(event_fraction)}"
        )
    if timing == "window":
        _window_lengths(frames, event_fraction)  # refuses fractions no window length fits


# --- random scene draws -------------------------------------------------------------------


@dataclass
class _EventWindows:
    """When each clip's class motion happens: frames start..start+length-1 (N,) each, at what speed."""

    start: torch.Tensor
    length: torch.Tensor
    frames: int
    speedup: float  # motion speed inside the window, relative to constant timing

    @property
    def mask(self) -> torch.Tensor:
        """(N, T) float: 1.0 inside the window."""
        t = torch.arange(self.frames)[None, :]
        inside = (t >= self.start[:, None]) & (t < (self.start + self.length)[:, None])
        return inside.float()

    def clock(self) -> torch.Tensor:
        """(N, T) motion steps made by each frame: 0 before the window, frozen after it."""
        t = torch.arange(self.frames, dtype=torch.float32)[None, :]
        return torch.minimum((t - self.start[:, None]).clamp(min=0), self.length[:, None] - 1)


def _window_lengths(frames: int, fraction: tuple[float, float]) -> tuple[int, int]:
    """Shortest and longest window (frames, >= 2) covering `fraction` of a clip."""
    shortest = max(2, math.ceil(fraction[0] * frames - 1e-9))
    longest = min(frames, math.floor(fraction[1] * frames + 1e-9))
    if shortest > longest:
        raise DataError(
            f"no window of at least 2 frames covers {fraction[0]:.3g}-{fraction[1]:.3g} of a "
            f"{frames}-frame clip: widen event_fraction or use more frames"
        )
    return shortest, longest


def _draw_event_windows(
    n: int, frames: int, timing: str, fraction: tuple[float, float], g: torch.Generator
) -> _EventWindows:
    """Per-clip event windows: uniform length in range, then uniform start; constant: all frames."""
    if timing == "constant":
        return _EventWindows(
            torch.zeros(n, dtype=torch.long), torch.full((n,), frames), frames, 1.0
        )
    shortest, longest = _window_lengths(frames, fraction)
    length = shortest + (torch.rand(n, generator=g) * (longest - shortest + 1)).long()
    length = length.clamp(max=longest)
    start = (torch.rand(n, generator=g) * (frames - length + 1)).long()
    start = torch.minimum(start, frames - length)
    return _EventWindows(start, length, frames, EVENT_SPEEDUP)


@dataclass
class _Scene:
    """Per-clip scene description; positions (x, y) in pixels, per frame where it moves."""

    centre: torch.Tensor  # (N, T, 2) object centre, before wrapping
    angle: torch.Tensor  # (N, T) object orientation, radians (clockwise on screen)
    radius: torch.Tensor  # (N, T) object size, pixels
    shape: torch.Tensor  # (N,) index into SHAPES
    colour: torch.Tensor  # (N, 3)
    mark_colour: torch.Tensor  # (N, 3)
    checker: torch.Tensor  # (N,) 1.0 checker texture, 0.0 stripes
    texture_freq: torch.Tensor  # (N,) cycles per object radius
    texture_phase: torch.Tensor  # (N, 2)
    texture_depth: torch.Tensor  # (N,)
    blob_centre: torch.Tensor  # (N, D, T, 2)
    blob_sigma: torch.Tensor  # (N, D)
    blob_colour: torch.Tensor  # (N, D, 3)
    blob_weight: torch.Tensor  # (N, D) opacity, 0 for unused slots
    background_base: torch.Tensor  # (N, 3)
    background_freq: torch.Tensor  # (N, K, 2) integer cycles per frame width / height
    background_amp: torch.Tensor  # (N, K, 3)
    background_phase: torch.Tensor  # (N, K)
    background_offset: torch.Tensor  # (N, T, 2) drift plus camera shake

    def rows(self, index: slice | torch.Tensor) -> _Scene:
        return _Scene(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _uniform(g: torch.Generator, shape: tuple[int, ...], lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Hue, saturation, value in [0, 1] (same shapes) to RGB (..., 3)."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + 6.0 * h[..., None]) % 6.0
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return v[..., None] - v[..., None] * s[..., None] * ramp


def _class_palette() -> torch.Tensor:
    """One saturated colour per motion class, hues evenly spaced: the appearance cue."""
    hue = torch.arange(len(MOTION_CLASSES), dtype=torch.float32) / len(MOTION_CLASSES)
    ones = torch.ones_like(hue)
    return _hsv_to_rgb(hue, ones, ones)


def _unit(angle: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1)


def _is(labels: torch.Tensor, *names: str) -> torch.Tensor:
    """1.0 where the label is one of `names`, else 0.0."""
    wanted = torch.tensor([MOTION_CLASSES.index(name) for name in names])
    return torch.isin(labels, wanted).float()


def _object_tracks(
    labels: torch.Tensor,
    window: _EventWindows,
    scale: float,
    size: torch.Tensor,
    g: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centre (N, T, 2), angle (N, T) and radius (N, T) of the object in every frame.

    All parameters are drawn for every clip and switched off by class, so the draws do not
    depend on the labels' mix. Angles grow clockwise on screen (image y points down). Each
    path is evaluated at the window's clock: still outside the event, sped up inside it.
    """
    n = len(labels)
    steps = window.clock()  # (N, T), unscaled: the oscillation keeps its period in frames
    t = steps * window.speedup  # (N, T) constant-timing frames of travel
    start = torch.rand(n, 2, generator=g) * size  # uniform on the torus
    # translation: one of four directions, angle 0 = right, pi/2 = down (y grows downwards)
    heading = (
        _is(labels, "translate_left") * math.pi
        + _is(labels, "translate_up") * (-math.pi / 2)
        + _is(labels, "translate_down") * (math.pi / 2)
    )
    moving = _is(labels, "translate_right", "translate_left", "translate_up", "translate_down")
    speed = _uniform(g, (n,), *TRANSLATE_SPEED) * scale * moving
    translation = (speed[:, None] * t)[..., None] * _unit(heading)[:, None, :]
    # circling: centre moves on a circle at a constant arc speed; clockwise = growing angle
    circle_dir = _is(labels, "circle_cw") - _is(labels, "circle_ccw")
    circle_r = _uniform(g, (n,), *CIRCLE_RADIUS) * scale
    circle_w = _uniform(g, (n,), *CIRCLE_SPEED) * scale / circle_r
    circle_phase = _uniform(g, (n,), 0.0, 2 * math.pi)
    circle_angle = circle_phase[:, None] + circle_dir[:, None] * circle_w[:, None] * t
    circling = (circle_dir.abs() * circle_r)[:, None, None] * (
        _unit(circle_angle) - _unit(circle_phase)[:, None, :]
    )
    # oscillation: sinusoidal swing along x or y
    amplitude = _uniform(g, (n,), *OSCILLATION_AMPLITUDE) * scale * window.speedup
    period = _uniform(g, (n,), *OSCILLATION_PERIOD)
    osc_phase = _uniform(g, (n,), 0.0, 2 * math.pi)
    swing = amplitude[:, None] * torch.sin(
        2 * math.pi * steps / period[:, None] + osc_phase[:, None]
    )
    axis = torch.stack(
        [_is(labels, "oscillate_horizontal"), _is(labels, "oscillate_vertical")], dim=-1
    )
    oscillation = swing[..., None] * axis[:, None, :]
    centre = start[:, None, :] + translation + circling + oscillation
    # rotation
    spin_dir = _is(labels, "rotate_cw") - _is(labels, "rotate_ccw")
    spin = torch.deg2rad(_uniform(g, (n,), *SPIN_DEGREES)) * spin_dir
    angle = _uniform(g, (n,), 0.0, 2 * math.pi)[:, None] + spin[:, None] * t
    # size: log-uniform for everyone; zoom is a sawtooth in log-size, uniform at every frame
    lo, hi = (math.log(r * scale) for r in RADIUS_RANGE)
    zoom_dir = _is(labels, "zoom_in") - _is(labels, "zoom_out")
    zoom = torch.log1p(_uniform(g, (n,), *ZOOM_RATE)) * zoom_dir
    log_offset = _uniform(g, (n,), 0.0, hi - lo)
    radius = torch.exp(lo + torch.remainder(log_offset[:, None] + zoom[:, None] * t, hi - lo))
    return centre, angle, radius


def _draw_scene(
    labels: torch.Tensor,
    frames: int,
    height: int,
    width: int,
    camera_shake: float,
    appearance_cue: float,
    window: _EventWindows,
    g: torch.Generator,
) -> _Scene:
    n, d, k = len(labels), MAX_DISTRACTORS, BACKGROUND_MODES
    scale = min(height, width) / REFERENCE_SIZE
    size = torch.tensor([float(width), float(height)])
    t = torch.arange(frames, dtype=torch.float32)[None, :, None]  # (1, T, 1)

    centre, angle, radius = _object_tracks(labels, window, scale, size, g)
    shape = torch.randint(len(SHAPES), (n,), generator=g)
    # object colour: random hue, fairly saturated and bright; the cue mixes in the class colour
    colour = _hsv_to_rgb(
        torch.rand(n, generator=g), _uniform(g, (n,), 0.5, 1.0), _uniform(g, (n,), 0.55, 1.0)
    )
    colour = torch.lerp(colour, _class_palette()[labels], appearance_cue)
    luminance = colour @ torch.tensor([0.299, 0.587, 0.114])
    mark_colour = torch.where(luminance[:, None] > 0.5, 0.08, 0.95).expand(n, 3)
    checker = (torch.rand(n, generator=g) < 0.5).float()
    texture_freq = _uniform(g, (n,), *TEXTURE_FREQUENCY)
    texture_phase = _uniform(g, (n, 2), 0.0, 2 * math.pi)
    texture_depth = _uniform(g, (n,), *TEXTURE_DEPTH)

    # distractors: 1-3 Gaussian blobs drifting in straight lines, independent of the class
    count = torch.randint(1, d + 1, (n,), generator=g)
    blob_start = torch.rand(n, d, 2, generator=g) * size
    blob_speed = _uniform(g, (n, d), *DISTRACTOR_SPEED) * scale
    blob_heading = _uniform(g, (n, d), 0.0, 2 * math.pi)
    blob_velocity = blob_speed[..., None] * _unit(blob_heading)
    blob_centre = blob_start[:, :, None, :] + blob_velocity[:, :, None, :] * t[:, None]
    blob_sigma = _uniform(g, (n, d), *DISTRACTOR_SIGMA) * scale
    blob_colour = torch.rand(n, d, 3, generator=g)
    active = (torch.arange(d)[None, :] < count[:, None]).float()
    blob_weight = _uniform(g, (n, d), *DISTRACTOR_OPACITY) * active

    # background: grey-ish base plus a few low-frequency colour waves, drifting as one sheet
    background_base = _uniform(g, (n, 1), 0.3, 0.7) + _uniform(g, (n, 3), -0.08, 0.08)
    background_freq = torch.randint(-2, 3, (n, k, 2), generator=g).float()
    background_freq[..., 0] += (background_freq == 0).all(dim=-1).float()  # no constant mode
    background_amp = _uniform(g, (n, k, 3), -1.0, 1.0) * BACKGROUND_WAVE_AMPLITUDE
    background_phase = _uniform(g, (n, k), 0.0, 2 * math.pi)
    drift = _uniform(g, (n,), *BACKGROUND_DRIFT) * scale
    drift_velocity = drift[:, None] * _unit(_uniform(g, (n,), 0.0, 2 * math.pi))
    # camera shake: i.i.d. per-frame offset of the whole frame, drawn even when it is 0
    shake = torch.randn(n, frames, 2, generator=g) * (camera_shake * scale)
    background_offset = drift_velocity[:, None, :] * t + shake

    return _Scene(
        centre=centre + shake,
        angle=angle,
        radius=radius,
        shape=shape,
        colour=colour,
        mark_colour=mark_colour,
        checker=checker,
        texture_freq=texture_freq,
        texture_phase=texture_phase,
        texture_depth=texture_depth,
        blob_centre=blob_centre + shake[:, None],
        blob_sigma=blob_sigma,
        blob_colour=blob_colour,
        blob_weight=blob_weight,
        background_base=background_base,
        background_freq=background_freq,
        background_amp=background_amp,
        background_phase=background_phase,
        background_offset=background_offset,
    )


# --- rendering ----------------------------------------------------------------------------


def _pixel_centres(length: int) -> torch.Tensor:
    return torch.arange(length, dtype=torch.float32) + 0.5


def _wrapped_offset(coords: torch.Tensor, centre: torch.Tensor, length: int) -> torch.Tensor:
    """Signed torus distance coords - centre in [-length/2, length/2)."""
    return torch.remainder(coords - centre + length / 2, length) - length / 2


def _render_background(scene: _Scene, height: int, width: int) -> torch.Tensor:
    """Base colour plus drifting plane waves (N, 3, T, H, W), evaluated as one matrix product."""
    two_pi = 2 * math.pi
    off = scene.background_offset  # (N, T, 2)
    fx = scene.background_freq[:, None, :, 0, None]  # (N, 1, K, 1)
    fy = scene.background_freq[:, None, :, 1, None]
    phase = scene.background_phase[:, None, :, None]
    ax = two_pi * fx * (_pixel_centres(width) - off[..., 0, None, None]) / width + phase
    by = two_pi * fy * (_pixel_centres(height) - off[..., 1, None, None]) / height
    # cos(ax + by) = cos(ax) cos(by) - sin(ax) sin(by), so each (clip, frame, channel) image is a
    # rank-(2K+1) product; the extra rank carries the constant base colour.
    ones_h = torch.ones_like(by[:, :, :1])
    ones_w = torch.ones_like(ax[:, :, :1])
    rows = torch.cat([torch.cos(by), -torch.sin(by), ones_h], dim=2)  # (N, T, 2K+1, H)
    cols = torch.cat([torch.cos(ax), torch.sin(ax), ones_w], dim=2)  # (N, T, 2K+1, W)
    amp = scene.background_amp
    weights = torch.cat([amp, amp, scene.background_base[:, None, :]], dim=1)  # (N, 2K+1, 3)
    weighted = rows[:, None] * weights.permute(0, 2, 1)[:, :, None, :, None]  # (N, 3, T, 2K+1, H)
    return weighted.transpose(-1, -2) @ cols[:, None]  # (N, 3, T, H, W)


def _composite_blobs(frame: torch.Tensor, scene: _Scene, height: int, width: int) -> None:
    """Paint the distractor blobs over `frame` (N, 3, T, H, W) in place."""
    xs, ys = _pixel_centres(width), _pixel_centres(height)
    for slot in range(scene.blob_weight.shape[1]):
        centre = scene.blob_centre[:, slot]  # (N, T, 2)
        inv = -0.5 / scene.blob_sigma[:, slot, None, None] ** 2  # (N, 1, 1)
        gx = torch.exp(inv * _wrapped_offset(xs, centre[..., 0, None], width) ** 2)  # (N, T, W)
        gy = torch.exp(inv * _wrapped_offset(ys, centre[..., 1, None], height) ** 2)
        gy = gy * scene.blob_weight[:, slot, None, None]
        alpha = gy[..., :, None] * gx[..., None, :]  # (N, T, H, W), separable Gaussian
        paint = scene.blob_colour[:, slot, :, None, None, None]  # (N, 3, 1, 1, 1)
        frame.lerp_(paint, alpha[:, None])


def _box_sdf(u: torch.Tensor, v: torch.Tensor, half_u: float, half_v: float) -> torch.Tensor:
    # exact inside and on the boundary, a lower bound outside: enough for edges and outlines
    return torch.maximum(u.abs() - half_u, v.abs() - half_v)


def _disc_sdf(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.hypot(u, v).sub_(1.0)


def _square_sdf(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return _box_sdf(u, v, 0.82, 0.82)


def _triangle_sdf(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Equilateral triangle with a vertex on +u: the intersection of three half-planes."""
    inradius = 0.6
    c, s = 0.5, math.sqrt(3.0) / 2
    slanted = (c * u - inradius).add_(s * v.abs())
    return torch.maximum(-u - inradius, slanted)


def _cross_sdf(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    au, av = u.abs(), v.abs()
    arm_u = torch.maximum(au - 1.0, av - 0.38)
    arm_v = torch.maximum(au - 0.38, av - 1.0)
    return torch.minimum(arm_u, arm_v)


def _ring_sdf(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.hypot(u, v).sub_(0.72).abs_().sub_(0.28)


_SDFS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "disc": _disc_sdf,
    "square": _square_sdf,
    "triangle": _triangle_sdf,
    "cross": _cross_sdf,
    "ring": _ring_sdf,
}


def _shape_sdf(shape: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance (N, T, H, W) in object radii, each clip its own shape.

    Clips must come sorted by shape, so that each shape's clips are one contiguous slice.
    """
    sdf = torch.empty_like(u)
    kinds, counts = torch.unique_consecutive(shape, return_counts=True)
    start = 0
    for kind, count in zip(kinds.tolist(), counts.tolist(), strict=True):
        rows = slice(start, start + count)
        sdf[rows] = _SDFS[SHAPES[kind]](u[rows], v[rows])
        start += count
    return sdf


def _paint_objects(frame: torch.Tensor, scene: _Scene) -> torch.Tensor:
    """Paint each clip's object over `frame` (N, 3, T, H, W); returns its alpha (N, T, H, W)."""
    _, _, _, height, width = frame.shape
    dx = _wrapped_offset(_pixel_centres(width), scene.centre[..., 0, None], width)[:, :, None, :]
    dy = _wrapped_offset(_pixel_centres(height), scene.centre[..., 1, None], height)[..., None]
    radius = scene.radius[..., None, None]  # (N, T, 1, 1)
    cos_r = torch.cos(scene.angle)[..., None, None] / radius
    sin_r = torch.sin(scene.angle)[..., None, None] / radius
    u = (cos_r * dx) + (sin_r * dy)  # object frame: rotated, in units of the object radius
    v = (cos_r * dy) - (sin_r * dx)
    sdf_px = _shape_sdf(scene.shape, u, v).mul_(radius)
    alpha = (0.5 - sdf_px).clamp_(0.0, 1.0)  # one-pixel anti-aliased edge
    # texture in object coordinates, so it turns, scales and travels with the object: stripes
    # along v, times stripes along u for checker clips (their u frequency is 0 for stripes)
    freq = 2 * math.pi * scene.texture_freq[:, None, None, None]
    phase = scene.texture_phase[:, :, None, None, None]
    checker = scene.checker[:, None, None, None]
    pattern = torch.addcmul(phase[:, 1], freq, v).cos_()
    pattern.mul_(torch.addcmul(phase[:, 0] * checker, freq * checker, u).cos_())
    depth = scene.texture_depth[:, None, None, None]
    shade = torch.addcmul(1.0 - 0.5 * depth, pattern, depth, value=-0.5)
    # a dark outline separates the object from the clutter
    edge = sdf_px.add_(1.5).clamp_(0.0, 1.0)
    shade.addcmul_(shade, edge, value=-0.6)
    # the off-centre mark breaks every symmetry, so each rotation is visible
    mark = torch.hypot(u.sub_(MARK_OFFSET), v).mul_(radius)
    mark = torch.sub(0.5 + MARK_RADIUS * radius, mark).clamp_(0.0, 1.0)
    body = scene.colour[:, :, None, None, None] * shade[:, None]
    body.lerp_(scene.mark_colour[:, :, None, None, None], mark[:, None])
    frame.lerp_(body, alpha[:, None])
    return alpha


def _render_scene(
    scene: _Scene, height: int, width: int, clutter: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise-free frames (N, 3, T, H, W) and the object's alpha (N, T, H, W).

    Clips must come sorted by shape (see `_shape_sdf`).
    """
    n, frames = scene.angle.shape
    if clutter:
        frame = _render_background(scene, height, width)
        _composite_blobs(frame, scene, height, width)
    else:
        frame = torch.full((n, 3, frames, height, width), 0.5)
    alpha = _paint_objects(frame, scene)
    return frame, alpha

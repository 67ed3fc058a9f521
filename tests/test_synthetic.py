"""The built-in motion benchmark: shapes, determinism, speed, and that the class lives in motion."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import small_benchmark

from tsgd_core.data.clips import DataError
from tsgd_core.data.synthetic import (
    MOTION_CLASSES,
    benchmark_event_masks,
    describe_motion_classes,
    generate_motion_clips,
    make_motion_benchmark,
    render_motion_clips,
    split_seed,
)
from tsgd_core.training.saliency import SaliencyConfig, frame_weights, window_correlation


def labels_for(classes: list[int], per_class: int) -> torch.Tensor:
    return torch.tensor(classes).repeat_interleave(per_class)


def clean_render(
    classes: list[int], per_class: int, frames: int = 8, seed: int = 0, timing: str = "constant"
):
    """Object alone on a flat backdrop, no noise: its motion can be measured exactly.

    Constant timing by default: every step of the clip is a motion step.
    """
    g = torch.Generator().manual_seed(seed)
    labels = labels_for(classes, per_class)
    return labels, render_motion_clips(
        labels, frames, 32, 32, noise=0.0, generator=g, clutter=False, timing=timing
    )


def torus_centroid(alpha: torch.Tensor) -> torch.Tensor:
    """Centre of mass (x, y) of alpha (N, T, H, W) on the torus, as circular means: (N, T, 2)."""
    _, _, height, width = alpha.shape
    coords = []
    for axis, length in ((-1, width), (-2, height)):
        mass = alpha.sum(dim=-1 if axis == -2 else -2)  # (N, T, length)
        angle = 2 * math.pi * (torch.arange(length) + 0.5) / length
        mean_angle = torch.atan2((mass * angle.sin()).sum(-1), (mass * angle.cos()).sum(-1))
        coords.append(torch.remainder(mean_angle * length / (2 * math.pi), length))
    return torch.stack(coords, dim=-1)


def torus_steps(centre: torch.Tensor, size: float = 32.0) -> torch.Tensor:
    """Frame-to-frame displacement (N, T-1, 2), unwrapped to [-size/2, size/2)."""
    return torch.remainder(centre.diff(dim=1) + size / 2, size) - size / 2


def colour_histogram(frames: torch.Tensor, bins: int = 6) -> torch.Tensor:
    """Normalised joint RGB histogram (N, bins**3) of single frames (N, 3, H, W)."""
    q = (frames.clamp(0, 1) * bins).long().clamp(max=bins - 1)
    index = ((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]).flatten(1)
    hist = torch.zeros(len(frames), bins**3).scatter_add_(1, index, torch.ones(index.shape))
    return hist / hist.sum(1, keepdim=True)


def single_frame_probe_accuracy(appearance_cue: float, seed: int = 0) -> float:
    """Held-out accuracy of a ridge classifier on single-frame colour histograms.

    Trained on every frame of the train clips (each frame its own sample), tested on frame 0 of
    the test clips: it sees one frame at a time, so it can use appearance but not motion.
    """
    splits = small_benchmark(10, (30, 1, 20), frames=4, appearance_cue=appearance_cue, seed=seed)
    train = splits.train.videos
    n, c, t, h, w = train.shape
    x = colour_histogram(train.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w))
    y = splits.train.labels.repeat_interleave(t)
    x_test = colour_histogram(splits.test.videos[:, :, 0])
    mean, std = x.mean(0), x.std(0) + 1e-3

    def design(features: torch.Tensor) -> torch.Tensor:
        z = (features - mean) / std
        return torch.cat([z, torch.ones(len(z), 1)], dim=1).double()

    a = design(x)
    targets = torch.nn.functional.one_hot(y, 10).double()
    ridge = a.T @ a + len(a) * torch.eye(a.shape[1], dtype=torch.double)
    weights = torch.linalg.solve(ridge, a.T @ targets)
    predicted = (design(x_test) @ weights).argmax(1)
    return (predicted == splits.test.labels).float().mean().item()


def test_classes_and_descriptions():
    assert len(MOTION_CLASSES) >= 10
    assert len(set(MOTION_CLASSES)) == len(MOTION_CLASSES)
    described = describe_motion_classes(10)
    assert list(described) == list(MOTION_CLASSES[:10])
    assert all(isinstance(text, str) and len(text) > 10 for text in described.values())
    assert list(describe_motion_classes()) == list(MOTION_CLASSES)


def test_benchmark_shapes_range_balance_and_config():
    splits = small_benchmark(4, (3, 2, 1), frames=5, size=(16, 24), seed=7)
    assert splits.name == "motion"
    assert splits.class_names == list(MOTION_CLASSES[:4])
    for clips, per_class in ((splits.train, 3), (splits.val, 2), (splits.test, 1)):
        assert clips.videos.shape == (4 * per_class, 3, 5, 16, 24)
        assert clips.videos.dtype == torch.float32
        assert clips.labels.dtype == torch.int64
        assert 0.0 <= clips.videos.min() and clips.videos.max() <= 1.0
        assert clips.class_counts().tolist() == [per_class] * 4
    assert splits.config == {
        "num_classes": 4,
        "clips_per_class": 3,
        "val_per_class": 2,
        "test_per_class": 1,
        "frames": 5,
        "height": 16,
        "width": 24,
        "camera_shake": 0.0,
        "appearance_cue": 0.0,
        "noise": 0.02,
        "seed": 7,
        "timing": "window",
        "event_fraction": (1 / 3, 2 / 3),
    }


def test_splits_come_from_disjoint_seeds():
    seeds = [split_seed(3, split) for split in ("train", "val", "test")]
    assert len(set(seeds)) == 3
    assert split_seed(3, "train") != split_seed(4, "train")
    splits = make_motion_benchmark(
        num_classes=3, clips_per_class=4, val_per_class=4, test_per_class=4, frames=4, seed=3
    )
    train = splits.train.videos.flatten(1)
    test = splits.test.videos.flatten(1)
    # no test clip is (close to) any train clip
    assert torch.cdist(test, train).min() > 1.0


def test_same_seed_same_clips_other_seed_other_clips():
    def make(seed: int):
        return make_motion_benchmark(
            num_classes=3, clips_per_class=2, val_per_class=1, test_per_class=1, frames=4, seed=seed
        )

    a, b, c = make(11), make(11), make(12)
    assert torch.equal(a.train.videos, b.train.videos)
    assert torch.equal(a.train.labels, b.train.labels)
    assert torch.equal(a.test.videos, b.test.videos)
    assert not torch.equal(a.train.videos, c.train.videos)
    assert (a.train.videos - c.train.videos).abs().mean() > 0.05


def test_chunking_does_not_change_the_clips():
    labels = torch.arange(12).repeat(3)

    def run(chunk_size: int | None) -> torch.Tensor:
        g = torch.Generator().manual_seed(5)
        return generate_motion_clips(
            labels,
            6,
            20,
            20,
            camera_shake=0.5,
            appearance_cue=0.3,
            generator=g,
            chunk_size=chunk_size,
        )

    whole = run(None)
    assert torch.equal(whole, run(5))
    assert torch.equal(whole, run(7))


def test_sixteen_frame_clips_render_at_the_asked_shape_and_range():
    # speed is measured by scripts/benchmark_render.py (a recorded figure, not an assert)
    labels = torch.arange(40) % 10
    g = torch.Generator().manual_seed(0)
    videos = generate_motion_clips(labels, 16, 32, 32, generator=g)
    assert videos.shape == (40, 3, 16, 32, 32)
    assert bool(torch.isfinite(videos).all())
    assert float(videos.min()) >= 0.0 and float(videos.max()) <= 1.0


def test_single_frames_carry_no_class_unless_appearance_cue_is_on():
    chance = 0.1
    without_cue = single_frame_probe_accuracy(appearance_cue=0.0)
    with_cue = single_frame_probe_accuracy(appearance_cue=1.0)
    assert without_cue < chance + 0.1, without_cue
    assert with_cue > 0.8, with_cue


@pytest.mark.parametrize("timing", ["constant", "window"])
def test_single_frame_object_statistics_do_not_depend_on_the_class(timing):
    # position, size and coverage of the object in any one frame look alike for every class
    labels, rendered = clean_render(list(range(12)), 60, frames=8, timing=timing)
    alpha = rendered.object_alpha
    log_area = alpha.sum((2, 3)).log()  # (N, T)
    for frame in (0, 3, 7):
        per_class = torch.stack([log_area[labels == c, frame].mean() for c in range(12)])
        standard_error = log_area[:, frame].std() / math.sqrt(60)
        assert (per_class - log_area[:, frame].mean()).abs().max() < 4 * standard_error
        centre_x = torus_centroid(alpha)[:, frame, 0]
        for c in range(12):
            # circular position spread: uniform on the torus for every class
            angle = 2 * math.pi * centre_x[labels == c] / 32
            resultant = torch.hypot(angle.cos().mean(), angle.sin().mean())
            assert resultant < 0.45


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("translate_right", (1.0, 0.0)),
        ("translate_left", (-1.0, 0.0)),
        ("translate_up", (0.0, -1.0)),
        ("translate_down", (0.0, 1.0)),
    ],
)
def test_translation_moves_the_object_the_named_way(name, direction):
    labels, rendered = clean_render([MOTION_CLASSES.index(name)], 20)
    steps = torus_steps(torus_centroid(rendered.object_alpha))  # (N, T-1, 2)
    along = steps @ torch.tensor(direction)
    across = steps @ torch.tensor([direction[1], -direction[0]])
    assert along.min() > 1.0  # every step goes the named way by at least a pixel
    assert along.mean() > 1.5
    assert across.abs().max() < 0.2


def test_circling_turns_the_named_way_and_rotation_and_zoom_stay_in_place():
    names = ["circle_cw", "circle_ccw", "rotate_cw", "rotate_ccw", "zoom_in", "zoom_out"]
    labels, rendered = clean_render([MOTION_CLASSES.index(n) for n in names], 20)
    steps = torus_steps(torus_centroid(rendered.object_alpha))
    # z of the cross product of consecutive steps: > 0 is clockwise on screen (y points down)
    turn = steps[:, :-1, 0] * steps[:, 1:, 1] - steps[:, :-1, 1] * steps[:, 1:, 0]
    speed = steps.norm(dim=-1).mean(1)
    for name, sign in (("circle_cw", 1), ("circle_ccw", -1)):
        rows = labels == MOTION_CLASSES.index(name)
        assert (sign * turn[rows] > 0).all()
        assert speed[rows].min() > 1.0
    for name in ("rotate_cw", "rotate_ccw", "zoom_in", "zoom_out"):
        assert speed[labels == MOTION_CLASSES.index(name)].max() < 0.3


def test_zoom_grows_or_shrinks_the_object():
    labels, rendered = clean_render([MOTION_CLASSES.index(n) for n in ("zoom_in", "zoom_out")], 20)
    log_area = rendered.object_alpha.sum((2, 3)).log()
    growth = log_area.diff(dim=1)  # per step; a sawtooth reset is one big step the other way
    zoom_in = growth[labels == MOTION_CLASSES.index("zoom_in")]
    zoom_out = growth[labels == MOTION_CLASSES.index("zoom_out")]
    assert (zoom_in > 0).float().mean() > 0.75 and zoom_in.median() > 0.15
    assert (zoom_out < 0).float().mean() > 0.75 and zoom_out.median() < -0.15


def rotation_rate(video: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Least-squares angular velocity (rad / frame, > 0 clockwise on screen) per clip.

    Brightness constancy I_t = -grad(I) . v with the rigid rotation field v = w * (-dy, dx)
    about the object's centroid, solved for w over all frames.
    """
    gray = video.mean(1)  # (N, T, H, W)
    gx = (gray.roll(-1, -1) - gray.roll(1, -1)) / 2
    gy = (gray.roll(-1, -2) - gray.roll(1, -2)) / 2
    centre = torus_centroid(alpha)  # (N, T, 2)
    pixels = torch.arange(32) + 0.5
    dx = torch.remainder(pixels - centre[..., 0, None] + 16, 32) - 16  # (N, T, W)
    dy = torch.remainder(pixels - centre[..., 1, None] + 16, 32) - 16  # (N, T, H)
    basis = -gx * dy[..., :, None] + gy * dx[..., None, :]
    basis, temporal = (basis[:, :-1] + basis[:, 1:]) / 2, gray.diff(dim=1)
    return -(temporal * basis).sum((1, 2, 3)) / (basis**2).sum((1, 2, 3))


def test_rotation_turns_the_named_way():
    names = ("rotate_cw", "rotate_ccw")
    labels, rendered = clean_render([MOTION_CLASSES.index(n) for n in names], 20)
    rate = rotation_rate(rendered.videos, rendered.object_alpha)
    assert (rate[labels == MOTION_CLASSES.index("rotate_cw")] > 0).float().mean() > 0.9
    assert (rate[labels == MOTION_CLASSES.index("rotate_ccw")] < 0).float().mean() > 0.9


def test_camera_shake_makes_the_background_move():
    labels = torch.arange(10).repeat(4)

    def background_change(shake: float) -> float:
        g = torch.Generator().manual_seed(2)
        rendered = render_motion_clips(
            labels, 8, 32, 32, camera_shake=shake, noise=0.0, generator=g
        )
        still = (rendered.object_alpha[:, 1:] == 0) & (rendered.object_alpha[:, :-1] == 0)
        change = rendered.videos.diff(dim=2).abs().mean(1)  # (N, T-1, H, W)
        return change[still].mean().item()

    steady, shaken = background_change(0.0), background_change(1.5)
    assert shaken > 2.5 * steady, (steady, shaken)


def test_appearance_cue_and_shake_leave_the_motion_alone():
    # the nuisance switches change pixels, not the drawn scene: same seed, same object path
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    labels = torch.arange(10)
    plain = render_motion_clips(labels, 6, 32, 32, noise=0.0, generator=g1)
    cued = render_motion_clips(labels, 6, 32, 32, noise=0.0, appearance_cue=1.0, generator=g2)
    assert torch.equal(plain.object_alpha, cued.object_alpha)
    assert not torch.equal(plain.videos, cued.videos)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_classes": 13},
        {"num_classes": 1},
        {"clips_per_class": 0},
        {"test_per_class": -1},
        {"frames": 1},
        {"height": 4},
        {"camera_shake": -0.5},
        {"appearance_cue": 1.5},
        {"noise": -0.1},
    ],
)
def test_bad_benchmark_arguments_are_refused(kwargs):
    with pytest.raises(DataError):
        make_motion_benchmark(
            **{"clips_per_class": 1, "val_per_class": 1, "test_per_class": 1, **kwargs}
        )


# --- timing: the class motion happens in a window ---------------------------------------------


def test_event_windows_cover_the_asked_fraction_and_vary():
    labels = torch.arange(10).repeat(30)
    g = torch.Generator().manual_seed(0)
    mask = render_motion_clips(labels, 8, 16, 16, generator=g).event_mask
    assert mask.shape == (300, 8) and mask.dtype == torch.float32
    lengths = mask.sum(1)
    # 1/3-2/3 of 8 frames: 3 to 5 frames, all of them drawn
    assert set(lengths.tolist()) == {3.0, 4.0, 5.0}
    # one run of consecutive frames per clip
    assert (mask.diff(dim=1).abs().sum(1) <= 2).all()
    starts = mask.argmax(1)
    assert set(starts.tolist()) == set(range(6))  # every start that fits occurs
    g = torch.Generator().manual_seed(0)
    wide = render_motion_clips(labels, 8, 16, 16, generator=g, event_fraction=(0.7, 1.0))
    assert set(wide.event_mask.sum(1).tolist()) <= {6.0, 7.0, 8.0}
    g = torch.Generator().manual_seed(0)
    constant = render_motion_clips(labels, 8, 16, 16, generator=g, timing="constant")
    assert (constant.event_mask == 1).all()


def test_object_moves_inside_its_window_and_rests_outside():
    classes = list(range(10))
    labels, rendered = clean_render(classes, 20, timing="window")
    alpha = rendered.object_alpha
    change = rendered.videos.diff(dim=2).abs().sum((1, 3, 4))  # (N, T-1), flat backdrop
    mask = rendered.event_mask
    step_in_window = (mask[:, 1:] * mask[:, :-1]).bool()  # both frames inside the window
    assert (change[~step_in_window] < 1e-4).all()  # outside: the object holds its pose exactly
    # inside: every step visibly moves it (zoom's sawtooth reset and spins included)
    assert change[step_in_window].min() > 2.0
    # the window's motion is sped up: a translation step is ~EVENT_SPEEDUP times a constant one
    translate = labels < 4
    steps = torus_steps(torus_centroid(alpha)).norm(dim=-1)
    assert steps[translate][step_in_window[translate]].mean() > 2 * 1.5


def test_window_timing_changes_when_not_what_moves():
    # the same translation, with either timing, goes the same way
    name = "translate_right"
    _, rendered = clean_render([MOTION_CLASSES.index(name)], 20, timing="window")
    steps = torus_steps(torus_centroid(rendered.object_alpha))[..., 0]  # x steps
    inside = (rendered.event_mask[:, 1:] * rendered.event_mask[:, :-1]).bool()
    assert steps[inside].min() > 2.0
    assert steps[~inside].abs().max() < 1e-3


def test_benchmark_event_masks_match_the_rendered_windows():
    splits = make_motion_benchmark(
        num_classes=5, clips_per_class=4, val_per_class=2, test_per_class=3, frames=8, seed=9
    )
    for split, per_class in (("train", 4), ("test", 3)):
        g = torch.Generator().manual_seed(split_seed(9, split))
        labels = getattr(splits, split).labels
        torch.randperm(5 * per_class, generator=g)  # the split's label shuffle
        rendered = render_motion_clips(labels, 8, 32, 32, generator=g)
        torch.testing.assert_close(rendered.videos, getattr(splits, split).videos)
        assert torch.equal(benchmark_event_masks(splits.config, split), rendered.event_mask)
    constant = make_motion_benchmark(
        num_classes=5, clips_per_class=2, val_per_class=1, test_per_class=1, timing="constant"
    )
    assert (benchmark_event_masks(constant.config, "val") == 1).all()


@pytest.fixture(scope="module")
def window_and_constant_clips():
    labels = torch.arange(10).repeat(12)
    out = {}
    for timing in ("window", "constant"):
        g = torch.Generator().manual_seed(3)
        out[timing] = render_motion_clips(labels, 8, 32, 32, generator=g, timing=timing)
    return out


def test_frame_weights_find_the_event_window(window_and_constant_clips):
    rendered = window_and_constant_clips["window"]
    mask = rendered.event_mask
    shuffled = mask[torch.randperm(len(mask), generator=torch.Generator().manual_seed(0))]
    weights = frame_weights(rendered.videos)
    found = window_correlation(weights, mask).nanmean()
    control = window_correlation(weights, shuffled).nanmean()
    # measured 0.90 and 0.17 (the control is above 0: windows favour the middle frames)
    assert found > 0.75, found
    assert control < 0.35, control
    # renormalising across frames widens the range without changing the ranking
    spread = weights.amax(1) - weights.amin(1)
    renormalised = frame_weights(rendered.videos, SaliencyConfig(frame_norm="max"))
    torch.testing.assert_close(window_correlation(renormalised, mask).nanmean(), found)
    assert (renormalised.amax(1) - renormalised.amin(1)).mean() > 4 * spread.mean()


def test_constant_timing_leaves_frame_weights_flat(window_and_constant_clips):
    # why timing="window" exists: when every frame moves alike, w_t has nothing to find
    def spread(timing: str) -> float:
        weights = frame_weights(window_and_constant_clips[timing].videos)
        return (weights.amax(1) - weights.amin(1)).mean().item()

    assert spread("constant") < 0.03, spread("constant")
    assert spread("window") > 2 * spread("constant")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timing": "sometimes"},
        {"event_fraction": (0.0, 0.5)},
        {"event_fraction": (0.6, 0.4)},
        {"event_fraction": (0.5, 1.2)},
        {"event_fraction": (0.05, 0.1)},  # no window of >= 2 of 8 frames fits
    ],
)
def test_bad_timing_arguments_are_refused(kwargs):
    with pytest.raises(DataError, match="timing|event_fraction|window"):
        make_motion_benchmark(
            **{"clips_per_class": 1, "val_per_class": 1, "test_per_class": 1, **kwargs}
        )


def test_bad_labels_are_refused():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(DataError, match="MOTION_CLASSES"):
        generate_motion_clips(torch.tensor([0, 12]), 4, 16, 16, generator=g)
    with pytest.raises(DataError, match="1-D integer"):
        generate_motion_clips(torch.tensor([0.5]), 4, 16, 16, generator=g)

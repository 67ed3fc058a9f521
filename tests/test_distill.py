"""TSGD / SRe2L-style pixel optimisation against a frozen teacher."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from helpers import shared_refusals
from torch import nn

from tsgd_core.data.clips import ClipSet
from tsgd_core.methods.distill import (
    BNStatisticsHook,
    TSGDConfig,
    attach_bn_hooks,
    bn_statistics_loss,
    distill_tsgd,
    remove_hooks,
    tsgd_loss,
)
from tsgd_core.training.models import batchnorm_layers, build_model
from tsgd_core.training.saliency import SaliencyConfig

SHAPE = (3, 8, 16, 16)
K = 3


def make_teacher(num_classes: int = K, shape=SHAPE, norm: str = "batch") -> nn.Module:
    """A tiny ConvNet3D whose BN running statistics come from a few train-mode passes."""
    model = build_model("convnet3d", num_classes, shape, width=8, depth=2, norm=norm, seed=0)
    g = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.rand(6, *shape, generator=g))
        # An untrained head gives near-uniform logits; a sharper one makes CE respond to pixels.
        model.classifier.weight.mul_(10)
    return model.eval()


def random_clips(per_class: int = 4, seed: int = 0) -> ClipSet:
    g = torch.Generator().manual_seed(seed)
    videos = torch.rand(K * per_class, *SHAPE, generator=g)
    return ClipSet(videos, torch.arange(K).repeat_interleave(per_class), ["a", "b", "c"])


def half_static_clips(per_class: int = 4) -> ClipSet:
    """Left half: a bar moving over grey; right half: a texture frozen in time."""
    g = torch.Generator().manual_seed(2)
    c, t, h, w = SHAPE
    n = K * per_class
    videos = torch.rand(n, c, 1, h, w, generator=g).expand(-1, -1, t, -1, -1).clone()
    videos[..., : w // 2] = 0.2
    cols = (torch.arange(t)[None] + torch.arange(n)[:, None]) % (w // 2)  # (n, t)
    videos[torch.arange(n)[:, None], :, torch.arange(t)[None], :, cols] = 1.0
    return ClipSet(videos, torch.arange(K).repeat_interleave(per_class), ["a", "b", "c"])


def quick(**kw) -> TSGDConfig:
    base = TSGDConfig(iterations=6, lr=0.05, augment=False)  # a step that shows in 6
    return replace(base, **kw)


def run(teacher, train, **kw):
    return distill_tsgd(teacher, train, quick(**kw), progress=False)


# ---------------------------------------------------------------------------------------------
# Loss terms


def test_bn_hook_captures_batch_statistics_of_the_bn_input():
    bn = nn.BatchNorm3d(4).eval()
    hook = BNStatisticsHook(bn)
    x = torch.randn(5, 4, 3, 6, 6) * 2 + 1
    bn(x)
    hook.remove()
    flat = x.transpose(0, 1).reshape(4, -1)
    torch.testing.assert_close(hook.mean, flat.mean(1))
    torch.testing.assert_close(hook.var, flat.var(1, unbiased=False))
    expected = torch.linalg.vector_norm(flat.mean(1) - bn.running_mean) + torch.linalg.vector_norm(
        flat.var(1, unbiased=False) - bn.running_var
    )
    torch.testing.assert_close(hook.loss, expected)


def test_bn_hooks_on_a_model_see_each_layer_input():
    teacher = make_teacher()
    hooks = attach_bn_hooks(teacher)
    x = torch.rand(4, *SHAPE)
    with torch.no_grad():
        teacher(x)
        # The first BN layer's input is the output of the first conv.
        first_input = teacher.features[0](x)
    remove_hooks(hooks)
    assert len(hooks) == len(batchnorm_layers(teacher)) == 2
    torch.testing.assert_close(hooks[0].mean, first_input.mean(dim=(0, 2, 3, 4)))
    torch.testing.assert_close(hooks[0].var, first_input.var(dim=(0, 2, 3, 4), unbiased=False))


def test_bn_loss_is_zero_when_running_stats_are_the_batch_stats():
    teacher = make_teacher()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, *SHAPE, generator=g)
    # another distribution (dimmer, narrower): its batch statistics sit clearly off x's
    shifted = 0.5 * torch.rand(6, *SHAPE, generator=g)
    hooks = attach_bn_hooks(teacher)
    try:
        # Layer by layer: setting layer l changes only what later layers see.
        for hook in hooks:
            with torch.no_grad():
                teacher(x)
                hook.layer.running_mean.copy_(hook.mean)
                hook.layer.running_var.copy_(hook.var)
        with torch.no_grad():
            terms = tsgd_loss(teacher, x, torch.zeros(6, dtype=torch.long), hooks, r_bn=1.0)
        other = tsgd_loss(teacher, shifted, torch.zeros(6, dtype=torch.long), hooks, 1.0)
    finally:
        remove_hooks(hooks)
    assert terms.bn.item() < 1e-4
    assert other.bn.item() > 1e-2
    torch.testing.assert_close(terms.total, terms.ce + terms.bn)


def test_bn_statistics_loss_sums_the_layers():
    teacher = make_teacher()
    hooks = attach_bn_hooks(teacher)
    with torch.no_grad():
        teacher(torch.rand(3, *SHAPE))
    remove_hooks(hooks)
    torch.testing.assert_close(bn_statistics_loss(hooks), hooks[0].loss + hooks[1].loss)


# ---------------------------------------------------------------------------------------------
# Optimisation behaviour


def test_cross_entropy_decreases():
    teacher = make_teacher()
    result = run(teacher, random_clips(), iterations=20, augment=True, filter=True)
    ce = result.history["loss_ce"]
    assert len(ce) == 20
    assert sum(ce[-5:]) / 5 < 0.8 * sum(ce[:5]) / 5
    for name in ("loss", "loss_bn", "teacher_acc"):
        assert len(result.history[name]) == 20
    assert result.history["teacher_acc"][-1] >= result.history["teacher_acc"][0]


def test_output_layout_and_metadata():
    teacher = make_teacher()
    result = run(teacher, random_clips(), ipc=2, filter=False)
    assert result.videos.shape == (K * 2, *SHAPE)
    assert result.videos.dtype == torch.float32
    assert 0.0 <= result.videos.min() and result.videos.max() <= 1.0
    assert result.labels.tolist() == [0, 0, 1, 1, 2, 2]  # class-major
    assert result.method == "sre2l" and result.ipc == 2 and result.seed == 0
    assert result.config["saliency"]["beta"] == 0.2 and result.config["augment_cfg"][
        "crop_scale"
    ] == [0.6, 1.0]
    assert run(teacher, random_clips(), iterations=1).method == "tsgd"


def test_init_real_starts_from_real_clips_of_the_right_class():
    train = random_clips(per_class=5)
    result = run(make_teacher(), train, ipc=3, iterations=0)
    for clip, label in zip(result.videos, result.labels, strict=True):
        matches = (train.videos == clip).flatten(1).all(1).nonzero().flatten()
        assert len(matches) == 1 and train.labels[matches[0]] == label
    # Distinct clips within a class.
    assert len({tuple(v.flatten()[:20].tolist()) for v in result.videos}) == len(result.videos)


def test_init_noise_is_grey_noise():
    result = run(
        make_teacher(), random_clips(), init="noise", iterations=0, saliency_source="synthetic"
    )
    assert abs(result.videos.mean().item() - 0.5) < 0.02
    assert 0.1 < result.videos.std().item() < 0.3


def test_filter_on_the_update_holds_static_regions_still():
    teacher, train = make_teacher(), half_static_clips()
    start = run(teacher, train, iterations=0).videos
    sal = SaliencyConfig(beta=0.01, spatial_pool=1)
    plain = run(teacher, train, iterations=12, filter=False, saliency=sal).videos - start
    tsgd = run(teacher, train, iterations=12, filter=True, saliency=sal).videos - start
    w = SHAPE[-1] // 2
    static_plain, static_tsgd = plain[..., w:].abs().mean(), tsgd[..., w:].abs().mean()
    moving_tsgd = tsgd[..., :w].abs().mean()
    assert static_tsgd < 0.1 * static_plain
    assert moving_tsgd > 5 * static_tsgd


def test_filter_on_the_gradient_is_mostly_undone_by_adam():
    teacher, train = make_teacher(), half_static_clips()
    start = run(teacher, train, iterations=0).videos
    sal = SaliencyConfig(beta=0.01, spatial_pool=1)
    plain = run(teacher, train, iterations=12, filter=False, saliency=sal).videos - start
    grad = run(teacher, train, iterations=12, filter_target="gradient", saliency=sal).videos - start
    w = SHAPE[-1] // 2
    assert grad[..., w:].abs().mean() > 0.5 * plain[..., w:].abs().mean()


def test_frame_and_pixel_modulation_differ():
    teacher, train = make_teacher(), half_static_clips()
    pixel = run(teacher, train, modulation="pixel").videos
    frame = run(teacher, train, modulation="frame").videos
    assert not torch.allclose(pixel, frame, atol=1e-4)


def test_saliency_sources_differ():
    teacher, train = make_teacher(), half_static_clips()
    synthetic = run(teacher, train, saliency_source="synthetic").videos
    real = run(teacher, train, saliency_source="real").videos
    assert not torch.allclose(synthetic, real, atol=1e-5)


def temporal_roughness(delta: torch.Tensor) -> float:
    """Energy of the frame-to-frame change of an update, relative to its size."""
    return ((delta[:, :, 1:] - delta[:, :, :-1]).abs().mean() / delta.abs().mean()).item()


def test_lowpass_smooths_the_update_along_time():
    teacher, train = make_teacher(), random_clips()
    start = run(teacher, train, iterations=0).videos
    # beta=1 makes the modulation the identity, so low-pass is the only difference.
    sal = SaliencyConfig(beta=1.0, k=2, alpha="uniform")
    raw = run(teacher, train, saliency=sal, lowpass=False, clamp=False).videos - start
    smooth = run(teacher, train, saliency=sal, lowpass=True, clamp=False).videos - start
    assert temporal_roughness(smooth) < 0.6 * temporal_roughness(raw)


def test_same_seed_same_output_and_seed_matters():
    teacher, train = make_teacher(), random_clips()
    a = run(teacher, train, augment=True, seed=3)
    b = run(teacher, train, augment=True, seed=3)
    c = run(teacher, train, augment=True, seed=4)
    assert torch.equal(a.videos, b.videos)
    assert a.history == b.history
    assert not torch.equal(a.videos, c.videos)


def test_one_batch_of_all_clips_keeps_the_layout():
    teacher = make_teacher()
    result = run(teacher, random_clips(), ipc=2, batch_by_slot=False, iterations=2)
    start = run(teacher, random_clips(), ipc=2, iterations=0)
    assert result.labels.tolist() == start.labels.tolist()
    # Each clip stays near its own starting clip: the order was kept.
    assert (result.videos - start.videos).abs().mean() < 0.1


def test_callback_and_history_average_over_slots():
    seen = []
    result = distill_tsgd(
        make_teacher(),
        random_clips(),
        quick(ipc=2, iterations=3),
        progress=False,
        callback=lambda step, m: seen.append((step, m["batch"], m["loss"])),
    )
    assert [(s, b) for s, b, _ in seen] == [
        (0, 0.0),
        (1, 0.0),
        (2, 0.0),
        (0, 1.0),
        (1, 1.0),
        (2, 1.0),
    ]
    assert result.history["loss"][0] == pytest.approx((seen[0][2] + seen[3][2]) / 2)


# ---------------------------------------------------------------------------------------------
# Guards and validation


class NaNAfter(nn.Module):
    """Wraps a teacher; its logits turn NaN from the `after`-th forward on."""

    def __init__(self, model: nn.Module, after: int) -> None:
        super().__init__()
        self.model, self.after, self.calls = model, after, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.model(x)
        return out * math.nan if self.calls > self.after else out


def no_hooks_left(model: nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_nan_loss_stops_with_the_step_and_advice():
    teacher = NaNAfter(make_teacher(), after=3)
    with pytest.raises(
        FloatingPointError, match=r"step 3 .*lower lr \(now 0.05\) or r_bn \(now 0.01\)"
    ):
        run(teacher, random_clips(), iterations=10)
    assert no_hooks_left(teacher)


def test_teacher_is_restored_and_hooks_removed():
    teacher = make_teacher().train()
    run(teacher, random_clips(), iterations=2)
    assert no_hooks_left(teacher)
    assert teacher.training
    assert all(p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        *shared_refusals(5, "a", 4),
        ({"modulation": "voxel"}, "unknown modulation 'voxel'"),
        ({"saliency_source": "teacher"}, "unknown saliency_source 'teacher'"),
        ({"filter_target": "loss"}, "unknown filter_target 'loss'"),
        ({"saliency_source": "real", "init": "noise"}, "needs init='real'"),
        ({"saliency_every": 0}, "saliency_every must be >= 1"),
    ],
)
def test_bad_config_is_refused(kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(make_teacher(), random_clips(), **kw)


def test_noise_init_allows_ipc_above_the_class_size():
    result = run(make_teacher(), random_clips(), ipc=5, init="noise", iterations=1)
    assert result.videos.shape[0] == 5 * K


def test_teacher_class_count_must_match():
    with pytest.raises(ValueError, match="teacher predicts 4 classes but the training set has 3"):
        run(make_teacher(num_classes=4), random_clips())


def test_teacher_without_batchnorm_needs_r_bn_zero():
    teacher = make_teacher(norm="instance")
    with pytest.raises(
        ValueError, match="no BatchNorm layers: train it with norm='batch' or set r_bn=0"
    ):
        run(teacher, random_clips())
    result = run(teacher, random_clips(), r_bn=0.0, iterations=2)
    assert result.history["loss_bn"] == [0.0, 0.0]

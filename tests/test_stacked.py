"""Stacked students (training.stacked) against separate training: the same weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tsgd_core.data.synthetic import make_motion_benchmark
from tsgd_core.training.evaluate import (
    StudentConfig,
    build_relabel_plan,
    evaluate_set,
    train_stacked_students,
    train_student,
)
from tsgd_core.training.models import biases_removed_by_norm
from tsgd_core.training.stacked import use_stacking
from tsgd_core.training.teacher import ModelConfig
from tsgd_core.training.train import FitConfig, predict_logits

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def splits():
    return make_motion_benchmark(
        num_classes=4,
        clips_per_class=6,
        val_per_class=1,
        test_per_class=2,
        frames=8,
        height=16,
        width=16,
        seed=0,
    )


def config(norm: str, labels: str, augment: str, optimizer: str) -> StudentConfig:
    lr = 5e-3 if optimizer == "adamw" else 0.05
    fit = FitConfig(steps=12, batch_size=8, lr=lr, weight_decay=1e-4, optimizer=optimizer)
    return StudentConfig(
        model=ModelConfig(width=8, depth=2, norm=norm), fit=fit, labels=labels, augment=augment
    )


def separate_and_stacked(splits, cfg: StudentConfig):
    teacher = None
    if cfg.labels == "soft":
        teacher = cfg.model.build(splits.num_classes, splits.train.clip_shape, seed=9).eval()
    plan = build_relabel_plan(splits.train, cfg, teacher=teacher, seed=0, device="cpu")
    separate = [train_student(splits.train, cfg, seed=s, device="cpu", plan=plan) for s in SEEDS]
    stacked = train_stacked_students(splits.train, cfg, plan, SEEDS, device="cpu")
    return separate, stacked


def max_difference(a: nn.Module, b: nn.Module, skip: set[str] = frozenset()) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(
        (sa[k].float() - sb[k].float()).abs().max().item()
        for k in sa
        if k not in skip and sa[k].is_floating_point()
    )


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("labels,augment", [("hard", "base"), ("soft", "tsgfa")])
def test_stacked_sgd_students_end_with_separate_weights(splits, norm, labels, augment):
    separate, stacked = separate_and_stacked(splits, config(norm, labels, augment, "sgd"))
    for one, many in zip(separate, stacked, strict=True):
        assert max_difference(one, many) < 1e-4  # every weight and BatchNorm statistic
        logits = predict_logits(one, splits.test.videos), predict_logits(many, splits.test.videos)
        torch.testing.assert_close(*logits, atol=1e-4, rtol=1e-4)
    # the seeds are different students, not one student three times
    assert max_difference(stacked[0], stacked[1]) > 1e-2


@pytest.mark.parametrize("labels,augment", [("hard", "base"), ("soft", "tsgfa")])
def test_stacked_adamw_students_match_separate_ones(splits, labels, augment):
    # AdamW divides by the gradient's own scale, so a conv bias that the next norm removes (its
    # gradient is rounding noise, ~1e-9) takes steps of +-lr in either path: every other weight
    # matches, and with instance norm (no running statistics) so does the function
    separate, stacked = separate_and_stacked(splits, config("instance", labels, augment, "adamw"))
    skip = biases_removed_by_norm(separate[0])
    assert skip  # the model has such biases, so the exclusion is about them alone
    for one, many in zip(separate, stacked, strict=True):
        assert max_difference(one, many, skip) < 1e-3
        logits = predict_logits(one, splits.test.videos), predict_logits(many, splits.test.videos)
        torch.testing.assert_close(*logits, atol=1e-3, rtol=1e-3)


def test_evaluate_set_stacks_on_request_and_gives_the_same_accuracies(splits):
    cfg = config("instance", "hard", "base", "sgd")
    common = dict(seeds=SEEDS, device="cpu", progress=False)
    one = evaluate_set(splits.train, splits.test, cfg, stack="off", **common)
    many = evaluate_set(splits.train, splits.test, cfg, stack="on", **common)
    assert many.accs == pytest.approx(one.accs, abs=1e-9)
    assert len(many.wall_s) == len(SEEDS) and many.num_train == len(splits.train)


def test_stacking_is_chosen_on_cuda_only_unless_asked():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not use_stacking("auto", cpu, 3) and use_stacking("auto", cuda, 3)
    assert use_stacking("on", cpu, 3) and not use_stacking("off", cuda, 3)
    assert not use_stacking("on", cpu, 1)  # one seed: nothing to stack
    with pytest.raises(ValueError, match="unknown stack"):
        use_stacking("yes", cpu, 3)

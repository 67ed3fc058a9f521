"""The evaluation protocol: relabel plans shared by the student seeds, and evaluate_set."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from tsgd_core.training.augment import TSGFAConfig, tsgfa_augment
from tsgd_core.training.evaluate import (
    StudentConfig,
    build_relabel_plan,
    evaluate_set,
    plan_batch_loss,
    plan_order,
    plan_view,
    train_student,
)
from tsgd_core.training.relabel import hard_label_loss, mixed_label_targets, teacher_soft_labels
from tsgd_core.training.teacher import ModelConfig
from tsgd_core.training.train import FitConfig, fit, total_steps

CPU = torch.device("cpu")


def student_config(labels: str = "soft", augment: str = "tsgfa", steps: int = 6) -> StudentConfig:
    return StudentConfig(
        model=ModelConfig(width=4, depth=2, norm="instance"),
        fit=FitConfig(steps=steps, batch_size=8, lr=2e-3, optimizer="adamw"),
        labels=labels,
        augment=augment,
        tsgfa=TSGFAConfig(p_crop=0.5, p_mix=0.5, p_temporal=0.5),
    )


@pytest.fixture
def teacher(tiny_clips):
    return (
        ModelConfig(width=4, depth=2)
        .build(tiny_clips.num_classes, tiny_clips.clip_shape, seed=5)
        .eval()
    )


def weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_plan_shape_and_labels_are_the_teacher_on_the_regenerated_views(tiny_clips, teacher):
    cfg = student_config()
    plan = build_relabel_plan(tiny_clips, cfg, teacher=teacher, seed=3, device="cpu")
    steps = total_steps(len(tiny_clips), cfg.fit)
    assert len(plan) == steps and plan.indices.shape == (steps, 8)
    assert plan.soft.shape == (steps, 8, tiny_clips.num_classes)
    for step in range(steps):
        # an independent regeneration from the stored seed, straight through tsgfa_augment
        g = torch.Generator().manual_seed(int(plan.view_seeds[step]))
        views, _, _ = tsgfa_augment(
            tiny_clips.videos[plan.indices[step]], g, cfg.tsgfa, cfg.augment_cfg
        )
        torch.testing.assert_close(plan.soft[step], teacher_soft_labels(teacher, views, cfg.tau))
        torch.testing.assert_close(plan_view(plan, step, tiny_clips, cfg, CPU)[0], views)


def test_plan_is_deterministic_in_its_seed(tiny_clips, teacher):
    cfg = student_config()
    a, b = (build_relabel_plan(tiny_clips, cfg, teacher=teacher, seed=1) for _ in range(2))
    c = build_relabel_plan(tiny_clips, cfg, teacher=teacher, seed=2)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.view_seeds, b.view_seeds)
    assert torch.equal(a.soft, b.soft)
    assert not torch.equal(a.indices, c.indices) and not torch.equal(a.view_seeds, c.view_seeds)
    hard = build_relabel_plan(tiny_clips, replace(cfg, labels="hard"), seed=1)
    assert hard.soft is None and torch.equal(hard.indices, a.indices)


def test_plan_training_equals_training_with_live_teacher_labels_in_the_same_order(
    tiny_clips, teacher
):
    cfg = student_config()
    plan = build_relabel_plan(tiny_clips, cfg, teacher=teacher, seed=0)
    seed = 4
    trained = train_student(tiny_clips, cfg, seed=seed, device="cpu", plan=plan)

    def live_batches():
        """Reference: the same views in the seed's order, relabelled by the teacher on the spot."""
        for step in plan_order(len(plan), seed).tolist():
            g = torch.Generator().manual_seed(int(plan.view_seeds[step]))
            videos = tiny_clips.videos[plan.indices[step]]
            views, _, _ = tsgfa_augment(videos, g, cfg.tsgfa, cfg.augment_cfg)
            yield views, teacher_soft_labels(teacher, views, cfg.tau)

    reference = cfg.model.build(tiny_clips.num_classes, tiny_clips.clip_shape, seed=seed)
    fit_cfg = replace(cfg.fit, seed=seed)
    fit(
        reference,
        tiny_clips,
        fit_cfg,
        batch_loss=plan_batch_loss(cfg),
        progress=False,
        batches=live_batches(),
    )
    assert torch.equal(weights(trained), weights(reference))


def test_hard_plan_targets_give_the_mixed_hard_label_loss(tiny_clips):
    cfg = student_config(labels="hard")
    plan = build_relabel_plan(tiny_clips, cfg, seed=0)
    logits = torch.randn(8, tiny_clips.num_classes, generator=torch.Generator().manual_seed(0))
    mixed_seen = False
    for step in range(len(plan)):
        _, partner, lam = plan_view(plan, step, tiny_clips, cfg, CPU)
        labels = tiny_clips.labels[plan.indices[step]]
        targets = mixed_label_targets(labels, tiny_clips.num_classes, partner, lam)
        torch.testing.assert_close(
            hard_label_loss(logits, targets), hard_label_loss(logits, labels, partner, lam)
        )
        mixed_seen |= partner is not None
    assert mixed_seen


def test_seeds_share_the_plan_but_not_its_order(tiny_clips, teacher):
    cfg = student_config(steps=12)
    plan = build_relabel_plan(tiny_clips, cfg, teacher=teacher, seed=0)
    orders = [plan_order(len(plan), s) for s in (0, 1)]
    assert not torch.equal(*orders)
    assert all(sorted(o.tolist()) == list(range(len(plan))) for o in orders)  # every step once
    a, b = (train_student(tiny_clips, cfg, seed=s, device="cpu", plan=plan) for s in (0, 1))
    assert not torch.equal(weights(a), weights(b))
    again = train_student(tiny_clips, cfg, seed=0, device="cpu", plan=plan)
    assert torch.equal(weights(a), weights(again))


@pytest.mark.parametrize("labels, augment", [("soft", "tsgfa"), ("hard", "base"), ("soft", "none")])
def test_evaluate_set_with_and_without_the_shared_plan(
    tiny_clips, tiny_test_clips, teacher, labels, augment
):
    cfg = student_config(labels=labels, augment=augment, steps=4)
    for shared in (True, False):
        res = evaluate_set(
            tiny_clips,
            tiny_test_clips,
            cfg,
            teacher=teacher,
            seeds=(0, 1),
            device="cpu",
            progress=False,
            shared_plan=shared,
        )
        assert len(res.accs) == 2 and all(0 <= a <= 1 for a in res.accs)
        assert all(w > 0 for w in res.wall_s) and res.labels == labels and res.augment == augment


def test_plan_errors_name_the_problem(tiny_clips, tiny_test_clips, teacher):
    with pytest.raises(ValueError, match="teacher"):
        build_relabel_plan(tiny_clips, student_config())
    with pytest.raises(ValueError, match="teacher"):
        evaluate_set(tiny_clips, tiny_test_clips, student_config(), seeds=(0,), progress=False)
    plan = build_relabel_plan(tiny_clips, student_config(steps=3), teacher=teacher)
    with pytest.raises(ValueError, match="plan has 3 steps"):
        train_student(tiny_clips, student_config(steps=5), plan=plan, device="cpu")

"""Relabel: the teacher's soft labels for every augmented view a student sees (SRe2L / FKD).

A soft label is softmax(teacher(view) / tau). The student minimises tau^2 * KL(teacher || student)
at the same temperature. Hard labels (the class index; for a mixed view, the two clips' labels
weighted by lam, the share of visible motion each keeps, see `augment.saliency_cutmix`) are the
alternative that shows how much of the accuracy the soft labels carry.

Soft labels cost a teacher forward per view. A relabel plan (`evaluate.build_relabel_plan`)
computes them once per evaluation and shares them among the student seeds, as FKD does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def teacher_soft_labels(teacher: nn.Module, views: torch.Tensor, tau: float) -> torch.Tensor:
    """Teacher probabilities at temperature `tau` for a batch of views, shape (N, classes)."""
    if tau <= 0:
        raise ValueError(f"temperature tau must be > 0, got {tau}")
    teacher.eval()
    return F.softmax(teacher(views).float() / tau, dim=1)


def soft_label_loss(
    student_logits: torch.Tensor, teacher_probs: torch.Tensor, tau: float
) -> torch.Tensor:
    """tau^2 * KL(teacher || student): the gradient scale stays comparable across temperatures."""
    log_student = F.log_softmax(student_logits.float() / tau, dim=1)
    return F.kl_div(log_student, teacher_probs, reduction="batchmean") * tau**2


def hard_label_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    partner: torch.Tensor | None = None,
    lam: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy; for mixed views, lam * CE(own label) + (1 - lam) * CE(partner's label).

    `labels` may also be (N, classes) probabilities, e.g. from `mixed_label_targets`.
    """
    if partner is None or lam is None:
        return F.cross_entropy(logits, labels)
    own = F.cross_entropy(logits, labels, reduction="none")
    other = F.cross_entropy(logits, labels[partner], reduction="none")
    return (lam * own + (1 - lam) * other).mean()


def mixed_label_targets(
    labels: torch.Tensor,
    num_classes: int,
    partner: torch.Tensor | None = None,
    lam: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N, classes) label distributions lam * onehot(y) + (1 - lam) * onehot(y[partner]).

    Cross-entropy against them equals `hard_label_loss(logits, labels, partner, lam)`, since
    cross-entropy is linear in the target distribution.
    """
    onehot = F.one_hot(labels, num_classes).float()
    if partner is None or lam is None:
        return onehot
    lam = lam.float().view(-1, 1)
    return lam * onehot + (1 - lam) * onehot[partner]


def plan_target_loss(
    labels: str, logits: torch.Tensor, targets: torch.Tensor, tau: float
) -> torch.Tensor:
    """The loss on a relabel plan's batch, whose targets are distributions: the teacher's at
    `tau` (soft labels) or the (mixed) class labels (hard)."""
    if labels == "soft":
        return soft_label_loss(logits, targets, tau)
    return hard_label_loss(logits, targets)


def confidence_stats(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """How sure a teacher is of views (`probs`: (N, classes) at some tau): the mean top
    probability, the mean entropy in nats, and the mean probability of each view's own class."""
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(dim=1)
    own = probs.gather(1, labels.long().view(-1, 1)).squeeze(1)
    return {
        "top_prob": float(probs.max(dim=1).values.mean()),
        "entropy": float(entropy.mean()),
        "own_class_prob": float(own.mean()),
    }

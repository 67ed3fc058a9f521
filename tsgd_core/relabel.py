"""Relabel: the teacher's soft labels for every augmented view a student sees (SRe2L / FKD).

A soft label is softmax(teacher(view) / tau). The student minimises tau^2 * KL(teacher || student)
at the same temperature. Hard labels (the class index, mixed by area when views are mixed) are
the alternative that shows how much of the accuracy the soft labels carry.
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


def soft_label_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, tau: float) -> torch.Tensor:
    """tau^2 * KL(teacher || student): the gradient scale stays comparable across temperatures."""
    log_student = F.log_softmax(student_logits.float() / tau, dim=1)
    return F.kl_div(log_student, teacher_probs, reduction="batchmean") * tau**2


def hard_label_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    partner: torch.Tensor | None = None,
    lam: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy; for mixed views, lam * CE(own label) + (1 - lam) * CE(partner's label)."""
    if partner is None or lam is None:
        return F.cross_entropy(logits, labels)
    own = F.cross_entropy(logits, labels, reduction="none")
    other = F.cross_entropy(logits, labels[partner], reduction="none")
    return (lam * own + (1 - lam) * other).mean()

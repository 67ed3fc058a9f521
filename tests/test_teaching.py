"""The notebooks' hand-written teaching code gives exactly what the library gives.

Each notebook builds a stage in a cell tagged `teaching` (plain functions, no outputs); these
tests execute those cells on their own and compare the functions with the library for a fixed
seed, so the tutorials cannot drift from the code they explain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from test_notebooks import EXPECTED

from tsgd_core.methods.distill import TSGDConfig, distill_tsgd, initial_clips
from tsgd_core.training.saliency import SaliencyConfig, frame_weights, saliency_map
from tsgd_core.training.teacher import ModelConfig

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def teaching_namespace(name: str) -> dict[str, Any]:
    """Run the cells of notebooks/<name>.ipynb tagged `teaching`; return what they define."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    cells = [c for c in nb.cells if "teaching" in c.metadata.get("tags", [])]
    assert cells, f"{name} has no cell tagged 'teaching'"
    namespace: dict[str, Any] = {}
    for cell in cells:
        exec(compile(cell.source, f"{name}:teaching", "exec"), namespace)
    return namespace


def bn_teacher(num_classes: int, clip_shape: tuple[int, ...]) -> torch.nn.Module:
    """A small BatchNorm teacher whose running statistics are not the initial 0 / 1."""
    teacher = ModelConfig(width=8, depth=2).build(num_classes, clip_shape, seed=0)
    teacher.train()
    with torch.no_grad():
        teacher(torch.rand(6, *clip_shape, generator=torch.Generator().manual_seed(5)))
    return teacher.eval()


@pytest.mark.parametrize(
    "k, alpha, beta, pool",
    [(1, "gaussian", 0.2, 3), (2, "uniform", 0.5, 1), (0, "gaussian", 0.0, 3)],
)
def test_01_tsgf_by_hand_is_the_library_saliency(tiny_clips, k, alpha, beta, pool):
    tsgf_by_hand = teaching_namespace("01_data_and_saliency")["tsgf_by_hand"]
    clips = tiny_clips.videos[:5]
    D, S, W, W_prime = tsgf_by_hand(clips, k=k, alpha=alpha, eps=1e-3, beta=beta, spatial_pool=pool)
    cfg = SaliencyConfig(k=k, alpha=alpha, eps=1e-3, beta=beta, spatial_pool=pool)
    assert D.shape == S.shape == W.shape == W_prime.shape == (5, 1, *clips.shape[2:])
    torch.testing.assert_close(W_prime, saliency_map(clips, cfg), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        W_prime.mean(dim=(1, 3, 4)), frame_weights(clips, cfg), rtol=0, atol=1e-6
    )
    assert float(W.max()) <= 1.0 and float(W_prime.min()) >= beta - 1e-6


@pytest.mark.parametrize("use_filter", [True, False], ids=["tsgd", "sre2l"])
def test_03_recover_by_hand_is_distill_tsgd(tiny_clips, use_filter):
    recover_by_hand = teaching_namespace("03_distill")["recover_by_hand"]
    teacher = bn_teacher(tiny_clips.num_classes, tiny_clips.clip_shape)
    cfg = TSGDConfig(ipc=1, iterations=3, r_bn=0.05, first_bn=2.0, filter=use_filter, seed=3)
    library = distill_tsgd(teacher, tiny_clips, cfg, progress=False)
    start = initial_clips(tiny_clips, 1, cfg.init, cfg.seed)[0][:, 0]
    mine, history = recover_by_hand(
        teacher,
        start,
        torch.arange(tiny_clips.num_classes),
        cfg.iterations,
        lr=cfg.lr,
        r_bn=cfg.r_bn,
        first_bn=cfg.first_bn,
        saliency_cfg=cfg.saliency,
        use_filter=use_filter,
        seed=cfg.seed,
    )
    assert not torch.equal(mine, start), "the loop moved the pixels"
    torch.testing.assert_close(mine, library.videos, rtol=0, atol=1e-5)
    torch.testing.assert_close(history["loss_ce"], library.history["loss_ce"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(history["loss_bn"], library.history["loss_bn"], rtol=1e-5, atol=1e-6)


def test_04_soft_label_step_is_the_library_student_loss(tiny_clips):
    from tsgd_core.training.evaluate import StudentConfig, student_batch_loss
    from tsgd_core.training.train import make_optimizer

    soft_label_step = teaching_namespace("04_evaluate")["soft_label_step"]
    teacher = bn_teacher(tiny_clips.num_classes, tiny_clips.clip_shape)
    cfg = StudentConfig(model=ModelConfig(width=8, depth=2, norm="instance"), tau=3.0)
    videos, labels = tiny_clips.videos[::3], tiny_clips.labels[::3]
    students = [
        cfg.model.build(tiny_clips.num_classes, tiny_clips.clip_shape, seed=1) for _ in "ab"
    ]
    optimizers = [make_optimizer(s, cfg.fit) for s in students]

    views, soft, loss = soft_label_step(
        students[0], teacher, videos, cfg.tau, optimizers[0], torch.Generator().manual_seed(4)
    )
    expected = student_batch_loss(cfg, teacher)(
        students[1], videos, labels, torch.Generator().manual_seed(4)
    )
    optimizers[1].zero_grad()
    expected.backward()
    optimizers[1].step()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(soft.sum(1), torch.ones(len(videos)))
    assert views.shape == videos.shape and float(views.min()) >= 0.0
    for mine, theirs in zip(students[0].parameters(), students[1].parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("first_bn", [1.0, 10.0])
def test_02_bn_loss_by_hand_is_the_library_bn_loss(tiny_clips, first_bn):
    from tsgd_core.methods.distill import attach_bn_hooks, bn_statistics_loss, remove_hooks

    bn_loss_by_hand = teaching_namespace("02_teacher")["bn_loss_by_hand"]
    teacher = bn_teacher(tiny_clips.num_classes, tiny_clips.clip_shape)
    batch = tiny_clips.videos[:6]
    total, terms, stats = bn_loss_by_hand(teacher, batch, first_bn=first_bn)
    hooks = attach_bn_hooks(teacher)
    try:
        with torch.no_grad():
            teacher(batch)
        expected = bn_statistics_loss(hooks, first_bn)
        for (mean, var), hook in zip(stats, hooks, strict=True):
            torch.testing.assert_close(mean, hook.mean)
            torch.testing.assert_close(var, hook.var)
    finally:
        remove_hooks(hooks)
    assert len(terms) == len(hooks) == 2
    torch.testing.assert_close(total, expected)
    assert not teacher.training


@pytest.mark.slow
def test_the_tutorial_profile_trains_a_teacher_well_above_chance(tmp_path):
    from tsgd_core.grid import experiments

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small network: one thread is fastest on a shared machine
    try:
        _, info = experiments.get_teacher(
            "tutorial", cache_dir=tmp_path, device="cpu", progress=False
        )
    finally:
        torch.set_num_threads(threads)
    chance = 1 / experiments.get_profile("tutorial").data["num_classes"]
    assert info.test_acc > chance + 0.3, f"tutorial teacher at {info.test_acc:.2f}"


TUTORIALS = [name for name in EXPECTED if name != "06_real_video"]  # 06 has its own test


@pytest.mark.parametrize("name", TUTORIALS)
def test_every_tutorial_states_its_run_time_and_ends_with_exercises(name):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert "**Run time" in nb.cells[0].source, "the first cell states the run time"
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert "## Exercises" in markdown[-1].source, "the notebook ends with exercises"
    assert "\n1. " in markdown[-1].source and "\n2. " in markdown[-1].source, "numbered exercises"

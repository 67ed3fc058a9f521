"""The notebooks' hand-written teaching code gives exactly what the library gives.

Each notebook builds a stage in a cell tagged `teaching` (plain functions, no outputs); these
tests execute those cells on their own and compare the functions with the library for a fixed
seed, so the tutorials cannot drift from the code they explain.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import torch
from test_exercises import exercises
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
    footer = nb.cells[-1]
    assert "footer" in footer.metadata.get("tags", []), "the notebook ends with its footer"
    assert footer.source.count("**Run time at its defaults:**") == 1, "the footer states the time"
    assert "Run time" not in nb.cells[0].source, "the run time is no longer the first thing read"
    assert len(exercises(nb)) >= 3, "the notebook ends with its exercises (tests/test_exercises.py)"


# ----------------------------------------------------------------------------- more by-hand builds


def code_lines(source: str, function: str) -> int:
    """Lines of code in a function's body: no docstring, comment-only or blank lines."""
    tree = ast.parse(source)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    body = fn.body[1:] if isinstance(fn.body[0], ast.Expr) else fn.body  # skip the docstring
    lines = source.splitlines()[body[0].lineno - 1 : fn.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def test_00_tiny_distillation_is_distill_tsgd_then_fit_in_30_lines(tiny_clips, tiny_test_clips):
    from tsgd_core.data.clips import ClipSet
    from tsgd_core.training.train import FitConfig, accuracy, fit

    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOKS / "00_quickstart.ipynb", as_version=4)
    cells = [c.source for c in nb.cells if "teaching" in c.metadata.get("tags", [])]
    source = next(s for s in cells if "def tiny_distillation(" in s)
    assert code_lines(source, "tiny_distillation") <= 30, "the whole pipeline in <= 30 lines"

    tiny_distillation = teaching_namespace("00_quickstart")["tiny_distillation"]
    teacher = bn_teacher(tiny_clips.num_classes, tiny_clips.clip_shape)
    model = ModelConfig(width=8, depth=2, norm="instance")
    mine = model.build(tiny_clips.num_classes, tiny_clips.clip_shape, seed=1)
    clips, acc = tiny_distillation(
        teacher, tiny_clips, tiny_test_clips, mine, iterations=4, steps=6, r_bn=0.05, seed=3
    )
    cfg = TSGDConfig(ipc=1, iterations=4, lr=0.05, r_bn=0.05, seed=3)  # the notebook's lr
    library = distill_tsgd(teacher, tiny_clips, cfg, progress=False)
    start = initial_clips(tiny_clips, 1, cfg.init, cfg.seed)[0][:, 0]
    assert not torch.equal(clips, start), "the recover loop moved the pixels"
    torch.testing.assert_close(clips, library.videos, rtol=0, atol=1e-5)
    theirs = model.build(tiny_clips.num_classes, tiny_clips.clip_shape, seed=1)
    data = ClipSet(library.videos, library.labels, tiny_clips.class_names)
    fit(theirs, data, FitConfig(steps=6, batch_size=len(data), lr=0.05, seed=3), progress=False)
    for a, b in zip(mine.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert acc == accuracy(theirs, tiny_test_clips)
    assert not any(m._forward_hooks for m in teacher.modules()), "the hooks were removed"


@pytest.mark.parametrize("count", [1, 3, 7])
def test_02_herding_and_kcenter_by_hand_are_the_library(count):
    from tsgd_core.methods.selection import herding_order, kcenter_order

    space = teaching_namespace("02_teacher")
    features = torch.randn(20, 6, generator=torch.Generator().manual_seed(count))
    herding, kcenter = (
        space["herding_by_hand"](features, count),
        space["kcenter_by_hand"](features, count),
    )
    assert herding == herding_order(features, count).tolist()
    assert kcenter == kcenter_order(features, count, 0).tolist()
    assert len(set(herding)) == len(set(kcenter)) == count, "no clip is picked twice"
    if count == 1:
        assert herding == kcenter, "at one pick both take the clip nearest the class mean"


def test_03_dm_by_hand_is_distill_dm(tiny_clips):
    from tsgd_core.methods.dm import DMConfig, distill_dm

    dm_by_hand = teaching_namespace("03_distill")["dm_by_hand"]
    cfg = DMConfig(ipc=2, iterations=3, batch_real=4, width=8, depth=2, seed=1)
    start = initial_clips(tiny_clips, cfg.ipc, cfg.init, cfg.seed)[0].flatten(0, 1)
    mine, losses = dm_by_hand(tiny_clips, cfg, start)
    library = distill_dm(tiny_clips, cfg, progress=False)
    assert not torch.equal(mine, start), "the steps moved the pixels"
    torch.testing.assert_close(mine, library.videos, rtol=0, atol=1e-6)
    assert losses == pytest.approx(library.history["loss"], rel=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_04_tsgfa_parts_by_hand_are_the_library(tiny_clips, seed):
    from tsgd_core.training.augment import saliency_crop, saliency_cutmix, temporal_salient_crop
    from tsgd_core.training.saliency import saliency_map

    space = teaching_namespace("04_evaluate")
    clips = tiny_clips.videos[::4].clone()
    clips[1] = 0.5  # a still clip: no salient place, no motion to share in a mix
    saliency = saliency_map(clips, SaliencyConfig())
    weights = saliency.mean(dim=(1, 3, 4))

    def draws():
        return torch.Generator().manual_seed(seed)

    crop = space["saliency_crop_by_hand"](clips, saliency, draws(), (0.5, 0.9))
    torch.testing.assert_close(crop, saliency_crop(clips, saliency, draws(), (0.5, 0.9)))
    mixed, partner, lam = space["cutmix_by_hand"](clips, saliency, draws(), (0.3, 0.7))
    expected = saliency_cutmix(clips, saliency, draws(), (0.3, 0.7))
    torch.testing.assert_close(mixed, expected[0])
    assert torch.equal(partner, expected[1]) and not (partner == torch.arange(len(clips))).any()
    torch.testing.assert_close(lam, expected[2], rtol=1e-5, atol=1e-6)
    cut = space["temporal_crop_by_hand"](clips, weights, draws(), 0.5)
    assert torch.equal(cut, temporal_salient_crop(clips, weights, draws(), 0.5))


def test_05_t_interval_by_hand_is_the_reported_interval():
    from tsgd_core import report
    from tsgd_core.grid import stats

    space = teaching_namespace("05_report")
    df = report.collect_records(NOTEBOOKS.parent / "reports" / "default" / "runs")
    runs, paired = report.main_records(df), report.paired_difference_results(df)
    assert len(paired) > 10 and (paired["n_distill"] > 1).any()
    for _, row in paired.iterrows():
        at = runs[runs["ipc"] == row["ipc"]].set_index("row")["records"]
        diffs = space["pairs_by_hand"](at[row["a"]], at[row["b"]], row["labels"])
        assert list(diffs.values()) == pytest.approx(row["diffs"])
        mean, low, high = space["t_interval_by_hand"](diffs)
        assert (mean, low, high) == pytest.approx((row["mean_diff"], row["ci_low"], row["ci_high"]))
    # a synthetic design: three draws of four students, then a single draw
    values = {(d, s): 0.01 * d + 0.003 * s - 0.02 for d in range(3) for s in range(4)}
    summary = stats.two_level_interval(stats.by_distill_seed(values))
    assert space["t_interval_by_hand"](values) == pytest.approx(
        (summary.mean, summary.low, summary.high)
    )
    one = {key: v for key, v in values.items() if key[0] == 1}
    summary = stats.two_level_interval(stats.by_distill_seed(one))
    assert summary.method == stats.STUDENT_T
    assert space["t_interval_by_hand"](one) == pytest.approx(
        (summary.mean, summary.low, summary.high)
    )

import pytest
import torch
from helpers import small_benchmark

from tsgd_core.runtime import resolve_device
from tsgd_core.training.models import build_model
from tsgd_core.training.train import FitConfig, accuracy, endless_batches, fit, total_steps


def test_fit_learns_motion_direction(tiny_clips, tiny_test_clips):
    model = build_model("convnet3d", 2, tiny_clips.clip_shape, width=8, depth=2, seed=0)
    before = accuracy(model, tiny_test_clips)
    result = fit(model, tiny_clips, FitConfig(epochs=15, batch_size=8, lr=0.05), progress=False)
    assert result.steps == 15 * 3
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert accuracy(model, tiny_test_clips) >= max(0.9, before)


def test_fit_is_deterministic(tiny_clips):
    def run():
        model = build_model("convnet3d", 2, tiny_clips.clip_shape, width=8, depth=2, seed=0)
        fit(model, tiny_clips, FitConfig(steps=5, batch_size=8), progress=False)
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(run(), run())


def test_fit_trains_on_a_given_batch_source_like_on_its_own_batches(tiny_clips):
    cfg = FitConfig(steps=5, batch_size=8)

    def run(batches=None):
        model = build_model("convnet3d", 2, tiny_clips.clip_shape, width=8, depth=2, seed=0)
        fit(model, tiny_clips, cfg, progress=False, batches=batches)
        return torch.cat([p.flatten() for p in model.parameters()])

    same = endless_batches(tiny_clips, cfg.batch_size, torch.Generator().manual_seed(cfg.seed))
    other = endless_batches(tiny_clips, cfg.batch_size, torch.Generator().manual_seed(cfg.seed + 1))
    assert torch.equal(run(same), run())
    assert not torch.equal(run(other), run())


def test_fit_keeps_best_validation_weights(tiny_clips, tiny_test_clips):
    model = build_model("convnet3d", 2, tiny_clips.clip_shape, width=8, depth=2, seed=0)
    result = fit(
        model,
        tiny_clips,
        FitConfig(steps=12, batch_size=8, eval_every=3),
        val=tiny_test_clips,
        progress=False,
    )
    assert result.history["val_step"] == [3, 6, 9, 12]
    assert result.best_val_acc == max(result.history["val_acc"])
    assert accuracy(model, tiny_test_clips) == pytest.approx(result.best_val_acc)


def test_nan_loss_stops_with_the_step_named(tiny_clips):
    model = build_model("convnet3d", 2, tiny_clips.clip_shape, width=8, depth=2, seed=0)

    def broken(model, videos, labels, generator):
        return model(videos).sum() * float("nan")

    with pytest.raises(FloatingPointError, match="at step 0"):
        fit(model, tiny_clips, FitConfig(steps=3), batch_loss=broken, progress=False)


def test_total_steps_counts_epochs_or_takes_steps():
    assert total_steps(100, FitConfig(epochs=2, batch_size=32)) == 8
    assert total_steps(10, FitConfig(epochs=2, batch_size=32)) == 2
    assert total_steps(100, FitConfig(steps=7)) == 7


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_teacher_training_is_reproducible_and_records_its_thread_count():
    """Same seed and thread count: the same weights, bit for bit; the count is recorded
    because another count sums floats in another order (different weights)."""
    from tsgd_core.training.teacher import ModelConfig, train_teacher

    splits = small_benchmark(3, (6, 2, 2), frames=4, size=(8, 8))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        runs = [
            train_teacher(
                splits,
                ModelConfig(width=4, depth=2),
                FitConfig(steps=3, batch_size=6),
                device="cpu",
                progress=False,
            )
            for _ in range(2)
        ]
    finally:
        torch.set_num_threads(before)
    (a, info_a), (b, _) = runs
    assert info_a.torch_threads == 1
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)


def test_a_teacher_trained_with_another_thread_count_is_found_not_trained_again(tmp_path):
    """The key names the recipe alone: a run with another CPU thread count loads the teacher
    the first one trained (its metadata records the count that trained it)."""
    from tsgd_core.training.teacher import ModelConfig, load_or_train_teacher, teacher_key

    splits = small_benchmark(2, (4, 1, 1), frames=4, size=(8, 8))
    cfg, fit_cfg = ModelConfig(width=4, depth=1), FitConfig(steps=1, batch_size=4)
    before = torch.get_num_threads()
    infos = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            _, info = load_or_train_teacher(
                splits, cfg, fit_cfg, cache_dir=tmp_path, device="cpu", progress=False
            )
            infos.append(info)
    finally:
        torch.set_num_threads(before)
    assert infos[0].key == infos[1].key == teacher_key(splits, cfg, fit_cfg, True)
    assert infos[0].torch_threads == infos[1].torch_threads == 1
    assert infos[0].train_wall_s == infos[1].train_wall_s, "the second run loaded the first's"

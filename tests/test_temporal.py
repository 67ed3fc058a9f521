"""The built-in benchmark is really temporal: one frame is not enough, a 3D net learns it."""

import pytest
from helpers import small_benchmark

from tsgd_core.data.clips import single_frame
from tsgd_core.training.teacher import ModelConfig, train_teacher
from tsgd_core.training.train import FitConfig


@pytest.fixture(scope="module")
def motion():
    # Constant timing: at 16x16 this small recipe learns motion that fills the whole clip, not
    # yet motion confined to a window (measured 0.27 test accuracy with timing="window"). The
    # single-frame property of both timings is checked in tests/test_synthetic.py.
    return small_benchmark(10, (60, 5, 15), frames=8, size=(16, 16), seed=0, timing="constant")


@pytest.mark.slow
def test_single_frame_stays_near_chance_while_3d_teacher_learns(motion):
    model_cfg = ModelConfig(width=16, depth=2)
    fit_cfg = FitConfig(epochs=20, batch_size=32, lr=2e-3, weight_decay=1e-4, optimizer="adamw")
    _, video = train_teacher(motion, model_cfg, fit_cfg, device="cpu", progress=False)
    _, frame = train_teacher(single_frame(motion), model_cfg, fit_cfg, device="cpu", progress=False)
    chance = 1 / motion.num_classes
    assert frame.test_acc < chance + 0.12, f"one frame reveals the class: {frame.test_acc:.2f}"
    assert video.test_acc > 0.45, f"the 3D net does not learn the motion: {video.test_acc:.2f}"
    assert video.test_acc > frame.test_acc + 0.3


def test_single_frame_keeps_one_frame(motion):
    one = single_frame(motion, frame=3)
    assert one.clip_shape == (3, 1, 16, 16)
    assert (one.train.videos[:, :, 0] == motion.train.videos[:, :, 3]).all()
    assert one.config["single_frame"] == 3 and one.name.endswith("frame3")

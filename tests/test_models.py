import pytest
import torch

from tsgd_core.training.models import MODELS, batchnorm_layers, build_model


@pytest.mark.parametrize("name", ["convnet3d", "r2plus1d", "c3d"])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_models_map_clips_to_logits_and_features(name, norm):
    model = build_model(name, 5, (3, 8, 16, 16), width=8, depth=2, norm=norm)
    x = torch.rand(4, 3, 8, 16, 16)
    assert model(x).shape == (4, 5)
    feats = model.embed(x)
    assert feats.ndim == 2 and feats.shape[0] == 4
    assert model.classifier.in_features == feats.shape[1]


def test_batchnorm_layers_follow_the_norm_choice():
    assert len(batchnorm_layers(build_model("convnet3d", 3, (3, 8, 16, 16), width=8, depth=3))) == 3
    assert (
        batchnorm_layers(build_model("convnet3d", 3, (3, 8, 16, 16), width=8, norm="instance"))
        == []
    )


def test_seeded_build_is_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = build_model("convnet3d", 3, (3, 8, 16, 16), width=8, seed=7)
    b = build_model("convnet3d", 3, (3, 8, 16, 16), width=8, seed=7)
    c = build_model("convnet3d", 3, (3, 8, 16, 16), width=8, seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_convnet3d_pools_time_and_space():
    model = build_model("convnet3d", 3, (3, 8, 32, 32), width=4, depth=3)
    # three 2x2x2 pools: 8x32x32 -> 1x4x4, times 4 channels
    assert model.classifier.in_features == 4 * 1 * 4 * 4


def test_unknown_model_and_norm_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'vit'"):
        build_model("vit", 3, (3, 8, 16, 16))
    with pytest.raises(ValueError, match="unknown norm"):
        build_model("convnet3d", 3, (3, 8, 16, 16), norm="layer")


def test_torchvision_models_are_optional():
    assert "tv_r3d_18" in MODELS
    try:
        import torchvision  # noqa: F401

        available = True
    except Exception:
        available = False
    if available:
        model = build_model("tv_r3d_18", 4, (3, 8, 32, 32))
        assert model(torch.rand(2, 3, 8, 32, 32)).shape == (2, 4)
    else:
        with pytest.raises(ImportError, match="torchvision"):
            build_model("tv_r3d_18", 4, (3, 8, 32, 32))


def test_convnet3d_heads_pool_globally_or_flatten():
    shape = (3, 8, 32, 32)
    flat = build_model("convnet3d", 3, shape, width=4, depth=3, head="flatten", seed=0)
    gmp = build_model("convnet3d", 3, shape, width=4, depth=3, head="max", seed=0)
    assert flat.classifier.in_features == 4 * 4 * 4
    assert gmp.classifier.in_features == 4
    with pytest.raises(ValueError, match="unknown head"):
        build_model("convnet3d", 3, shape, head="attention")

"""Video classifiers: ConvNet3D (the video-distillation literature's network), a (2+1)D
factorised net, a small C3D-style net, and torchvision's video ResNets when torchvision imports.

Every model maps (N, C, T, H, W) clips to (N, classes) logits and exposes `embed(x)`, the
penultimate features used by herding, k-center and distribution matching.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

NORMS = ("batch", "instance", "none")
POOLINGS = ("avg", "max")
HEADS = ("flatten", "max", "avg")


def make_norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm3d, instance norm (GroupNorm with one group per channel, as in the DD literature) or none."""
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: choose one of {', '.join(NORMS)}")


def make_pool(kind: str, time_too: bool) -> nn.Module:
    """Halve H and W, and T while there is time left to halve."""
    size = (2, 2, 2) if time_too else (1, 2, 2)
    if kind == "avg":
        return nn.AvgPool3d(size, size)
    if kind == "max":
        return nn.MaxPool3d(size, size)
    raise ValueError(f"unknown pooling {kind!r}: choose one of {', '.join(POOLINGS)}")


class VideoClassifier(nn.Module):
    """A feature extractor followed by a linear head; `embed` gives the features."""

    def __init__(self, features: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.classifier = nn.Linear(feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def make_head(kind: str) -> nn.Module:
    """How the last feature map becomes a vector: flattened (position-aware, as in the DD
    literature's ConvNet) or pooled globally (position-free: max finds a small moving object
    wherever it is, where a flat map must learn every position from few clips)."""
    if kind == "flatten":
        return nn.Identity()
    if kind == "max":
        return nn.AdaptiveMaxPool3d(1)
    if kind == "avg":
        return nn.AdaptiveAvgPool3d(1)
    raise ValueError(f"unknown head {kind!r}: choose one of {', '.join(HEADS)}")


def _flat_dim(features: nn.Module, clip_shape: tuple[int, int, int, int]) -> int:
    was_training = features.training
    features.eval()
    with torch.no_grad():
        dim = torch.flatten(features(torch.zeros(1, *clip_shape)), 1).shape[1]
    features.train(was_training)
    return int(dim)


ClipShape = tuple[int, int, int, int]  # (channels, frames, height, width)


@dataclass(frozen=True)
class Arch:
    """What every builder is told: block width and count, norm, pooling and head."""

    width: int
    depth: int
    norm: str
    pooling: str
    head: str


# A bfloat16 weight gradient is trusted where it lies within this relative error of float32's
# (bf16 rounding gives about 0.004 on the probe; the failures below give 1 to 1e35)
BF16_GRAD_TOLERANCE = 0.05


# (geometry, input shape) -> whether bf16 gives the right weight gradient there
BF16_PROBES: dict[tuple, bool] = {}
BF16_PROBE_TRIALS = 3


def bf16_conv3d_grads_agree(geometry: tuple, input_shape: tuple[int, ...]) -> bool:
    """Whether CPU bfloat16 autocast gives this conv3d geometry (in, out, kernel, stride,
    padding, dilation, groups) on inputs of this shape the weight gradient float32 gives.

    torch 2.13.0's oneDNN (3.12) does not where an input extent is smaller than the kernel's
    (2-frame inputs to the default ConvNet3D's third block): relative errors of 1 to 1e35 and
    students that diverge (`python scripts/bf16_conv3d_check.py`). The wrong gradient comes from
    memory it does not initialise, so a probe can pass by chance (`--builds` of that script): such
    shapes run in float32 without a probe. The others are probed, a few times, once per process."""
    if kernel_exceeds_input(geometry, input_shape):
        return False
    key = (geometry, input_shape)
    if key not in BF16_PROBES:
        BF16_PROBES[key] = all(
            _probe_bf16_conv3d(geometry, input_shape, seed) for seed in range(BF16_PROBE_TRIALS)
        )
    return BF16_PROBES[key]


def kernel_exceeds_input(geometry: tuple, input_shape: tuple[int, ...]) -> bool:
    """Whether the (dilated) kernel spans more than the input along some axis."""
    kernel, dilation = geometry[2], geometry[5]
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)]
    return any(span > extent for span, extent in zip(spans, input_shape[2:], strict=True))


@torch.enable_grad()  # also when the layer runs under no_grad (relabelling, prediction)
def _probe_bf16_conv3d(geometry: tuple, input_shape: tuple[int, ...], seed: int = 0) -> bool:
    c_in, c_out, kernel, stride, padding, dilation, groups = geometry
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(input_shape, generator=g)
    weight = torch.randn(c_out, c_in // groups, *kernel, generator=g, requires_grad=True)
    conv = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out = torch.nn.functional.conv3d(x, weight, **conv)
    upstream = torch.randn(out.shape, generator=g)
    (exact,) = torch.autograd.grad(out, weight, upstream)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = torch.nn.functional.conv3d(x, weight, **conv)
    (approx,) = torch.autograd.grad(low, weight, upstream.to(low.dtype))
    error = (approx.float() - exact).abs().max() / exact.abs().max().clamp_min(1e-30)
    return bool(torch.isfinite(error) and error < BF16_GRAD_TOLERANCE)


class Conv3d(nn.Conv3d):
    """nn.Conv3d that runs in float32 where CPU bfloat16 autocast would give it a wrong weight
    gradient (see bf16_conv3d_grads_agree): the other layers keep bf16's speed."""

    def geometry(self) -> tuple:
        return (
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )

    def bf16_is_wrong(self, x: torch.Tensor) -> bool:
        # the forward is right in bf16: only a layer whose weight gradient is wanted can be wrong
        if x.device.type != "cpu" or not torch.is_grad_enabled():
            return False
        if not torch.is_autocast_enabled("cpu"):
            return False
        if torch.get_autocast_dtype("cpu") != torch.bfloat16:
            return False
        if isinstance(self.padding, str):  # "same" / "valid": probe what it resolves to
            return True
        if torch._C._functorch.is_batchedtensor(x):
            # inside vmap (stacked students) nothing random may run: a probe made before
            # (training.stacked warms them), else the safe float32
            return not BF16_PROBES.get((self.geometry(), tuple(x.shape)), False)
        return not bf16_conv3d_grads_agree(self.geometry(), tuple(x.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bf16_is_wrong(x):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def _conv_block(
    c_in: int, c_out: int, kernel: int | tuple[int, ...], padding: int | tuple[int, ...], norm: str
) -> list[nn.Module]:
    """conv - norm - ReLU, created in this order (the order fixes the seeded initialisation)."""
    return [Conv3d(c_in, c_out, kernel, padding=padding), make_norm(norm, c_out), nn.ReLU(True)]


def convnet3d(num_classes: int, clip_shape: ClipShape, arch: Arch) -> VideoClassifier:
    """ConvNet3D: `depth` blocks of conv3x3x3 - norm - ReLU - pool, then a linear layer on the map."""
    channels, frames, height, width_px = clip_shape
    layers: list[nn.Module] = []
    c_in = channels
    for _ in range(arch.depth):
        layers += _conv_block(c_in, arch.width, 3, 1, arch.norm)
        if min(height, width_px) >= 2:
            layers.append(make_pool(arch.pooling, time_too=frames >= 2))
            frames, height, width_px = max(1, frames // 2), height // 2, width_px // 2
        c_in = arch.width
    features = nn.Sequential(*layers, make_head(arch.head))
    return VideoClassifier(features, _flat_dim(features, clip_shape), num_classes)


def _pooled_head(arch: Arch) -> nn.Module:
    """The (2+1)D and C3D nets pool globally: a flat head falls back to average pooling."""
    return make_head(arch.head if arch.head != "flatten" else "avg")


def r2plus1d(num_classes: int, clip_shape: ClipShape, arch: Arch) -> VideoClassifier:
    """(2+1)D net: each block factorises a 3D conv into a spatial 1x3x3 and a temporal 3x1x1 conv."""
    frames = clip_shape[1]
    layers: list[nn.Module] = []
    c_in, width = clip_shape[0], arch.width
    for _ in range(arch.depth):
        layers += _conv_block(c_in, width, (1, 3, 3), (0, 1, 1), arch.norm)
        layers += _conv_block(width, width, (3, 1, 1), (1, 0, 0), arch.norm)
        layers.append(make_pool(arch.pooling, time_too=frames >= 2))
        frames = max(1, frames // 2)
        c_in = width
    layers.append(_pooled_head(arch))
    return VideoClassifier(nn.Sequential(*layers), width, num_classes)


def c3d_small(num_classes: int, clip_shape: ClipShape, arch: Arch) -> VideoClassifier:
    """A small C3D: first pool is spatial only (keeps early motion), later blocks double width."""
    frames = clip_shape[1]
    layers: list[nn.Module] = []
    c_in = clip_shape[0]
    for i in range(arch.depth):
        c_out = arch.width * (2 ** min(i, 2))
        layers += _conv_block(c_in, c_out, 3, 1, arch.norm)
        if i > 0:
            layers += _conv_block(c_out, c_out, 3, 1, arch.norm)
        time_too = i > 0 and frames >= 2
        layers.append(make_pool(arch.pooling, time_too=time_too))
        frames = max(1, frames // 2) if time_too else frames
        c_in = c_out
    layers.append(_pooled_head(arch))
    return VideoClassifier(nn.Sequential(*layers), c_in, num_classes)


def torchvision_video_resnet(
    num_classes: int,
    clip_shape: ClipShape,
    arch: str = "r3d_18",
) -> VideoClassifier:
    """torchvision's r3d_18 / mc3_18 / r2plus1d_18, randomly initialised (nothing is downloaded)."""
    try:
        from torchvision.models import video as tv_video  # lazy: optional and heavy
    except Exception as err:  # ImportError, or a torchvision built for another torch
        raise ImportError(
            "torchvision video models need a torchvision that loads with this torch: "
            "pip install 'tsgd[torchvision]' with a matching torch build"
        ) from err
    net = getattr(tv_video, arch)(weights=None)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return VideoClassifier(net, dim, num_classes)


MODELS: dict[str, Callable[..., VideoClassifier]] = {
    "convnet3d": convnet3d,
    "r2plus1d": r2plus1d,
    "c3d": c3d_small,
    "tv_r3d_18": lambda n, s, _: torchvision_video_resnet(n, s, arch="r3d_18"),
    "tv_r2plus1d_18": lambda n, s, _: torchvision_video_resnet(n, s, arch="r2plus1d_18"),
    "tv_mc3_18": lambda n, s, _: torchvision_video_resnet(n, s, arch="mc3_18"),
}


def build_model(
    name: str,
    num_classes: int,
    clip_shape: tuple[int, int, int, int],
    width: int = 32,
    depth: int = 3,
    norm: str = "batch",
    pooling: str = "avg",
    seed: int | None = None,
    head: str = "flatten",
) -> VideoClassifier:
    """Build a model by name; `seed` fixes its random initialisation."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    arch = Arch(width=width, depth=depth, norm=norm, pooling=pooling, head=head)
    if seed is None:
        return MODELS[name](num_classes, clip_shape, arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name](num_classes, clip_shape, arch)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm layers in forward order (the statistics TSGD matches)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


NORM_LAYERS = (nn.BatchNorm3d, nn.InstanceNorm3d, nn.GroupNorm)


def biases_removed_by_norm(model: nn.Module) -> set[str]:
    """State names of conv biases that the next (normalisation) layer subtracts again: their
    gradient is zero up to rounding, which Adam's step (divided by the gradient's own scale)
    turns into steps of +-lr, so two exact-equal trainings may differ there alone."""
    modules = list(model.named_modules())
    return {
        f"{name}.bias"
        for (name, layer), (_, after) in zip(modules, modules[1:], strict=False)
        if isinstance(layer, nn.Conv3d)
        and layer.bias is not None
        and isinstance(after, NORM_LAYERS)
    }

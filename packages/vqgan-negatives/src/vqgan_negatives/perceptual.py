"""Perceptual loss: LPIPS when its weights are on disk, otherwise a download-free random-feature network.

LPIPS (Zhang et al. 2018) needs two files: torchvision's ImageNet VGG16 (~528 MB, in no wheel) and the small
linear-head file ``vgg.pth`` (shipped inside the ``lpips`` and ``torchmetrics`` wheels). Both are looked up on disk
only (explicit paths, the torch hub cache, the installed packages) and loaded without running pickled code
(:func:`gencore.checkpoint.load_torch_file` with ``weights_only=True``). Without them the loss falls back to
:class:`RandomFeatureLoss`: a frozen, seeded, randomly initialised VGG-style conv net compared LPIPS-style
(channel-normalised features, squared differences, averaged). Random conv features still respond to edges, line
widths and local texture, which is what matters for line drawings; they know nothing of ImageNet semantics.
:func:`build_perceptual` returns the loss and a sentence saying which one is in use (logged and in README).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gencore.checkpoint import load_torch_file
from gencore.errors import ConfigError

__all__ = ["LPIPS", "RandomFeatureLoss", "build_perceptual", "find_lpips_files"]

_VGG_FILE = "vgg16-397923af.pth"


def _normalize_channels(x: torch.Tensor) -> torch.Tensor:
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)


def _to_rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class RandomFeatureLoss(nn.Module):
    """LPIPS-style distance over a frozen random conv net (seeded: every instance has identical weights)."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 64), seed: int = 1234) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        stages, c_in = [], 3
        for i, c in enumerate(widths):
            convs = [nn.Conv2d(c_in, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)]
            for conv in convs:  # Kaiming-normal from our own generator: independent of the global RNG
                fan_in = conv.weight[0].numel()
                conv.weight.data = torch.randn(conv.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
                conv.bias.data.zero_()
            pool = [nn.AvgPool2d(2)] if i > 0 else []
            stages.append(nn.Sequential(*pool, convs[0], nn.ReLU(), convs[1], nn.ReLU()))
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image distance (B,) between images in [-1, 1]."""
        total = x.new_zeros(len(x))
        fx, fy = _to_rgb(x), _to_rgb(y)
        for stage in self.stages:
            fx, fy = stage(fx), stage(fy)
            total = total + (_normalize_channels(fx) - _normalize_channels(fy)).pow(2).sum(1).mean((1, 2))
        return total


class LPIPS(nn.Module):
    """LPIPS-VGG: ImageNet VGG16 features at five ReLUs, unit-normalised, weighted by 1x1 linear heads."""

    _CUTS = (4, 9, 16, 23, 30)  # ends of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in vgg16().features

    def __init__(
        self,
        vgg_state: dict[str, torch.Tensor],
        head_state: dict[str, torch.Tensor],
        sources: tuple[str | Path, str | Path] = ("the VGG16 weights", "the LPIPS weights"),
    ) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        from gencore.weights import load_weights

        features = make_layers(cfgs["D"])  # VGG16's convolutional part (the classifier is not needed)
        load_weights(features, vgg_state, sources[0], "torchvision's VGG16 ImageNet weights", prefix="features.")
        starts = (0, *self._CUTS[:-1])
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in zip(starts, self._CUTS))
        widths = (64, 128, 256, 512, 512)
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in widths)
        # laid out like the lpips package's file: lin0.model.1.weight ... lin4.model.1.weight
        layout = nn.ModuleDict({f"lin{i}": nn.ModuleDict({"model": nn.Sequential(nn.Dropout(), head)})
                                for i, head in enumerate(self.heads)})  # fmt: skip
        load_weights(layout, head_state, sources[1], "the LPIPS-VGG linear heads (vgg.pth)")
        # LPIPS's input scaling (inputs in [-1, 1])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image distance (B,) between images in [-1, 1]."""
        fx = (_to_rgb(x) - self.shift) / self.scale
        fy = (_to_rgb(y) - self.shift) / self.scale
        total = x.new_zeros(len(x))
        for stage, head in zip(self.slices, self.heads):
            fx, fy = stage(fx), stage(fy)
            total = total + head((_normalize_channels(fx) - _normalize_channels(fy)).pow(2)).mean((1, 2, 3))
        return total


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # locate without importing (torchmetrics imports are slow)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


def find_lpips_files(vgg_weights: str | None = None, lpips_weights: str | None = None) -> tuple[Path, Path] | None:
    """Paths of (VGG16 weights, LPIPS heads) found on disk, or None. Explicit paths must exist."""
    for given in (vgg_weights, lpips_weights):
        if given is not None and not Path(given).is_file():
            raise ConfigError(f"perceptual weights file not found: {given}")
    vgg = Path(vgg_weights) if vgg_weights else Path(torch.hub.get_dir()) / "checkpoints" / _VGG_FILE
    heads = Path(lpips_weights) if lpips_weights else (
        _package_file("lpips", "weights", "v0.1", "vgg.pth")
        or _package_file("torchmetrics", "functional", "image", "lpips_models", "vgg.pth")
    )  # fmt: skip
    if vgg.is_file() and heads is not None and heads.is_file():
        return vgg, heads
    return None


def build_perceptual(
    kind: str = "auto", vgg_weights: str | None = None, lpips_weights: str | None = None
) -> tuple[nn.Module | None, str]:
    """The perceptual loss for ``kind`` (auto | lpips | random | none) and a sentence saying which it is."""
    if kind == "none":
        return None, "perceptual loss: off"
    if kind in ("auto", "lpips"):
        found = find_lpips_files(vgg_weights, lpips_weights)
        if found is not None:
            vgg = load_torch_file(found[0], weights_only=True)
            heads = load_torch_file(found[1], weights_only=True)
            return LPIPS(vgg, heads, found).eval(), f"perceptual loss: LPIPS-VGG16 ({found[0]}, {found[1]})"
        if kind == "lpips":
            raise ConfigError(
                f"LPIPS weights not found: put torchvision's {_VGG_FILE} in {torch.hub.get_dir()}/checkpoints "
                "(or pass loss.vgg_weights) and install lpips or torchmetrics (or pass loss.lpips_weights)"
            )
    if kind not in ("auto", "random"):
        raise ConfigError(f"unknown perceptual loss {kind!r} (auto | lpips | random | none)")
    why = "" if kind == "random" else " (no VGG16/LPIPS weights on disk)"
    return RandomFeatureLoss().eval(), f"perceptual loss: frozen random-feature network, download-free{why}"


def perceptual_distance(loss: nn.Module | None, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean perceptual distance, 0 when the loss is off; inputs are resized up to 32 px if smaller."""
    if loss is None:
        return x.new_zeros(())
    if x.shape[-1] < 32:  # the deeper stages would see 1-2 pixels
        x, y = F.interpolate(x, size=32, mode="bilinear"), F.interpolate(y, size=32, mode="bilinear")
    return loss(x, y).mean()

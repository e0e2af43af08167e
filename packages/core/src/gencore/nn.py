"""Building blocks used by two or more packages. A block used by one package lives in that package."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = [
    "Normalize",
    "ConvBlock",
    "ResBlock",
    "Upsample",
    "Downsample",
    "SelfAttention2d",
    "AdaIN",
    "add_spectral_norm",
    "init_normal",
]


def Normalize(channels: int, groups: int = 32) -> nn.GroupNorm:  # noqa: N802 - reads like a layer
    """GroupNorm with the largest group count <= ``groups`` that divides ``channels``."""
    g = math.gcd(channels, groups)
    return nn.GroupNorm(g, channels, eps=1e-6, affine=True)


class ConvBlock(nn.Sequential):
    """Conv -> optional norm ("batch", "instance", "group", None) -> activation."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 3,
        stride: int = 1,
        norm: str | None = "batch",
        act: str = "relu",
        transpose: bool = False,
    ) -> None:
        pad = (kernel - 1) // 2 if not transpose else (kernel - stride) // 2
        conv_cls = nn.ConvTranspose2d if transpose else nn.Conv2d
        layers: list[nn.Module] = [conv_cls(c_in, c_out, kernel, stride, pad, bias=norm is None)]
        if norm == "batch":
            layers.append(nn.BatchNorm2d(c_out))
        elif norm == "instance":
            layers.append(nn.InstanceNorm2d(c_out, affine=True))
        elif norm == "group":
            layers.append(Normalize(c_out))
        elif norm is not None:
            raise ValueError(f"unknown norm {norm!r}")
        layers.append(_activation(act))
        super().__init__(*layers)


def _activation(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU(), "lrelu": nn.LeakyReLU(0.2), "silu": nn.SiLU(), "tanh": nn.Tanh(), "none": nn.Identity()}
    if name not in acts:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(acts)}")
    return acts[name]


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice with a skip; the last conv starts at zero so the block starts as identity."""

    def __init__(self, c_in: int, c_out: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        c_out = c_out or c_in
        self.body = nn.Sequential(
            Normalize(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
            Normalize(c_out), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(c_out, c_out, 3, padding=1),
        )  # fmt: skip
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2, optionally followed by a 3x3 conv (avoids transposed-conv checkerboards)."""

    def __init__(self, channels: int, conv: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if conv else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Downsample(nn.Module):
    """Stride-2 3x3 conv, or 2x2 average pooling when ``conv`` is False."""

    def __init__(self, channels: int, conv: bool = True) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1) if conv else nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class SelfAttention2d(nn.Module):
    """Single-head spatial self-attention with a residual connection (VQGAN/DDPM style)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = Normalize(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        q, k, v = rearrange(self.qkv(self.norm(x)), "b (three c) h w -> three b 1 (h w) c", three=3)
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(rearrange(out, "b 1 (h w) c -> b c h w", h=h, w=w))


class AdaIN(nn.Module):
    """Adaptive instance norm: normalise ``x`` per channel, then scale/shift from a style vector."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.affine = nn.Linear(style_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        with torch.no_grad():  # start as plain instance norm: gamma = 1, beta = 0
            self.affine.bias.copy_(torch.cat([torch.ones(channels), torch.zeros(channels)]))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = rearrange(self.affine(style), "b (two c) -> two b c 1 1", two=2)
        return gamma * self.norm(x) + beta


def add_spectral_norm(module: nn.Module, types: tuple[type, ...] = (nn.Conv2d, nn.Linear)) -> nn.Module:
    """Apply spectral normalisation to every layer of ``types`` inside ``module`` (in place); returns it."""
    for name, child in list(module.named_children()):
        if isinstance(child, types):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            add_spectral_norm(child, types)
    return module


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN initialisation: conv/linear weights N(0, std), norm weights N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)

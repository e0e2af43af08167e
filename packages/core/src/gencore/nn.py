"""Building blocks used by two or more packages. A block used by one package lives in that package.

:func:`evaluating` (eval mode for a block of code, each module's own mode restored after, also on an error),
:func:`Normalize` (GroupNorm with a group count that divides the channels), :class:`Upsample`, :class:`Downsample`,
:class:`AdaIN` and :func:`add_spectral_norm`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = [
    "evaluating",
    "Normalize",
    "Upsample",
    "Downsample",
    "AdaIN",
    "add_spectral_norm",
]


@contextlib.contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode for the ``with`` block; on leaving it, also by an exception, every one of them
    and every submodule gets back the mode it had before (a part its owner keeps in eval mode stays so)::

        with torch.no_grad(), evaluating(generator, recognizer):
            accuracy = (recognizer(generator(z)).argmax(1) == y).float().mean()
    """
    tops = [(module, module.training) for module in modules]
    before = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, was in tops:  # through train(), as module.train(was) did, for a module that overrides it
            module.train(was)
        for m, was in before:  # then every submodule exactly as it was
            m.training = was


def Normalize(channels: int, groups: int = 32) -> nn.GroupNorm:  # noqa: N802 - reads like a layer
    """GroupNorm with the largest group count <= ``groups`` that divides ``channels``."""
    g = math.gcd(channels, groups)
    return nn.GroupNorm(g, channels, eps=1e-6, affine=True)


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

"""Differentiable augmentation for GAN training on small data sets (DiffAugment, Zhao et al. 2020).

With a few thousand training images a discriminator (or an auxiliary classifier) learns the training set by heart
and the generator is then steered by features no real image distribution has. DiffAugment applies the *same kind*
of random transform to real and generated images every time a network sees them, so that nothing the transform
destroys can tell the two apart, and it is differentiable, so the generator's gradient passes through it. The
transforms are drawn per image from torch's global RNG (reproducible under :func:`gencore.train.seed_everything`
and restored on resume with the rest of the RNG state).

Policies (comma-separated): ``translation`` (integer shifts up to ``translation`` of the size, in both axes),
``cutout`` (one square of side ``cutout`` of the size set to ``fill``, at a random place), ``color`` (brightness
± 0.5 and contrast × [0.5, 1.5] of images in [-1, 1], as in the paper). Pixels shifted in take ``fill`` too, so a
data set with a known background (e.g. white = +1) stays plausible; the paper fills with 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gencore.errors import ConfigError

if TYPE_CHECKING:
    import torch

# torch is imported by the functions that use it, so that a config module validating its policy with
# parse_policy (ganwriting-music's) stays light for `--help` and `--print-config`.

POLICIES = ("translation", "cutout", "color")


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ("translation", "cutout"); an empty string is no augmentation; unknown names
    raise a :class:`~gencore.errors.ConfigError` naming them."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ConfigError(f"unknown augmentation {', '.join(unknown)!s} (known: {', '.join(POLICIES)})")
    return names


def diff_augment(
    x: torch.Tensor, policy: str, translation: float = 0.125, cutout: float = 0.5, fill: float = 0.0
) -> torch.Tensor:
    """Augment a batch (B, C, H, W) with ``policy`` (see the module docstring); differentiable in ``x``."""
    for name in parse_policy(policy):
        if name == "color":
            x = _color(x)
        elif name == "translation":
            x = _translate(x, translation, fill)
        else:
            x = _cutout(x, cutout, fill)
    return x


def _color(x: torch.Tensor) -> torch.Tensor:
    import torch

    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translate(x: torch.Tensor, ratio: float, fill: float) -> torch.Tensor:
    import torch

    b, c, h, w = x.shape
    max_y, max_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if max_x == 0 and max_y == 0:
        return x
    dy = torch.randint(-max_y, max_y + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-max_x, max_x + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] - dy  # source pixel of every output pixel
    cols = torch.arange(w, device=x.device)[None, None, :] - dx
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)  # (B, H, W)
    # an integer shift is a gather (exact, no interpolation blur); what comes from outside the image is fill
    index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).reshape(b, 1, h * w).expand(-1, c, -1)
    out = x.flatten(2).gather(2, index).view_as(x)
    return torch.where(inside[:, None], out, torch.full_like(out, fill))


def _cutout(x: torch.Tensor, ratio: float, fill: float) -> torch.Tensor:
    import torch

    b, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if size_x == 0 or size_y == 0:
        return x
    # the square's top-left corner may lie outside, so that every pixel is as likely to be cut (as in the paper)
    top = torch.randint(-(size_y // 2), h - size_y // 2, (b, 1, 1), device=x.device)
    left = torch.randint(-(size_x // 2), w - size_x // 2, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] - top
    cols = torch.arange(w, device=x.device)[None, None, :] - left
    hole = (rows >= 0) & (rows < size_y) & (cols >= 0) & (cols < size_x)
    return torch.where(hole[:, None], torch.full_like(x, fill), x)

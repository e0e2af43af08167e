"""DiffAugment: exact integer shifts, a cut-out square of the asked size, gradients through every transform, the
global RNG as its only source of randomness, and a clear error for unknown policies."""

from __future__ import annotations

import pytest
import torch

from gencore.augment import diff_augment, parse_policy
from gencore.errors import ConfigError


def _batch() -> torch.Tensor:
    return torch.arange(4 * 2 * 8 * 8, dtype=torch.float32).view(4, 2, 8, 8)


def test_translation_is_an_exact_integer_shift_with_fill():
    torch.manual_seed(0)
    x = _batch()
    out = diff_augment(x, "translation", translation=0.25, fill=-7.0)
    for b in range(len(x)):
        # find the shift: the output holds a block of the input moved by (dy, dx), the rest is fill
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(out[b], _shifted(x[b], dy, dx, -7.0))]  # fmt: skip
        assert len(matches) == 1
    assert not torch.equal(out, x)  # four images, 25 shifts each: some moved


def _shifted(image: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    out = torch.full_like(image, fill)
    h, w = image.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_cutout_fills_one_square_of_the_asked_size_at_most():
    torch.manual_seed(1)
    x = torch.zeros(64, 1, 8, 8)
    out = diff_augment(x, "cutout", cutout=0.5, fill=1.0)
    holes = out[:, 0] == 1.0
    assert holes.flatten(1).sum(1).max() == 16  # a 4×4 square where it lies wholly inside
    assert (holes.flatten(1).sum(1) > 0).all()  # always some of it inside
    for hole in holes:
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert hole.sum() == len(rows) * len(cols)  # a rectangle (the square clipped at the border)
        assert len(rows) <= 4 and len(cols) <= 4


def test_gradients_pass_and_randomness_comes_from_the_seeded_rng():
    x = torch.rand(3, 1, 16, 16, requires_grad=True)
    torch.manual_seed(5)
    a = diff_augment(x, "color,translation,cutout")
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.manual_seed(5)
    assert torch.equal(a, diff_augment(x, "color,translation,cutout"))
    assert torch.equal(diff_augment(x, ""), x)


def test_color_changes_brightness_and_contrast_per_image():
    torch.manual_seed(2)
    x = torch.rand(8, 1, 4, 4) * 2 - 1
    out = diff_augment(x, "color")
    assert not torch.allclose(out.mean((1, 2, 3)) - x.mean((1, 2, 3)), torch.zeros(8))
    ratio = out.std((1, 2, 3)) / x.std((1, 2, 3))
    assert ((ratio >= 0.5 - 1e-5) & (ratio <= 1.5 + 1e-5)).all() and ratio.std() > 0


def test_unknown_policy_names_it():
    assert parse_policy(" translation , cutout ") == ("translation", "cutout")
    with pytest.raises(ConfigError, match="unknown augmentation flip"):
        parse_policy("translation,flip")

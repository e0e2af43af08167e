"""The spatial text map of a conditioned model: every character's embedding laid out at its slot across the width.

A CAPTCHA renderer draws the characters left to right, so character k of an n-character text lies (up to jitter)
around a known fraction of the width. :class:`TextMap` turns the one-hot text (``HVAE.encode_text``) into a
feature map (B, D, H, W) at any resolution: at column x, the sum over characters of
``(char_embedding + position_embedding) · exp(-(x - centre_k)² / 2σ²)``, with ``centre_k`` the middle of slot k
of ``n`` equal slots over ``span`` and σ = ``slot_width`` slots; padding positions contribute nothing. The map is
constant over the height (characters fill it) and costs no image-sized layer.

With ``with_layout`` the conditioning vector carries, after the one-hot, each character's true centre (a fraction
of the width, recorded by the renderer), and the bumps sit there instead of at the slots.
"""

from __future__ import annotations

import torch
from torch import nn


class TextMap(nn.Module):
    """One-hot texts (B, text_length · symbols) -> text maps (B, channels, H, W); the last symbol is padding."""

    def __init__(
        self, symbols: int, text_length: int, channels: int, span: tuple[float, float], slot_width: float,
        with_layout: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.symbols, self.text_length, self.with_layout = symbols, text_length, with_layout
        self.span, self.slot_width = (float(span[0]), float(span[1])), float(slot_width)
        self.char = nn.Linear(symbols, channels, bias=False)
        # which slot a glyph sits in also matters to the decoder (neighbouring bumps overlap), so positions get
        # their own small embedding on top of the character's
        self.position = nn.Parameter(0.1 * torch.randn(text_length, channels))

    def split(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The conditioning vector -> (one-hot (B, text_length · symbols), centres (B, text_length) or None)."""
        width = self.text_length * self.symbols
        return y[:, :width], (y[:, width:] if self.with_layout else None)

    def layout(self, y: torch.Tensor, width: int, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """(B, text_length, width) weights: each present character's Gaussian bump over the columns.

        ``offsets`` (B, text_length), in slot widths, move the bumps (the model draws them from its top latent).
        """
        onehot, centres = self.split(y)
        y = onehot.reshape(len(onehot), self.text_length, self.symbols)
        present = 1.0 - y[..., -1]  # texts are left-aligned, padding after them
        count = present.sum(1, keepdim=True).clamp(min=1.0)
        start, end = self.span
        slot = (end - start) / count  # (B, 1)
        k = torch.arange(self.text_length, device=y.device, dtype=y.dtype)
        shift = (offsets if offsets is not None else 0.0) * slot
        centre = (start + (k + 0.5) * slot if centres is None else centres) + shift  # (B, T)
        x = (torch.arange(width, device=y.device, dtype=y.dtype) + 0.5) / width
        distance = (x[None, None, :] - centre[..., None]) / (self.slot_width * slot[..., None])
        return torch.exp(-0.5 * distance.pow(2)) * present[..., None]

    def forward(self, y: torch.Tensor, size: tuple[int, int], offsets: torch.Tensor | None = None) -> torch.Tensor:
        """The text map at ``size`` = (H, W), bumps moved by ``offsets`` (see :meth:`layout`)."""
        onehot = self.split(y)[0].reshape(len(y), self.text_length, self.symbols)
        embedding = self.char(onehot) + self.position  # (B, T, D)
        columns = torch.einsum("btd,btw->bdw", embedding, self.layout(y, size[1], offsets))
        return columns[:, :, None, :].expand(-1, -1, size[0], -1)

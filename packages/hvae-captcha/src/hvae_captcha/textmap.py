"""The spatial text map of a conditioned model: every character's embedding laid out at its slot across the width.

A CAPTCHA renderer draws the characters left to right, so character k of an n-character text lies (up to jitter)
around a known fraction of the width. :class:`TextMap` turns the one-hot text (``HVAE.encode_text``) into a
feature map (B, D, H, W) at any resolution: at column x, the sum over characters of
``(char_embedding + position_embedding) · exp(-(x - centre_k)² / 2σ²)``, with ``centre_k`` the middle of slot k
of ``n`` equal slots over ``span`` and σ = ``slot_width`` slots; padding positions contribute nothing. The map is
constant over the height (characters fill it) and costs no image-sized layer.

With ``with_layout`` the conditioning vector carries, after the one-hot, each character's true centre (a fraction
of the width, recorded by the renderer), and the bumps sit there instead of at the slots.

With a glyph bank (:func:`render_glyphs`: every vocabulary character drawn once, upright, in one font, at the
model's height) the map also paints a second embedding of each character in the *shape* of its glyph, centred where
the bump is: ``Σ_k glyph_embedding_k · glyph_k(row, column - centre_k)``, area-averaged to the resolution asked for.
The bump says which character is where; the glyph says what it looks like, so the decoder need not invent the
letter shapes from a code that is constant over the height.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gencore.errors import ConfigError


def default_glyph_font() -> str:
    """The TrueType font the captcha library draws with by default (DroidSansMono, shipped with it)."""
    from captcha.image import DEFAULT_FONTS

    return DEFAULT_FONTS[0]


def render_glyphs(characters: str, height: int, font: str = "") -> torch.Tensor:
    """(len(characters) + 1, height, height) ink in [0, 1]: each character upright, centred, its font size the
    height (the captcha library's middle size on its 50-pixel canvas); the last plane (padding) is empty."""
    from PIL import Image, ImageDraw, ImageFont

    path = font or default_glyph_font()
    if not Path(path).is_file():
        raise ConfigError(f"model.text_glyph_font: font file not found: {path}")
    try:
        face = ImageFont.truetype(path, height)
    except OSError as exc:
        raise ConfigError(f"model.text_glyph_font: not a TrueType font: {path} ({exc})") from None
    bank = torch.zeros(len(characters) + 1, height, height)
    for i, ch in enumerate(characters):
        canvas = Image.new("L", (height, height), 0)
        draw = ImageDraw.Draw(canvas)
        left, top, right, bottom = draw.textbbox((0, 0), ch, font=face)
        draw.text(((height - (right - left)) / 2 - left, (height - (bottom - top)) / 2 - top), ch, fill=255, font=face)
        bank[i] = torch.frombuffer(bytearray(canvas.tobytes()), dtype=torch.uint8).view(height, height) / 255.0
    return bank


class TextMap(nn.Module):
    """One-hot texts (B, text_length · symbols) -> text maps (B, channels, H, W); the last symbol is padding."""

    def __init__(
        self, symbols: int, text_length: int, channels: int, span: tuple[float, float], slot_width: float,
        with_layout: bool = False, glyphs: torch.Tensor | None = None, image_width: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.symbols, self.text_length, self.with_layout = symbols, text_length, with_layout
        self.span, self.slot_width = (float(span[0]), float(span[1])), float(slot_width)
        self.char = nn.Linear(symbols, channels, bias=False)
        # which slot a glyph sits in also matters to the decoder (neighbouring bumps overlap), so positions get
        # their own small embedding on top of the character's
        self.position = nn.Parameter(0.1 * torch.randn(text_length, channels))
        self.glyph_char = None
        if glyphs is not None:  # (symbols, H, G): rendered, not learned, so not saved with the weights
            if len(glyphs) != symbols:
                raise ValueError(f"the glyph bank has {len(glyphs)} planes for {symbols} symbols")
            self.register_buffer("glyphs", glyphs, persistent=False)
            self.image_width = image_width  # glyphs are pasted at the image's size, then averaged down
            self.glyph_char = nn.Linear(symbols, channels, bias=False)

    def split(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The conditioning vector -> (one-hot (B, text_length · symbols), centres (B, text_length) or None)."""
        width = self.text_length * self.symbols
        return y[:, :width], (y[:, width:] if self.with_layout else None)

    def layout(self, y: torch.Tensor, width: int, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """(B, text_length, width) weights: each present character's Gaussian bump over the columns.

        ``offsets`` (B, text_length), in slot widths, move the bumps (the model draws them from its top latent).
        """
        present, slot = self._slots(y)
        centre = self.centres(y, offsets)  # (B, T)
        x = (torch.arange(width, device=y.device, dtype=y.dtype) + 0.5) / width
        distance = (x[None, None, :] - centre[..., None]) / (self.slot_width * slot[..., None])
        return torch.exp(-0.5 * distance.pow(2)) * present[..., None]

    def _slots(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, text_length) 1 where a character is present (texts are left-aligned, padding after them), and
        (B, 1) the slot width of each text (its characters share the span)."""
        onehot = self.split(y)[0].reshape(len(y), self.text_length, self.symbols)
        present = 1.0 - onehot[..., -1]
        start, end = self.span
        return present, (end - start) / present.sum(1, keepdim=True).clamp(min=1.0)

    def centres(self, y: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """(B, text_length) centre of every character as a fraction of the width (where its bump peaks)."""
        centres = self.split(y)[1]
        slot = self._slots(y)[1]
        start = self.span[0]
        k = torch.arange(self.text_length, device=y.device, dtype=y.dtype)
        shift = (offsets if offsets is not None else 0.0) * slot
        return (start + (k + 0.5) * slot if centres is None else centres) + shift

    def glyph_canvas(self, y: torch.Tensor, width: int, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """(B, text_length, H, width): each character's glyph pasted at its centre (whole pixels), H the bank's."""
        onehot = self.split(y)[0].reshape(len(y), self.text_length, self.symbols)
        bank = self.glyphs[onehot.argmax(-1)]  # (B, T, H, G); padding draws the empty plane
        g = bank.shape[-1]
        left = torch.round(self.centres(y, offsets).detach() * width - g / 2).long()  # (B, T)
        column = torch.arange(width, device=y.device)[None, None, :] - left[..., None]  # glyph column per x
        inside = ((column >= 0) & (column < g)).to(bank.dtype)
        index = column.clamp(0, g - 1)[:, :, None, :].expand(-1, -1, bank.shape[2], -1)
        return torch.gather(bank, 3, index) * inside[:, :, None, :]

    def forward(self, y: torch.Tensor, size: tuple[int, int], offsets: torch.Tensor | None = None) -> torch.Tensor:
        """The text map at ``size`` = (H, W), bumps moved by ``offsets`` (see :meth:`layout`)."""
        onehot = self.split(y)[0].reshape(len(y), self.text_length, self.symbols)
        embedding = self.char(onehot) + self.position  # (B, T, D)
        columns = torch.einsum("btd,btw->bdw", embedding, self.layout(y, size[1], offsets))
        out = columns[:, :, None, :].expand(-1, -1, size[0], -1)
        if self.glyph_char is None:
            return out
        canvas = self.glyph_canvas(y, self.image_width, offsets)
        if canvas.shape[-2:] != tuple(size):
            canvas = F.adaptive_avg_pool2d(canvas, size)
        return out + torch.einsum("btd,bthw->bdhw", self.glyph_char(onehot) + self.position, canvas)

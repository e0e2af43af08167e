"""The first stage: encoder, vector quantizer, decoder (taming's VQGAN layout) and the PatchGAN discriminator.

Read top to bottom: :class:`ResBlock` and :class:`SelfAttention2d` are the blocks both halves are built of,
:class:`Encoder` halves the resolution ``len(ch_mult) - 1`` times, :class:`VQModel` projects
the encoder output to ``codebook_dim`` and quantizes it, :class:`Decoder` mirrors the encoder back to pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from gencore.checkpoint import PretrainedMixin
from vqgan_negatives.config import DiscriminatorConfig, VQModelConfig
from vqgan_negatives.quantize import VectorQuantizer

__all__ = ["ResBlock", "SelfAttention2d", "Encoder", "Decoder", "VQModel", "PatchDiscriminator"]


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
    """Stride-2 3x3 conv, or 2x2 average pooling when ``conv`` is False.

    ``asymmetric``: pad one zero row/column at the bottom/right only, then convolve without padding (taming's
    layout; the same weights, other outputs than the default's one-pixel padding on every side).
    """

    def __init__(self, channels: int, conv: bool = True, asymmetric: bool = False) -> None:
        super().__init__()
        self.pad = (0, 1, 0, 1) if conv and asymmetric else None
        padding = 0 if self.pad else 1
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=padding) if conv else nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        return self.op(x)




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


class Encoder(nn.Module):
    """conv -> per level: res blocks (+ attention at ``attn_resolutions``), downsample -> middle -> z_channels."""

    def __init__(self, cfg: VQModelConfig) -> None:
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        stem = cfg.stem_channels or chans[0]
        self.conv_in = nn.Conv2d(cfg.in_channels, stem, 3, padding=1)
        layers: list[nn.Module] = []
        c_in, res = stem, cfg.resolution
        for level, c_out in enumerate(chans):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(c_in, c_out, cfg.dropout))
                c_in = c_out
                if res in cfg.attn_resolutions:
                    layers.append(SelfAttention2d(c_in))
            if level < len(chans) - 1:
                layers.append(Downsample(c_in, asymmetric=cfg.asymmetric_downsample))
                res //= 2
        self.down = nn.Sequential(*layers)
        self.mid = nn.Sequential(ResBlock(c_in, dropout=cfg.dropout), SelfAttention2d(c_in),
                                 ResBlock(c_in, dropout=cfg.dropout))  # fmt: skip
        self.out = nn.Sequential(Normalize(c_in), nn.SiLU(), nn.Conv2d(c_in, cfg.z_channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mid(self.down(self.conv_in(x))))


class Decoder(nn.Module):
    """z_channels -> middle -> per level (coarse to fine): res blocks (+ attention), upsample -> pixels."""

    def __init__(self, cfg: VQModelConfig) -> None:
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        c_in, res = chans[-1], cfg.code_side
        self.conv_in = nn.Conv2d(cfg.z_channels, c_in, 3, padding=1)
        self.mid = nn.Sequential(ResBlock(c_in, dropout=cfg.dropout), SelfAttention2d(c_in),
                                 ResBlock(c_in, dropout=cfg.dropout))  # fmt: skip
        layers: list[nn.Module] = []
        for level in reversed(range(len(chans))):
            for _ in range(cfg.num_res_blocks + 1):  # one more than the encoder, as in taming
                layers.append(ResBlock(c_in, chans[level], cfg.dropout))
                c_in = chans[level]
                if res in cfg.attn_resolutions:
                    layers.append(SelfAttention2d(c_in))
            if level > 0:
                layers.append(Upsample(c_in))
                res *= 2
        self.up = nn.Sequential(*layers)
        self.norm_out = nn.Sequential(Normalize(c_in), nn.SiLU())
        self.conv_out = nn.Conv2d(c_in, cfg.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.norm_out(self.up(self.mid(self.conv_in(z)))))


class VQModel(PretrainedMixin, nn.Module):
    """Encoder -> 1x1 projection to codebook_dim -> quantizer -> 1x1 projection back -> decoder."""

    config_class = VQModelConfig

    def __init__(self, config: VQModelConfig) -> None:
        super().__init__()
        self.config = config
        q = config.quantizer
        self.encoder = Encoder(config)
        self.quant_conv = nn.Conv2d(config.z_channels, q.codebook_dim, 1)
        self.quantizer = VectorQuantizer(q)
        self.post_quant_conv = nn.Conv2d(q.codebook_dim, config.z_channels, 1)
        self.decoder = Decoder(config)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) in [-1, 1] -> (quantized (B, D, h, w), codebook loss, indices (B, h, w))."""
        return self.quantizer(self.quant_conv(self.encoder(x)))

    def decode(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(quantized))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Code indices (B, h, w) -> images (B, C, H, W)."""
        return self.decode(self.quantizer.lookup(indices))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (reconstruction, codebook loss, indices)."""
        quantized, loss, indices = self.encode(x)
        return self.decode(quantized), loss, indices

    @property
    def last_layer(self) -> torch.Tensor:
        """The decoder's output weight, where the adaptive GAN weight compares gradient norms."""
        return self.decoder.conv_out.weight


class PatchDiscriminator(PretrainedMixin, nn.Module):
    """PatchGAN: 4x4 convs, ``n_layers`` stride-2 stages, BatchNorm + LeakyReLU(0.2); a logit per patch."""

    config_class = DiscriminatorConfig

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        ndf = config.ndf
        layers: list[nn.Module] = [nn.Conv2d(config.in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, config.n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < config.n_layers else 1  # the last stage keeps the resolution (patch logits)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                       nn.LeakyReLU(0.2)]  # fmt: skip
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        for m in self.modules():  # pix2pix initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

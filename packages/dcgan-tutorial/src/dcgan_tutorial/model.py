"""The lesson's two GANs: a fully connected one and DCGAN (Radford et al. 2015) for any power-of-two size.

Both discriminators return logits (no sigmoid): the losses in gencore.losses work on logits, which stays
numerically safe under mixed precision, unlike BCELoss on sigmoid outputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dcgan_tutorial.config import ModelConfig
from gencore.checkpoint import PretrainedMixin


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


def _widths(base: int, n: int, cap: int = 8) -> list[int]:
    """Channel widths from the 4×4 end to the image end: base·8, base·4, base·2, base (capped at base·cap)."""
    return [base * min(2 ** (n - 1 - i), cap) for i in range(n)]


class DCGANGenerator(PretrainedMixin, nn.Module):
    """z (nz) -> 4×4 by a transposed conv, then ×2 per block (ConvT 4/2/1 + BatchNorm + ReLU), tanh output."""

    config_class = ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        n = int(math.log2(config.image_size)) - 2  # blocks after the 4×4 start; 64 px -> 4 (the reference)
        widths = _widths(config.ngf, n)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.nz, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(True),
        ]  # fmt: skip
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], config.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(PretrainedMixin, nn.Module):
    """Mirror of the generator: strided convs (LeakyReLU 0.2, BatchNorm but not on the first), 4×4 -> 1 logit."""

    config_class = ModelConfig

    def __init__(self, config: ModelConfig, batch_norm: bool = True) -> None:
        super().__init__()
        self.config = config
        n = int(math.log2(config.image_size)) - 2
        widths = list(reversed(_widths(config.ndf, n)))
        layers: list[nn.Module] = [nn.Conv2d(config.channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            norm = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), norm, nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class FCGenerator(PretrainedMixin, nn.Module):
    """The lesson's generator: nz -> 256 -> 512 -> 1024 -> pixels, LeakyReLU 0.2, tanh output."""

    config_class = ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        sizes = [config.nz, *config.fc_hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, True)]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], config.channels * config.image_size**2), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c, s = self.config.channels, self.config.image_size
        return self.net(z.view(z.shape[0], -1)).view(-1, c, s, s)


class FCDiscriminator(PretrainedMixin, nn.Module):
    """pixels -> 1024 -> 512 -> 256 -> 1 logit, LeakyReLU 0.2."""

    config_class = ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        sizes = [config.channels * config.image_size**2, *reversed(config.fc_hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, True)]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).view(-1)


def build_models(config: ModelConfig, wgan_gp: bool = False) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for ``config``; WGAN-GP drops BatchNorm from D (the penalty is per sample)."""
    if config.kind == "fc":
        return FCGenerator(config), FCDiscriminator(config)
    return DCGANGenerator(config), DCGANDiscriminator(config, batch_norm=not wgan_gp)

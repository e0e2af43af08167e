"""An autoregressive prior for one spatial latent level: p(z) = Π_t N(z_t; mu_t(z_<t), var_t(z_<t)).

A factorized prior p(z_l|z_{l+1}) draws every unit of a latent map independently given the level above, so a
prior sample of z_1 mixes the codes of different fonts, sizes and warps cell by cell and decodes to a blur where a
glyph should be, while the posterior codes real glyphs. Here the positions of the (C, H, W) map are read in
column-major order (left to right, top to bottom within a column: a CAPTCHA glyph is a few consecutive columns),
and the C channels of position t are a diagonal Gaussian whose parameters are the factorized prior's, corrected by
a causal convolution stack over the earlier positions (and a 1×1 view of the level's context features).

The correction's last layer starts at zero, so an untrained autoregressive prior is the factorized one. With the
posterior q factorized, KL(q || p) = E_q Σ_t KL(q_t || p_t(·|z_<t)): the training loss evaluates the parameters of
p at the posterior sample (one pass, teacher forcing) and keeps every per-unit KL analytic, and importance weights
use the exact density of that sample. Sampling runs the stack once per position (H·W passes of a small network).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gencore.losses import soft_clamp


def to_sequence(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, W·H), column-major: position t = column t // H, row t % H."""
    return x.transpose(2, 3).flatten(2)


def from_sequence(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`to_sequence`."""
    return x.unflatten(2, (width, height)).transpose(2, 3)


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution whose output at t sees inputs at positions <= t only (left padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class AutoregressivePrior(nn.Module):
    """Corrects a factorized Gaussian prior (mu, logvar) over a (C, H, W) latent into an autoregressive one.

    ``layers`` causal convolutions of ``width`` channels, kernel 3, dilations 1, 2, 4, …: the receptive field is
    2^layers - 1 earlier positions (31 for 5 layers: about 8 columns of a 4-row map).
    """

    def __init__(self, latent_dim: int, context_channels: int, width: int, layers: int, bound: float) -> None:
        super().__init__()
        self.bound = bound
        self.first = CausalConv1d(latent_dim, width, 3)
        self.context = nn.Conv1d(2 * latent_dim + context_channels, width, 1)
        self.stack = nn.ModuleList([CausalConv1d(width, width, 3, dilation=2**i) for i in range(1, layers)])
        self.act = nn.SiLU()
        self.out = nn.Conv1d(width, 2 * latent_dim, 1)
        nn.init.zeros_(self.out.weight)  # start as the factorized prior
        nn.init.zeros_(self.out.bias)

    def forward(
        self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The prior's (mu_t, logvar_t) at every position given z_<t (z: a full sample, e.g. the posterior's)."""
        height, width = z.shape[-2:]
        base = [mu, logvar] + ([context] if context is not None else [])
        previous = F.pad(to_sequence(z), (1, 0))[..., :-1]  # position t sees z_{t-1} and before
        h = self.act(self.first(previous) + self.context(to_sequence(torch.cat(base, 1))))
        for layer in self.stack:
            h = h + self.act(layer(h))
        d_mu, d_logvar = self.out(h).chunk(2, dim=1)
        mu_t = mu + from_sequence(d_mu, height, width)
        logvar_t = logvar + from_sequence(d_logvar, height, width)
        logvar_t = soft_clamp(logvar_t, self.bound) if self.bound else logvar_t
        return mu_t, logvar_t

    def sample(
        self, mu: torch.Tensor, logvar: torch.Tensor, context: torch.Tensor | None = None, temperature: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw z position by position (``temperature`` scales every std): (z, mu_t, logvar_t)."""
        height, width = mu.shape[-2:]
        z = torch.zeros_like(mu)
        for t in range(height * width):
            row, col = t % height, t // height
            mu_t, logvar_t = self(z, mu, logvar, context)
            noise = torch.randn_like(mu_t[..., row, col])
            z[..., row, col] = mu_t[..., row, col] + temperature * noise * torch.exp(0.5 * logvar_t[..., row, col])
        return z, mu_t, logvar_t

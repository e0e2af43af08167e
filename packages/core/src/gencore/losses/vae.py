"""VAE pieces: Gaussian KL, likelihoods (sum over data dimensions, per example), free bits, KL warm-up."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "gaussian_kl",
    "gaussian_kl_between",
    "bernoulli_log_likelihood",
    "gaussian_log_likelihood",
    "free_bits",
    "kl_warmup",
    "soft_clamp",
    "reparameterize",
]

_LOG_2PI = math.log(2 * math.pi)


def _sum_per_example(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(1) if x.ndim > 1 else x


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)); per example (summed over dims) or per dimension with reduce=False."""
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    return _sum_per_example(kl) if reduce else kl


def gaussian_kl_between(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor, reduce: bool = True
) -> torch.Tensor:
    """KL(q || p) of two diagonal Gaussians (hierarchical VAEs), per example or per dimension."""
    kl = 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)
    return _sum_per_example(kl) if reduce else kl


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) for x in [0, 1], summed per example (decoder outputs logits, not probabilities)."""
    return -_sum_per_example(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor | float) -> torch.Tensor:
    """log N(x; mean, exp(logvar)), summed per example; ``logvar`` may be a learned tensor or a constant."""
    logvar = torch.as_tensor(logvar, dtype=x.dtype, device=x.device)
    ll = -0.5 * (_LOG_2PI + logvar + (x - mean).pow(2) / logvar.exp())
    return _sum_per_example(ll.expand_as(x))


def free_bits(kl_per_dim: torch.Tensor, nats: float) -> torch.Tensor:
    """Free bits (Kingma et al. 2016): sum over latent dims of max(nats, batch-mean KL of that dim); a scalar.

    Dimensions already above the floor are optimised as usual; those below it get no gradient, so the encoder
    is not pushed to collapse them to the prior.
    """
    per_dim = kl_per_dim.flatten(1).mean(0)
    return per_dim.clamp(min=nats).sum() if nats > 0 else per_dim.sum()


def kl_warmup(step: int, warmup_steps: int, start: float = 0.0) -> float:
    """Linear KL weight from ``start`` to 1 over ``warmup_steps`` (NVAE/VDVAE practice)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, start + (1.0 - start) * step / warmup_steps)


def soft_clamp(x: torch.Tensor, bound: float = 5.0) -> torch.Tensor:
    """Smoothly keep ``x`` in (-bound, bound) (tanh), e.g. for log-variances: avoids exp overflow and NaNs."""
    return bound * torch.tanh(x / bound)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Sample z = mu + sigma * eps with eps ~ N(0, I)."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

"""Vector quantizer with the known codebook-health remedies, each an option of :class:`QuantizerConfig`.

* straight-through estimator: the decoder's gradient is copied to the encoder output unchanged;
* loss ``||sg(z) - e||^2 + beta * ||z - sg(e)||^2`` (beta on the commitment term, as in the paper; taming's
  default "legacy" mode puts it on the codebook term instead, which ``beta_on_codebook`` reproduces);
* ``l2_normalize`` + small ``codebook_dim``: nearest code by cosine similarity in a low-dimensional space
  (ViT-VQGAN, LlamaGen), which spreads assignments over the codebook;
* ``ema``: codes are running means of the vectors assigned to them (no codebook gradient, decay ``ema_decay``);
* ``kmeans_init``: the first training batch's k-means centroids become the codebook;
* ``restart_dead``: a code whose running assignment count falls below ``dead_threshold`` is re-seeded with an
  encoder output of the current batch, so no code stays unused for long.

Every piece of state (codebook, EMA statistics, usage counts, the "initialised" flag) is a parameter or buffer, so
it is checkpointed and resumed exactly. Updates happen only in training mode.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vqgan_negatives.config import QuantizerConfig

__all__ = ["VectorQuantizer", "kmeans"]


def _all_reduce(x: torch.Tensor) -> torch.Tensor:
    """Sum over processes when training distributed (statistics must agree on every rank)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(x)
    return x


def _broadcast(x: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(x, 0)
    return x


def kmeans(x: torch.Tensor, k: int, iters: int = 10, normalize: bool = False) -> torch.Tensor:
    """Lloyd's k-means on (N, D) with k centroids seeded by random points (the global torch RNG); (k, D)."""
    n = len(x)
    start = torch.randperm(n, device=x.device)[:k] if n >= k else torch.randint(0, n, (k,), device=x.device)
    centroids = x[start].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(1)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        filled = counts > 0  # an empty cluster keeps its old centroid
        centroids[filled] = sums[filled] / counts[filled, None]
        if normalize:
            centroids = F.normalize(centroids, dim=1)
    return centroids


class VectorQuantizer(nn.Module):
    """Maps (B, D, H, W) vectors to their nearest codes; returns (quantized, loss, indices (B, H, W))."""

    def __init__(self, config: QuantizerConfig) -> None:
        super().__init__()
        self.config = config
        k, d = config.codebook_size, config.codebook_dim
        init = torch.randn(k, d) if config.l2_normalize else torch.empty(k, d).uniform_(-1 / k, 1 / k)
        if config.l2_normalize:
            init = F.normalize(init, dim=1)
        if config.ema:
            self.register_buffer("embedding", init)
            self.register_buffer("ema_count", torch.ones(k))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.embedding = nn.Parameter(init)
        # running mean of assignments per batch and code; starts at "healthy" so nothing restarts at once
        self.register_buffer("usage", torch.ones(k))
        self.register_buffer("initialised", torch.tensor(not config.kmeans_init))
        self.register_buffer("calls", torch.tensor(0, dtype=torch.long))

    def codebook(self) -> torch.Tensor:
        """The (K, D) codes as compared against (unit vectors when ``l2_normalize``)."""
        e = self.embedding
        return F.normalize(e, dim=1) if self.config.l2_normalize else e

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes of ``indices`` (B, H, W) as (B, D, H, W)."""
        return rearrange(F.embedding(indices, self.codebook()), "b h w d -> b d h w")

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.config
        b, _, h, w = z.shape
        flat = rearrange(z, "b d h w -> (b h w) d")
        if cfg.l2_normalize:
            flat = F.normalize(flat, dim=1)
        if self.training and not bool(self.initialised):
            self._kmeans_init(flat.detach())
        codes = self.codebook()
        # ||a - e||^2 without forming the (N, K, D) difference
        dist2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codes.t() + codes.pow(2).sum(1)[None]
        indices = dist2.argmin(1)
        quantized = F.embedding(indices, codes)
        if self.training:
            self._update(flat.detach(), indices)
            if cfg.ema:  # the codebook just moved: use the updated codes for this batch's output
                quantized = F.embedding(indices, self.codebook())
        commitment = F.mse_loss(flat, quantized.detach())
        if cfg.ema:
            loss = cfg.beta * commitment
        elif cfg.beta_on_codebook:  # taming's "legacy" default: beta on the codebook term
            loss = commitment + cfg.beta * F.mse_loss(quantized, flat.detach())
        else:
            loss = F.mse_loss(quantized, flat.detach()) + cfg.beta * commitment
        # straight-through: forward uses the code, backward passes the gradient to the encoder output as is
        quantized = flat + (quantized - flat).detach()
        out = rearrange(quantized, "(b h w) d -> b d h w", b=b, h=h, w=w)
        return out, loss, indices.view(b, h, w)

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        centroids = _broadcast(kmeans(flat, self.config.codebook_size, self.config.kmeans_iters,
                                      self.config.l2_normalize))  # fmt: skip
        self.embedding.data.copy_(centroids)
        if self.config.ema:
            self.ema_sum.copy_(centroids)
            self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        cfg = self.config
        k = cfg.codebook_size
        counts = _all_reduce(torch.bincount(indices, minlength=k).to(flat.dtype))
        self.usage.mul_(cfg.usage_decay).add_(counts, alpha=1 - cfg.usage_decay)
        if cfg.ema:
            sums = _all_reduce(torch.zeros(k, flat.shape[1], device=flat.device, dtype=flat.dtype)
                               .index_add_(0, indices, flat))  # fmt: skip
            self.ema_count.mul_(cfg.ema_decay).add_(counts, alpha=1 - cfg.ema_decay)
            self.ema_sum.mul_(cfg.ema_decay).add_(sums, alpha=1 - cfg.ema_decay)
            n = self.ema_count.sum()
            smoothed = (self.ema_count + 1e-5) / (n + k * 1e-5) * n  # Laplace smoothing: no division by zero
            means = self.ema_sum / smoothed[:, None]
            self.embedding.copy_(F.normalize(means, dim=1) if cfg.l2_normalize else means)
        self.calls += 1
        if cfg.restart_dead and int(self.calls) % cfg.restart_every == 0:
            self._restart_dead(flat)

    @torch.no_grad()
    def _restart_dead(self, flat: torch.Tensor) -> None:
        dead = self.usage < self.config.dead_threshold
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        pick = torch.randint(0, len(flat), (n_dead,), device=flat.device)
        fresh = _broadcast(flat[pick].clone())
        self.embedding.data[dead] = fresh
        if self.config.ema:
            self.ema_sum[dead] = fresh
            self.ema_count[dead] = 1.0
        self.usage[dead] = self.usage.mean()  # give the new code time to win assignments

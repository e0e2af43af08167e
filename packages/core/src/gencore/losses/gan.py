"""GAN losses on logits (never on sigmoid outputs, which are unsafe under autocast), penalties, adaptive weight."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

GanLoss = Literal["nonsaturating", "hinge", "lsgan", "wgan"]

__all__ = ["GanLoss", "d_loss", "g_loss", "gradient_penalty", "r1_penalty", "adaptive_weight"]


def d_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: GanLoss = "nonsaturating", real_label: float = 1.0
) -> torch.Tensor:
    """Discriminator loss; ``real_label`` < 1 gives one-sided label smoothing (nonsaturating/lsgan only)."""
    if kind == "nonsaturating":
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
        return real + F.softplus(fake_logits).mean()
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    if kind == "lsgan":
        return 0.5 * ((real_logits - real_label) ** 2).mean() + 0.5 * (fake_logits**2).mean()
    if kind == "wgan":
        return fake_logits.mean() - real_logits.mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def g_loss(fake_logits: torch.Tensor, kind: GanLoss = "nonsaturating") -> torch.Tensor:
    """Generator loss for the same ``kind`` as :func:`d_loss`."""
    if kind == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    if kind in ("hinge", "wgan"):
        return -fake_logits.mean()
    if kind == "lsgan":
        return 0.5 * ((fake_logits - 1.0) ** 2).mean()
    raise ValueError(f"unknown GAN loss {kind!r}")


def gradient_penalty(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, target: float = 1.0
) -> torch.Tensor:
    """WGAN-GP: ``E[(||grad D(x_hat)|| - target)^2]`` at random interpolates of real and fake (Gulrajani 2017)."""
    alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = discriminator(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - target) ** 2).mean()


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1: ``E[||grad D(x)||^2]`` on real data (Mescheder 2018); ``real`` must have requires_grad=True."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def adaptive_weight(
    rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor, max_weight: float = 1e4
) -> torch.Tensor:
    """VQGAN's ``||grad rec|| / (||grad gan|| + 1e-4)`` at ``last_layer``, clamped to [0, max_weight], detached."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    return (rec_grad.norm() / (gan_grad.norm() + 1e-4)).clamp(0.0, max_weight).detach()

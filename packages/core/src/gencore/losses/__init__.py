"""Losses shared by the packages: GAN (on logits), VAE (KL, likelihoods, free bits), style transfer."""

from gencore.losses.gan import GanLoss, adaptive_weight, d_loss, g_loss, gradient_penalty, r1_penalty
from gencore.losses.style import content_loss, gram_matrix, style_loss, total_variation
from gencore.losses.vae import (
    bernoulli_log_likelihood,
    free_bits,
    gaussian_kl,
    gaussian_kl_between,
    gaussian_log_likelihood,
    kl_warmup,
    reparameterize,
    soft_clamp,
)

__all__ = [
    "GanLoss",
    "adaptive_weight",
    "bernoulli_log_likelihood",
    "content_loss",
    "d_loss",
    "free_bits",
    "g_loss",
    "gaussian_kl",
    "gaussian_kl_between",
    "gaussian_log_likelihood",
    "gradient_penalty",
    "gram_matrix",
    "kl_warmup",
    "r1_penalty",
    "reparameterize",
    "soft_clamp",
    "style_loss",
    "total_variation",
]

"""Neural style transfer losses (Gatys et al. 2016) over features from any extractor."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["gram_matrix", "content_loss", "style_loss", "total_variation"]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) feature correlations, normalised by C*H*W."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of feature maps."""
    return F.mse_loss(features, target)


def style_loss(
    features: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], weights: Sequence[float] | None = None
) -> torch.Tensor:
    """Weighted sum over layers of the MSE between Gram matrices; ``targets`` are the style image's features."""
    weights = weights or [1.0] * len(features)
    return sum(w * F.mse_loss(gram_matrix(f), gram_matrix(t)) for w, f, t in zip(weights, features, targets))


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (smoothness prior)."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    dw = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    return dh + dw

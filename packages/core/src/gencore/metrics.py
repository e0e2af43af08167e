"""Sample-quality and likelihood metrics over features from a pluggable extractor.

The Fréchet distance and KID here take features from any callable (``extractor(images) -> (N, D)``): a
classifier trained by the package on its own data (the packages' default, since no weights can be downloaded
here), or Inception v3 from a weight file on disk for the standard FID (:mod:`gencore.inception`). Values are
comparable only between runs that use the same extractor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import torch

__all__ = [
    "extract_features",
    "frechet_distance",
    "kernel_inception_distance",
    "precision_recall",
    "iw_elbo",
    "bits_per_dim",
    "codebook_usage",
    "psnr",
]


@torch.no_grad()
def extract_features(
    extractor: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[torch.Tensor],
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Run ``extractor`` over image batches and stack its (N, D) outputs on the CPU as float64."""
    feats = [extractor(b.to(device)).flatten(1).double().cpu() for b in batches]
    if not feats:
        raise ValueError("no images to extract features from")
    return torch.cat(feats)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2) of Gaussians fitted to two feature sets.

    In float64. With few samples for the dimension (N_a * N_b <= D^2, e.g. FID on fewer than 2048 images), the
    trace of the cross term is the nuclear norm of the centred cross-Gram matrix X_a X_b^T / sqrt((N_a-1)(N_b-1)),
    an N_a x N_b problem: the nonzero eigenvalues of S_a S_b are the squared singular values of that matrix. Else
    symmetric square roots by eigendecomposition, exact for the PSD covariances involved and free of the complex
    round-off that ``scipy.linalg.sqrtm`` can produce.
    """
    a, b = np.asarray(feats_a, dtype=np.float64), np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with equal D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least 2 samples per set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    if len(a) * len(b) <= a.shape[1] ** 2:
        xa, xb = a - mu_a, b - mu_b
        trace_a, trace_b = (xa**2).sum() / (len(a) - 1), (xb**2).sum() / (len(b) - 1)
        cross_trace = np.linalg.svd(xa @ xb.T, compute_uv=False).sum() / math.sqrt((len(a) - 1) * (len(b) - 1))
    else:
        cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
        root_a = _psd_sqrt(cov_a)
        trace_a, trace_b = np.trace(cov_a), np.trace(cov_b)
        cross_trace = np.trace(_psd_sqrt(root_a @ cov_b @ root_a))
    value = float(((mu_a - mu_b) ** 2).sum() + trace_a + trace_b - 2 * cross_trace)
    return max(value, 0.0)


def kernel_inception_distance(
    feats_a: torch.Tensor, feats_b: torch.Tensor, subsets: int = 10, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel; (mean, std) over subsets."""
    a, b = torch.as_tensor(feats_a).double(), torch.as_tensor(feats_b).double()
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("need at least 2 samples per set")
    d = a.shape[1]
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=gen)[:m]]
        y = b[torch.randperm(len(b), generator=gen)[:m]]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3), ((y @ y.T / d + 1) ** 3), ((x @ y.T / d + 1) ** 3)
        off = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        values.append(float(off - 2 * kxy.mean()))
    arr = np.array(values)
    return float(arr.mean()), float(arr.std())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision/recall (Kynkäänniemi et al. 2019) with k-NN balls in feature space."""
    real, fake = torch.as_tensor(real).double(), torch.as_tensor(fake).double()
    if len(real) <= k or len(fake) <= k:
        raise ValueError(f"need more than k={k} samples per set")

    def radii(x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, x).kthvalue(k + 1, dim=1).values  # +1 skips the point itself

    r_real, r_fake = radii(real), radii(fake)
    precision = (torch.cdist(fake, real) <= r_real[None, :]).any(1).double().mean()
    recall = (torch.cdist(real, fake) <= r_fake[None, :]).any(1).double().mean()
    return float(precision), float(recall)


def iw_elbo(log_weights: torch.Tensor) -> torch.Tensor:
    """Importance-weighted bound (Burda et al. 2016) from (K, B) log weights log p(x,z_k) - log q(z_k|x).

    K = 1 gives the ELBO; the bound tightens towards log p(x) as K grows. Returns (B,) in nats.
    """
    if log_weights.ndim != 2:
        raise ValueError(f"expected log weights of shape (K, B), got {tuple(log_weights.shape)}")
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def bits_per_dim(log_likelihood_nats: torch.Tensor | float, num_dims: int) -> float:
    """Negative log-likelihood per data dimension in bits."""
    return float(-torch.as_tensor(log_likelihood_nats).double().mean() / (num_dims * math.log(2)))


def codebook_usage(indices: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Fraction of codes used at least once and the perplexity of the code histogram over all ``indices``."""
    counts = torch.bincount(indices.flatten().long(), minlength=codebook_size).double()
    probs = counts / counts.sum().clamp(min=1)
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return {"usage": float((counts > 0).double().mean()), "perplexity": float(entropy.exp())}


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB."""
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp(min=1e-20))

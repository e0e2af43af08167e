from __future__ import annotations

import math

import pytest
import torch

from gencore import metrics


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(20000, 3, generator=gen, dtype=torch.float64) * 2 + 1
    # mean term 3 * 1^2; covariance term per dim: 1 + 4 - 2 * sqrt(4) = 1
    assert metrics.frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError):
        metrics.frechet_distance(a, b[:, :2])


@pytest.mark.parametrize(("n_a", "n_b", "dim"), [(12, 9, 40), (300, 200, 6)])  # cross-Gram path, eigen path
def test_frechet_distance_equals_the_eigenvalue_formula(n_a, n_b, dim):
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(n_a, dim, generator=gen, dtype=torch.float64) @ torch.randn(dim, dim, generator=gen).double()
    b = torch.randn(n_b, dim, generator=gen, dtype=torch.float64) * 1.5 + 0.3
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # Tr((S_a S_b)^1/2) as the sum of square roots of the eigenvalues of S_a S_b (torchmetrics' way)
    cross = torch.linalg.eigvals(cov_a @ cov_b).sqrt().real.sum()
    expected = float((a.mean(0) - b.mean(0)).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)
    # rel 1e-7: the reference takes square roots of the rounding noise of the zero eigenvalues (rank 11 of 40);
    # against a 40-digit mpmath evaluation the cross-Gram path was exact to float64 (1345.6093495265673)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-7)
    assert metrics.frechet_distance(b, a) == pytest.approx(expected, rel=1e-7)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9 * float(cov_a.trace()))


def test_kid_near_zero_for_same_distribution_and_positive_otherwise():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(400, 8, generator=gen), torch.randn(400, 8, generator=gen)
    same, _ = metrics.kernel_inception_distance(a, b, subsets=5, subset_size=200)
    diff, _ = metrics.kernel_inception_distance(a, b + 1.0, subsets=5, subset_size=200)
    assert abs(same) < 0.02 < diff


def test_precision_recall_detects_missing_modes():
    gen = torch.Generator().manual_seed(2)
    real = torch.cat([torch.randn(200, 2, generator=gen) * 0.1 + c for c in (-3.0, 3.0)])
    collapsed = torch.randn(200, 2, generator=gen) * 0.1 + 3.0
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision > 0.9 and recall < 0.6


def test_iw_elbo_is_a_tighter_bound():
    log_w = torch.randn(50, 4)
    assert torch.allclose(metrics.iw_elbo(log_w[:1]), log_w[0])
    assert (metrics.iw_elbo(log_w) >= log_w.mean(0)).all()  # Jensen
    assert metrics.bits_per_dim(torch.tensor([-math.log(2) * 10]), 10) == pytest.approx(1.0)


def test_codebook_usage_and_psnr():
    usage = metrics.codebook_usage(torch.tensor([0, 1, 1, 3]), 8)
    assert usage["usage"] == 3 / 8 and 1 < usage["perplexity"] < 3
    x = torch.rand(2, 3, 4, 4)
    assert metrics.psnr(x, x + 0.1).mean().item() == pytest.approx(20.0, rel=1e-4)
    feats = metrics.extract_features(lambda b: b.mean((2, 3)), [x, x])
    assert feats.shape == (4, 3) and feats.dtype == torch.float64

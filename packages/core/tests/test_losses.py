from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from gencore import losses


@pytest.mark.parametrize("kind", ["nonsaturating", "hinge", "lsgan", "wgan"])
def test_d_prefers_separating_real_from_fake(kind):
    good = losses.d_loss(torch.full((8, 1), 3.0), torch.full((8, 1), -3.0), kind)
    bad = losses.d_loss(torch.full((8, 1), -3.0), torch.full((8, 1), 3.0), kind)
    assert good < bad
    assert losses.g_loss(torch.full((8, 1), 3.0), kind) < losses.g_loss(torch.full((8, 1), -3.0), kind)


def test_nonsaturating_matches_bce_and_label_smoothing_changes_it():
    real, fake = torch.randn(16, 1), torch.randn(16, 1)
    bce = nn.BCEWithLogitsLoss()
    expected = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
    assert torch.allclose(losses.d_loss(real, fake), expected, atol=1e-6)
    assert not torch.allclose(losses.d_loss(real, fake, real_label=0.9), expected)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        losses.g_loss(real, "bogus")


def test_gradient_penalty_zero_for_unit_slope_and_r1_positive():
    d = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))  # ||grad|| = 1 everywhere
    assert losses.gradient_penalty(d, torch.randn(8, 4), torch.randn(8, 4)).item() == pytest.approx(0.0, abs=1e-10)
    real = torch.randn(8, 4, requires_grad=True)
    assert losses.r1_penalty(d(real), real).item() == pytest.approx(1.0)


def test_adaptive_weight_balances_gradients():
    layer = torch.randn(3, requires_grad=True)
    w = losses.adaptive_weight((layer * 2).sum(), (layer * 0.5).sum(), layer)
    assert w.item() == pytest.approx(4.0, rel=1e-3) and not w.requires_grad


def test_gaussian_kls_match_torch_distributions():
    mu_q, lv_q, mu_p, lv_p = torch.randn(4, 6), torch.randn(4, 6), torch.randn(4, 6), torch.randn(4, 6)
    q, p = Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp())
    assert torch.allclose(losses.gaussian_kl_between(mu_q, lv_q, mu_p, lv_p), kl_divergence(q, p).sum(1), atol=1e-5)
    std = Normal(torch.zeros(4, 6), torch.ones(4, 6))
    assert torch.allclose(losses.gaussian_kl(mu_q, lv_q), kl_divergence(q, std).sum(1), atol=1e-5)


def test_likelihoods():
    x = torch.rand(3, 2, 4)
    mean, logvar = torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    expected = Normal(mean, (0.5 * logvar).exp()).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(losses.gaussian_log_likelihood(x, mean, logvar), expected, atol=1e-5)
    logits = torch.randn(3, 8)
    b = torch.randint(0, 2, (3, 8)).float()
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(b).sum(1)
    assert torch.allclose(losses.bernoulli_log_likelihood(logits, b), expected, atol=1e-5)


def test_free_bits_floor_and_warmup_and_soft_clamp():
    kl = torch.tensor([[0.01, 2.0], [0.03, 4.0]])
    assert losses.free_bits(kl, 0.5).item() == pytest.approx(0.5 + 3.0)
    kl.requires_grad_(True)
    losses.free_bits(kl, 0.5).backward()
    assert kl.grad[:, 0].abs().sum() == 0 and kl.grad[:, 1].abs().sum() > 0
    assert [losses.kl_warmup(s, 10) for s in (0, 5, 10, 20)] == [0.0, 0.5, 1.0, 1.0]
    assert losses.soft_clamp(torch.tensor([1e6, -1e6, 0.1]), 5.0).abs().max() <= 5.0


def test_style_losses():
    f = torch.randn(2, 4, 8, 8)
    g = losses.gram_matrix(f)
    assert g.shape == (2, 4, 4) and torch.allclose(g, g.transpose(1, 2))
    assert losses.style_loss([f], [f]).item() == 0.0 and losses.style_loss([f], [f * 2]).item() > 0
    assert losses.total_variation(torch.ones(1, 3, 8, 8)).item() == 0.0
    assert losses.content_loss(f, f + 1).item() == pytest.approx(1.0)
    assert math.isfinite(losses.total_variation(torch.randn(1, 3, 8, 8)).item())

from __future__ import annotations

import math

import pytest
import torch

from gencore.metrics import iw_elbo
from hvae_captcha.config import ModelConfig
from hvae_captcha.model import HVAE, discretized_logistic_log_likelihood
from hvae_captcha.train import GuardedAdamW

SMALL = dict(channels=3, height=16, width=32, outer_config=[("conv", 8), ("pool", 2), ("conv", 8)], latent_dim=2)


def small(**kwargs) -> HVAE:
    torch.manual_seed(0)
    return HVAE(ModelConfig(**{**SMALL, **kwargs}))


@pytest.mark.parametrize(
    ("inner", "latent", "expected"),
    [
        ([], "spatial", [(2, 8, 16)]),
        ([[("pool", 2), ("conv", 8)]], "spatial", [(2, 4, 8), (2, 8, 16)]),
        ([[("pool", 2), ("conv", 8)], [("pool", 2), ("conv-bn", 4), ("pool", 2)]], "spatial",
         [(2, 1, 2), (2, 4, 8), (2, 8, 16)]),
        ([[("conv", 4), ("pool", 2), ("conv", 2)]], "vector", [(2,), (2,)]),
    ],
)  # fmt: skip
@pytest.mark.parametrize("likelihood", ["logistic", "gaussian", "bernoulli"])
def test_shapes_for_one_two_three_levels(inner, latent, expected, likelihood):
    model = small(inner_config=inner, latent=latent, inner_size=(6, 6), likelihood=likelihood)
    x = torch.rand(3, 3, 16, 32) * 2 - 1
    log_px, levels = model(x)
    assert log_px.shape == (3,) and torch.isfinite(log_px).all()
    assert [tuple(lv.z.shape[1:]) for lv in levels] == expected  # top first
    images, params = model.sample(5)
    assert images.shape == (5, 3, 16, 32) and 0 <= images.min() and images.max() <= 1
    assert params.shape[1] == 3 * (1 if likelihood == "bernoulli" else 2)


def test_discretized_logistic_is_normalised_over_256_levels():
    levels = torch.arange(256).float() / 127.5 - 1
    for mean, log_scale in [(0.1, -3.0), (-0.95, -1.0), (0.99, -6.0), (0.0, 2.0)]:
        lp = discretized_logistic_log_likelihood(
            levels.view(256, 1), torch.full((256, 1), mean), torch.full((256, 1), log_scale)
        )
        assert abs(lp.exp().sum().item() - 1) < 1e-4


def test_iwae_with_one_sample_is_the_elbo_on_the_same_samples():
    model = small(inner_config=[[("pool", 2), ("conv", 8)]]).eval()
    x = torch.rand(4, 3, 16, 32) * 2 - 1
    torch.manual_seed(1)
    log_w = model.log_weights(x, 1)
    torch.manual_seed(1)
    params, levels = model.top_down(len(x), model.bottom_up(x))
    elbo = model.log_likelihood(x, params) - sum(lv.log_q_minus_log_p() for lv in levels)
    assert torch.allclose(iw_elbo(log_w), elbo, rtol=1e-6, atol=1e-3)
    # and its mean over many samples is the ELBO with analytic KLs
    with torch.no_grad():
        bu = [(m.repeat(100, 1, 1, 1), v.repeat(100, 1, 1, 1)) for m, v in model.bottom_up(x)]
        p, ls = model.top_down(400, bu)
        analytic = model.log_likelihood(x.repeat(100, 1, 1, 1), p) - sum(lv.kl().flatten(1).sum(1) for lv in ls)
    mc = model.log_weights(x, 400).mean(0)
    analytic = analytic.view(100, 4)
    assert torch.allclose(mc, analytic.mean(0), rtol=2e-3)


def test_iwae_grows_with_k():
    model = small(inner_config=[[("pool", 2), ("conv", 8)]]).eval()
    x = torch.rand(8, 3, 16, 32) * 2 - 1
    torch.manual_seed(0)
    bounds = [torch.stack([iw_elbo(model.log_weights(x, k)).mean() for _ in range(4)]).mean() for k in (1, 8, 32)]
    assert bounds[0] < bounds[1] < bounds[2]


def test_conditioning_changes_samples():
    model = small(inner_config=[[("pool", 2), ("conv", 8)]], conditioned=True).eval()
    torch.manual_seed(3)
    a, _ = model.sample(4, ["2b6qa"] * 4)
    torch.manual_seed(3)
    b, _ = model.sample(4, ["zzzzz"] * 4)
    torch.manual_seed(3)
    again, _ = model.sample(4, ["2b6qa"] * 4)
    assert torch.equal(a, again) and not torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        model.encode_text(["AB"])
    with pytest.raises(ValueError, match="conditioned on text"):
        model.sample(2)


@pytest.mark.parametrize("ar_levels", [[], [1]], ids=["factorized", "autoregressive-z1"])
def test_loss_falls_on_a_fixed_tiny_batch(ar_levels):
    model = small(inner_config=[[("pool", 2), ("conv", 8)]], ar_prior_levels=ar_levels)
    x = torch.rand(8, 3, 16, 32) * 2 - 1
    opt = torch.optim.Adam(model.parameters(), 5e-3)
    losses = []
    for _ in range(25):
        log_px, levels = model(x)
        loss = (-log_px + sum(lv.kl().flatten(1).sum(1) for lv in levels)).mean() / x[0].numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5 and math.isfinite(losses[-1])
    assert not ar_levels or all(p.grad.abs().sum() > 0 for p in model.ar_priors.parameters())


def test_guarded_optimizer_skips_exploding_updates_and_clips_others():
    w = torch.nn.Parameter(torch.zeros(4))
    opt = GuardedAdamW([w], lr=0.1, grad_clip=1.0, skip_threshold=100.0)
    w.grad = torch.full((4,), 1000.0)
    opt.step()
    assert opt.last_skipped and opt.skipped == 1 and torch.equal(w.detach(), torch.zeros(4))
    w.grad = torch.full((4,), 10.0)  # norm 20 > clip 1: applied, clipped
    opt.step()
    assert not opt.last_skipped and opt.last_grad_norm == pytest.approx(20.0) and w.detach().abs().max() > 0
    assert w.grad.norm().item() == pytest.approx(1.0, rel=1e-4)


def test_add_spectral_norm_reaches_nested_layers():
    from torch import nn

    from hvae_captcha.model import add_spectral_norm

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Sequential(nn.Linear(8, 4)))
    add_spectral_norm(model)
    assert nn.utils.parametrize.is_parametrized(model[0]) and nn.utils.parametrize.is_parametrized(model[1][0])

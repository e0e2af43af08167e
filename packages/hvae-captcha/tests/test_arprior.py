from __future__ import annotations

import pytest
import torch

from gencore.errors import ConfigError
from gencore.metrics import iw_elbo
from hvae_captcha.arprior import AutoregressivePrior, from_sequence, to_sequence
from hvae_captcha.config import ModelConfig
from hvae_captcha.model import HVAE

SMALL = dict(channels=1, height=16, width=32, outer_config=[("conv", 8), ("pool", 2), ("conv", 8)], latent_dim=2,
             inner_config=[[("pool", 2), ("conv", 8)]])  # fmt: skip


def random_prior(context: int = 5) -> AutoregressivePrior:
    torch.manual_seed(0)
    prior = AutoregressivePrior(3, context, width=16, layers=3, bound=8.0)
    for p in prior.out.parameters():  # an untrained prior is the factorized one: move it away from that
        torch.nn.init.normal_(p, std=0.3)
    return prior


def inputs(context: int = 5) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    shape = (2, 3, 4, 6)
    mu, logvar = torch.randn(shape, generator=g), 0.3 * torch.randn(shape, generator=g)
    return torch.randn(shape, generator=g), mu, logvar, torch.randn(2, context, 4, 6, generator=g)


def test_sequence_order_is_column_major_and_invertible():
    x = torch.arange(2 * 3 * 4).float().view(1, 1, 2 * 3, 4)[:, :, :3, :].contiguous()  # (1, 1, 3, 4)
    seq = to_sequence(x)
    assert seq[0, 0, :3].tolist() == x[0, 0, :, 0].tolist()  # first column, top to bottom
    assert torch.equal(from_sequence(seq, 3, 4), x)


def test_each_position_depends_on_earlier_positions_only():
    prior = random_prior()
    z, mu, logvar, context = inputs()
    base = prior(z, mu, logvar, context)
    for t in (0, 5, 13, 23):  # column t // 4, row t % 4
        moved = z.clone()
        moved[:, :, t % 4, t // 4] += 1.0
        out = prior(moved, mu, logvar, context)
        changed = [(to_sequence(a) - to_sequence(b)).abs().amax(dim=(0, 1)) > 0 for a, b in zip(base, out)]
        for c in changed:
            assert not c[: t + 1].any()  # itself and every earlier position untouched
            assert t == 23 or c[t + 1 :].any()  # the next ones do see it (the last position has none)


def test_an_untrained_prior_is_the_factorized_one():
    prior = AutoregressivePrior(3, 5, width=16, layers=3, bound=8.0)
    z, mu, logvar, context = inputs()
    mu_t, logvar_t = prior(z, mu, logvar, context)
    assert torch.equal(mu_t, mu) and torch.allclose(logvar_t, logvar, atol=1e-2)


def test_a_sample_is_drawn_from_the_parameters_the_density_gives_it():
    prior = random_prior()
    _, mu, logvar, context = inputs()
    torch.manual_seed(2)
    z, mu_t, logvar_t = prior.sample(mu, logvar, context, temperature=0.0)
    again_mu, again_logvar = prior(z, mu, logvar, context)  # teacher forcing on the sample
    assert torch.allclose(again_mu, mu_t) and torch.allclose(again_logvar, logvar_t)
    assert torch.allclose(z, mu_t, atol=1e-6)  # temperature 0: every position at its conditional mean
    torch.manual_seed(2)
    z1, _, _ = prior.sample(mu, logvar, context, temperature=1.0)
    assert not torch.allclose(z1, z)


def ar_model(**kwargs) -> HVAE:
    torch.manual_seed(0)
    model = HVAE(ModelConfig(**{**SMALL, "ar_prior_levels": [1, 2], **kwargs})).eval()
    for prior in model.ar_priors.values():
        for p in prior.out.parameters():
            torch.nn.init.normal_(p, std=0.2)
    return model


def test_the_kl_of_an_autoregressive_prior_is_the_mean_log_density_ratio():
    """Per-unit analytic KLs at the posterior sample average to E_q[log q - log p]: the training loss and the
    importance weights measure the same bound."""
    model = ar_model()
    x = torch.rand(3, 1, 16, 32) * 2 - 1
    with torch.no_grad():
        bu = [(m.repeat(300, 1, 1, 1), v.repeat(300, 1, 1, 1)) for m, v in model.bottom_up(x)]
        params, levels = model.top_down(900, bu)
        rb = model.log_likelihood(x.repeat(300, 1, 1, 1), params) - sum(lv.kl().flatten(1).sum(1) for lv in levels)
        mc = model.log_likelihood(x.repeat(300, 1, 1, 1), params) - sum(lv.log_q_minus_log_p() for lv in levels)
    assert torch.allclose(rb.view(300, 3).mean(0), mc.view(300, 3).mean(0), rtol=3e-3)


def test_iwae_with_an_autoregressive_prior_grows_with_k_and_samples_run():
    model = ar_model(conditioned=True, text_layout="slots", ar_prior_levels=[1, 2])
    x = torch.rand(4, 1, 16, 32) * 2 - 1
    y = model.encode_text(["ab2", "qa", "zzz", "6"])
    torch.manual_seed(0)
    bounds = [torch.stack([iw_elbo(model.log_weights(x, k, y)).mean() for _ in range(3)]).mean() for k in (1, 16)]
    assert bounds[0] < bounds[1]
    torch.manual_seed(3)
    a, _ = model.sample(3, ["ab2"] * 3, temperature=0.7)
    torch.manual_seed(3)
    b, _ = model.sample(3, ["ab2"] * 3, temperature=0.7)
    assert a.shape == (3, 1, 16, 32) and torch.equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ar_prior_levels": [3]}, r"from 1 \(bottom\) to 2, got \[3\]"),
        ({"ar_prior_levels": [0]}, r"from 1 \(bottom\) to 2, got \[0\]"),
        ({"ar_prior_levels": [1, 1]}, "distinct"),
        ({"ar_prior_levels": [1], "latent": "vector", "inner_size": (6, 6)}, "needs spatial latents"),
        ({"ar_prior_layers": 0}, "ar_prior_layers must be >= 1"),
    ],
)
def test_bad_autoregressive_prior_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**{**SMALL, **kwargs})

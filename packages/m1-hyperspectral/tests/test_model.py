from __future__ import annotations

import pytest
import torch

from gencore.metrics import iw_elbo
from m1_hyperspectral.model import M1, M1Config

LIKELIHOODS = ["gaussian", "bernoulli", "bounded01"]


def _data(n: int = 64, bands: int = 10) -> torch.Tensor:
    torch.manual_seed(0)
    base = torch.rand(4, bands)
    return (base[torch.randint(0, 4, (n,))] + 0.02 * torch.randn(n, bands)).clamp(0, 1)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_each_likelihood_gives_a_finite_elbo_that_training_raises(likelihood):
    torch.manual_seed(0)
    model = M1(M1Config(bands=10, hidden=[32, 32], latent=3, likelihood=likelihood))
    x = _data()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    first = float(model.elbo(x)["elbo"].mean().detach())
    for _ in range(100):
        terms = model.elbo(x)
        assert terms["elbo"].shape == (64,) and torch.isfinite(terms["elbo"]).all()
        torch.testing.assert_close(terms["elbo"], terms["rec"] - terms["kl"])
        opt.zero_grad()
        (-terms["elbo"].mean()).backward()
        opt.step()
    assert float(model.elbo(x)["elbo"].mean().detach()) > first + 1.0
    if likelihood == "bernoulli":
        assert float(model.elbo(x)["rec"].max()) <= 0  # a probability mass of values in [0, 1]


def test_bounded01_is_finite_at_the_ends_of_the_interval():
    model = M1(M1Config(bands=4, hidden=[8], latent=2, likelihood="bounded01"))
    x = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    assert torch.isfinite(model.elbo(x)["elbo"]).all()


def test_importance_weighted_bound_equals_the_elbo_at_k1_and_rises_with_k():
    torch.manual_seed(1)
    model = M1(M1Config(bands=10, hidden=[32], latent=3))
    x = _data(32)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(100):  # a trained posterior differs from the prior, so the bounds separate
        opt.zero_grad()
        (-model.elbo(x)["elbo"].mean()).backward()
        opt.step()
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x)["elbo"].mean() for _ in range(200)]).mean()
        lw1 = torch.stack([model.log_weights(x, 1)[0].mean() for _ in range(200)]).mean()
        # K = 1 is the ELBO with a sampled instead of an analytic KL: the same expectation.
        torch.testing.assert_close(lw1, elbo, atol=0.02 * abs(float(elbo)) + 0.2, rtol=0)
        bounds = [float(torch.stack([iw_elbo(model.log_weights(x, k)).mean() for _ in range(20)]).mean())
                  for k in (1, 10, 100)]  # fmt: skip
    assert bounds[0] < bounds[1] < bounds[2]


def test_normalisation_is_stored_with_the_model(tmp_path):
    model = M1(M1Config(bands=3, hidden=[8], latent=2))
    raw = torch.tensor([[100.0, -5.0, 2.0], [300.0, 5.0, 2.0], [200.0, 0.0, 2.0]])
    model.set_normalization(raw)
    torch.testing.assert_close(model.normalize(raw)[:, :2], torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]]))
    torch.testing.assert_close(model.denormalize(model.normalize(raw))[:, :2], raw[:, :2])
    model.save_pretrained(tmp_path / "m")
    loaded = M1.from_pretrained(tmp_path / "m")
    torch.testing.assert_close(loaded.normalize(raw), model.normalize(raw))
    assert loaded.config == model.config


def test_bad_architectures_are_refused():
    with pytest.raises(ValueError, match="likelihood"):
        M1Config(likelihood="poisson")
    with pytest.raises(ValueError, match="activation"):
        M1Config(activation="gelu")


def test_classification_scores_are_the_hand_computed_ones():
    """OA, AA and kappa by scikit-learn equal the textbook formulas (a worked example with 3 classes)."""
    import numpy as np

    from m1_hyperspectral.classify import scores

    y_true = np.array([1, 1, 1, 1, 2, 2, 3, 3, 3, 3])
    y_pred = np.array([1, 1, 2, 1, 2, 3, 3, 3, 1, 3])
    oa = 7 / 10
    aa = (3 / 4 + 1 / 2 + 3 / 4) / 3
    chance = (0.4 * 0.4) + (0.2 * 0.2) + (0.4 * 0.4)  # true and predicted class shares
    got = scores(y_true, y_pred)
    assert np.isclose(got["oa"], oa) and np.isclose(got["aa"], aa)
    assert np.isclose(got["kappa"], (oa - chance) / (1 - chance))
    assert scores(np.array([2, 2]), np.array([2, 2])) == {"oa": 1.0, "aa": 1.0, "kappa": 1.0}

"""Vector quantizer: straight-through gradient, losses, index shapes, every codebook remedy, usage metric."""

from __future__ import annotations

import pytest
import torch

from gencore.metrics import codebook_usage
from vqgan_negatives.config import QuantizerConfig
from vqgan_negatives.quantize import VectorQuantizer, kmeans


def _q(**kw) -> VectorQuantizer:
    torch.manual_seed(0)
    base = {"codebook_size": 16, "codebook_dim": 4, "restart_dead": False}
    return VectorQuantizer(QuantizerConfig(**{**base, **kw}))


@pytest.mark.parametrize("l2", [False, True])
def test_shapes_and_nearest_code(l2):
    q = _q(l2_normalize=l2).eval()
    z = torch.randn(2, 4, 3, 5)
    out, loss, idx = q(z)
    assert out.shape == z.shape and idx.shape == (2, 3, 5) and loss.ndim == 0
    assert idx.min() >= 0 and idx.max() < 16
    assert torch.allclose(out, q.lookup(idx), atol=1e-6)  # forward value is the chosen code
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    if l2:
        flat = torch.nn.functional.normalize(flat, dim=1)
    assert torch.equal(torch.cdist(flat, q.codebook()).argmin(1), idx.flatten())


def test_straight_through_gradient_reaches_the_encoder_unchanged():
    q = _q(l2_normalize=False).eval()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out, _, _ = q(z)
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    assert torch.allclose(z.grad, weight)  # d out / d z = identity


def test_codebook_and_commitment_losses():
    q = _q(l2_normalize=False, beta=0.25).eval()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out, loss, idx = q(z)
    e = q.lookup(idx)
    mse = (z - e).pow(2).mean()
    assert torch.allclose(loss, 1.25 * mse)  # codebook term + 0.25 * commitment term, same value
    loss.backward()
    # commitment pulls z towards its code with weight beta only; the codebook term pulls the codes
    assert torch.allclose(z.grad, 0.25 * 2 * (z - e).detach() / z.numel(), atol=1e-7)
    assert q.embedding.grad is not None and q.embedding.grad.abs().sum() > 0


def test_ema_update_moves_codes_to_the_mean_of_their_vectors():
    q = _q(l2_normalize=False, ema=True, ema_decay=0.5)
    assert not isinstance(q.embedding, torch.nn.Parameter)
    z = torch.randn(4, 4, 4, 4)
    before = q.embedding.clone()
    _, loss, idx = q.train()(z)
    used = idx.unique()
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    code = int(used[0])
    members = flat[idx.flatten() == code]
    count = 0.5 * 1.0 + 0.5 * len(members)
    total = 0.5 * before[code] + 0.5 * members.sum(0)
    n = q.ema_count.sum()
    smoothed = (count + 1e-5) / (n + 16e-5) * n
    assert torch.allclose(q.embedding[code], total / smoothed, atol=1e-5)
    # eval mode never updates
    frozen = q.embedding.clone()
    q.eval()(z)
    assert torch.equal(q.embedding, frozen)


def test_kmeans_init_runs_once_on_the_first_training_batch():
    q = _q(l2_normalize=False, kmeans_init=True)
    z = torch.randn(8, 4, 4, 4) * 3 + 1
    q.train()(z)
    assert bool(q.initialised)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    # centroids lie inside the data cloud (far from the tiny uniform initialisation)
    assert q.embedding.norm(dim=1).mean() > 1.0
    after = q.embedding.detach().clone()
    q.train()(z)
    assert torch.equal(q.embedding.detach(), after)  # not re-initialised
    assert codebook_usage(q.eval()(z)[2], 16)["usage"] > 0.5
    c = kmeans(flat, 4, iters=5)
    assert c.shape == (4, 4)


def test_dead_codes_are_restarted():
    q = _q(l2_normalize=False, restart_dead=True, restart_every=1, dead_threshold=0.5, usage_decay=0.5)
    with torch.no_grad():
        q.embedding[1:] += 100.0  # only code 0 is reachable: 15 dead codes
    z = torch.randn(4, 4, 4, 4) * 0.1
    _, _, idx = q.train()(z)
    assert idx.unique().tolist() == [0]
    for _ in range(3):
        q.train()(z)
    assert q.embedding[1:].abs().max() < 50  # re-seeded from encoder outputs
    assert codebook_usage(q.eval()(z)[2], 16)["usage"] > 0.5


def test_l2_normalised_codes_are_unit_vectors():
    q = _q(l2_normalize=True)
    assert torch.allclose(q.codebook().norm(dim=1), torch.ones(16))


def test_codebook_usage_metric():
    idx = torch.tensor([0, 0, 1, 3])
    u = codebook_usage(idx, 8)
    assert u["usage"] == pytest.approx(3 / 8)
    p = torch.tensor([0.5, 0.25, 0.25])
    assert u["perplexity"] == pytest.approx(float(torch.exp(-(p * p.log()).sum())))
    assert codebook_usage(torch.arange(8), 8) == pytest.approx({"usage": 1.0, "perplexity": 8.0})

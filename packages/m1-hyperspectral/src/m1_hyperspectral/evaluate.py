"""Test-set quality of a trained M1: ELBO, importance-weighted log-likelihood and active latent units."""

from __future__ import annotations

import torch

from gencore.metrics import iw_elbo
from m1_hyperspectral.model import M1

ACTIVE_VARIANCE = 0.01  # Burda et al. (2016): a unit is active when Cov_x(E_q[z_u|x]) > 0.01 (std > 0.1)


@torch.no_grad()
def evaluate_model(model: M1, x: torch.Tensor, k: int = 100, seed: int = 0, batch: int = 512) -> dict[str, float]:
    """Metrics of normalised spectra ``x`` (N, bands), in nats per pixel.

    ``elbo``: single-sample ELBO; ``iw_ll``: the K-sample importance-weighted bound of Burda et al., tighter
    than the ELBO and rising towards log p(x) with K; ``active_units``: latent units whose posterior mean varies
    across pixels (the rest are unused by the model).
    """
    model.eval()
    device = next(model.parameters()).device
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        elbo, iw, means = 0.0, 0.0, []
        for chunk in x.split(batch):
            chunk = chunk.to(device)
            elbo += float(model.elbo(chunk)["elbo"].sum())
            iw += float(iw_elbo(model.log_weights(chunk, k)).sum())
            means.append(model.encode(chunk)[0].cpu())
    finally:
        torch.set_rng_state(state)
    variance = torch.cat(means).var(0)
    n = len(x)
    return {
        "elbo": elbo / n, "iw_ll": iw / n, "k": k, "pixels": n, "bands": model.config.bands,
        "active_units": int((variance > ACTIVE_VARIANCE).sum()), "latent": model.config.latent,
    }  # fmt: skip

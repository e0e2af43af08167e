"""Likelihood and latent-usage figures of a trained model on held-out images.

* ``nll_bits_per_dim``: the importance-weighted bound (IWAE, Burda et al. 2016) with K posterior samples, as
  negative log-likelihood in bits per dimension (an upper bound on the true NLL, tighter as K grows);
* ``elbo_bits_per_dim``: the ELBO with analytic KLs, same units (K = 1 and no importance weighting);
* ``kl_level{l}_nats`` and ``active_units_level{l}``: per-level KL and the number of latent units whose
  posterior mean varies over the data (std > 0.01; Burda et al.'s activity statistic), level 1 at the bottom;
* ``psnr_db``: reconstructions (decoder mean of one posterior sample) against the images.
"""

from __future__ import annotations

import math

import torch

from gencore.metrics import bits_per_dim, iw_elbo, psnr
from hvae_captcha.data import CaptchaData, to_float
from hvae_captcha.model import HVAE

ACTIVE_THRESHOLD = 0.01


@torch.no_grad()
def evaluate_model(
    model: HVAE, data: CaptchaData, k: int = 16, batch_size: int = 64, device: torch.device | str = "cpu"
) -> dict[str, float]:
    """All figures of the module docstring over ``data`` (model in eval mode during the call)."""
    was_training = model.training
    model.eval()
    dims = math.prod(data.images.shape[1:])
    iw, elbo, psnrs = [], [], []
    means: list[list[torch.Tensor]] = [[] for _ in model.latent_shapes]  # posterior means per level, top first
    kls: list[list[torch.Tensor]] = [[] for _ in model.latent_shapes]
    for start in range(0, len(data.texts), batch_size):
        x = to_float(data.images[start : start + batch_size]).to(device)
        texts = data.texts[start : start + batch_size]
        y = model.encode_text(texts) if model.config.conditioned else None
        iw.append(iw_elbo(model.log_weights(x, k, y)).cpu())
        params, levels = model.top_down(len(x), model.bottom_up(x), y)
        batch_kl = [lv.kl().flatten(1).sum(1).cpu() for lv in levels]
        elbo.append(model.log_likelihood(x, params).cpu() - sum(batch_kl))
        psnrs.append(psnr(model.mean_image(params).cpu(), model.binarize_if_needed(x).cpu()))
        for i, lv in enumerate(levels):
            means[i].append(lv.mu_q.flatten(1).cpu())
            kls[i].append(batch_kl[i])
    model.train(was_training)
    iw_all, elbo_all = torch.cat(iw), torch.cat(elbo)
    out = {
        "nll_bits_per_dim": bits_per_dim(iw_all, dims),
        "elbo_bits_per_dim": bits_per_dim(elbo_all, dims),
        "iw_samples": float(k),
        "psnr_db": float(torch.cat(psnrs).mean()),
    }
    levels_count = len(model.latent_shapes)
    for i in range(levels_count):  # levels come top first from top_down; report level 1 = bottom
        level = levels_count - i
        stacked = torch.cat(means[i])
        active = (stacked.std(0) > ACTIVE_THRESHOLD).sum().item() if len(stacked) > 1 else 0
        out[f"kl_level{level}_nats"] = float(torch.cat(kls[i]).mean())
        out[f"active_units_level{level}"] = float(active)
        out[f"units_level{level}"] = float(stacked.shape[1])
    return out

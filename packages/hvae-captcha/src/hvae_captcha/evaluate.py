"""Likelihood and latent-usage figures of a trained model on held-out images.

* ``nll_bits_per_dim``: the importance-weighted bound (IWAE, Burda et al. 2016) with K posterior samples, as
  negative log-likelihood in bits per dimension (an upper bound on the true NLL, tighter as K grows);
* ``elbo_bits_per_dim``: the ELBO with analytic KLs, same units (K = 1 and no importance weighting);
* ``kl_level{l}_nats`` and ``active_units_level{l}``: per-level KL and the number of latent units whose
  posterior mean varies over the data (std > 0.01; Burda et al.'s activity statistic), level 1 at the bottom;
* ``psnr_db``: reconstructions (decoder mean of one posterior sample) against the images;
* for conditioned models, ``nll_unconditional_bits_per_dim`` (:func:`unconditional_bound`): the bound on -log p(x)
  of the image alone, with the text and layout as latent variables under the run's :class:`TextPrior`;
* for conditioned models, on request (:func:`sample_text_accuracy`): how often a CNN reader trained on real
  rendered CAPTCHAs (:mod:`hvae_captcha.reader`) reads the requested characters in samples drawn for given texts.
"""

from __future__ import annotations

import math

import torch
from accelerate import Accelerator

from gencore.distributed import sharded_map
from gencore.metrics import bits_per_dim, iw_elbo, psnr
from gencore.nn import evaluating
from gencore.progress import progress
from hvae_captcha.data import CaptchaData, to_float
from hvae_captcha.model import HVAE
from hvae_captcha.reader import CaptchaReader, text_accuracy
from hvae_captcha.textprior import TextPrior

ACTIVE_THRESHOLD = 0.01


@torch.no_grad()
def evaluate_model(
    model: HVAE,
    data: CaptchaData,
    k: int = 16,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    *,
    accelerator: Accelerator | None = None,
    seed: int | None = None,
    desc: str | None = None,
) -> dict[str, float]:
    """All figures of the module docstring over ``data`` (model in eval mode during the call).

    With ``accelerator`` the batches are split over its processes and the per-image figures gathered (call it on
    every process; each gets the same result). With ``seed`` each batch draws its posterior samples from
    ``seed + first index``, so the figures do not depend on the number of processes; without it they come from
    the global torch RNG. ``desc``: the name of a progress bar over the batches (shown on a terminal only).
    """
    dims = math.prod(data.images.shape[1:])

    def per_image(start: int, stop: int) -> dict[str, torch.Tensor]:
        x = to_float(data.images[start:stop]).to(device)
        y = model.encode_data(data, start, stop)
        out = {"iw": iw_elbo(model.log_weights(x, k, y))}
        params, levels = model.top_down(len(x), model.bottom_up(x), y)
        batch_kl = [lv.kl().flatten(1).sum(1) for lv in levels]
        out["elbo"] = model.log_likelihood(x, params).cpu() - sum(kl.cpu() for kl in batch_kl)
        out["psnr"] = psnr(model.mean_image(params).cpu(), model.binarize_if_needed(x).cpu())
        for i, lv in enumerate(levels):  # posterior means and KLs per level, top first
            out[f"mu{i}"], out[f"kl{i}"] = lv.mu_q.flatten(1), batch_kl[i]
        return out

    with evaluating(model):
        got = sharded_map(accelerator, len(data.texts), per_image, batch_size, seed=seed, desc=desc)
    out = {
        "nll_bits_per_dim": bits_per_dim(got["iw"], dims),
        "elbo_bits_per_dim": bits_per_dim(got["elbo"], dims),
        "iw_samples": float(k),
        "psnr_db": float(got["psnr"].mean()),
    }
    levels_count = len(model.latent_shapes)
    for i in range(levels_count):  # levels come top first from top_down; report level 1 = bottom
        level = levels_count - i
        stacked = got[f"mu{i}"]
        active = (stacked.std(0) > ACTIVE_THRESHOLD).sum().item() if len(stacked) > 1 else 0
        out[f"kl_level{level}_nats"] = float(got[f"kl{i}"].mean())
        out[f"active_units_level{level}"] = float(active)
        out[f"units_level{level}"] = float(stacked.shape[1])
    return out


def unconditional_bound(
    model: HVAE, data: CaptchaData, prior: TextPrior, k: int = 16, batch_size: int = 64, seed: int = 0,
    conditional_nll: float | None = None,
) -> dict[str, float]:  # fmt: skip
    """A conditioned model's bound on -log p(x) in bits/dim: the IWAE bound given each image's own text and its
    layout on the prior's lattice, plus -log p(text) - log p(layout | text) (:mod:`hvae_captcha.textprior`).

    ``conditional_nll``: the IWAE bound (bits/dim) already measured on ``data`` with ``k`` samples; when the prior
    places no characters there is nothing to snap, so it is reused instead of measured again.
    Returns ``nll_unconditional_bits_per_dim`` and ``text_prior_bits_per_dim`` (the prior's share of it).
    """
    layouts = [prior.quantize(c) for c in data.layouts] if prior.width and data.layouts is not None else None
    if prior.width and layouts is None:
        raise ValueError("this model's text prior places the characters: these images have no recorded layout")
    if prior.width or conditional_nll is None:
        snapped = CaptchaData(data.images, data.texts, layouts)
        nll = evaluate_model(model, snapped, k, batch_size, model.device, seed=seed, desc="unconditional bound")
        nll = nll["nll_bits_per_dim"]
    else:
        nll = conditional_nll
    log_p = [prior.log_prob(t, c) for t, c in zip(data.texts, layouts or [None] * len(data.texts))]
    dims = math.prod(data.images.shape[1:])
    cost = -sum(log_p) / len(log_p) / (dims * math.log(2))
    return {"nll_unconditional_bits_per_dim": nll + cost, "text_prior_bits_per_dim": cost}


@torch.no_grad()
def sample_text_accuracy(
    model: HVAE, reader: CaptchaReader, texts: list[str], temperature: float = 1.0, batch_size: int = 64,
    layouts: list[list[float]] | None = None,
) -> dict[str, float]:  # fmt: skip
    """How readable a conditioned model's samples are: one prior sample per text in ``texts`` (at ``layouts`` for
    a rendered-layout model), read by ``reader``.

    Returns the reader's character and whole-text accuracy against the requested texts (compare them with the
    reader's accuracy on real images of the same texts, its ceiling).
    """
    starts = range(0, len(texts), batch_size)
    with evaluating(model):
        images = torch.cat([model.sample(len(texts[i : i + batch_size]), texts[i : i + batch_size], temperature,
                                         layouts[i : i + batch_size] if layouts is not None else None)[0].cpu()
                            for i in progress(starts, total=len(starts), desc="text samples")])  # fmt: skip
    return text_accuracy(reader, images, texts)

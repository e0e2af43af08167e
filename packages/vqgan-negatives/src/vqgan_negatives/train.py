"""First-stage (VQGAN) training on gencore's Trainer.

One update per batch: the autoencoder ("vq") minimises L1 + perceptual + codebook/commitment and, once
``loss.disc_start`` updates have passed, the adaptive-weighted generator term; the discriminator ("D") is updated
with the hinge loss from the same step on (before that neither is trained adversarially, as in taming).

``python -m vqgan_negatives.train [options]`` (and so ``accelerate launch -m vqgan_negatives.train``) is the same
as ``vqgan-negatives train-vqgan``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from gencore.checkpoint import atomic_write_text
from gencore.data import TensorImageDataset, split_indices
from gencore.distributed import sharded_map
from gencore.errors import DataError
from gencore.losses import adaptive_weight, d_loss, g_loss
from gencore.memory import require_batch_memory, require_memory, require_model_memory, tensor_bytes
from gencore.metrics import codebook_usage, psnr
from gencore.nn import evaluating
from gencore.train import FitResult, StepContext, Trainer, seed_everything
from vqgan_negatives.config import VQGANConfig
from vqgan_negatives.data import load_training_images
from vqgan_negatives.model import PatchDiscriminator, VQModel
from vqgan_negatives.perceptual import build_perceptual, perceptual_distance

__all__ = ["prepare_data", "make_vq_step", "evaluate_vq", "build_trainer", "run_training"]


def prepare_data(config: VQGANConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(training images, held-out images) at the model's resolution, in [-1, 1]."""
    images = load_training_images(config.data, config.model.resolution, config.train.seed)
    if images.shape[1] != config.model.in_channels:
        raise ValueError(f"data has {images.shape[1]} channels, model.in_channels is {config.model.in_channels}")
    train_idx, hold_idx = split_indices(len(images), [1 - config.data.holdout_fraction, config.data.holdout_fraction],
                                        seed=config.train.seed)  # fmt: skip
    if not hold_idx or len(train_idx) < config.train.batch_size:  # bad input: a one-line error, not a traceback
        raise DataError(f"{config.data.source}: {len(images)} images are too few for batch size "
                        f"{config.train.batch_size} and a holdout")  # fmt: skip
    return images[train_idx], images[hold_idx]


def make_vq_step(config: VQGANConfig, perceptual: torch.nn.Module | None):
    """The step function: autoencoder update, then (after ``disc_start``) the discriminator update."""
    lc, size = config.loss, config.model.quantizer.codebook_size

    def step(ctx: StepContext, x: torch.Tensor) -> dict[str, Any]:
        xrec, q_loss, indices = ctx.models["vq"](x)
        l1 = (x - xrec).abs().mean()
        p_loss = perceptual_distance(perceptual, x, xrec)
        nll = lc.l1_weight * l1 + lc.perceptual_weight * p_loss
        adversarial = ctx.step >= lc.disc_start
        zero = torch.zeros((), device=x.device)
        gen, weight = zero, zero
        if adversarial:
            gen = g_loss(ctx.module("D")(xrec), lc.disc_loss)
            weight = adaptive_weight(nll, gen, ctx.module("vq").last_layer) * lc.disc_weight
        ctx.update("vq", nll + weight * gen + lc.codebook_weight * q_loss)
        disc = zero
        if adversarial:
            disc = d_loss(ctx.models["D"](x), ctx.models["D"](xrec.detach()), lc.disc_loss)
            ctx.update("D", disc)
        usage = codebook_usage(indices.detach(), size)
        return {"l1": l1, "perceptual": p_loss, "codebook": q_loss, "g": gen, "d": disc, "d_weight": weight,
                "batch_usage": usage["usage"], "batch_perplexity": usage["perplexity"]}  # fmt: skip

    return step


@torch.no_grad()
def evaluate_vq(
    model: VQModel, images: torch.Tensor, batch_size: int = 64, accelerator: Accelerator | None = None
) -> dict[str, float]:
    """PSNR (dB, on [0, 1]), L1 and codebook usage/perplexity over ``images`` (distinct codes over the set).

    With ``accelerator`` each process encodes its share of the batches and the per-image figures and codes are
    gathered (call it on every process; all get the same figures).
    """
    device = next(model.parameters()).device

    def per_image(start: int, stop: int) -> dict[str, torch.Tensor]:
        chunk = images[start:stop].to(device)
        rec, _, idx = model(chunk)
        rec = rec.clamp(-1, 1)
        return {"indices": idx, "psnr": psnr(rec * 0.5 + 0.5, chunk * 0.5 + 0.5),
                "l1": (rec - chunk).abs().flatten(1).mean(1)}  # fmt: skip

    with evaluating(model):  # no codebook updates, no restarts (and so no collectives inside the quantizer)
        got = sharded_map(accelerator, len(images), per_image, batch_size)
    usage = codebook_usage(got["indices"], model.config.quantizer.codebook_size)
    return {"psnr": float(got["psnr"].mean()), "l1": float(got["l1"].mean()), **usage}


def require_memory_for(config: VQGANConfig) -> None:
    """Refuse, in one line and before anything is allocated, a resolution (``--image-size``) or model at which one
    input batch, the training images or the two models (weights, gradients, Adam moments) cannot fit in memory
    (:mod:`gencore.memory`)."""
    m, d = config.model, config.data
    item = (m.in_channels, m.resolution, m.resolution)
    require_batch_memory(config.train.batch_size, item, "images", "--image-size, model.resolution")
    if d.num_images:  # float32 (N, C, H, W) for the whole run
        dims = "x".join(map(str, item))
        require_memory(tensor_bytes([d.num_images, *item]), f"{d.num_images} training images of {dims} "
                       "(data.num_images, --image-size)")  # fmt: skip
    disc = replace(config.disc, in_channels=m.in_channels)
    what = f"VQGAN and discriminator (model.ch={m.ch}, model.ch_mult={list(m.ch_mult)}, disc.ndf={disc.ndf})"
    require_model_memory(lambda: (VQModel(m), PatchDiscriminator(disc)), what,
                         device="cpu" if config.train.cpu else None)  # fmt: skip


def build_trainer(config: VQGANConfig) -> tuple[Trainer, str]:
    """Data, models, optimizers and the Trainer (nothing trained yet); also says which perceptual loss is used."""
    seed_everything(config.train.seed)
    require_memory_for(config)
    train_images, holdout = prepare_data(config)
    model = VQModel(config.model)
    disc = PatchDiscriminator(replace(config.disc, in_channels=config.model.in_channels))
    perceptual, which = build_perceptual(config.loss.perceptual, config.loss.vgg_weights, config.loss.lpips_weights)
    oc = config.optim
    optimizers = {
        "vq": torch.optim.Adam(model.parameters(), oc.lr_g, betas=(oc.beta1, oc.beta2)),
        "D": torch.optim.Adam(disc.parameters(), oc.lr_d, betas=(oc.beta1, oc.beta2)),
    }
    eval_set = holdout[: config.eval.samples]
    shown = holdout[:8]

    def evaluate(trainer: Trainer) -> dict[str, float]:
        return evaluate_vq(trainer.unwrap("vq"), eval_set, config.eval.batch_size, trainer.accelerator)

    def samples(trainer: Trainer) -> torch.Tensor:
        vq = trainer.unwrap("vq")
        x = shown.to(trainer.accelerator.device)
        with evaluating(vq):
            rec = vq(x)[0].clamp(-1, 1)
        return torch.cat([x, rec]) * 0.5 + 0.5  # top row: held-out originals, bottom row: reconstructions

    trainer = Trainer(
        config.train, {"vq": model, "D": disc}, optimizers, make_vq_step(config, perceptual),
        TensorImageDataset(train_images), sample_fn=samples, eval_fn=evaluate, run_config=config,
        export_fn=lambda trainer, result: export_models(trainer, result, which),
        console_columns=["l1", "perceptual", "codebook", "g", "d", "d_weight", "batch_usage", "steps_per_s",
                         "eval/psnr", "eval/usage", "eval/perplexity"],
    )  # fmt: skip
    if perceptual is not None:  # frozen, not a trained model: moved to the device by hand
        perceptual.to(trainer.accelerator.device)
    return trainer, which


def export_models(trainer: Trainer, result: FitResult, which: str) -> None:
    """Note the perceptual network in ``perceptual.txt``; once training is over write ``model/vqgan`` and
    ``model/discriminator`` (the Trainer's ``export_fn``)."""
    run_dir = Path(trainer.run_dir)
    atomic_write_text(run_dir / "perceptual.txt", which + "\n")
    if not result.completed:
        return
    record = trainer.training_record(result)
    trainer.unwrap("vq").save_pretrained(run_dir / "model" / "vqgan", training=record)
    trainer.unwrap("D").save_pretrained(run_dir / "model" / "discriminator", training=record)
    m = result.metrics
    summary = ", ".join(f"{k} {m[k]:.4g}" for k in ("psnr", "usage", "perplexity") if k in m)
    trainer.print(f"done ({result.reason}) at step {result.step}: {run_dir}/samples, model/vqgan; {summary}")


def run_training(config: VQGANConfig, resume: str | None = None) -> FitResult:
    """Train the first stage; writes the run directory and ``model/vqgan`` (+ ``model/discriminator``)."""
    trainer, which = build_trainer(config)
    trainer.print(which)
    return trainer.fit(resume=resume)


if __name__ == "__main__":  # accelerate launch -m vqgan_negatives.train [options]
    import sys

    from vqgan_negatives.cli import main

    main(["train-vqgan", *sys.argv[1:]])

"""gencore's self-demo: a small convolutional VAE on procedurally drawn 16x16 shapes, trained with the Trainer.

Runs as ``gencore demo`` or, for several processes, ``accelerate launch -m gencore.demo``. It exercises the
parts every package uses: config + CLI, Trainer (KL warm-up, EMA, evaluation with an importance-weighted bound,
early stopping, samples, checkpoints, resume) and save_pretrained/from_pretrained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from gencore.checkpoint import PretrainedMixin
from gencore.config import Renamed
from gencore.data import TensorImageDataset, split_indices
from gencore.distributed import sharded_map
from gencore.losses import bernoulli_log_likelihood, gaussian_kl, kl_warmup, reparameterize, soft_clamp
from gencore.metrics import bits_per_dim, iw_elbo
from gencore.train import FitResult, StepContext, TrainConfig, Trainer, seed_everything

SIZE = 16


def _demo_train_defaults() -> TrainConfig:
    return TrainConfig(
        output_dir="runs/gencore-demo", max_steps=1500, batch_size=64, log_every=50, sample_every=500,
        eval_every=250, checkpoint_every=500, early_stop_metric="nll_bits_per_dim", patience=5,
    )  # fmt: skip


@dataclass
class VAEConfig:
    """Architecture of the demo VAE."""

    latent_dim: int = 8
    channels: int = 32


@dataclass
class DemoOptimConfig:
    """Adam and the EMA of the weights."""

    lr: float = 2e-3  # Adam learning rate
    ema_decay: float = 0.99  # EMA of the weights, used for samples, evaluation and model/ (0: the weights as trained)


@dataclass
class DemoEvalConfig:
    """The importance-weighted bound on the validation images."""

    iw_samples: int = 16  # importance samples for the evaluation bound
    batch_size: int = 128  # validation images per batch; the batches are split over the processes


@dataclass
class DemoConfig:
    """The demo's options; ``train`` holds the shared Trainer options."""

    model: VAEConfig = field(default_factory=VAEConfig)
    optim: DemoOptimConfig = field(default_factory=DemoOptimConfig)
    num_images: int = 4096  # procedurally drawn shapes (discs, squares, rings)
    val_fraction: float = 0.1
    kl_warmup_steps: int = 200
    eval: DemoEvalConfig = field(default_factory=DemoEvalConfig)
    train: TrainConfig = field(default_factory=_demo_train_defaults)

    #: Keys of earlier versions, read under their new names (gencore.config.migrate_keys).
    renamed_keys: ClassVar[tuple[Renamed, ...]] = (
        Renamed("lr", "optim.lr"), Renamed("ema_decay", "optim.ema_decay"),
        Renamed("iw_samples", "eval.iw_samples"), Renamed("eval_batch", "eval.batch_size"),
    )


def draw_shapes(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` binary 1x16x16 images of a disc, square or ring at a random place and size (float 0/1)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    images = np.zeros((n, 1, SIZE, SIZE), dtype=np.float32)
    for i in range(n):
        kind = rng.integers(3)
        r = rng.uniform(2.5, 5.5)
        cy, cx = rng.uniform(r, SIZE - r, size=2)
        if kind == 0:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
        elif kind == 1:
            mask = (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
        else:
            d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            mask = (d <= r) & (d >= r - 1.6)
        images[i, 0] = mask
    return torch.from_numpy(images)


class ShapesVAE(PretrainedMixin, nn.Module):
    """Conv encoder (16 -> 8 -> 4) to a diagonal Gaussian, mirrored decoder to Bernoulli logits."""

    config_class = VAEConfig

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c, d = config.channels, config.latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.SiLU(), nn.Conv2d(c, 2 * c, 4, 2, 1), nn.SiLU(), nn.Flatten(),
            nn.Linear(2 * c * 16, 2 * d),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(d, 2 * c * 16), nn.SiLU(), nn.Unflatten(1, (2 * c, 4, 4)),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(c, 1, 4, 2, 1),
        )  # fmt: skip

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and (soft-clamped) log-variance."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, soft_clamp(logvar, 6.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (reconstruction logits, mu, logvar)."""
        mu, logvar = self.encode(x)
        return self.decoder(reparameterize(mu, logvar)), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Pixel probabilities of ``n`` images drawn from the prior."""
        z = torch.randn(n, self.config.latent_dim, device=device)
        return torch.sigmoid(self.decoder(z))

    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """(k, B) importance log weights log p(x|z) + log p(z) - log q(z|x), z ~ q(z|x)."""
        mu, logvar = self.encode(x)
        out = []
        for _ in range(k):
            z = reparameterize(mu, logvar)
            log_px = bernoulli_log_likelihood(self.decoder(z), x)
            log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
            log_qz = -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(1)
            out.append(log_px + log_pz - log_qz)
        return torch.stack(out)


def build_trainer(config: DemoConfig) -> Trainer:
    """Data, the VAE, its optimizer and the Trainer of the demo (nothing trained yet)."""
    seed_everything(config.train.seed)
    images = draw_shapes(config.num_images, seed=config.train.seed)
    train_idx, val_idx = split_indices(len(images), [1 - config.val_fraction, config.val_fraction], config.train.seed)
    train_set = TensorImageDataset(images[train_idx])
    val_images = images[val_idx]
    model = ShapesVAE(config.model)
    opt = torch.optim.Adam(model.parameters(), lr=config.optim.lr)

    def step(ctx: StepContext, x: torch.Tensor) -> dict[str, Any]:
        logits, mu, logvar = ctx.models["vae"](x)
        rec = -bernoulli_log_likelihood(logits, x).mean()
        kl = gaussian_kl(mu, logvar).mean()
        beta = kl_warmup(ctx.step, config.kl_warmup_steps)
        ctx.update("vae", rec + beta * kl)
        return {"rec_nats": rec, "kl_nats": kl, "beta": beta}

    def evaluate(trainer: Trainer) -> dict[str, float]:
        vae, device = trainer.ema["vae"].shadow, trainer.accelerator.device

        def per_image(start: int, stop: int) -> dict[str, torch.Tensor]:
            x = val_images[start:stop].to(device)
            return {"iw": iw_elbo(vae.log_weights(x, config.eval.iw_samples)), "elbo": vae.log_weights(x, 1)[0]}

        # split over the ranks, seeded per batch: the same figures on any number of processes
        out = sharded_map(
            trainer.accelerator, len(val_images), per_image, config.eval.batch_size, seed=config.train.seed + 1
        )
        dims = val_images[0].numel()
        return {"nll_bits_per_dim": bits_per_dim(out["iw"], dims), "elbo_bits_per_dim": bits_per_dim(out["elbo"], dims)}

    def samples(trainer: Trainer) -> dict[str, torch.Tensor]:
        vae = trainer.ema["vae"].shadow
        device = trainer.accelerator.device
        x = val_images[:32].to(device)
        recon = torch.sigmoid(vae(x)[0])
        pairs = torch.stack([x, recon], 1).flatten(0, 1)
        return {"prior": vae.sample(64, device), "reconstruction": pairs}

    return Trainer(
        config.train, {"vae": model}, {"vae": opt}, step, train_set,
        ema={"vae": config.optim.ema_decay}, sample_fn=samples, eval_fn=evaluate, run_config=config,
        export_fn=export_model,
    )  # fmt: skip


def export_model(trainer: Trainer, result: FitResult) -> None:
    """Write ``<run>/model`` (the EMA weights) once training is over (the Trainer's ``export_fn``)."""
    if not result.completed:
        return
    trainer.ema["vae"].shadow.save_pretrained(trainer.run_dir / "model", training=trainer.training_record(result))
    trainer.print(
        f"done ({result.reason}) at step {result.step}: {trainer.run_dir}/model, samples/, losses.png, "
        f"metrics.csv; validation NLL <= {result.metrics.get('nll_bits_per_dim', float('nan')):.4f} bits/dim"
    )


def run_demo(config: DemoConfig, resume: str | None = None) -> FitResult:
    """Train the demo VAE; writes the run directory and ``<run>/model``; returns how training ended."""
    return build_trainer(config).fit(resume=resume)


if __name__ == "__main__":  # accelerate launch -m gencore.demo [options]
    from gencore.cli import main

    main(["demo", *__import__("sys").argv[1:]])

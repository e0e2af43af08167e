"""Tiny models and data for the core tests: a toy GAN on 2-D points with every Trainer feature switched on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from gencore.losses import d_loss, g_loss
from gencore.train import StepContext, TrainConfig, Trainer, seed_everything


class Points(torch.utils.data.Dataset):
    """Fixed points on a ring: 40 of them, so epochs are short and cross accumulation boundaries."""

    def __init__(self, n: int = 40) -> None:
        angle = torch.linspace(0, 6.283, n + 1)[:-1]
        self.x = torch.stack([angle.cos(), angle.sin()], 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def make_gan_trainer(run_dir: Path, *, nan_at: int | None = None, **overrides: Any) -> Trainer:
    """A G/D pair with dropout (RNG use), a scheduler, EMA and accumulation: every piece of state resume needs."""
    seed_everything(0)
    g = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))
    d = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opts = {"G": torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.9)), "D": torch.optim.Adam(d.parameters(), 1e-3)}
    sched = {"G": torch.optim.lr_scheduler.StepLR(opts["G"], step_size=3, gamma=0.9)}
    cfg = dict(output_dir=str(run_dir), max_steps=12, batch_size=8, grad_accum_steps=2, log_every=2,
               checkpoint_every=5, tensorboard=False, progress_bar=False, grad_clip=1.0)
    cfg.update(overrides)

    def step(ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
        z = torch.randn(len(real), 4, device=ctx.device)
        fake = ctx.models["G"](z)
        loss_d = d_loss(ctx.models["D"](real), ctx.models["D"](fake.detach()))
        ctx.update("D", loss_d)
        loss_g = g_loss(ctx.module("D")(fake))
        if nan_at is not None and ctx.step + 1 >= nan_at:
            loss_g = loss_g * float("nan")
        ctx.update("G", loss_g)
        return {"loss_d": loss_d, "loss_g": loss_g}

    return Trainer(TrainConfig(**cfg), {"G": g, "D": d}, opts, step, Points(), schedulers=sched, ema={"G": 0.9})


@pytest.fixture
def make_gan():
    """Factory of toy GAN trainers: ``make_gan(run_dir, nan_at=None, **train_config_overrides)``."""
    return make_gan_trainer


@pytest.fixture
def points():
    return Points

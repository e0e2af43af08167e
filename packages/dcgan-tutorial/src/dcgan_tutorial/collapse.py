"""Mode collapse made visible: a ring of 8 Gaussians in 2-D, where every mode can be counted.

The data are 8 Gaussians (std 0.05) on a circle of radius 2. A generated point is *high quality* when it lies
within 3 std of its nearest mode; a mode is *covered* when it receives at least 2% of the high-quality points.
``run_collapse_demo`` trains the same small MLP GAN twice through gencore's Trainer, once with settings that
collapse (a generator learning 10x faster than the discriminator) and once with the remedy the lesson teaches
(different learning rates the other way round: a faster discriminator), and draws the two runs side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gencore.losses import d_loss, g_loss, gradient_penalty
from gencore.results import write_json
from gencore.train import StepContext, TrainConfig, Trainer, seed_everything

MODES = 8
RADIUS = 2.0
STD = 0.05


def mode_centres() -> torch.Tensor:
    """(8, 2) centres of the ring."""
    angles = torch.arange(MODES) * (2 * math.pi / MODES)
    return RADIUS * torch.stack([angles.cos(), angles.sin()], 1)


def sample_ring(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points from the mixture, modes in equal proportion."""
    idx = torch.randint(0, MODES, (n,), generator=generator)
    return mode_centres()[idx] + STD * torch.randn(n, 2, generator=generator)


def mode_stats(points: torch.Tensor, min_share: float = 0.02) -> dict[str, float]:
    """Modes covered and fraction of high-quality points (within 3 std of the nearest mode)."""
    dist = torch.cdist(points.double(), mode_centres().double())
    nearest, which = dist.min(1)
    good = nearest < 3 * STD
    counts = torch.bincount(which[good], minlength=MODES).double()
    covered = int((counts >= min_share * max(int(good.sum()), 1)).sum()) if good.any() else 0
    return {"modes": covered, "quality": float(good.double().mean())}


class RingPoints(torch.utils.data.Dataset):
    """A fixed sample of the ring (seeded), so runs are reproducible and resumable."""

    def __init__(self, n: int = 25600, seed: int = 0) -> None:
        self.x = sample_ring(n, torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def _mlp(d_in: int, d_out: int, width: int = 128) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, d_out))


@dataclass
class RingRun:
    """One run's settings."""

    name: str
    loss: str  # "nonsaturating" or "wgan-gp"
    lr_g: float
    lr_d: float
    betas: tuple[float, float]


# Same loss, same networks; only the learning rates differ. A generator that learns 10x faster than its critic
# chases whatever D currently likes and piles onto a few points; a discriminator that learns faster (the
# two-time-scale rule, Heusel et al. 2017) keeps every mode in play.
COLLAPSING = RingRun("collapsing", "nonsaturating", lr_g=2e-3, lr_d=2e-4, betas=(0.5, 0.999))
HEALTHY = RingRun("healthy", "nonsaturating", lr_g=1e-4, lr_d=1e-3, betas=(0.5, 0.999))


def train_ring(run: RingRun, out_dir: Path, steps: int, seed: int, snapshots: int = 5):
    """Train one ring GAN; returns (snapshots [(step, points)], per-evaluation mode stats)."""
    seed_everything(seed)
    g, d = _mlp(2, 2), _mlp(2, 1)
    opts = {"G": torch.optim.Adam(g.parameters(), run.lr_g, betas=run.betas),
            "D": torch.optim.Adam(d.parameters(), run.lr_d, betas=run.betas)}  # fmt: skip
    kind = "wgan" if run.loss == "wgan-gp" else run.loss

    def step(ctx: StepContext, real: torch.Tensor) -> dict[str, torch.Tensor]:
        fake = ctx.models["G"](torch.randn(len(real), 2, device=ctx.device))
        loss_d = d_loss(ctx.models["D"](real), ctx.models["D"](fake.detach()), kind)
        if run.loss == "wgan-gp":
            loss_d = loss_d + 0.1 * gradient_penalty(ctx.module("D"), real, fake)
        ctx.update("D", loss_d)
        loss_g = g_loss(ctx.module("D")(fake), kind)
        ctx.update("G", loss_g)
        return {"loss_d": loss_d, "loss_g": loss_g}

    fixed_z = torch.randn(2000, 2, generator=torch.Generator().manual_seed(seed + 1))
    shots: list[tuple[int, torch.Tensor]] = []

    def evaluate(trainer: Trainer) -> dict[str, float]:
        points = trainer.unwrap("G")(fixed_z.to(trainer.accelerator.device)).cpu()
        shots.append((trainer.step, points))
        return mode_stats(points)

    cfg = TrainConfig(
        output_dir=str(out_dir / run.name), max_steps=steps, batch_size=256, log_every=max(steps // 10, 1),
        eval_every=max(steps // snapshots, 1), checkpoint_every=0, seed=seed, progress_bar=False, tensorboard=False,
    )  # fmt: skip
    trainer = Trainer(cfg, {"G": g, "D": d}, opts, step, RingPoints(seed=seed), eval_fn=evaluate)
    trainer.fit()
    return shots


def run_collapse_demo(out_dir: Path, steps: int = 2000, seed: int = 0, log: Callable[[str], None] = print):
    """Train both runs and write ``collapse.png`` (scatter per evaluation, one row per run) and ``collapse.json``."""
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    runs = {}
    with tempfile.TemporaryDirectory() as scratch:  # the toy runs' checkpoints and logs are not worth keeping
        for run in (COLLAPSING, HEALTHY):
            log(f"training the {run.name} GAN ({run.loss}, lr_g {run.lr_g}, lr_d {run.lr_d})")
            runs[run.name] = train_ring(run, Path(scratch), steps, seed)
    cols = max(len(s) for s in runs.values())
    fig, axes = plt.subplots(2, cols, figsize=(2.6 * cols, 5.6), squeeze=False)
    real = sample_ring(1000, torch.Generator().manual_seed(seed + 2))
    summary = {}
    for row, (name, shots) in enumerate(runs.items()):
        for col, (step, points) in enumerate(shots):
            ax = axes[row, col]
            stats = mode_stats(points)
            ax.scatter(real[:, 0], real[:, 1], s=2, c="0.8")
            ax.scatter(points[:, 0], points[:, 1], s=2, c="tab:red" if name == "collapsing" else "tab:blue")
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name} @ {step}\nmodes {stats['modes']}/8, quality {stats['quality']:.0%}", fontsize=8)
        summary[name] = mode_stats(shots[-1][1])
    fig.tight_layout()
    fig.savefig(out_dir / "collapse.png", dpi=90)
    plt.close(fig)
    write_json(out_dir / "collapse.json", summary)
    return summary

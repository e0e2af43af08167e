"""Helpers for the packages' own tests: compare training states, check that resume is exact."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gencore.losses import d_loss, g_loss
from gencore.train import StepContext, TrainConfig, Trainer, seed_everything

__all__ = [
    "Points",
    "make_gan_trainer",
    "trainer_tensors",
    "assert_same_tensors",
    "assert_resume_exact",
    "assert_ranks_in_sync",
    "launch_cpu_processes",
    "read_metrics",
]


class Points(torch.utils.data.Dataset):
    """Fixed points on a ring: 40 of them, so epochs are short and cross accumulation boundaries."""

    def __init__(self, n: int = 40) -> None:
        angle = torch.linspace(0, 6.283, n + 1)[:-1]
        self.x = torch.stack([angle.cos(), angle.sin()], 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def make_gan_trainer(run_dir: str | Path, *, nan_at: int | None = None, **overrides: Any) -> Trainer:
    """A G/D pair with dropout (RNG use), a scheduler, EMA and accumulation: every piece of state resume needs."""
    seed_everything(0)
    g = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))
    d = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opts = {"G": torch.optim.Adam(g.parameters(), 1e-3, betas=(0.5, 0.9)), "D": torch.optim.Adam(d.parameters(), 1e-3)}
    sched = {"G": torch.optim.lr_scheduler.StepLR(opts["G"], step_size=3, gamma=0.9)}
    cfg = dict(
        output_dir=str(run_dir),
        max_steps=12,
        batch_size=8,
        grad_accum_steps=2,
        log_every=2,
        checkpoint_every=5,
        report_to="none",
        progress_bar=False,
        grad_clip=1.0,
    )
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


def trainer_tensors(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Every model weight, EMA weight and optimizer state tensor of ``trainer``, by name (copies)."""
    out = {f"{n}.{k}": v.detach().clone() for n in trainer.models for k, v in trainer.unwrap(n).state_dict().items()}
    for n, ema in trainer.ema.items():
        out.update({f"ema.{n}.{k}": v.detach().clone() for k, v in ema.state_dict().items()})
    for n, opt in trainer.optimizers.items():
        for i, st in opt.state_dict()["state"].items():
            out.update({f"opt.{n}.{i}.{k}": torch.as_tensor(v).clone() for k, v in st.items()})
    return out


def assert_same_tensors(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Raise AssertionError naming the first tensor that differs (bitwise)."""
    assert got.keys() == expected.keys(), sorted(set(got) ^ set(expected))
    for key, value in expected.items():
        assert torch.equal(got[key], value), f"{key} differs after resume"


def assert_resume_exact(make_trainer: Callable[..., Trainer], root: Path, stop_at: int, total: int) -> None:
    """Train ``total`` steps in one go and, separately, ``stop_at`` steps then resume to ``total``; compare.

    ``make_trainer(output_dir, max_steps)`` must build a fresh, identically seeded Trainer each call.
    """
    full = make_trainer(Path(root) / "unbroken", total)
    full.fit()
    make_trainer(Path(root) / "stopped", stop_at).fit()
    resumed = make_trainer(Path(root) / "stopped", total)
    result = resumed.fit(resume="auto")
    assert result.step == total, result
    assert_same_tensors(trainer_tensors(resumed), trainer_tensors(full))


def assert_ranks_in_sync(checkpoint: str | Path, world_size: int = 2) -> dict[str, Any]:
    """Check a checkpoint written by a ``world_size``-process run; returns its loaded state tree.

    It must record that many processes; every rank's fingerprint of its weights, EMA, optimizer and scheduler
    state (taken while saving) must equal the fingerprint of what rank 0 wrote, so no rank drifted; and the ranks'
    torch RNG states must differ, as they do when each rank draws its own noise (per-rank seeds).
    """
    from gencore.checkpoint import load_tree, verify_dir
    from gencore.distributed import replica_digest

    verify_dir(checkpoint)
    tree = load_tree(checkpoint)
    assert tree["trainer"]["world_size"] == world_size, tree["trainer"]
    assert len(tree["rng"]) == world_size
    assert tree["rank_digests"] == [replica_digest(tree)] * world_size, "the processes hold different states"
    states = [rng["torch"] for rng in tree["rng"]]
    assert all(not torch.equal(a, b) for i, a in enumerate(states) for b in states[i + 1 :]), "ranks share noise"
    return tree


def launch_cpu_processes(args: Sequence[str], processes: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    """``accelerate launch`` of ``args`` (a script or ``-m module`` and its options) as gloo processes on the CPU.

    ``--cpu --num_processes N`` would silently start ONE process (see DESIGN.md); this is the launch that really
    gives N ranks, one thread each. Output is captured as text; the caller checks the return code.
    """
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           *args]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def random_inception_weights(path: str | Path, aux_logits: bool = True) -> Path:
    """Save a seeded random torchvision Inception v3 state dict at ``path`` (an ImageNet file cannot be downloaded
    here), its BatchNorm statistics set from two noise images so that its features have the scale of a trained
    network's; ``aux_logits`` False gives the layout without the auxiliary head."""
    from torchvision import models

    torch.manual_seed(0)
    net = models.inception_v3(weights=None, aux_logits=aux_logits, init_weights=False)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the calibration batch
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    torch.save(net.state_dict(), path)
    return Path(path)


def read_metrics(run_dir: str | Path) -> list[dict[str, str]]:
    """The rows of a run's ``metrics.csv`` (values as the logger wrote them: floats with 6 significant digits)."""
    with open(Path(run_dir) / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))

"""Tiny configurations: 16×32 images, 8-channel blocks, a few dozen rendered CAPTCHAs."""

from __future__ import annotations

import pytest

from gencore.config import build_config
from hvae_captcha.config import HVAEConfig

TINY = [
    "model.height=16", "model.width=32", 'model.outer_config=[["conv", 8], ["pool", 2], ["conv", 8]]',
    'model.inner_config=[[["pool", 2], ["conv", 8]]]', "model.latent_dim=2", "data.num_images=48",
    "data.holdout_fraction=0.25", "eval.num_images=8", "eval.iw_samples=2", "train.batch_size=8",
    "train.max_steps=4", "train.log_every=2", "train.checkpoint_every=2", "train.eval_every=0",
    "train.sample_every=0", "train.progress_bar=false", "train.tensorboard=false", "optim.lr_warmup_steps=2",
    "loss.kl_warmup_steps=3",
]  # fmt: skip

TINY_CLI = [arg for item in TINY for arg in ("--set", item)]


@pytest.fixture
def tiny_config():
    """``tiny_config(run_dir, *overrides)`` -> an HVAEConfig small enough for a unit test."""

    def make(run_dir, *overrides: str) -> HVAEConfig:
        return build_config(HVAEConfig, overrides=[*TINY, f"train.output_dir={str(run_dir)!r}", *overrides])

    return make


@pytest.fixture
def tiny_cli() -> list[str]:
    """The tiny configuration as ``--set`` options."""
    return list(TINY_CLI)


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one thread is faster than two and immune to spin-waiting on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def silence():
    """``silence(*modules)`` zeroes their weights and biases, so that a test sees what the other paths carry."""
    import torch

    def zero(*modules) -> None:  # noqa: ANN002 - torch modules with a weight and a bias
        with torch.no_grad():
            for module in modules:
                module.weight.zero_()
                module.bias.zero_()

    return zero

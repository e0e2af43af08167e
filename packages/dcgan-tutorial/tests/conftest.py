"""Tiny configurations: 16-px images, narrow networks, a few hundred crops."""

from __future__ import annotations

import pytest

from dcgan_tutorial.config import GANConfig
from gencore.config import build_config

TINY = [
    "model.image_size=16", "model.ngf=8", "model.ndf=8", "model.nz=16", "data.num_images=96",
    "eval_samples=64", "feature_steps=20", "train.batch_size=16", "train.max_steps=4", "train.log_every=2",
    "train.checkpoint_every=2", "train.eval_every=0", "train.sample_every=0", "train.progress_bar=false",
    "train.tensorboard=false",
]  # fmt: skip


@pytest.fixture
def tiny_config():
    """``tiny_config(run_dir, *overrides)`` -> a GANConfig small enough for a unit test."""

    def make(run_dir, *overrides: str) -> GANConfig:
        return build_config(GANConfig, overrides=[*TINY, f"train.output_dir={str(run_dir)!r}", *overrides])

    return make

"""Tiny configurations: 16×16 images, four classes, two fonts, networks a few channels wide."""

from __future__ import annotations

import pytest

from ganwriting_music.config import GanwritingConfig
from gencore.config import build_config

TINY = [
    "data.image_size=16", "data.samples_per_class=4", 'data.classes=["accidentalSharp", "gClef", "noteheadBlack", '
    '"stem"]', 'data.fonts=["Bravura", "Leipzig"]', 'data.holdout_writers=["Petaluma"]', "data.test_fraction=0.25",
    "model.k_refs=2", "model.gen_channels=4", "model.dis_channels=4", "model.rec_channels=4", "model.style_dim=8",
    "model.class_dim=4", "model.noise_dim=4", "train.batch_size=8", "train.log_every=1", "train.progress_bar=false",
    "train.tensorboard=false", "epochs=2", "save_every_epochs=1", "eval_every_epochs=1", "eval_samples=8",
    "loss.w_l1=1.0", "optim.lr_dis=1e-3", "optim.lr_gen=1e-3", "optim.lr_rec=1e-3",
]  # fmt: skip

TINY_CLI = [arg for item in TINY for arg in ("--set", item)]


@pytest.fixture
def tiny_config():
    """``tiny_config(run_dir, *overrides)`` -> a GanwritingConfig small enough for a unit test."""

    def make(run_dir, *overrides: str) -> GanwritingConfig:
        return build_config(GanwritingConfig, overrides=[*TINY, f"train.output_dir={str(run_dir)!r}", *overrides])

    return make


@pytest.fixture
def tiny_cli() -> list[str]:
    """The tiny configuration as ``--set`` options."""
    return list(TINY_CLI)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is faster than two and immune to spin-waiting on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Tiny configurations: 32-px images, 8-channel networks, a few dozen rendered molecules."""

from __future__ import annotations

import pytest

from gencore.config import build_config
from vqgan_negatives.config import TransformerRunConfig, VQGANConfig

TINY_VQ = [
    "data.num_images=40", "data.holdout_fraction=0.2", "data.render.size=32", "model.resolution=32", "model.ch=8",
    "model.ch_mult=[1, 2, 2]", "model.attn_resolutions=[8]", "model.z_channels=8",
    "model.quantizer.codebook_size=32", "model.quantizer.codebook_dim=4", "disc.ndf=8", "disc.n_layers=2",
    "eval_images=8", "train.batch_size=8", "train.max_steps=4", "train.log_every=2", "train.checkpoint_every=2",
    "train.eval_every=0", "train.sample_every=0", "train.progress_bar=false", "train.tensorboard=false",
]  # fmt: skip

TINY_GPT = [
    "data.num_images=40", "data.holdout_fraction=0.2", "data.render.size=32", "gpt.n_layer=1", "gpt.n_head=2",
    "gpt.n_embd=32", "top_k=8", "train.batch_size=8", "train.max_steps=4", "train.log_every=2",
    "train.checkpoint_every=2", "train.eval_every=0", "train.sample_every=0", "train.progress_bar=false",
    "train.tensorboard=false",
]  # fmt: skip


@pytest.fixture
def tiny_vq_config():
    """``tiny_vq_config(run_dir, *overrides)`` -> a VQGANConfig small enough for a unit test."""

    def make(run_dir, *overrides: str) -> VQGANConfig:
        return build_config(VQGANConfig, overrides=[*TINY_VQ, f"train.output_dir={str(run_dir)!r}", *overrides])

    return make


@pytest.fixture
def tiny_gpt_config():
    """``tiny_gpt_config(run_dir, vqgan_dir, *overrides)`` -> a TransformerRunConfig for a unit test."""

    def make(run_dir, vqgan_dir, *overrides: str) -> TransformerRunConfig:
        extra = [f"train.output_dir={str(run_dir)!r}", f"vqgan={str(vqgan_dir)!r}"]
        return build_config(TransformerRunConfig, overrides=[*TINY_GPT, *extra, *overrides])

    return make


@pytest.fixture(scope="session")
def trained_pipeline(tmp_path_factory):
    """A (VQGAN run, transformer run) pair trained for a few steps, shared by the slower tests."""
    from vqgan_negatives import train, train_transformer

    root = tmp_path_factory.mktemp("pipeline")
    vq_cfg = build_config(VQGANConfig, overrides=[*TINY_VQ, f"train.output_dir={str(root / 'vq')!r}"])
    train.run_training(vq_cfg)
    gpt_cfg = build_config(TransformerRunConfig, overrides=[*TINY_GPT, f"train.output_dir={str(root / 'gpt')!r}",
                                                           f"vqgan={str(root / 'vq')!r}"])  # fmt: skip
    train_transformer.run_training(gpt_cfg)
    return root / "vq", root / "gpt"

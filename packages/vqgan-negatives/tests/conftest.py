"""Tiny configurations: 32-px images, 8-channel networks, a few dozen rendered molecules."""

from __future__ import annotations

import pytest

from gencore.config import build_config
from vqgan_negatives.config import TransformerRunConfig, VQGANConfig
from vqgan_negatives.package import SPEC

TINY_VQ = list(SPEC.preset("tiny", "train-vqgan"))  # the registry's tiny presets (vqgan_negatives/package.py)

TINY_GPT = list(SPEC.preset("tiny", "train-transformer"))


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

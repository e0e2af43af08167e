"""Tiny configurations: 16-px images, narrow networks, a few hundred crops."""

from __future__ import annotations

import pytest

from dcgan_tutorial.config import GANConfig
from dcgan_tutorial.package import SPEC
from gencore.config import build_config

TINY = list(SPEC.preset("tiny"))  # the registry's tiny preset (dcgan_tutorial/package.py)


@pytest.fixture
def tiny_config():
    """``tiny_config(run_dir, *overrides)`` -> a GANConfig small enough for a unit test."""

    def make(run_dir, *overrides: str) -> GANConfig:
        return build_config(GANConfig, overrides=[*TINY, f"train.output_dir={str(run_dir)!r}", *overrides])

    return make

"""Tiny configurations: 16×32 images, 8-channel blocks, a few dozen rendered CAPTCHAs."""

from __future__ import annotations

import pytest

from gencore.config import build_config
from hvae_captcha.config import HVAEConfig
from hvae_captcha.package import SPEC

TINY = list(SPEC.preset("tiny"))  # the registry's tiny preset (hvae_captcha/package.py)

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

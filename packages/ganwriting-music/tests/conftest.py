"""Tiny configurations: 16×16 images, four classes, two fonts, networks a few channels wide."""

from __future__ import annotations

import pytest

from ganwriting_music.config import GanwritingConfig
from ganwriting_music.package import SPEC
from gencore.config import build_config

TINY = list(SPEC.preset("tiny"))  # the registry's tiny preset (ganwriting_music/package.py)

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

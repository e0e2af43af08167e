"""Fixtures of the core tests: the toy GAN of gencore.testing (every Trainer feature switched on)."""

from __future__ import annotations

import pytest

from gencore.testing import Points, make_gan_trainer


@pytest.fixture
def make_gan():
    """Factory of toy GAN trainers: ``make_gan(run_dir, nan_at=None, **train_config_overrides)``."""
    return make_gan_trainer


@pytest.fixture
def points():
    return Points

"""gencore: the shared core of the generative-model packages.

Modules: ``nn`` (blocks), ``losses`` (GAN/VAE/style), ``train`` (Trainer on Accelerate), ``checkpoint``
(safetensors, atomic, verified), ``config`` (dataclass configs), ``data`` (datasets, robust image loading),
``metrics`` (Fréchet distance, KID, IW-ELBO...), ``viz`` (PNG grids and plots), ``noise`` (Perlin noise),
``augment`` (DiffAugment), ``paths`` (output paths that stay inside their root, BOM/CRLF-proof text reading),
``weights`` (foreign weight files loaded strictly, one-line mismatch errors), ``cli`` (shared click options),
``distributed`` (evaluation split over ranks, buffer sync, rank fingerprints), ``memory`` (what a model, a batch
or a file needs, refused before allocating when it cannot fit).
"""

from gencore import (
    augment,
    checkpoint,
    cli,
    config,
    data,
    distributed,
    errors,
    losses,
    memory,
    metrics,
    nn,
    noise,
    paths,
    train,
    viz,
    weights,
)
from gencore.errors import CheckpointError, ConfigError, DataError, GencoreError, NonFiniteLossError

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GencoreError",
    "NonFiniteLossError",
    "augment",
    "checkpoint",
    "cli",
    "config",
    "data",
    "distributed",
    "errors",
    "losses",
    "memory",
    "metrics",
    "nn",
    "noise",
    "paths",
    "train",
    "viz",
    "weights",
]

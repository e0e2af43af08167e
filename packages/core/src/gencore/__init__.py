"""gencore: the shared core of the generative-model packages.

Modules: ``nn`` (blocks), ``losses`` (GAN/VAE/style), ``train`` (Trainer on Accelerate), ``checkpoint``
(safetensors, atomic, verified), ``config`` (dataclass configs), ``data`` (datasets, robust image loading),
``metrics`` (Fréchet distance, KID, IW-ELBO...), ``inception`` (standard FID from an Inception v3 file on disk),
``viz`` (PNG grids and plots), ``noise`` (Perlin noise),
``augment`` (DiffAugment), ``paths`` (output paths that stay inside their root, BOM/CRLF-proof text reading),
``weights`` (foreign weight files loaded strictly, one-line mismatch errors), ``cli`` (shared click options),
``distributed`` (evaluation split over ranks, buffer sync, rank fingerprints), ``memory`` (what a model, a batch
or a file needs, refused before allocating when it cannot fit), ``modelcard`` (what a model folder says about
itself), ``fileio`` (atomic file writes, standard library only), ``lazy`` (lazy package exports,
``package_version``), ``progress`` (progress bars of the post-training commands, on a terminal only),
``registry`` (the installed packages), ``demos`` and ``demo_report`` (every package's demo and its page,
``make demo``), ``errors`` (the one error path).
Submodules are imported on first access, so ``import gencore`` is light.
"""

from typing import TYPE_CHECKING

# Light at import time: `gencore --help` and every package CLI import this package, so its submodules (most of
# them load torch) are imported on first access, e.g. `gencore.train` or `from gencore import nn`.
from gencore.errors import CheckpointError, ConfigError, DataError, GencoreError, NonFiniteLossError
from gencore.lazy import lazy_exports, package_version

if TYPE_CHECKING:
    from gencore import (
        augment,
        checkpoint,
        cli,
        config,
        data,
        demo_report,
        demos,
        distributed,
        errors,
        inception,
        losses,
        memory,
        metrics,
        modelcard,
        nn,
        noise,
        paths,
        progress,
        registry,
        results,
        sampling,
        seeding,
        train,
        viz,
        weights,
    )

__version__ = package_version("gencore", __file__)  # pyproject.toml's version

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
    "inception",
    "losses",
    "memory",
    "modelcard",
    "metrics",
    "nn",
    "noise",
    "paths",
    "progress",
    "demo_report",
    "demos",
    "registry",
    "results",
    "sampling",
    "seeding",
    "train",
    "viz",
    "weights",
]

__getattr__, __dir__ = lazy_exports(__name__, submodules=[name for name in __all__ if name[0].islower()])

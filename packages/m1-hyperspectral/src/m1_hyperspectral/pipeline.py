"""Python entry point for inference: a trained M1 that turns spectra into latent features (``m1-hyperspectral
extract``) and draws spectra (``m1-hyperspectral sample``).

    from m1_hyperspectral import M1Pipeline

    pipe = M1Pipeline.from_pretrained("runs/m1-hyperspectral", device="cpu")
    features = pipe()                 # every pixel of the run's data: {"mean", "logvar", "z", "labels", "coords"}
    features = pipe("scene.h5")       # or cube files (.mat, .h5, .npy), or an (H, W, bands) / (N, bands) array
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gencore.config import load_run_config
from gencore.errors import CheckpointError, ConfigError, DataError
from m1_hyperspectral.config import M1RunConfig
from m1_hyperspectral.data import Pixels, Scene, load_scenes, pixels_from_scenes
from m1_hyperspectral.features import extract_features
from m1_hyperspectral.model import M1

__all__ = ["M1Pipeline", "load_model", "pixels_of"]

#: What :meth:`M1Pipeline.__call__` encodes: nothing (the run's data), file(s), an array, a Scene or Pixels.
Data = str | Path | Sequence[str | Path] | np.ndarray | Scene | Pixels | None


def load_model(run: str | Path, device: str | torch.device = "cpu") -> tuple[M1, M1RunConfig | None]:
    """The model of ``run`` (a run directory or a model directory) on ``device``, in eval mode, and the run's
    config when ``run`` is a run directory (None for a bare model directory)."""
    path = Path(run)
    model_dir = path / "model" if (path / "model" / "config.json").is_file() else path
    if not (model_dir / "config.json").is_file():
        raise CheckpointError(f"no M1 model in {run} (expected a run directory or its model/ directory)")
    model = M1.from_pretrained(model_dir, str(device))
    config = load_run_config(M1RunConfig, path) if model_dir != path else None
    return model.eval(), config


def pixels_of(
    data: Data, config: M1RunConfig | None, cube_key: str | None = None, gt_key: str | None = None, where: str = ""
) -> Pixels:
    """The pixels to encode: ``data`` (file path(s), an array, a Scene or Pixels), or with ``data`` None the
    run's own data (``config``; ``where`` names the model in the error when there is none)."""
    if data is None or (isinstance(data, Sequence) and not isinstance(data, str) and len(data) == 0):
        if config is None:
            raise ConfigError(f"{where} is a bare model directory: give the DATA files to use")
        from m1_hyperspectral.train import prepare_data

        return prepare_data(config).pixels
    if isinstance(data, Pixels):
        return data
    if isinstance(data, Scene):
        return pixels_from_scenes([data])
    if isinstance(data, np.ndarray):
        if data.ndim not in (2, 3) or not np.issubdtype(data.dtype, np.number):
            raise DataError(f"expected spectra (N, bands) or a cube (H, W, bands), got an array of shape {data.shape}")
        cube = np.asarray(data, np.float32)
        if not np.isfinite(cube).all():
            raise DataError("the spectra hold NaN or infinite values")
        return pixels_from_scenes([Scene("array", cube[:, None, :] if cube.ndim == 2 else cube)])
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    return pixels_from_scenes(load_scenes(paths, cube_key, gt_key))


class M1Pipeline:
    """A trained M1 (with its band normalisation) and, for a run directory, the run's config (its data)."""

    def __init__(self, model: M1, config: M1RunConfig | None = None) -> None:
        self.model = model
        self.config = config

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> M1Pipeline:
        """Load the model of ``path`` (a run directory or its ``model/``) onto ``device``."""
        return cls(*load_model(path, device))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __call__(
        self, data: Data = None, seed: int = 0, batch_size: int = 8192, cube_key: str | None = None,
        gt_key: str | None = None, variance: bool = False,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """Latent features of every pixel of ``data`` (default: the run's data), as ``m1-hyperspectral extract``
        writes them: ``mean`` and ``logvar`` of q(z|x) (N, latent), a sampled ``z`` (noise of ``seed``),
        ``labels`` (N,) with 0 = unlabeled, ``coords`` (N, 3) = file index, row, column. Raw spectra in, the
        model normalises them. With ``variance`` also ``var`` = exp(logvar) (``extract --variance``)."""
        pixels = pixels_of(data, self.config, cube_key, gt_key, where="the pipeline's model")
        return extract_features(self.model, pixels, seed, batch_size, variance=variance)

    @torch.no_grad()
    def sample(self, num: int = 8, seed: int = 0) -> np.ndarray:
        """``num`` spectra (num, bands) in raw units drawn from the model (``m1-hyperspectral sample``)."""
        return self.model.sample(num, torch.Generator().manual_seed(seed)).cpu().numpy()

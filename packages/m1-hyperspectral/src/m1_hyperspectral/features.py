"""Latent features of every pixel (the point of M1) and their files.

For each pixel: the posterior mean and log-variance of q(z|x) (the original's ``dist_qz``), one sample
z = mean + std·ε (seeded), the label (0 = unlabeled/background) and the coordinates (file index, row, column).
With ``variance`` also ``var = exp(logvar)``, the variance of q(z|x). Formats: one HDF5 file (datasets of those
names, the source file names in the attribute ``files``, the array names in ``arrays``), or a folder of ``.npy``
files (``mean.npy``, ``logvar.npy``, ``z.npy``, ``labels.npy``, ``coords.npy``, ``var.npy`` when written,
``files.json``; its manifest lists them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gencore.checkpoint import atomic_dir, atomic_file, check_output_dir, check_output_file
from gencore.errors import DataError
from gencore.progress import progress
from m1_hyperspectral.data import Pixels
from m1_hyperspectral.model import M1

ARRAYS = ("mean", "logvar", "z", "labels", "coords")
#: Arrays written only on request: the variance of q(z|x) (``extract --variance``).
OPTIONAL = ("var",)


@torch.no_grad()
def extract_features(
    model: M1, pixels: Pixels, seed: int = 0, batch: int = 8192, variance: bool = False
) -> dict[str, np.ndarray]:
    """Encode every pixel of ``pixels`` (raw spectra) with ``model``; returns the arrays of :data:`ARRAYS`, and
    with ``variance`` also ``var = exp(logvar)`` (the same z: the noise does not depend on it)."""
    if pixels.bands != model.config.bands:
        raise DataError(f"the model expects {model.config.bands} bands but the data has {pixels.bands}")
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    means, logvars, zs = [], [], []
    chunks = torch.from_numpy(pixels.spectra).split(batch)
    for chunk in progress(chunks, total=len(chunks), desc="encode pixels", unit="batch"):
        mean, logvar = model.encode(model.normalize(chunk.to(device)))
        eps = torch.randn(mean.shape, generator=gen).to(device)
        means.append(mean.cpu())
        logvars.append(logvar.cpu())
        zs.append((mean + (0.5 * logvar).exp() * eps).cpu())
    out = {
        "mean": torch.cat(means).numpy(), "logvar": torch.cat(logvars).numpy(), "z": torch.cat(zs).numpy(),
        "labels": pixels.labels.astype(np.int64), "coords": pixels.coords.astype(np.int64),
    }  # fmt: skip
    if variance:
        out["var"] = np.exp(out["logvar"].astype(np.float64)).astype(out["logvar"].dtype)
    return out


def _names(features: dict[str, np.ndarray]) -> list[str]:
    """The arrays of ``features`` to write: :data:`ARRAYS` and those of :data:`OPTIONAL` present."""
    return [*ARRAYS, *(k for k in OPTIONAL if k in features)]


def feature_format(path: str | Path, fmt: str | None) -> str:
    """``fmt`` if given, else ``h5`` for a ``.h5``/``.hdf5`` path and ``npy`` (a folder) otherwise."""
    if fmt:
        return fmt
    return "h5" if Path(path).suffix.lower() in (".h5", ".hdf5") else "npy"


#: The producer named in an ``npy`` features folder's manifest: only such a folder is ever replaced.
PRODUCER = "m1-hyperspectral extract"


def check_features_output(path: str | Path, fmt: str, overwrite: bool, inputs: tuple[str | Path, ...] = ()) -> None:
    """Refuse, before any work, an output that would replace what ``extract`` did not write (OutputError): for
    ``npy`` a folder that is not an earlier features folder, for ``h5`` an input file; an earlier output needs
    ``overwrite``."""
    if fmt == "npy":
        check_output_dir(path, PRODUCER, overwrite)
    else:
        check_output_file(path, overwrite, inputs)


def save_features(
    features: dict[str, np.ndarray], files: list[str], path: str | Path, fmt: str, overwrite: bool = False
) -> Path:
    """Write ``features`` atomically as ``fmt`` (``h5`` or ``npy``); an earlier output is replaced (whole) only
    with ``overwrite``, and nothing else ever is (:func:`check_features_output`)."""
    path = Path(path)
    check_features_output(path, fmt, overwrite)
    if fmt == "h5":
        import h5py

        with atomic_file(path) as tmp, h5py.File(tmp, "w") as fh:
            for key in _names(features):
                fh.create_dataset(key, data=features[key])
            fh.attrs["files"] = json.dumps(files)
            fh.attrs["arrays"] = json.dumps(_names(features))
        return path
    if fmt != "npy":
        raise ValueError(f"format must be h5 or npy, got {fmt!r}")
    with atomic_dir(path, overwrite=overwrite, producer=PRODUCER) as tmp:
        for key in _names(features):
            np.save(tmp / f"{key}.npy", features[key])
        (tmp / "files.json").write_text(json.dumps(files) + "\n")
    return path


def load_features(path: str | Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Read a file or folder written by :func:`save_features`; returns (arrays, source file names). ``var`` is
    among the arrays when it was written (``extract --variance``)."""
    path = Path(path)
    try:
        if path.is_dir():
            names = [*ARRAYS, *(k for k in OPTIONAL if (path / f"{k}.npy").is_file())]
            arrays = {k: np.load(path / f"{k}.npy", allow_pickle=False) for k in names}
            files = json.loads((path / "files.json").read_text())
        else:
            import h5py

            with h5py.File(path, "r") as fh:
                names = [*ARRAYS, *(k for k in OPTIONAL if k in fh)]
                arrays = {k: fh[k][()] for k in names}
                files = json.loads(fh.attrs["files"])
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a features file written by `m1-hyperspectral extract` ({exc})") from None
    return arrays, files

"""Tiny scenes and models, and writers of the public file layouts (MATLAB v5 and v7.3, HDF5, .npy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gencore.config import build_config
from m1_hyperspectral.config import M1RunConfig
from m1_hyperspectral.package import SPEC

TINY = list(SPEC.preset("tiny"))  # the registry's tiny preset (m1_hyperspectral/package.py)


@pytest.fixture
def tiny_config():
    """``tiny_config(run_dir, *overrides)`` -> an M1RunConfig small enough for a unit test."""

    def make(run_dir, *overrides: str) -> M1RunConfig:
        return build_config(M1RunConfig, overrides=[*TINY, f"train.output_dir={str(run_dir)!r}", *overrides])

    return make


def random_scene(h: int = 6, w: int = 5, b: int = 7, classes: int = 3, seed: int = 0):
    """A small random cube (H, W, B) and a ground truth with background 0 and classes 1..classes."""
    rng = np.random.default_rng(seed)
    return rng.random((h, w, b)).astype(np.float32) * 1000, rng.integers(0, classes + 1, (h, w)).astype(np.uint8)


def write_mat73(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 with a 512-byte text header, arrays in column-major order."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as fh:
        for name, array in arrays.items():
            fh.create_dataset(name, data=np.ascontiguousarray(array.transpose()))
            fh[name].attrs["MATLAB_class"] = np.bytes_("double" if array.dtype.kind == "f" else "uint8")
    with open(path, "r+b") as fh:  # MATLAB's header text lives in the userblock
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")
    return path


def write_mat5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A MATLAB v5 file (scipy.io.savemat)."""
    import scipy.io

    scipy.io.savemat(path, arrays)
    return path


class Files:
    """Writers of the public layouts, handed to tests as the ``files`` fixture (importlib mode has no conftest
    imports)."""

    random_scene = staticmethod(random_scene)
    mat5 = staticmethod(write_mat5)
    mat73 = staticmethod(write_mat73)


@pytest.fixture
def files() -> type[Files]:
    return Files

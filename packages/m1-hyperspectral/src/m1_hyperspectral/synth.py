"""The embedded default data: a synthetic hyperspectral scene made of smooth endmember spectra and Perlin abundances.

How a scene is made (all of it seeded, nothing downloaded):

1. Wavelengths: ``bands`` values evenly spaced from 400 to 2500 nm (the range of AVIRIS, which recorded
   Indian Pines and Salinas).
2. Endmembers: reflectance spectra in [0, 1] built from smooth pieces that follow the textbook shapes of real
   materials (logistic edges and Gaussian absorption bands): green vegetation (chlorophyll absorption at 450 and
   670 nm, red edge near 715 nm, bright near-infrared plateau, leaf-water absorption at 1450 and 1940 nm), dry
   soil (reflectance rising with wavelength, weak water and 2200 nm clay features), water (dark, falling to
   almost 0 beyond 900 nm), concrete (bright and flat, slowly rising), a clay mineral (bright, with the
   kaolinite-like doublet at 2165/2205 nm and a 1400 nm hydroxyl band) and dry grass (weak red edge, cellulose
   absorption at 2100 nm). The first ``endmembers`` of that list are used.
3. Abundances: one fractal Perlin field per endmember (``gencore.noise.perlin2d``, different seeds), turned into
   fractions that sum to one by a softmax with temperature ``1/sharpness``: neighbouring pixels have similar
   mixtures and larger ``sharpness`` gives purer patches.
4. Pixels: the linear mixing model, x = illumination · Σ_k a_k · e_k + noise, where the illumination is a smooth
   Perlin field in [0.85, 1.15] (shading) and the noise is Gaussian with std ``noise_std``, four times larger in
   the water-vapour bands near 1400 and 1900 nm (where real sensors have little signal); values are clipped to
   [0, 1].
5. Ground truth: the index (1-based) of the dominant endmember; pixels whose largest abundance is below
   ``labeled_purity`` are mixed and get label 0 (background/unlabeled), as in the public ground truths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gencore.noise import perlin2d
from m1_hyperspectral.config import SynthConfig

MATERIALS = ("vegetation", "soil", "water", "concrete", "clay", "dry_grass")


def _gauss(w: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((w - centre) / width) ** 2)


def _edge(w: np.ndarray, centre: float, width: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(w - centre) / width))


def endmember_spectra(wavelengths: np.ndarray) -> dict[str, np.ndarray]:
    """Reflectance (in [0, 1]) of each material of :data:`MATERIALS` at ``wavelengths`` (nm)."""
    w = np.asarray(wavelengths, dtype=np.float64)
    x = (w - 400.0) / 2100.0  # 0 at 400 nm, 1 at 2500 nm
    water_bands = _gauss(w, 1450, 60) + _gauss(w, 1940, 70)
    spectra = {
        "vegetation": (
            0.05 + 0.06 * _gauss(w, 550, 35) - 0.03 * _gauss(w, 670, 25)
            + 0.42 * _edge(w, 715, 18) * (1 - 0.35 * x) - 0.22 * water_bands - 0.08 * _gauss(w, 1200, 50)
        ),
        "soil": 0.10 + 0.28 * np.sqrt(x) - 0.05 * water_bands - 0.03 * _gauss(w, 2200, 40),
        "water": 0.07 * np.exp(-(w - 400) / 180) + 0.01,
        "concrete": 0.30 + 0.08 * x - 0.02 * water_bands,
        "clay": 0.45 + 0.15 * np.sqrt(x) - 0.12 * _gauss(w, 2165, 18) - 0.15 * _gauss(w, 2205, 20)
        - 0.10 * _gauss(w, 1400, 30) - 0.06 * water_bands,
        "dry_grass": 0.08 + 0.22 * _edge(w, 700, 40) + 0.12 * x - 0.08 * _gauss(w, 2100, 45) - 0.10 * water_bands,
    }  # fmt: skip
    return {name: np.clip(s, 0.0, 1.0) for name, s in spectra.items()}


@dataclass
class SyntheticScene:
    """A scene: cube (H, W, B) float32, ground truth (H, W) int (0 = background), and how it was made."""

    cube: np.ndarray
    gt: np.ndarray
    wavelengths: np.ndarray
    endmembers: np.ndarray  # (K, B)
    abundances: np.ndarray  # (H, W, K), rows sum to 1
    names: tuple[str, ...]


def make_scene(config: SynthConfig) -> SyntheticScene:
    """Make the scene described in the module docstring from ``config`` (same config, same scene)."""
    if not 1 <= config.endmembers <= len(MATERIALS):
        raise ValueError(f"endmembers must be between 1 and {len(MATERIALS)}, got {config.endmembers}")
    if config.bands < 2 or config.height < 2 or config.width < 2:
        raise ValueError("a synthetic scene needs at least 2 bands and 2x2 pixels")
    shape = (config.height, config.width)
    wavelengths = np.linspace(400.0, 2500.0, config.bands)
    names = MATERIALS[: config.endmembers]
    library = endmember_spectra(wavelengths)
    endmembers = np.stack([library[n] for n in names])
    fields = np.stack(
        [perlin2d(shape, config.scale, config.octaves, seed=config.seed * 101 + k) for k in range(len(names))], -1
    )
    logits = config.sharpness * fields / max(fields.std(), 1e-8)
    abundances = np.exp(logits - logits.max(-1, keepdims=True))
    abundances /= abundances.sum(-1, keepdims=True)
    illumination = 1.0 + 0.15 * perlin2d(shape, config.scale * 2, 2, seed=config.seed * 101 + 99)
    rng = np.random.default_rng(config.seed)
    noise_std = config.noise_std * (1.0 + 3.0 * (_gauss(wavelengths, 1400, 50) + _gauss(wavelengths, 1900, 60)))
    cube = illumination[..., None] * (abundances @ endmembers) + rng.normal(size=(*shape, config.bands)) * noise_std
    gt = abundances.argmax(-1) + 1
    gt[abundances.max(-1) < config.labeled_purity] = 0
    return SyntheticScene(
        np.clip(cube, 0.0, 1.0).astype(np.float32), gt.astype(np.int64), wavelengths, endmembers, abundances, names
    )


def save_scene(scene: SyntheticScene, path: str, config: SynthConfig) -> None:
    """Write the scene as HDF5: datasets ``cube``, ``gt``, ``wavelengths``, ``endmembers``, ``abundances``."""
    import json

    import h5py

    from gencore.checkpoint import atomic_file
    from gencore.config import to_dict

    with atomic_file(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.create_dataset("cube", data=scene.cube, compression="gzip", compression_opts=4)
        fh.create_dataset("gt", data=scene.gt.astype(np.uint8))
        fh.create_dataset("wavelengths", data=scene.wavelengths)
        fh.create_dataset("endmembers", data=scene.endmembers)
        fh.create_dataset("abundances", data=scene.abundances.astype(np.float32), compression="gzip")
        fh.attrs["materials"] = json.dumps(list(scene.names))
        fh.attrs["synth_config"] = json.dumps(to_dict(config))

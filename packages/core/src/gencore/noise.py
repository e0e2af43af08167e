"""Vectorised 2-D Perlin gradient noise with octaves (fractal Brownian motion), in NumPy.

Used for spatially coherent maps: abundance maps of synthetic hyperspectral scenes, conditioning images.
The parameters follow the usual Perlin vocabulary (as in the ``noise`` library's ``pnoise2``): ``scale`` is the
size in pixels of one lattice cell of the first octave, each further octave multiplies the frequency by
``lacunarity`` and the amplitude by ``persistence``. The whole field is computed at once (no per-pixel loop).
"""

from __future__ import annotations

import numpy as np

__all__ = ["perlin2d", "fade"]


def fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic interpolation curve 6t^5 - 15t^4 + 10t^3 (zero first and second derivative at 0 and 1)."""
    return t * t * t * (t * (t * 6 - 15) + 10)


def _octave(height: int, width: int, frequency: float, rng: np.random.Generator) -> np.ndarray:
    """One octave: random unit gradients on a lattice with ``frequency`` cells per pixel, interpolated."""
    ys = np.arange(height) * frequency
    xs = np.arange(width) * frequency
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    angles = rng.uniform(0, 2 * np.pi, size=(y0[-1] + 2, x0[-1] + 2))
    grad = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        g = grad[(y0 + dy)[:, None], (x0 + dx)[None, :]]
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    wy, wx = fade(fy), fade(fx)
    top = corner(0, 0) * (1 - wx) + corner(0, 1) * wx
    bottom = corner(1, 0) * (1 - wx) + corner(1, 1) * wx
    return top * (1 - wy) + bottom * wy


def perlin2d(
    shape: tuple[int, int],
    scale: float = 32.0,
    octaves: int = 4,
    persistence: float = 0.5,
    lacunarity: float = 2.0,
    seed: int = 0,
) -> np.ndarray:
    """A (H, W) float64 field of fractal Perlin noise with values in [-1, 1] (rarely near the ends).

    The same arguments always give the same field.

    Args:
        shape: (height, width) in pixels.
        scale: pixels per lattice cell of the first octave (larger = smoother, larger blobs).
        octaves: number of summed octaves (detail levels).
        persistence: amplitude factor from one octave to the next.
        lacunarity: frequency factor from one octave to the next.
        seed: seed of the random gradients.
    """
    height, width = shape
    if height < 1 or width < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    if scale <= 0 or octaves < 1 or lacunarity <= 0:
        raise ValueError(f"need scale > 0, octaves >= 1, lacunarity > 0; got {scale}, {octaves}, {lacunarity}")
    rng = np.random.default_rng(seed)
    total = np.zeros((height, width))
    amplitude, frequency, norm = 1.0, 1.0 / scale, 0.0
    for _ in range(octaves):
        total += amplitude * _octave(height, width, frequency, rng)
        norm += amplitude
        amplitude *= persistence
        frequency *= lacunarity
    return total * np.sqrt(2.0) / norm  # one octave is bounded by sqrt(1/2): rescale to [-1, 1]

"""2-D Perlin noise, vectorised: the ``noise`` library's ``pnoise2`` for whole grids, and seeded fractal fields.

Two kinds, for two packages:

* :func:`perlin_grid` / :func:`pnoise2_grid` / :func:`pnoise2` (vqgan-negatives' conditioning images): Perlin's
  improved noise with the values of ``noise.pnoise2(x, y, octaves, persistence, lacunarity, repeatx, repeaty,
  base)``, which is a C function called once per pixel from Python (about 1 Mpx/s, almost all of it call
  overhead). Here whole grids are computed at once and give the same numbers (to float32 rounding, max error
  ~1e-7). The faster of the two kinds (~6x on a 96x96 field, ~9x on 512x512, with numba).
* :func:`perlin2d` (m1-hyperspectral's synthetic scenes): classic gradient noise whose lattice gradients are random
  directions drawn from ``seed`` (float64, values in [-1, 1]). Its fields are not ``pnoise2``'s; it is kept so that
  the embedded scenes, and the figures published from them, stay the same.

Both use Perlin's quintic :func:`fade` and the usual vocabulary: each further octave multiplies the frequency by
``lacunarity`` and the amplitude by ``persistence``.

How the grid version is fast: inside one lattice cell the noise is a sum of four products
"function of the row" × "function of the column" whose coefficients depend only on the cell's corner gradients.
The numba kernel (``pip install gencore[fast]``) regroups the sum the other way: rows between two lattice lines
share their corner gradients, so it builds four column profiles once per band of rows, and each pixel then costs
four multiply-adds per octave in a loop that vectorises. Without numba the same decomposition runs in NumPy.

Semantics kept from the C code (so that parity holds): inputs are rounded to float32, each octave scales x, y and
the repeat periods by the octave's frequency, lattice indices wrap at 256 and are offset by ``base``. For ``base``
≥ 2 the C code indexes past the end of its 512-entry permutation table (undefined behaviour); here indices wrap
around the table instead, so parity is guaranteed for ``base`` 0 and 1 only. To vary the pattern, shift the
coordinates (what :func:`perlin_grid` does with its seed).
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["pnoise2", "pnoise2_grid", "perlin_grid", "seed_offset", "HAVE_NUMBA", "perlin2d", "fade"]

# Ken Perlin's reference permutation (Improved Noise, 2002), as used by the noise library; doubled below.
_P = np.array([
    151, 160, 137, 91, 90, 15, 131, 13, 201, 95, 96, 53, 194, 233, 7, 225,
    140, 36, 103, 30, 69, 142, 8, 99, 37, 240, 21, 10, 23, 190, 6, 148,
    247, 120, 234, 75, 0, 26, 197, 62, 94, 252, 219, 203, 117, 35, 11, 32,
    57, 177, 33, 88, 237, 149, 56, 87, 174, 20, 125, 136, 171, 168, 68, 175,
    74, 165, 71, 134, 139, 48, 27, 166, 77, 146, 158, 231, 83, 111, 229, 122,
    60, 211, 133, 230, 220, 105, 92, 41, 55, 46, 245, 40, 244, 102, 143, 54,
    65, 25, 63, 161, 1, 216, 80, 73, 209, 76, 132, 187, 208, 89, 18, 169,
    200, 196, 135, 130, 116, 188, 159, 86, 164, 100, 109, 198, 173, 186, 3, 64,
    52, 217, 226, 250, 124, 123, 5, 202, 38, 147, 118, 126, 255, 82, 85, 212,
    207, 206, 59, 227, 47, 16, 58, 17, 182, 189, 28, 42, 223, 183, 170, 213,
    119, 248, 152, 2, 44, 154, 163, 70, 221, 153, 101, 155, 167, 43, 172, 9,
    129, 22, 39, 253, 19, 98, 108, 110, 79, 113, 224, 232, 178, 185, 112, 104,
    218, 246, 97, 228, 251, 34, 242, 193, 238, 210, 144, 12, 191, 179, 162, 241,
    81, 51, 145, 235, 249, 14, 239, 107, 49, 192, 214, 31, 181, 199, 106, 157,
    184, 84, 204, 176, 115, 121, 50, 45, 127, 4, 150, 254, 138, 236, 205, 93,
    222, 114, 67, 29, 24, 72, 243, 141, 128, 195, 78, 66, 215, 61, 156, 180,
], dtype=np.int64)  # fmt: skip
PERM = np.concatenate([_P, _P])
# x and y components of the 16 gradient directions the noise library uses in 2-D (its GRAD3 table's first columns)
GRAD_X = np.array([1, -1, 1, -1, 1, -1, 1, -1, 0, 0, 0, 0, 1, -1, 0, 0], dtype=np.float32)
GRAD_Y = np.array([1, 1, -1, -1, 0, 0, 0, 0, 1, -1, 1, -1, 0, 0, -1, 1], dtype=np.float32)

try:  # optional: a compiled per-pixel loop (the NumPy path gives the same values)
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the environment
    numba = None
    HAVE_NUMBA = False


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic interpolation curve 6t^5 - 15t^4 + 10t^3 (zero first and second derivative at 0 and 1), in
    the dtype of ``t`` (float32 for the ``pnoise2`` kind, as the C code computes it)."""
    return t * t * t * (t * (t * 6 - 15) + 10)


def _axis(coords: np.ndarray, repeat: np.float32, base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per coordinate (float32): lattice index, next index (both wrapped and offset) and local position in [0, 1)."""
    i = np.floor(np.fmod(coords, repeat)).astype(np.int64)
    ii = np.fmod((i + 1).astype(np.float32), repeat).astype(np.int64)  # C truncates fmodf's result
    local = coords - np.floor(coords)
    return (i & 255) + base, (ii & 255) + base, local


def _hash(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return PERM[(PERM[a & 511] + b) & 511]


def _octave_points(x: np.ndarray, y: np.ndarray, rx: np.float32, ry: np.float32, base: int) -> np.ndarray:
    i, ii, u = _axis(x, rx, base)
    j, jj, v = _axis(y, ry, base)
    fu, fv = fade(u), fade(v)
    one = np.float32(1)

    def grad(h: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        h = PERM[h & 511] & 15
        return dx * GRAD_X[h] + dy * GRAD_Y[h]

    n00, n10 = grad(_hash(i, j), u, v), grad(_hash(ii, j), u - one, v)
    n01, n11 = grad(_hash(i, jj), u, v - one), grad(_hash(ii, jj), u - one, v - one)
    a = n00 + fu * (n10 - n00)
    b = n01 + fu * (n11 - n01)
    return a + fv * (b - a)


def _check(octaves: int, lacunarity: float) -> None:
    if octaves < 1:
        raise ValueError(f"octaves must be >= 1, got {octaves}")
    if lacunarity <= 0:
        raise ValueError(f"lacunarity must be > 0, got {lacunarity}")


def pnoise2(
    x,
    y,
    octaves: int = 1,
    persistence: float = 0.5,
    lacunarity: float = 2.0,
    repeatx: float = 1024.0,
    repeaty: float = 1024.0,
    base: int = 0,
) -> np.ndarray:
    """``noise.pnoise2`` evaluated at every point of the broadcast arrays ``x``, ``y`` (float32 result)."""
    _check(octaves, lacunarity)
    x, y = np.broadcast_arrays(_f32(x), _f32(y))
    freq, amp = np.float32(1), np.float32(1)
    total, norm = np.zeros(x.shape, np.float32), np.float32(0)
    for _ in range(octaves):
        total += _octave_points(x * freq, y * freq, _f32(repeatx) * freq, _f32(repeaty) * freq, base) * amp
        norm += amp
        freq *= np.float32(lacunarity)
        amp *= np.float32(persistence)
    return total if octaves == 1 else total / norm


def _row_factors(x: np.ndarray, y: np.ndarray, rx: np.float32, ry: np.float32, base: int):
    """One octave on the grid x (W,) × y (H,): row coefficients R (H, nx, 4), column index (W,), column basis (W, 4).

    The noise at (y, x) is sum_a R[y, cell(x), a] * U[x, a] with the column basis
    U = ((1 - fu) u, 1 - fu, fu (u - 1), fu): the bilinear blend of the four corner terms regrouped by column factor.
    """
    i, ii, u = _axis(x, rx, base)
    j, jj, v = _axis(y, ry, base)
    # distinct (index, next index) pairs along x: with a repeat period the same index can have two successors
    pairs, col_cell = np.unique(np.stack([i, ii], 1), axis=0, return_inverse=True)
    cells, next_cells = pairs[:, 0], pairs[:, 1]
    fv = fade(v)
    one = np.float32(1)

    def grads(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = PERM[_hash(a[None, :], b[:, None]) & 511] & 15  # (H, nx)
        return GRAD_X[h], GRAD_Y[h]

    gx00, gy00 = grads(cells, j)
    gx10, gy10 = grads(next_cells, j)
    gx01, gy01 = grads(cells, jj)
    gx11, gy11 = grads(next_cells, jj)
    w0, w1 = (one - fv)[:, None], fv[:, None]
    vv, vm = v[:, None], (v - one)[:, None]
    rows = np.stack([
        w0 * gx00 + w1 * gx01,
        w0 * gy00 * vv + w1 * gy01 * vm,
        w0 * gx10 + w1 * gx11,
        w0 * gy10 * vv + w1 * gy11 * vm,
    ], axis=-1).astype(np.float32)  # fmt: skip
    return np.ascontiguousarray(rows), col_cell.astype(np.int64), _column_basis(u)


def _octave_numpy(
    out: np.ndarray, x: np.ndarray, y: np.ndarray, rx: np.float32, ry: np.float32, base: int, amp: np.float32
) -> None:
    for k in range(len(out)):  # one image at a time: the row factors of a batch would not fit in cache anyway
        rows, col_cell, cols = _row_factors(x[k], y[k], rx, ry, base)
        out[k] += amp * np.einsum("hwa,wa->hw", rows[:, col_cell], cols)


def _column_basis(u: np.ndarray) -> np.ndarray:
    fu, one = fade(u), np.float32(1)
    return np.ascontiguousarray(np.stack([(one - fu) * u, one - fu, fu * (u - one), fu], axis=-1), np.float32)


# The gradient of lattice point (i, j) is GRAD[PERM[PERM[PERM[i] + j]] & 15]; with a = PERM[i] known per column,
# the last two lookups and the gradient table fold into one 512-entry table per component.
_CORNER = PERM[PERM[np.arange(512)]] & 15
CORNER_GX, CORNER_GY = GRAD_X[_CORNER], GRAD_Y[_CORNER]
_ROWS_PER_TASK = 32  # rows of one image per parallel task: enough tasks for the threads, few band rebuilds

if HAVE_NUMBA:

    @numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
    def _grid_kernel(out, left, right, cols, yj, yjj, v, fv, amps, gx, gy, block):  # pragma: no cover - compiled
        """Every octave of every row. Rows between two lattice lines share their corner gradients, so per such band
        four column profiles p0..p3 are built once; each row then adds k0 p0 + k1 p1 + k2 p2 + k3 p3 with four
        scalars of the row: a branch-free loop over contiguous arrays, which vectorises."""
        n, height, width = out.shape
        tasks_per_image = (height + block - 1) // block
        one = np.float32(1)
        for task in numba.prange(n * tasks_per_image):
            k, first = task // tasks_per_image, (task % tasks_per_image) * block
            p0, p1 = np.empty(width, np.float32), np.empty(width, np.float32)
            p2, p3 = np.empty(width, np.float32), np.empty(width, np.float32)
            for o in range(len(amps)):
                la, lb, amp = left[o, k], right[o, k], amps[o]
                b0, b1, b2, b3 = cols[o, k, 0], cols[o, k, 1], cols[o, k, 2], cols[o, k, 3]
                band_j, band_jj = -1, -1
                for r in range(first, min(height, first + block)):
                    j, jj = yj[o, k, r], yjj[o, k, r]
                    if j != band_j or jj != band_jj:
                        for c in range(width):
                            m00, m01 = (la[c] + j) & 511, (la[c] + jj) & 511
                            m10, m11 = (lb[c] + j) & 511, (lb[c] + jj) & 511
                            p0[c] = gx[m00] * b0[c] + gx[m10] * b2[c]
                            p1[c] = gx[m01] * b0[c] + gx[m11] * b2[c]
                            p2[c] = gy[m00] * b1[c] + gy[m10] * b3[c]
                            p3[c] = gy[m01] * b1[c] + gy[m11] * b3[c]
                        band_j, band_jj = j, jj
                    w1, vv = fv[o, k, r], v[o, k, r]
                    w0 = one - w1
                    k0, k1, k2, k3 = amp * w0, amp * w1, amp * w0 * vv, amp * w1 * (vv - one)
                    line = out[k, r]
                    if o == 0:
                        line[:] = 0  # here rather than np.zeros: in parallel, and while the row is in cache
                    for c in range(width):
                        line[c] += k0 * p0[c] + k1 * p1[c] + k2 * p2[c] + k3 * p3[c]


def _grid_numba(x: np.ndarray, y: np.ndarray, freqs: list, amps: list, repeatx, repeaty, base: int) -> np.ndarray:
    """Per-axis quantities of every octave (O(W + H) each), the per-pixel sum in the compiled kernel.

    The kernel regroups the bilinear blend of the four corner terms by row factor (w0, w1, w0 v, w1 (v - 1)) and
    column factor (the column basis (1 - fu) u, 1 - fu, fu (u - 1), fu): the same sum, in another order."""
    per_x = [_axis(x * f, _f32(repeatx) * f, base) for f in freqs]
    per_y = [_axis(y * f, _f32(repeaty) * f, base) for f in freqs]
    left = PERM[np.stack([p[0] for p in per_x]) & 511].astype(np.int32)  # first permutation step, per column
    right = PERM[np.stack([p[1] for p in per_x]) & 511].astype(np.int32)
    u = np.stack([p[2] for p in per_x])
    fu, one = fade(u), np.float32(1)
    cols = np.ascontiguousarray(np.stack([(one - fu) * u, one - fu, fu * (u - one), fu], axis=2), np.float32)
    yj = np.stack([p[0] for p in per_y]).astype(np.int32)
    yjj = np.stack([p[1] for p in per_y]).astype(np.int32)
    v = np.stack([p[2] for p in per_y])
    out = np.empty((len(x), y.shape[1], x.shape[1]), np.float32)
    amps = np.array(amps, np.float32)
    torch = sys.modules.get("torch")  # never imported here: only restored when the caller uses it
    threads = torch.get_num_threads() if torch is not None else None
    _grid_kernel(out, left, right, cols, yj, yjj, v, fade(v), amps, CORNER_GX, CORNER_GY, _ROWS_PER_TASK)
    if threads is not None:
        # Numba's parallel kernel sets the OpenMP pool it shares with torch to every core, whatever
        # OMP_NUM_THREADS / torch.set_num_threads said: a training step after it ran with one thread per core,
        # several times slower on a busy or shared machine (seen in the vqgan prior's first updates).
        torch.set_num_threads(threads)
    return out


def pnoise2_grid(
    x,
    y,
    octaves: int = 1,
    persistence: float = 0.5,
    lacunarity: float = 2.0,
    repeatx: float = 1024.0,
    repeaty: float = 1024.0,
    base: int = 0,
    backend: str = "auto",
) -> np.ndarray:
    """Grids of ``noise.pnoise2``: ``out[..., r, c] = pnoise2(x[..., c], y[..., r], ...)`` as float32.

    ``x`` (W,) and ``y`` (H,) give one (H, W) grid; ``x`` (N, W) and ``y`` (N, H) a batch (N, H, W) of grids with
    their own coordinates. ``backend``: "numba" (compiled loop), "numpy", or "auto" (numba when installed); both
    give the same values.
    """
    _check(octaves, lacunarity)
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"backend must be auto, numba or numpy, got {backend!r}")
    if backend == "numba" and not HAVE_NUMBA:
        raise ValueError("backend 'numba' needs numba: pip install gencore[fast]")
    x, y = _f32(x), _f32(y)
    single = x.ndim == 1 and y.ndim == 1
    x, y = np.atleast_2d(x), np.atleast_2d(y)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x and y must be (W,) and (H,), or (N, W) and (N, H); got {x.shape} and {y.shape}")
    freqs, amps = [np.float32(1)], [np.float32(1)]
    for _ in range(octaves - 1):
        freqs.append(freqs[-1] * np.float32(lacunarity))
        amps.append(amps[-1] * np.float32(persistence))
    norm = np.float32(0)
    for amp in amps:
        norm += amp
    if backend != "numpy" and HAVE_NUMBA:  # amplitudes / norm into the kernel: no extra pass over the output
        out = _grid_numba(x, y, freqs, [amp / norm for amp in amps], repeatx, repeaty, base)
    else:
        out = np.zeros((len(x), y.shape[1], x.shape[1]), np.float32)
        for freq, amp in zip(freqs, amps):
            _octave_numpy(out, x * freq, y * freq, _f32(repeatx) * freq, _f32(repeaty) * freq, base, amp)
        out = out if octaves == 1 else out / norm
    return out[0] if single else out


def seed_offset(seed: int) -> tuple[float, float]:
    """A lattice offset (ox, oy) in [0, 256) per seed: the noise repeats every 256 cells, so shifting the window
    is how one gets a different pattern without leaving the table (see the module docstring on ``base``)."""
    rng = np.random.default_rng(seed)
    ox, oy = rng.uniform(0, 256, 2)
    return float(ox), float(oy)


def perlin_grid(
    shape: tuple[int, int],
    scale: float = 16.0,
    octaves: int = 3,
    persistence: float = 0.5,
    lacunarity: float = 2.0,
    seed: int | list[int] = 0,
    backend: str = "auto",
) -> np.ndarray:
    """Image(s) of ``noise.pnoise2(col / scale + ox, row / scale + oy, ...)`` with the offset (ox, oy) from a seed.

    ``seed`` an int: one (H, W) image; a list of ints: a batch (N, H, W), one image per seed, computed together.
    For coordinates of your own, call :func:`pnoise2_grid`.
    """
    height, width = shape
    if height < 1 or width < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    seeds = [seed] if isinstance(seed, (int, np.integer)) else list(seed)
    offsets = np.array([seed_offset(int(s)) for s in seeds]).reshape(-1, 2)
    xs = np.arange(width) / scale + offsets[:, :1]  # float64, then float32 as the C function receives it
    ys = np.arange(height) / scale + offsets[:, 1:]
    out = pnoise2_grid(xs, ys, octaves, persistence, lacunarity, backend=backend)
    return out[0] if isinstance(seed, (int, np.integer)) else out


# --- seeded fractal fields with random gradient directions (m1-hyperspectral's scenes) ----------------------------


def _random_gradient_octave(height: int, width: int, frequency: float, rng: np.random.Generator) -> np.ndarray:
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
        total += amplitude * _random_gradient_octave(height, width, frequency, rng)
        norm += amplitude
        amplitude *= persistence
        frequency *= lacunarity
    return total * np.sqrt(2.0) / norm  # one octave is bounded by sqrt(1/2): rescale to [-1, 1]

"""gencore.pnoise gives the values of the noise library's pnoise2 (the reference, installed for the tests)."""

import noise
import numpy as np
import pytest

from gencore.pnoise import HAVE_NUMBA, perlin_grid, pnoise2, pnoise2_grid, seed_offset

PARAMS = [
    {},
    {"octaves": 4},
    {"octaves": 5, "persistence": 0.7, "lacunarity": 2.3},
    {"octaves": 3, "repeatx": 8.0, "repeaty": 5.0},
    {"octaves": 2, "base": 1},
    {"octaves": 6, "persistence": 0.35, "lacunarity": 1.7, "repeatx": 300.0, "repeaty": 13.0},
]
BACKENDS = ["numpy", "numba"]


def reference_grid(xs, ys, **kw) -> np.ndarray:
    return np.array([[noise.pnoise2(float(x), float(y), **kw) for x in xs] for y in ys])


def test_numba_is_installed_for_the_tests():
    assert HAVE_NUMBA  # vqgan-negatives depends on it; without it only the NumPy path would be tested


@pytest.mark.parametrize("kw", PARAMS)
def test_points_equal_pnoise2(kw):
    rng = np.random.default_rng(0)
    xs, ys = rng.uniform(-40, 700, 3000), rng.uniform(-40, 700, 3000)
    ref = np.array([noise.pnoise2(float(x), float(y), **kw) for x, y in zip(xs, ys)])
    np.testing.assert_allclose(pnoise2(xs, ys, **kw), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw", PARAMS)
def test_grid_equals_pnoise2(kw, backend):
    xs, ys = np.arange(70) / 9.3 + 2.1, np.arange(50) / 4.1 - 3.3  # non-integer cells, negative coordinates
    got = pnoise2_grid(xs, ys, backend=backend, **kw)
    assert got.shape == (50, 70) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_grid(xs, ys, **kw), rtol=0, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unsorted_coordinates_and_batches(backend):
    rng = np.random.default_rng(1)
    xs = rng.uniform(0, 40, (3, 33))
    ys = rng.uniform(0, 40, (3, 21))
    got = pnoise2_grid(xs, ys, octaves=3, backend=backend)
    assert got.shape == (3, 21, 33)
    for k in range(3):
        np.testing.assert_allclose(got[k], reference_grid(xs[k], ys[k], octaves=3), rtol=0, atol=1e-5)


def test_perlin_grid_is_pnoise2_at_seeded_offsets_and_batches_agree():
    ox, oy = seed_offset(7)
    image = perlin_grid((24, 40), scale=8.0, octaves=3, seed=7)
    ref = reference_grid(np.arange(40) / 8.0 + ox, np.arange(24) / 8.0 + oy, octaves=3)
    np.testing.assert_allclose(image, ref, rtol=0, atol=1e-5)
    batch = perlin_grid((24, 40), scale=8.0, octaves=3, seed=[6, 7])
    np.testing.assert_allclose(batch[1], image, rtol=0, atol=1e-6)
    assert np.abs(batch[0] - batch[1]).mean() > 0.05  # another seed, another pattern
    np.testing.assert_array_equal(perlin_grid((24, 40), 8.0, 3, seed=7), image)  # deterministic


def test_backends_agree_on_a_large_grid():
    a = perlin_grid((128, 128), 16.0, 4, seed=[0, 1, 2], backend="numpy")
    b = perlin_grid((128, 128), 16.0, 4, seed=[0, 1, 2], backend="numba")
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert 0.1 < a.std() < 0.3 and np.abs(a).max() < 1.0  # pnoise2 stays well inside [-1, 1]


@pytest.mark.parametrize(
    "call",
    [
        lambda: pnoise2_grid(np.arange(3.0), np.arange(3.0), octaves=0),
        lambda: pnoise2_grid(np.arange(3.0), np.arange(3.0), lacunarity=0),
        lambda: pnoise2_grid(np.arange(3.0), np.arange(3.0), backend="cuda"),
        lambda: pnoise2_grid(np.zeros((2, 3)), np.zeros((3, 3))),
        lambda: perlin_grid((0, 4)),
        lambda: perlin_grid((4, 4), scale=0),
    ],
)
def test_bad_arguments(call):
    with pytest.raises(ValueError):
        call()

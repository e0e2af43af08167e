"""gencore.noise: the pnoise2 kind gives the values of the noise library's pnoise2 (the reference, installed for the
tests); perlin2d (m1-hyperspectral's scenes) is deterministic, bounded and smooth, and its values stay the same."""

import hashlib

import noise
import numpy as np
import pytest

from gencore.noise import HAVE_NUMBA, fade, perlin2d, perlin_grid, pnoise2, pnoise2_grid, seed_offset

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


# --- perlin2d ------------------------------------------------------------------------------------------------


def test_perlin_is_deterministic_bounded_and_seed_dependent():
    a = perlin2d((64, 80), scale=16, octaves=3, seed=1)
    assert a.shape == (64, 80)
    np.testing.assert_array_equal(a, perlin2d((64, 80), scale=16, octaves=3, seed=1))
    assert not np.allclose(a, perlin2d((64, 80), scale=16, octaves=3, seed=2))
    assert np.abs(a).max() <= 1.0 and a.std() > 0.05


def test_larger_scale_gives_smoother_fields_and_octaves_add_detail():
    def roughness(field: np.ndarray) -> float:
        return float(np.abs(np.diff(field, axis=1)).mean() / field.std())

    smooth, rough = perlin2d((96, 96), scale=48, octaves=1), perlin2d((96, 96), scale=6, octaves=1)
    assert roughness(smooth) < 0.5 * roughness(rough)
    assert roughness(perlin2d((96, 96), scale=32, octaves=5)) > roughness(perlin2d((96, 96), scale=32, octaves=1))


def test_lattice_points_of_a_single_octave_are_zero():
    field = perlin2d((33, 33), scale=8, octaves=1, seed=3)
    np.testing.assert_allclose(field[::8, ::8], 0.0, atol=1e-12)  # gradient noise vanishes on the lattice


@pytest.mark.parametrize("kwargs", [{"shape": (0, 4)}, {"scale": 0}, {"octaves": 0}])
def test_bad_parameters_are_refused(kwargs):
    args = {"shape": (8, 8), **kwargs}
    with pytest.raises(ValueError):
        perlin2d(**args)


def test_perlin2d_values_are_unchanged():
    """The fields m1-hyperspectral's embedded scenes (and the figures published from them) are made of."""
    field = perlin2d((6, 9), scale=4.0, octaves=3, seed=11)
    assert field.dtype == np.float64
    assert hashlib.sha256(field.tobytes()).hexdigest() == (
        "3c941c9c42e4f9f178694e753711b71dd183c47f803cfd75b021bc4b6ec91a86"
    )


def test_fade_keeps_the_dtype():
    t = np.linspace(0, 1, 5)
    assert fade(t).dtype == np.float64 and fade(t.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(fade(t), 6 * t**5 - 15 * t**4 + 10 * t**3, atol=1e-15)


def test_the_numba_kernel_leaves_torchs_thread_count_alone():
    """Numba's parallel kernel resizes the OpenMP pool torch shares: a run limited to one thread (OMP_NUM_THREADS=1,
    as on a shared machine) used every core afterwards. In a child process, so the parent's settings do not mask it;
    it can fail only on a machine with more than one core."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, torch\n"
        "from gencore.noise import pnoise2_grid\n"
        "before = torch.get_num_threads()\n"
        "pnoise2_grid(np.linspace(0, 4, 64), np.linspace(0, 4, 64), octaves=3, backend='numba')\n"
        "print(before, torch.get_num_threads())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1", "1"]

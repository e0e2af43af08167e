from __future__ import annotations

import numpy as np
import pytest

from gencore.noise import perlin2d


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

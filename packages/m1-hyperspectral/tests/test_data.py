from __future__ import annotations

import numpy as np
import pytest

from gencore.errors import DataError
from m1_hyperspectral.config import SynthConfig
from m1_hyperspectral.data import labeled_split, load_scene, load_scenes, pixels_from_scenes, split_pixels
from m1_hyperspectral.synth import MATERIALS, endmember_spectra, make_scene, save_scene


@pytest.mark.parametrize("writer", ["mat5", "mat73"], ids=["mat-v5", "mat-v7.3"])
def test_indian_pines_layout_is_found_by_file_name_alone(tmp_path, files, writer):
    cube, gt = files.random_scene()
    path = getattr(files, writer)(
        tmp_path / "Indian_pines.mat", {"indian_pines_corrected": cube, "indian_pines_gt": gt}
    )
    scene = load_scene(path)
    np.testing.assert_allclose(scene.cube, cube, rtol=1e-6)
    np.testing.assert_array_equal(scene.gt, gt)


@pytest.mark.parametrize("writer", ["mat5", "mat73"], ids=["mat-v5", "mat-v7.3"])
def test_the_public_two_file_layout_pairs_cube_and_ground_truth(tmp_path, files, writer):
    write = getattr(files, writer)
    (c1, g1), (c2, g2) = files.random_scene(seed=3), files.random_scene(4, 3, seed=4)
    paths = [
        write(tmp_path / "Indian_pines_corrected.mat", {"indian_pines_corrected": c1}),
        write(tmp_path / "Indian_pines_gt.mat", {"indian_pines_gt": g1}),
        write(tmp_path / "other.mat", {"cube": c2, "gt": g2}),  # a one-file scene after it keeps its own gt
    ]
    first, second = load_scenes(paths)
    np.testing.assert_array_equal(first.gt, g1)
    np.testing.assert_array_equal(second.gt, g2)
    with pytest.raises(DataError, match=r"bad_gt.mat: ground truth 'indian_pines_gt' is \(4, 3\) but the cube is"):
        load_scenes([paths[0], write(tmp_path / "bad_gt.mat", {"indian_pines_gt": g2})])
    with pytest.raises(DataError, match="no cube and no H×W ground truth matching"):
        load_scenes([paths[0], write(tmp_path / "other_2d.mat", {"mask": g2})])
    with pytest.raises(DataError, match="no H×W×B cube"):
        load_scenes([paths[1]])  # a ground truth with no cube before it


def test_h5_and_npy_with_ground_truth_sibling(tmp_path, files):
    import h5py

    cube, gt = files.random_scene(seed=1)
    with h5py.File(tmp_path / "pavia.h5", "w") as fh:
        fh["paviaU"], fh["paviaU_gt"] = cube, gt
    np.save(tmp_path / "scene.npy", cube)
    np.save(tmp_path / "scene_gt.npy", gt)
    for scene in load_scenes([tmp_path / "pavia.h5", tmp_path / "scene.npy"]):
        np.testing.assert_array_equal(scene.cube, cube)
        np.testing.assert_array_equal(scene.gt, gt)


def test_a_ground_truth_that_does_not_fit_is_an_error_not_no_labels(tmp_path, files):
    """A variable named like a ground truth (``*gt*``, ``scene_gt.npy``) that is not the cube's H×W of integer
    ids is refused by name: a run trained with "0 labeled" pixels and no word of why before."""
    cube, gt = files.random_scene()
    bad = {"short": gt[:2], "transposed": gt.T, "fractions": gt + 0.5, "nan": np.where(gt > 0, gt, np.nan)}
    for name, values in bad.items():
        path = files.mat5(tmp_path / f"{name}.mat", {"indian_pines_corrected": cube, "indian_pines_gt": values})
        with pytest.raises(DataError, match="ground truth 'indian_pines_gt'"):
            load_scene(path)
    np.save(tmp_path / "scene.npy", cube)
    np.save(tmp_path / "scene_gt.npy", gt[:, :2])
    with pytest.raises(DataError, match="ground truth 'scene_gt' is"):
        load_scene(tmp_path / "scene.npy")


def test_keys_can_be_named_and_the_gt_is_optional(tmp_path, files):
    cube, gt = files.random_scene()
    path = files.mat5(tmp_path / "two.mat", {"a": cube, "b": cube[..., :3], "labels": gt})
    scene = load_scene(path, cube_key="b", gt_key="labels")
    assert scene.cube.shape == (6, 5, 3) and scene.gt is not None
    assert load_scene(files.mat5(tmp_path / "nogt.mat", {"x": cube})).gt is None


def test_several_files_are_concatenated_with_coordinates(tmp_path, files):
    (c1, g1), (c2, g2) = files.random_scene(4, 3, seed=1), files.random_scene(2, 5, seed=2)
    p1 = files.mat5(tmp_path / "a.mat", {"cube": c1, "gt": g1})
    p2 = files.mat73(tmp_path / "b.mat", {"cube": c2, "gt": g2})
    pixels = pixels_from_scenes(load_scenes([p1, p2]))
    assert len(pixels) == 12 + 10 and pixels.bands == 7 and pixels.files == ["a.mat", "b.mat"]
    f, r, c = pixels.coords[15]
    assert f == 1
    np.testing.assert_allclose(pixels.spectra[15], c2[r, c], rtol=1e-6)
    assert pixels.labels[15] == g2[r, c]


@pytest.mark.parametrize(
    "arrays, keys, message",
    [
        ({"flat": np.ones((4, 5))}, {}, "no H×W×B cube found"),
        ({"c1": np.ones((3, 3, 4)), "c2": np.ones((3, 3, 5))}, {}, "2 candidate H×W×B cube"),
        ({"cube": np.ones((3, 3, 4))}, {"cube_key": "indian_pines"}, "no variable 'indian_pines'"),
        ({"cube": np.ones((3, 3, 4))}, {"gt_key": "gt"}, "no ground-truth variable 'gt'"),
        ({"cube": np.ones((3, 3))}, {"cube_key": "cube"}, "expected a cube H×W×B"),
        ({"cube": np.ones((3, 3, 1))}, {}, "at least 2 bands"),
        ({"cube": np.full((3, 3, 4), np.nan)}, {}, "36 NaN/inf values"),
        ({"cube": np.ones((3, 3, 4)), "gt": np.ones((2, 3))}, {"gt_key": "gt"}, "ground truth 'gt' is (2, 3)"),
        ({"cube": np.ones((3, 3, 4)), "gt": np.full((3, 3), 0.5)}, {"gt_key": "gt"}, "non-negative integer"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, files, arrays, keys, message):
    path = files.mat5(tmp_path / "bad.mat", arrays)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_scene(path, **keys)


def test_unreadable_files_and_mismatched_bands(tmp_path, files):
    (tmp_path / "notes.mat").write_text("not a matlab file")
    with pytest.raises(DataError, match="cannot read it as mat5"):
        load_scene(tmp_path / "notes.mat")
    (tmp_path / "x.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(DataError, match="cannot read it as h5"):
        load_scene(tmp_path / "x.h5")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(DataError, match="not a .mat, .h5 or .npy"):
        load_scene(tmp_path / "x.txt")
    with pytest.raises(DataError, match="no such file"):
        load_scene(tmp_path / "missing.mat")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="cannot read it as npy"):
        load_scene(tmp_path / "obj.npy")  # pickled object arrays are never loaded
    a = files.mat5(tmp_path / "a.mat", {"c": np.ones((2, 2, 4))})
    b = files.mat5(tmp_path / "b.mat", {"c": np.ones((2, 2, 5))})
    with pytest.raises(DataError, match="b.mat has 5 bands but a.mat has 4"):
        pixels_from_scenes(load_scenes([a, b]))


def test_splits_are_disjoint_reproducible_and_class_balanced():
    train, valid, test = split_pixels(1000, 0.1, 0.2, seed=3)
    assert len(valid) == 100 and len(test) == 200 and len(train) == 700
    assert len(np.intersect1d(train, valid)) == len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(train, split_pixels(1000, 0.1, 0.2, seed=3)[0])
    labels = np.repeat([0, 1, 2, 3], [500, 40, 30, 6])
    lab, rest = labeled_split(labels, 10, seed=1)
    counts = np.bincount(labels[lab], minlength=4)
    assert counts.tolist() == [0, 10, 10, 5]  # background never used; a class of 6 keeps one pixel to test
    assert np.all(labels[rest] > 0) and len(lab) + len(rest) == 76
    np.testing.assert_array_equal(lab, labeled_split(labels, 10, seed=1)[0])
    assert not np.array_equal(lab, labeled_split(labels, 10, seed=2)[0])


def test_synthetic_scene_is_deterministic_mixed_and_labeled_by_dominant_material(tmp_path):
    config = SynthConfig(height=24, width=20, bands=30, endmembers=4, seed=5)
    a, b = make_scene(config), make_scene(config)
    np.testing.assert_array_equal(a.cube, b.cube)
    assert a.cube.shape == (24, 20, 30) and a.cube.min() >= 0 and a.cube.max() <= 1
    np.testing.assert_allclose(a.abundances.sum(-1), 1.0, rtol=1e-9)
    dominant = a.abundances.argmax(-1) + 1
    labeled = a.gt > 0
    assert labeled.mean() > 0.5 and np.array_equal(a.gt[labeled], dominant[labeled])
    assert set(np.unique(a.gt[labeled])) <= {1, 2, 3, 4}
    save_scene(a, str(tmp_path / "s.h5"), config)
    loaded = load_scene(tmp_path / "s.h5")  # abundances/endmembers are not mistaken for the cube or gt
    np.testing.assert_array_equal(loaded.cube, a.cube)
    np.testing.assert_array_equal(loaded.gt, a.gt)
    np.testing.assert_allclose(loaded.wavelengths, a.wavelengths)


def test_endmember_shapes_follow_the_materials():
    w = np.linspace(400, 2500, 211)
    s = endmember_spectra(w)
    assert set(s) == set(MATERIALS)
    at = lambda name, nm: s[name][np.abs(w - nm).argmin()]
    assert at("vegetation", 850) > 3 * at("vegetation", 670)  # red edge
    assert at("water", 1000) < 0.02 and at("soil", 2400) > at("soil", 500)
    assert at("clay", 2205) < at("clay", 2300) - 0.05  # the 2200 nm clay absorption

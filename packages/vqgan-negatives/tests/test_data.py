"""RDKit rendering, image folders, conditioning images."""

from __future__ import annotations

import pytest
import torch

from gencore.errors import DataError
from vqgan_negatives.config import ConditionConfig, RenderConfig
from vqgan_negatives.data import (
    PerlinParams,
    condition_from_target,
    gaussian_images,
    load_image_folder,
    perlin_image,
    perlin_images,
    render_molecules,
    smiles_list,
    write_molecule_folder,
)


def test_smiles_list_is_rdkits_nci_set():
    smiles = smiles_list()
    assert len(smiles) == 4999  # the file's 4,999 lines (NCI ids 1..)
    assert smiles[0] == "CC1=CC(=O)C=CC1=O"


def test_render_is_seeded_and_shaped():
    opts = RenderConfig(size=32)
    a, b = render_molecules(4, opts, seed=3), render_molecules(4, opts, seed=3)
    assert a.images.shape == (4, 1, 32, 32)
    assert torch.equal(a.images, b.images) and a.smiles == b.smiles
    assert a.images.min() >= -1 and a.images.max() <= 1
    ink = (a.images < 0).float().mean((1, 2, 3))
    assert ((ink > 0.005) & (ink < 0.5)).all()  # drawings: some ink on a white page
    assert render_molecules(4, opts, seed=4).smiles != a.smiles


def test_render_options_change_the_image():
    base = RenderConfig(size=32, max_rotation=0.0)
    ref = render_molecules(1, base, seed=0).images
    for change in ({"line_width": 4.0}, {"atom_labels": False}, {"max_rotation": 90.0}):
        other = render_molecules(1, RenderConfig(**{**base.__dict__, **change}), seed=0).images
        assert not torch.equal(ref, other), change
    thick = render_molecules(1, RenderConfig(**{**base.__dict__, "line_width": 4.0}), seed=0).images
    assert (thick < 0).float().mean() > (ref < 0).float().mean()  # wider lines, more ink
    colour = render_molecules(1, RenderConfig(**{**base.__dict__, "colour": True}), seed=0).images
    assert colour.shape == (1, 3, 32, 32)


def test_write_and_load_folder(tmp_path):
    write_molecule_folder(tmp_path / "mols", 3, RenderConfig(size=32), seed=0)
    assert (tmp_path / "mols" / "index.csv").read_text().count("\n") == 4
    images = load_image_folder(tmp_path / "mols", 32)
    assert images.shape == (3, 1, 32, 32)


def test_unreadable_image_is_named(tmp_path):
    (tmp_path / "good.png").write_bytes(b"")
    with pytest.raises(DataError, match="good.png"):
        load_image_folder(tmp_path, 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_image_folder(tmp_path / "empty", 32)
    with pytest.raises(DataError, match="not found"):
        load_image_folder(tmp_path / "missing", 32)


def test_perlin_options_change_the_image():
    base = PerlinParams()
    ref = perlin_image(32, base)
    assert ref.shape == (1, 32, 32) and ref.min() >= -1 and ref.max() <= 1
    assert torch.equal(ref, perlin_image(32, base))
    for change in ({"scale": 8.0}, {"octaves": 5}, {"persistence": 0.8}, {"lacunarity": 3.0}, {"seed": 1},
                   {"contrast": 4.0}):  # fmt: skip
        assert not torch.equal(ref, perlin_image(32, PerlinParams(**{**base.__dict__, **change}))), change
    binary = perlin_image(32, PerlinParams(threshold=0.0))
    assert set(binary.unique().tolist()) <= {-1.0, 1.0}


def test_gaussian_and_training_condition():
    g = gaussian_images(2, 32, seed=0)
    assert g.shape == (2, 1, 32, 32) and g.abs().max() <= 1
    target = render_molecules(2, RenderConfig(size=32), seed=0).images
    cond = condition_from_target(target, ConditionConfig(), seed=0)
    assert cond.shape == target.shape and torch.equal(cond, condition_from_target(target, ConditionConfig(), 0))
    # ink-dense regions of the target are dark in the condition
    ink = target < 0
    assert cond[ink].mean() < cond[~ink].mean()


def test_perlin_images_are_noise_pnoise2_values():
    import noise
    import numpy as np

    from gencore.noise import seed_offset

    params = PerlinParams(scale=8.0, octaves=4, persistence=0.6, lacunarity=2.2, seed=5, contrast=1.0)
    images = perlin_images(2, 24, params)
    for k in range(2):
        ox, oy = seed_offset(params.seed + k)
        ref = [[noise.pnoise2(c / 8.0 + ox, r / 8.0 + oy, octaves=4, persistence=0.6, lacunarity=2.2)
                for c in range(24)] for r in range(24)]  # fmt: skip
        np.testing.assert_allclose(images[k, 0].numpy(), np.array(ref), rtol=0, atol=1e-5)
    assert torch.equal(images[1], perlin_image(24, PerlinParams(**{**params.__dict__, "seed": 6})))

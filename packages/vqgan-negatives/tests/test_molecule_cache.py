"""Rendered training molecules are kept in the user's cache: the prior and later runs read the same images."""

from __future__ import annotations

import torch

from vqgan_negatives import data as data_module
from vqgan_negatives.config import DataConfig, RenderConfig
from vqgan_negatives.data import MOLECULE_CACHE, load_training_images, molecule_key, render_molecules


def test_training_molecules_come_back_from_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    cfg = DataConfig(num_images=6)
    first = load_training_images(cfg, 32, seed=2)
    assert torch.equal(first, render_molecules(6, RenderConfig(size=32), seed=2).images)
    entry = tmp_path / MOLECULE_CACHE / molecule_key(6, RenderConfig(size=32), 2)
    assert (entry / "manifest.json").is_file()

    def no_render(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("rendered although the images are in the cache")

    monkeypatch.setattr(data_module, "render_molecules", no_render)
    assert torch.equal(load_training_images(cfg, 32, seed=2), first)
    assert molecule_key(6, RenderConfig(size=32), 2) != molecule_key(6, RenderConfig(size=32, line_width=1.0), 2)

    blob = entry / "molecules.safetensors"  # a damaged entry is rendered again, with a note
    blob.write_bytes(blob.read_bytes()[:-4] + b"xxxx")
    monkeypatch.setattr(data_module, "render_molecules", render_molecules)
    assert torch.equal(load_training_images(cfg, 32, seed=2), first)
    assert "cached molecules not used" in capsys.readouterr().out

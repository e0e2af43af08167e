"""The rendered training set is kept in the user's cache: a later run reads the same images, texts and layouts."""

from __future__ import annotations

import pytest
import torch

from hvae_captcha import data as data_module
from hvae_captcha.config import DataConfig, ModelConfig
from hvae_captcha.data import RENDER_CACHE, load_data, render_key


def test_a_second_load_reads_the_same_set_from_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    data, model = DataConfig(num_images=12), ModelConfig()
    first = load_data(data, model, seed=3)
    entries = list((tmp_path / RENDER_CACHE).iterdir())
    assert [p.name for p in entries] == [render_key(data, model, model.vocabulary, 3)]

    def no_render(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("rendered although the set is in the cache")

    monkeypatch.setattr(data_module, "render_captchas", no_render)
    again = load_data(data, model, seed=3)
    assert torch.equal(first.images, again.images) and first.texts == again.texts
    assert first.layouts == again.layouts

    with pytest.raises(AssertionError, match="rendered although"):  # another seed is another entry
        load_data(data, model, seed=4)
    assert render_key(data, model, model.vocabulary, 3) != render_key(DataConfig(num_images=12, noise_dots=0), model,
                                                                     model.vocabulary, 3)  # fmt: skip
    assert render_key(data, model, model.vocabulary, 3) != render_key(data, ModelConfig(channels=3),
                                                                     model.vocabulary, 3)  # fmt: skip


def test_a_damaged_entry_is_rendered_again_and_replaced(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    data, model = DataConfig(num_images=8), ModelConfig()
    first = load_data(data, model, seed=0)
    entry = tmp_path / RENDER_CACHE / render_key(data, model, model.vocabulary, 0)
    blob = entry / "render.safetensors"
    blob.write_bytes(blob.read_bytes()[:-5] + b"xxxxx")
    again = load_data(data, model, seed=0)
    assert "cached CAPTCHAs not used" in capsys.readouterr().out
    assert torch.equal(first.images, again.images) and first.layouts == again.layouts
    monkeypatch.setattr(data_module, "render_captchas", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    assert torch.equal(load_data(data, model, seed=0).images, first.images)  # the entry was replaced

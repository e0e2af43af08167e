"""The embedded training set is kept in the user's cache: a later run reads the very same images."""

from __future__ import annotations

import torch

from ganwriting_music import data as data_module
from ganwriting_music.config import DataConfig
from ganwriting_music.data import GLYPH_CACHE, font_symbols, glyph_key, load_source


def test_the_font_set_is_read_back_from_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENCORE_CACHE", str(tmp_path))
    cfg = DataConfig(image_size=16, samples_per_class=2, classes=["gClef", "stem"], fonts=["Bravura", "Leipzig"])
    first = load_source(cfg, seed=5)
    plain = font_symbols(cfg, cfg.fonts, seed=5)
    assert torch.equal(first.images, plain.images)
    entry = tmp_path / GLYPH_CACHE / glyph_key(cfg, cfg.fonts, 5)
    assert (entry / "manifest.json").is_file()

    def no_render(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("rendered although the set is in the cache")

    monkeypatch.setattr(data_module, "font_symbols", no_render)
    again = load_source(cfg, seed=5)
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    assert torch.equal(again.writers, first.writers) and again.writer_names == first.writer_names
    assert again.classes == first.classes
    assert glyph_key(cfg, cfg.fonts, 5) != glyph_key(
        DataConfig(image_size=16, samples_per_class=2, classes=["gClef", "stem"], rotation=3.0), cfg.fonts, 5
    )

    blob = entry / "glyphs.safetensors"  # a damaged entry is rendered again, with a note
    blob.write_bytes(blob.read_bytes()[:-4] + b"xxxx")
    monkeypatch.setattr(data_module, "font_symbols", font_symbols)
    assert torch.equal(load_source(cfg, seed=5).images, first.images)
    assert "cached glyphs not used" in capsys.readouterr().out

"""Glyphs in the text map: each character's drawn shape at its centre, and the map after every upsampling."""

from __future__ import annotations

import pytest
import torch

from gencore.errors import ConfigError
from hvae_captcha.config import ModelConfig
from hvae_captcha.model import HVAE
from hvae_captcha.textmap import render_glyphs

TINY = dict(height=16, width=64, outer_config=[("conv", 8), ("pool", 2), ("conv", 8)],
            inner_config=[[("pool", 2), ("conv", 8)]], latent_dim=2, conditioned=True, text_map_channels=4,
            text_layout="slots", text_glyphs=True, text_map_every_stage=True)  # fmt: skip


def tiny(**kwargs) -> HVAE:
    torch.manual_seed(0)
    return HVAE(ModelConfig(**{**TINY, **kwargs})).eval()


def test_the_glyph_bank_draws_every_character_and_leaves_padding_empty():
    bank = render_glyphs("ab2", 16)
    assert bank.shape == (4, 16, 16) and 0 <= bank.min() and bank.max() <= 1
    assert all(bank[i].sum() > 5 for i in range(3)) and bank[3].sum() == 0
    assert (bank[0] - bank[1]).abs().sum() > 5  # different letters, different ink
    with pytest.raises(ConfigError, match="font file not found: /no/such.ttf"):
        render_glyphs("ab", 16, "/no/such.ttf")


def test_each_glyph_is_pasted_at_its_characters_centre():
    model = tiny()
    y = model.encode_text(["ab2kq", "ab"])
    canvas = model.text_map.glyph_canvas(y, 64)  # (B, T, 16, 64)
    centres = model.text_map.centres(y)[0] * 64
    columns = torch.arange(64).float()
    for k in range(5):
        ink = canvas[0, k].sum(0)
        assert abs((ink * columns).sum() / ink.sum() - centres[k]) < 2.5  # the ink's centroid, in pixels
    assert canvas[1, 2:].sum() == 0  # padding paints nothing
    other = model.text_map.glyph_canvas(model.encode_text(["ab2kz"]), 64)[0]
    assert torch.equal(other[:4], canvas[0, :4]) and not torch.equal(other[4], canvas[0, 4])


def test_the_glyph_map_reaches_every_stage_and_changes_samples_where_the_glyph_is(silence):
    model = tiny()
    silence(model.cond_prior, *model.cond_shift, model.map_top, *model.map_in, *model.map_head)
    with torch.no_grad():  # only the glyphs and the stage convolutions carry the text
        model.text_map.char.weight.zero_()
        model.text_map.position.zero_()
        model.text_map.glyph_char.weight.normal_(0, 1.0)
    images = []
    for text in ("aaaaa", "aaaab"):
        torch.manual_seed(7)
        images.append(model.sample(2, [text] * 2)[0])
    diff = (images[0] - images[1]).abs().amax((0, 1, 2))  # per column
    assert diff[42:].max() > 1e-3 and diff[:30].max() == 0  # only the last glyph's window changed
    assert set(model.map_out) == {"1"}  # the one upsampling of this output block


def test_glyph_models_save_without_the_bank_and_load(tmp_path):
    model = tiny()
    assert not any("glyphs" in key for key in model.state_dict())  # drawn again from the font when built
    model.save_pretrained(tmp_path / "m")
    again = HVAE.from_pretrained(tmp_path / "m").eval()
    y = model.encode_text(["ab2kq"])
    assert torch.equal(again.text_map.glyph_canvas(y, 64), model.text_map.glyph_canvas(y, 64))
    torch.manual_seed(1)
    a = model.sample(2, ["ab2kq"] * 2)[0]
    torch.manual_seed(1)
    assert torch.equal(a, again.sample(2, ["ab2kq"] * 2)[0])


def test_glyph_options_need_the_text_map():
    with pytest.raises(ConfigError, match="need model.text_map_channels > 0"):
        ModelConfig(**{**TINY, "text_map_channels": 0, "text_layout": "slots"})
    with pytest.raises(ConfigError, match="font file not found"):
        tiny(text_glyph_font="/no/such.ttf")

"""The spatial text map: character k's features lie at slot k, and the generator uses them there."""

from __future__ import annotations

import pytest
import torch

from gencore.errors import ConfigError
from hvae_captcha.config import ModelConfig
from hvae_captcha.model import HVAE
from hvae_captcha.textmap import TextMap

TINY = dict(height=16, width=64, outer_config=[("conv", 8), ("pool", 2), ("conv", 8)],
            inner_config=[[("pool", 2), ("conv", 8)]], latent_dim=2, conditioned=True, text_map_channels=4)  # fmt: skip


def tiny(**kwargs) -> HVAE:
    torch.manual_seed(0)
    return HVAE(ModelConfig(**{**TINY, **kwargs})).eval()


def test_layout_puts_each_character_at_its_slot():
    model = tiny()
    y = model.encode_text(["ab2kq", "ab"])
    weights = model.text_map.layout(y, 100)  # (B, text_length, columns)
    start, end = model.config.text_span
    peaks = weights[0, :5].argmax(1).tolist()
    expected = [int((start + (k + 0.5) * (end - start) / 5) * 100) for k in range(5)]
    assert all(abs(p - e) <= 1 for p, e in zip(peaks, expected))
    assert weights[0, 5].abs().max() == 0  # padding contributes nothing
    # a two-character text spreads its two slots over the same span
    assert weights[1, 2:].abs().max() == 0 and weights[1, 1].argmax() > 50 > weights[1, 0].argmax()


def test_changing_one_character_changes_the_map_only_around_its_slot():
    tm = TextMap(symbols=5, text_length=3, channels=4, span=(0.0, 1.0), slot_width=0.3)
    one_hot = torch.eye(5)
    a = torch.stack([one_hot[0], one_hot[1], one_hot[2]]).flatten()[None]
    b = torch.stack([one_hot[0], one_hot[1], one_hot[3]]).flatten()[None]  # last character differs
    diff = (tm(a, (2, 90)) - tm(b, (2, 90))).abs().amax((0, 1, 2))  # per column
    assert diff[:30].max() < 1e-4 * diff.max() and diff[60:].max() == diff.max()


def test_map_changes_samples_at_the_changed_characters_position(silence):
    model = tiny()
    silence(model.cond_prior, *model.cond_shift)  # the global (per-channel) path: only the map carries the text
    with torch.no_grad():
        model.map_top.weight.normal_(0, 0.5)  # zero at init (prior starts at N(0, I)); make it matter here
    images = []
    for text in ("aaaaa", "aaaab", "baaaa"):
        torch.manual_seed(7)
        images.append(model.sample(2, [text] * 2)[0])
    last = (images[0] - images[1]).abs().amax((0, 1, 2))  # per column
    first = (images[0] - images[2]).abs().amax((0, 1, 2))
    # slot 5 of 5 is centred at column ~50 of 64, slot 1 at ~9; far columns see only the bumps' float tails
    assert last[40:].max() > 1e-3 and last[:16].max() < 1e-3 * last.max()
    assert first[:24].max() > 1e-3 and first[48:].max() < 1e-3 * first.max()
    # without the map (and with the global path silenced) the text changes nothing
    plain = tiny(text_map_channels=0)
    silence(plain.cond_prior, *plain.cond_shift)
    torch.manual_seed(7)
    a = plain.sample(2, ["aaaaa"] * 2)[0]
    torch.manual_seed(7)
    assert torch.equal(a, plain.sample(2, ["aaaab"] * 2)[0])


def test_map_config_is_checked():
    with pytest.raises(ConfigError, match="text_span"):
        ModelConfig(text_span=(0.6, 0.2))
    with pytest.raises(ConfigError, match="spatial latents"):
        ModelConfig(conditioned=True, latent="vector", inner_config=[])
    assert ModelConfig(conditioned=True, latent="vector", inner_config=[], text_map_channels=0).text_map_channels == 0

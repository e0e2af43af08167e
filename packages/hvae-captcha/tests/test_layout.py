"""Rendered layouts: the renderer records where each character went, and a rendered-layout model uses it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gencore.errors import ConfigError, DataError
from hvae_captcha.cli import main
from hvae_captcha.config import DataConfig, ModelConfig
from hvae_captcha.data import draw_layouts, load_data, render_captchas
from hvae_captcha.model import HVAE

TINY = dict(height=16, width=64, outer_config=[("conv", 8), ("pool", 2), ("conv", 8)],
            inner_config=[[("pool", 2), ("conv", 8)]], latent_dim=2, conditioned=True, text_map_channels=4,
            text_layout="rendered")  # fmt: skip


def test_recorded_centres_are_where_the_ink_is():
    cfg = DataConfig(noise_dots=0, noise_curve=False)
    images, texts, layouts = render_captchas(cfg, "abcdkmnpqrwx2345", 24, seed=3)
    errors = []
    for img, text, layout in zip(images, texts, layouts):
        assert len(layout) == len(text) and layout == sorted(layout) and 0 < layout[0] and layout[-1] < 1
        ink = np.clip(200.0 - np.asarray(img.convert("L"), np.float32), 0, None).sum(0)  # per column
        x = np.array(layout) * len(ink)
        edges = np.concatenate([[0], (x[1:] + x[:-1]) / 2, [len(ink)]]).astype(int)
        for k in range(len(x)):  # ink centroid between the midpoints to the neighbouring centres
            cols = np.arange(edges[k], edges[k + 1])
            errors.append(abs((cols * ink[cols]).sum() / ink[cols].sum() - x[k]) / len(ink))
    assert np.mean(errors) < 0.02  # about 2 of 200 pixels (measured: 0.009 over 200 renders)
    # a layout of the same text drawn again moves: where a glyph goes is part of the sample
    a, b = draw_layouts(cfg, ["ab2kq", "ab2kq"], seed=0)
    assert len(a) == 5 and a != b and draw_layouts(cfg, ["ab2kq"], seed=0) == [a]


def test_bumps_sit_at_the_given_centres_and_move_the_samples():
    torch.manual_seed(0)
    model = HVAE(ModelConfig(**TINY)).eval()
    y = model.encode_text(["ab2"], [[0.2, 0.5, 0.8]])
    peaks = model.text_map.layout(y, 100)[0, :3].argmax(1).tolist()
    assert [abs(p - e) <= 1 for p, e in zip(peaks, [20, 50, 80])] == [True] * 3
    with torch.no_grad():
        model.map_top.weight.normal_(0, 0.5)  # zero at init; make the map matter here
    torch.manual_seed(1)
    left = model.sample(1, ["ab2"], layouts=[[0.1, 0.2, 0.3]])[0]
    torch.manual_seed(1)
    right = model.sample(1, ["ab2"], layouts=[[0.7, 0.8, 0.9]])[0]
    assert (left - right).abs().max() > 1e-3
    with pytest.raises(ValueError, match="layouts"):
        model.encode_text(["ab2"])
    with pytest.raises(ValueError, match="3 centres for 2"):
        model.encode_text(["ab"], [[0.1, 0.2, 0.3]])


def test_rendered_layout_needs_the_map_and_rendered_data(tmp_path):
    with pytest.raises(ConfigError, match="text_map_channels"):
        ModelConfig(**{**TINY, "text_map_channels": 0})
    Image.new("RGB", (60, 20), "white").save(tmp_path / "ab2.png")
    with pytest.raises(DataError, match="text_layout=slots"):
        load_data(DataConfig(source=str(tmp_path)), ModelConfig(**TINY), seed=0)
    data = load_data(DataConfig(num_images=4, text_length=3), ModelConfig(**TINY), seed=0)
    assert [len(layout) for layout in data.layouts] == [3] * 4 and data.subset([2]).layouts == [data.layouts[2]]


def test_cli_trains_and_samples_a_rendered_layout_model(tmp_path, tiny_cli):
    run = tmp_path / "run"
    args = ["train", "--output-dir", str(run), "--conditioned", *tiny_cli, "--set", "model.text_layout='rendered'"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    grids = [tmp_path / f"{seed}.png" for seed in (0, 0, 1)]
    for seed, grid in zip((0, 0, 1), grids):
        result = CliRunner().invoke(main, ["sample", str(run), "--text", "2b6qa", "-n", "2", "--seed", str(seed),
                                           "-o", str(grid)])  # fmt: skip
        assert result.exit_code == 0, result.output
    pixels = [np.asarray(Image.open(g)) for g in grids]
    assert np.array_equal(pixels[0], pixels[1]) and not np.array_equal(pixels[0], pixels[2])
    result = CliRunner().invoke(main, ["sample", str(run / "model"), "--text", "2b6qa", "-o", str(grids[0])])
    assert result.exit_code == 0, result.output  # a bare model directory: the renderer's default settings
    result = CliRunner().invoke(main, ["evaluate", str(run), "-k", "2", "-n", "8"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["sample", str(run), "--text", "", "-o", str(grids[0])])
    assert result.exit_code == 2 and "empty CAPTCHA text" in result.output
    folder = tmp_path / "folder"
    folder.mkdir()
    Image.new("RGB", (60, 20), "white").save(folder / "ab2.png")
    result = CliRunner().invoke(main, ["reconstruct", str(run), "--data", str(folder), "-o", str(grids[0])])
    assert result.exit_code == 2 and "needs rendered data" in result.output


def test_auto_layout_follows_the_data_source(tmp_path):
    from gencore.config import build_config
    from hvae_captcha.config import HVAEConfig

    def resolved(*overrides: str) -> str:
        config = build_config(HVAEConfig, overrides=list(overrides))
        assert config.model.text_layout == "auto"
        config.resolve_text_layout()
        return config.model.text_layout

    assert resolved("model.conditioned=true") == "rendered"
    assert resolved("model.conditioned=true", f"data.source={str(tmp_path)!r}") == "slots"
    assert resolved("model.conditioned=true", "model.text_map_channels=0") == "slots"
    assert resolved() == "slots"  # unconditioned: nothing to place
    # a model saved before the option existed reads as "auto", which places the bumps at the slots
    old = HVAE(ModelConfig(**{**TINY, "text_layout": "auto"}))
    symbols = len(old.config.vocabulary) + 1
    assert not old.text_map.with_layout and old.encode_text(["ab2"]).shape == (1, old.config.text_length * symbols)

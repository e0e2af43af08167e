from __future__ import annotations

import collections

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from gencore.config import build_config
from gencore.errors import ConfigError
from hvae_captcha.cli import main
from hvae_captcha.config import PRESETS, HVAEConfig, ModelConfig, mirror_block, parse_layers
from hvae_captcha.model import HVAE

EVERY_INNER_KIND = [
    ("conv", 8), ("skip-up", 0), ("pool", 2), ("conv-bn", 8), ("convt", 8), ("convt-bn", 8), ("upsample", 2),
    ("skip-down", 0), ("conv", 4),
]  # fmt: skip


def test_every_layer_kind_from_a_toml_file_builds_and_runs(tmp_path):
    toml = tmp_path / "cfg.toml"
    toml.write_text(
        "[model]\nchannels = 3\nheight = 16\nwidth = 32\nlatent_dim = 2\n"
        'outer_config = [["conv", 4], ["pool", 2], ["conv-bn", 8]]\n'
        f"inner_config = [{[list(x) for x in EVERY_INNER_KIND]}]\n".replace("'", '"')
    )
    config = build_config(HVAEConfig, toml)
    assert config.model.inner_config[0] == EVERY_INNER_KIND
    assert config.model.outer_config == [("conv", 4), ("pool", 2), ("conv-bn", 8)]
    model = HVAE(config.model)
    log_px, levels = model(torch.rand(2, 3, 16, 32) * 2 - 1)
    assert log_px.shape == (2,) and [lv.z.shape for lv in levels] == [(2, 2, 8, 16), (2, 2, 8, 16)]


def test_layers_from_set_and_the_short_form_agree():
    from_set = build_config(
        HVAEConfig, overrides=['model.inner_config=[[["pool", 2], ["conv", 16]], [["pool", 2], ["conv", 32]]]']
    )
    short = parse_layers("pool 2, conv 16; (pool, 2), conv:32")
    assert from_set.model.inner_config == short


def test_mirror_swaps_skips_and_restores_channels():
    mirror = mirror_block([("conv", 8), ("skip-up", 0), ("pool", 2), ("conv", 16), ("upsample", 2),
                           ("skip-down", 0)], in_channels=3)  # fmt: skip
    assert [m[0] for m in mirror] == ["skip-up", "pool", "convt", "upsample", "skip-down", "convt"]
    assert mirror[-1][2] == 3 and mirror[2][2] == 8


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        ([("conv", 8), ("skip-down", 3)], "('skip-down', 3) is out of range: no earlier ('skip-up', 3)"),
        ([("convv", 8)], "unknown layer kind 'convv'"),
        ([("skip-up", 0), ("pool", 2), ("skip-down", 0)], "joins a 2×8 activation with ('skip-up', 0)"),
        ([("skip-up", 1), ("skip-up", 1)], "skip index 1 is already used"),
        ([("pool", 64)], "leaves nothing"),
        ([("conv", 0)], "needs at least 1 channel"),
    ],
)
def test_bad_inner_blocks_name_the_layer(inner, message):
    with pytest.raises(ConfigError) as info:
        ModelConfig(inner_config=[inner])
    assert message in str(info.value) and "model.inner_config[0][" in str(info.value)


def test_outer_block_refuses_inner_only_kinds():
    with pytest.raises(ConfigError, match=r"model.outer_config\[1\]: 'upsample' is not allowed here"):
        ModelConfig(outer_config=[("conv", 8), ("upsample", 2)])


def test_original_preset_has_the_original_layers():
    """Counts and parameter total of the original HVAE() (Anzarts/ProyectoMSD7203 model.py, measured there)."""
    model = HVAE(build_config(HVAEConfig, overrides=PRESETS["original"]).model)
    assert sum(p.numel() for p in model.parameters()) == 108_159_881
    kinds = collections.Counter()
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1):
            kinds["Linear"] += 1  # the original's skip-down is a Linear over channels: a 1×1 convolution here
            continue
        for base in (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.MaxPool2d, nn.Upsample):
            if isinstance(m, base):  # spectral-normed layers are subclasses (ParametrizedLinear ...)
                kinds[base.__name__] += 1
    assert kinds == {"Linear": 22, "Conv2d": 15, "ConvTranspose2d": 3, "BatchNorm2d": 17, "MaxPool2d": 6,
                     "Upsample": 6}  # fmt: skip
    assert model.latent_shapes == [(512,), (512,)] and model.level_shapes == [(64, 12, 62), (1, 24, 24)]


def test_inspect_config_prints_the_table_and_count():
    result = CliRunner().invoke(main, ["inspect-config", "--preset", "original"])
    assert result.exit_code == 0, result.output
    assert "108,159,881" in result.output and "Linear(47616->1024)+SN" in result.output
    compact = CliRunner().invoke(main, ["inspect-config", "--quiet"])
    total = int(compact.output.split("parameters: ")[1].split(" ")[0].replace(",", ""))
    assert total * 100 < 108_159_881


def test_a_config_file_applies_on_top_of_the_preset(tmp_path):
    (tmp_path / "c.toml").write_text("[model]\nlatent_dim = 16\n")
    result = CliRunner().invoke(main, ["inspect-config", "--quiet", "--preset", "original", "--config",
                                       str(tmp_path / "c.toml")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "input 3×50×250" in result.output and "z1: 16 " in result.output  # the preset's size, the file's latent


def test_inspect_config_bad_skip_is_one_line_exit_2():
    result = CliRunner().invoke(main, ["inspect-config", "--inner", "conv 8, skip-down 2"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: model.inner_config[0][1]: ('skip-down', 2) is out of range")
    assert len(result.output.strip().splitlines()) == 1

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gencore.config import build_config, from_dict, load_file, parse_override, save_config, to_dict
from gencore.errors import ConfigError
from gencore.train import TrainConfig


@dataclass
class Model:
    width: int = 8
    dropout: float = 0.0
    act: Literal["relu", "silu"] = "relu"
    levels: list[int] = field(default_factory=lambda: [1, 2])


@dataclass
class Cfg:
    model: Model = field(default_factory=Model)
    name: str = "x"
    clip: float | None = None
    train: TrainConfig = field(default_factory=TrainConfig)


def test_layers_file_then_set_then_flags(tmp_path):
    (tmp_path / "c.toml").write_text('name = "file"\n[model]\nwidth = 16\n[train]\nseed = 3\n')
    cfg = build_config(
        Cfg,
        tmp_path / "c.toml",
        ["model.width=32", "clip=0.5", "model.act=silu"],
        {"train.seed": 9, "train.max_steps": None},
    )
    assert (cfg.name, cfg.model.width, cfg.clip, cfg.model.act, cfg.train.seed) == ("file", 32, 0.5, "silu", 9)
    assert cfg.train.max_steps == TrainConfig().max_steps


def test_a_base_such_as_a_preset_sits_under_the_file(tmp_path):
    (tmp_path / "c.toml").write_text("[model]\nwidth = 16\n")
    cfg = build_config(Cfg, tmp_path / "c.toml", ["clip=0.5"], base=["model.width=64", "model.dropout=0.1", "clip=1.0"])
    assert (cfg.model.width, cfg.model.dropout, cfg.clip) == (16, 0.1, 0.5)  # file > base, --set > base


def test_json_round_trip(tmp_path):
    cfg = build_config(Cfg, overrides=["model.levels=[3, 4]", "model.dropout=1"])
    save_config(cfg, tmp_path / "c.json")
    assert build_config(Cfg, tmp_path / "c.json") == cfg
    assert isinstance(cfg.model.dropout, float)
    assert json.loads((tmp_path / "c.json").read_text())["model"]["levels"] == [3, 4]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.widht=3"], "unknown config key model.widht (did you mean model.width?)"),
        (["model.width=wide"], "model.width: expected an integer, got 'wide'"),
        (["model.width=1.5"], "model.width: expected an integer"),
        (["model.act=gelu"], "model.act: expected one of 'relu' | 'silu'"),
        (["train.precision=fp8"], "train.precision: expected one of"),
        (["train.batch_size=0"], "batch_size must be at least 1"),
        (["name"], "--set expects key=value"),
        (["model=3"], "model: expected a table"),
        (["train.tensorboard=maybe"], "expected true or false"),
        (["model.width=3\nmodel.dropout=0.5"], "is more than one value"),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as info:
        build_config(Cfg, overrides=overrides)
    assert message in str(info.value)


def test_bad_files(tmp_path):
    (tmp_path / "bad.toml").write_text("name = \n")
    (tmp_path / "bad.yaml").write_text("name: x\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    for name, msg in [
        ("bad.toml", "not valid TOML"),
        ("bad.yaml", "must end in .toml or .json"),
        ("list.json", "top level"),
        ("missing.toml", "not found"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            load_file(tmp_path / name)


@given(st.text(max_size=40))
def test_override_parser_never_crashes_unexpectedly(text):
    try:
        keys, _ = parse_override(text)
    except ConfigError:
        return
    assert keys and all(keys)


@given(
    st.dictionaries(
        st.sampled_from(["width", "dropout", "act", "levels", "zzz"]),
        st.one_of(
            st.integers(),
            st.floats(allow_nan=False),
            st.text(max_size=5),
            st.booleans(),
            st.lists(st.integers(), max_size=3),
        ),
    )
)
def test_from_dict_either_builds_or_raises_config_error(data):
    try:
        model = from_dict(Model, data)
    except ConfigError:
        return
    assert to_dict(model).keys() == {"width", "dropout", "act", "levels"}

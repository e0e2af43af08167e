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
    (tmp_path / "bad.ini").write_text("[train]\nmax_steps = 2\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    for name, msg in [
        ("bad.toml", "not valid TOML"),
        ("bad.ini", r"must end in .toml, .json, .yaml or .yml"),
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


def test_yaml_files_read_like_toml_and_json(tmp_path):
    (tmp_path / "a.yaml").write_text("train:\n  max_steps: 5\n  grad_clip: 1.0\nname: y\n")
    (tmp_path / "b.yml").write_text("\ufeffname: z\nmode: b\n", encoding="utf-8")
    cfg = build_config(Cfg, tmp_path / "a.yaml")
    assert (cfg.train.max_steps, cfg.train.grad_clip, cfg.name) == (5, 1.0, "y")
    assert load_file(tmp_path / "b.yml") == {"name": "z", "mode": "b"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train: [1, 2\n", r"is not valid YAML: .*\(line 2, column 1\)"),
        ("a: 1\n---\nb: 2\n", "is not valid YAML"),
        ("- 1\n- 2\n", "top level"),
        ("just a string\n", "top level"),
        ("", "top level"),
        ("train: " + "[" * 40 + "]" * 40 + "\n", "nested more than 32 levels"),
        ("train: " + "[" * 2000 + "]" * 2000 + "\n", "nested"),
        ("1: 2\n", "key 1 is not a string"),
        ("a: &a [*a]\n", "refers to a table or list that contains it"),
        ("a: !!python/object/apply:os.system ['true']\n", "is not valid YAML"),
        ("l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
         + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 9)),
         "more than 100,000 values"),
    ],
    ids=["syntax", "two-documents", "list", "scalar", "empty", "deep", "very-deep", "int-key", "cycle",
         "python-tag", "alias-bomb"],
)
def test_bad_yaml_is_one_config_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_file(path)
    assert "\n" not in str(info.value).strip() or "YAML" in str(info.value)


def test_print_config_toml_reads_back(tmp_path):
    import tomllib

    from gencore.cli import print_config
    from gencore.config import dumps_toml

    cfg = build_config(Cfg, overrides=['name="a \\"q\\" \\u007f é 🎈"', "train.grad_clip=0.5", "train.seed=3"])
    text = print_config(cfg)
    (tmp_path / "c.toml").write_text(text, encoding="utf-8")
    assert build_config(Cfg, tmp_path / "c.toml") == cfg
    assert "# grad_clip" not in text and "# max_epochs = null" in text
    nested = {"a": {"b c": {"d.e": [1, 2.5, "x", {"k": True}], "empty": {}}}, "z": []}
    assert tomllib.loads(dumps_toml(nested)) == nested


def test_print_config_refuses_a_null_that_toml_would_lose(tmp_path):
    from gencore.cli import print_config

    (tmp_path / "n.json").write_text('{"train": {"grad_clip": null}}')
    cfg = build_config(Cfg, tmp_path / "n.json", base=["train.grad_clip=2.0"])
    with pytest.raises(ConfigError, match="use --print-config json"):
        print_config(cfg, "toml", base=["train.grad_clip=2.0"])
    assert json.loads(print_config(cfg, "json"))["train"]["grad_clip"] is None

"""Property-based fuzzing of the parsers that read what users type and write: gencore's config layer (``--set``,
TOML/JSON files, build_config) and ganwriting-music's index-file and HOMUS readers.

The property everywhere: any input gives either a parsed result or the project's own error type (ConfigError,
DataError) with a one-line message, never another exception; valid inputs survive a round trip.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gencore.config import build_config, load_file, parse_override, to_dict
from gencore.errors import ConfigError, DataError
from gencore.train import TrainConfig

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Inner:
    """A nested table with the field types the package configs use."""

    kind: Literal["a", "b"] = "a"
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    pair: tuple[float, float] = (0.5, 1.0)
    name: str | None = None


@dataclass
class Sample:
    """A config shaped like the packages': nested dataclasses, the shared TrainConfig, optional values."""

    inner: Inner = field(default_factory=Inner)
    lr: float = 1e-3
    steps: int = 10
    flag: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)


KEYS = [
    "inner.kind",
    "inner.sizes",
    "inner.pair",
    "inner.name",
    "lr",
    "steps",
    "flag",
    "train.max_steps",
    "train.precision",
    "train.grad_clip",
    "train.max_epochs",
    "inner",
    "train",
    "inner.bogus",
    "nope.x",
]
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
override = st.one_of(text, st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), text))


def test_json_encoded_set_values() -> None:
    """What the CLIs pass for their flags (``json.dumps``) reads back as the same string, emoji included."""
    for value in ["runs/😀", "a\tb", 'quo"te', "é"]:
        assert parse_override(f"k={json.dumps(value)}") == (["k"], value)
    assert parse_override('k="\\ud800"') == (["k"], '"\\ud800"')  # a lone surrogate: kept as typed


def _one_line(exc: Exception) -> None:
    assert str(exc).strip(), "the error has no message"


@FUZZ
@given(override)
def test_parse_override_only_raises_config_error(arg: str) -> None:
    try:
        path, _ = parse_override(arg)
    except ConfigError as exc:
        _one_line(exc)
        return
    assert path and all(path)


@FUZZ
@given(st.lists(override, max_size=4))
def test_build_config_only_raises_config_error(overrides: list[str]) -> None:
    try:
        config = build_config(Sample, overrides=overrides)
    except ConfigError as exc:
        _one_line(exc)
        return
    assert isinstance(config, Sample) and isinstance(config.train, TrainConfig)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["model.outer_config", "model.inner_config", "model.height",
                                           "model.latent_dim", "model.vocabulary"]), text), max_size=3))  # fmt: skip
def test_package_config_only_raises_config_error(items: list[tuple[str, str]]) -> None:
    """hvae-captcha validates a whole layer language when its config is built: fuzz it through ``--set``."""
    from hvae_captcha.config import HVAEConfig

    try:
        build_config(HVAEConfig, overrides=[f"{k}={v}" for k, v in items])
    except ConfigError as exc:
        _one_line(exc)


layer = st.tuples(st.sampled_from(["conv", "conv-bn", "pool", "upsample", "skip-up", "skip-down", "convt", "x"]),
                  st.integers(-3, 10**12))  # fmt: skip


@FUZZ
@given(st.lists(layer, max_size=5), st.lists(st.lists(layer, max_size=4), max_size=3), st.integers(-2, 4096))
def test_layer_configs_only_raise_config_error(outer: list, inner: list, height: int) -> None:
    from hvae_captcha.config import HVAEConfig

    sets = [f"model.outer_config={json.dumps(outer)}", f"model.inner_config={json.dumps(inner)}",
            f"model.height={height}"]  # fmt: skip
    try:
        build_config(HVAEConfig, overrides=sets)
    except ConfigError as exc:
        _one_line(exc)


@FUZZ
@given(st.one_of(text, st.binary(max_size=80).map(lambda b: b.decode("latin-1"))), st.sampled_from([".toml", ".json"]))
def test_config_files_only_raise_config_error(content: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"config{suffix}"
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
        try:
            data = load_file(path)
            build_config(Sample, path)
        except ConfigError as exc:
            _one_line(exc)
            return
        assert isinstance(data, dict)


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
samples = st.builds(
    Sample,
    inner=st.builds(
        Inner,
        kind=st.sampled_from(["a", "b"]),
        sizes=st.lists(st.integers(-(2**40), 2**40), max_size=4),
        pair=st.tuples(finite, finite),
        name=st.one_of(st.none(), text),
    ),
    lr=finite.map(abs),  # learning rates are not negative (checked)
    steps=st.integers(-(2**62), 2**62),
    flag=st.booleans(),
    train=st.builds(
        TrainConfig,
        output_dir=text,
        max_steps=st.integers(1, 10**9),
        precision=st.sampled_from(["no", "fp16", "bf16"]),
        grad_clip=st.one_of(st.none(), finite.filter(lambda x: x > 0)),
    ),
)


@FUZZ
@given(samples)
def test_round_trip_json_file_and_set(config: Sample) -> None:
    """to_dict -> JSON file -> build_config gives the config back; so does every value as a ``--set``, written
    the way the package CLIs write their flags (``key=<json>``)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(to_dict(config)))
        assert build_config(Sample, path) == config
    sets = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        nested = to_dict(value) if dataclasses.is_dataclass(value) else {None: value}
        for key, v in nested.items():
            if v is not None:  # TOML has no null: an unset optional stays at its default (None) anyway
                sets.append(f"{f.name}.{key}={json.dumps(v)}" if key else f"{f.name}={json.dumps(v)}")
    assert build_config(Sample, overrides=sets) == config


# --- ganwriting-music readers ------------------------------------------------------------------------------------


def _classes() -> tuple[str, ...]:
    from ganwriting_music.config import CLASSES

    return CLASSES


field_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n\r"), max_size=20)
index_line = st.one_of(
    field_text,
    st.builds(
        lambda p, c, w, sep: sep.join([p, c, w]),
        st.sampled_from(["a.png", "missing.png", "", " "]),
        st.one_of(st.sampled_from(["gClef", "gclef", "GCLEF", "nope", ""]), field_text),
        field_text,
        st.sampled_from(["\t", ",", " ", "\t\t"]),
    ),
)


@settings(FUZZ, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(index_line, max_size=6), st.booleans())
def test_index_reader_gives_entries_or_data_error(lines: list[str], garble: bool) -> None:
    from ganwriting_music.data import read_index

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a.png").write_bytes(b"")
        index = Path(tmp) / "index.txt"
        data = "\n".join(lines).encode("utf-8", "surrogatepass")
        index.write_bytes(data + (b"\xff\xfe" if garble else b""))
        try:
            entries = read_index(index)
        except DataError as exc:
            _one_line(exc)
            return
    assert entries and all(cls in _classes() and writer for _, cls, writer in entries)


coord = st.one_of(finite.map(repr), st.sampled_from(["nan", "inf", "-inf", "1e400", "", "x", " 3 "]))
point = st.one_of(st.builds(lambda x, y: f"{x},{y}", coord, coord), field_text)
stroke_line = st.lists(point, min_size=1, max_size=5).map(";".join)


@FUZZ
@given(st.one_of(st.just(""), st.sampled_from(["G-Clef", "Sharp", " "]), field_text), st.lists(stroke_line, max_size=4),
       st.booleans())  # fmt: skip
def test_homus_parser_gives_strokes_or_data_error(name: str, strokes: list[str], garble: bool) -> None:
    from ganwriting_music.data import parse_homus

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "symbol.txt"
        data = "\n".join([name, *strokes]).encode("utf-8", "surrogatepass")
        path.write_bytes(data + (b"\n\xff" if garble else b""))
        try:
            cls, parsed = parse_homus(path)
        except DataError as exc:
            _one_line(exc)
            return
    assert cls and parsed and all(math.isfinite(v) for s in parsed for p in s for v in p)


@FUZZ
@given(st.lists(st.lists(st.tuples(finite, finite), min_size=1, max_size=6), min_size=1, max_size=4))
def test_homus_round_trip_and_render(strokes: list[list[tuple[float, float]]]) -> None:
    """Strokes written in the HOMUS format read back exactly, and render to an image of the requested size."""
    from ganwriting_music.data import parse_homus, render_strokes

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.txt"
        path.write_text("G-Clef\n" + "\n".join(";".join(f"{x!r},{y!r}" for x, y in s) for s in strokes) + "\n")
        cls, parsed = parse_homus(path)
    assert cls == "G-Clef"
    assert parsed == [[(float(x), float(y)) for x, y in s] for s in strokes]
    assert render_strokes(parsed, 16).shape == (16, 16)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])


# --- every value of every package's real config ------------------------------------------------------------------

PACKAGE_CONFIGS = [
    ("gencore.demo", "DemoConfig"),
    ("dcgan_tutorial.config", "GANConfig"),
    ("hvae_captcha.config", "HVAEConfig"),
    ("m1_hyperspectral.config", "M1RunConfig"),
    ("vqgan_negatives.config", "VQGANConfig"),
    ("vqgan_negatives.config", "TransformerRunConfig"),
    ("ganwriting_music.config", "GanwritingConfig"),
]
HOSTILE = ["nan", "inf", "-inf", "-1", "0", "-1e300", "1e300", str(10**30), str(-(10**30)), "''", "[]",
           "[" * 200 + "]" * 200, "{}", "true", '"../../etc"']  # fmt: skip


def _leaf_keys(data: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            keys += _leaf_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def _floats(data: object) -> list[float]:
    if isinstance(data, dict):
        return [f for v in data.values() for f in _floats(v)]
    if isinstance(data, (list, tuple)):
        return [f for v in data for f in _floats(v)]
    return [data] if isinstance(data, float) else []


def _config_class(module: str, name: str) -> type:
    import importlib

    return getattr(importlib.import_module(module), name)


CONFIG_KEYS = [(m, n, key) for m, n in PACKAGE_CONFIGS for key in _leaf_keys(to_dict(_config_class(m, n)()))]


def test_every_config_key_with_every_hostile_value() -> None:
    """Each key of each package's config with each hostile value (a few thousand configs, seconds)."""
    for entry in CONFIG_KEYS:
        for value in HOSTILE:
            _check_config_value(entry, value)


@FUZZ
@given(st.sampled_from(CONFIG_KEYS), st.one_of(st.sampled_from(HOSTILE), st.floats().map(repr)))
def test_every_config_value_is_checked(entry: tuple[str, str, str], value: str) -> None:
    """Random keys with random floats (and the hostile values) on top of the exhaustive table above."""
    _check_config_value(entry, value)


def _check_config_value(entry: tuple[str, str, str], value: str) -> None:
    """NaN, infinities, negatives, huge numbers and deep nesting in any key of any package's config: a config whose
    every number is finite, seeds in range and learning rates not negative, or one ConfigError line; nothing else."""
    from gencore.config import MAX_SEED

    module, name, key = entry
    try:
        config = build_config(_config_class(module, name), overrides=[f"{key}={value}"])
    except ConfigError as exc:
        _one_line(exc)
        return
    data = to_dict(config)
    assert all(math.isfinite(f) for f in _floats(data)), (key, value)
    leaf = key.rsplit(".", 1)[-1]
    got = data
    for part in key.split("."):
        got = got[part]
    if leaf == "seed" or leaf.endswith("_seed"):
        assert 0 <= got <= MAX_SEED, (key, value)
    if isinstance(got, float) and (leaf == "lr" or leaf.startswith("lr_") or leaf.endswith("_lr")):
        assert got >= 0, (key, value)


def test_config_fuzz_covers_every_package() -> None:
    """The fuzz target above reaches every package's config and many keys of each (hundreds in all)."""
    assert {m.split(".")[0] for m, _, _ in CONFIG_KEYS} == {
        "gencore", "dcgan_tutorial", "hvae_captcha", "m1_hyperspectral", "vqgan_negatives", "ganwriting_music"}
    assert len(CONFIG_KEYS) > 150, len(CONFIG_KEYS)

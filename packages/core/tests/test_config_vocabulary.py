"""Renamed config keys (``Renamed``, ``migrate_keys``), keys added later (``Added``, ``fill_added_keys``), field
documentation read from the source, and CLI flags generated from config fields (``config_options``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import click
import pytest
from click.testing import CliRunner

from gencore.cli import ConfigFlag, Group, config_from_options, config_options
from gencore.config import (
    Added,
    Renamed,
    build_config,
    default_value,
    field_doc,
    field_docs,
    fill_added_keys,
    from_dict,
    load_run_config,
    migrate_keys,
    to_dict,
)
from gencore.errors import ConfigError


@dataclass
class Optim:
    """Adam."""

    lr_g: float = 1e-4  # learning rate of the generator
    # learning rate of the discriminator,
    # on two lines
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999  # fmt: skip
    ema: bool = False  # average the weights


@dataclass
class Run:
    """A run config of a made-up package."""

    optim: Optim = field(default_factory=Optim)
    kind: Literal["a", "b"] = "a"  # which model
    clip: float | None = None  # gradient clipping (None: off)
    tips: dict = field(default_factory=dict)

    renamed_keys: ClassVar[tuple[Renamed, ...]] = (
        Renamed("tips.lr_g", "optim.lr_g"),
        Renamed("betas", ("optim.beta1", "optim.beta2")),
        Renamed("old_clip", "clip", lambda v: None if v == 0 else v),
    )


def test_old_keys_move_to_their_new_names_with_one_note():
    notes = []
    data = {"tips": {"lr_g": 0.5}, "betas": [0.1, 0.2], "old_clip": 0, "kind": "b"}
    out = migrate_keys(Run, data, "run.json", note=notes.append)
    assert out == {"optim": {"lr_g": 0.5, "beta1": 0.1, "beta2": 0.2}, "clip": None, "kind": "b"}
    assert data["tips"] == {"lr_g": 0.5}  # the input is not changed
    assert len(notes) == 1 and notes[0].startswith("run.json uses older config key names")
    assert "tips.lr_g -> optim.lr_g" in notes[0] and "betas -> optim.beta1 + optim.beta2" in notes[0]


def test_a_layer_without_old_keys_gives_no_note():
    notes = []
    assert migrate_keys(Run, {"optim": {"lr_g": 1.0}}, note=notes.append) == {"optim": {"lr_g": 1.0}}
    assert notes == []


def test_the_old_key_wins_over_the_new_one_in_the_same_layer_and_says_so():
    """A complete config of the earlier layout holds the new key too, with the value the old code ignored."""
    notes = []
    out = migrate_keys(Run, {"old_clip": 5.0, "clip": None}, note=notes.append)
    assert out["clip"] == 5.0 and "(replacing clip = null)" in notes[0]


def test_a_multi_key_rename_needs_as_many_values():
    with pytest.raises(ConfigError, match="betas: expected 2 values"):
        migrate_keys(Run, {"betas": 0.5}, note=None)


def test_every_layer_of_build_config_reads_old_keys(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[tips]\nlr_g = 0.25\n")
    config = build_config(Run, path, overrides=["betas=[0.3, 0.4]"])
    assert (config.optim.lr_g, config.optim.beta1, config.optim.beta2) == (0.25, 0.3, 0.4)
    err = capsys.readouterr().err
    assert f"note: {path} uses older config key names" in err and "note: --set betas uses older" in err
    # a later layer's new key still wins over an earlier layer's old one
    config = build_config(Run, path, overrides=["optim.lr_g=0.75"])
    assert config.optim.lr_g == 0.75


def test_saved_run_configs_and_from_dict_migrate(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"tips": {"lr_g": 0.125}, "kind": "a"}))
    assert load_run_config(Run, tmp_path).optim.lr_g == 0.125
    assert "config.json uses older config key names" in capsys.readouterr().err
    assert from_dict(Run, {"old_clip": 3.0}).clip == 3.0


@dataclass
class Grown(Run):
    """Run, a version later: ``optim.ema`` and ``kind`` defaults that runs saved before did not have."""

    added_keys: ClassVar[tuple[Added, ...]] = (Added("optim.ema", True), Added("kind", "b"), Added("gone.x", 1))


def test_keys_added_later_read_with_the_values_a_saved_run_had(tmp_path):
    saved = {"optim": {"lr_g": 0.5}, "kind": "a"}  # written before optim.ema existed; kind was there
    out = fill_added_keys(Grown, saved)
    assert out == {"optim": {"lr_g": 0.5, "ema": True}, "kind": "a"}  # a section it lacks is not made up
    assert saved == {"optim": {"lr_g": 0.5}, "kind": "a"}  # the input is not changed
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert load_run_config(Grown, tmp_path).optim.ema is True
    # a config file or --set that leaves the key out means today's default
    assert build_config(Grown, overrides=["optim.lr_g=0.5"]).optim.ema is False
    assert fill_added_keys(Run, saved) == saved  # a class without added_keys


def test_a_note_comes_from_the_main_process_only(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "1")
    build_config(Run, overrides=["tips.lr_g=0.5"])
    assert capsys.readouterr().err == ""


def test_field_docs_read_trailing_and_leading_comments():
    docs = field_docs(Optim)
    assert docs["lr_g"] == "learning rate of the generator"
    assert docs["lr_d"] == "learning rate of the discriminator, on two lines"
    assert "beta1" not in docs and "beta2" not in docs  # no comment; a "fmt: skip" is not documentation
    assert field_doc(Run, "optim.ema") == "average the weights"
    assert default_value(Run, "optim.lr_d") == 2e-4


# --- flags generated from the config --------------------------------------------------------------------------


@click.group(cls=Group)
def cli() -> None:
    """A made-up package CLI."""


@cli.command()
@click.option("--set", "overrides", multiple=True)
@config_options(
    Run, "optim.lr_g", "kind", "clip", ConfigFlag("--ema", "optim.ema"),
    ConfigFlag("--betas-equal", ("optim.beta1", "optim.beta2"), type=float, aliases=("--b",)),
)  # fmt: skip
def train(**options: object) -> None:
    config, _ = config_from_options(Run, options)
    click.echo(json.dumps(to_dict(config)))


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["train", *args])
    return result.exit_code, result.output


def test_generated_flags_set_their_keys_above_set():
    code, out = _run("--lr-g", "0.5", "--kind", "b", "--ema", "--b", "0.25", "--set", "optim.lr_g=0.1")
    assert code == 0, out
    data = json.loads(out)
    assert data["optim"] == {"lr_g": 0.5, "lr_d": 2e-4, "beta1": 0.25, "beta2": 0.25, "ema": True}
    assert data["kind"] == "b"
    code, out = _run("--no-ema", "--clip", "1.5")
    assert json.loads(out)["optim"]["ema"] is False and json.loads(out)["clip"] == 1.5


def test_generated_flags_check_types_and_choices():
    code, out = _run("--kind", "c")
    assert code == 2 and "'c' is not one of 'a', 'b'" in out
    code, out = _run("--lr-g", "nan")
    assert code == 2 and "not a finite number" in out


def test_generated_help_shows_the_field_comment_key_and_default():
    out = CliRunner().invoke(cli, ["train", "--help"]).output
    flat = " ".join(out.split())
    assert "--lr-g FLOAT Learning rate of the generator. (optim.lr_g) [default: 0.0001]" in flat
    assert "--kind [a|b] Which model. (kind) [default: a]" in flat
    assert "--ema / --no-ema Average the weights. (optim.ema) [default: off]" in flat
    assert "(clip) [default: off]" in flat


def test_a_field_without_a_command_line_form_is_refused_when_the_cli_is_built():
    with pytest.raises(TypeError, match="no command-line form"):
        config_options(Run, "tips")(lambda: None)

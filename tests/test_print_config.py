"""``--print-config`` on every training command of every registered package (gencore.registry): the printed
configuration, fed back with ``--config``, gives the same configuration, in TOML and in JSON; the interval flags
``--log-every --sample-every --eval-every --checkpoint-every`` reach ``train.*``; nothing is trained or written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib
from click.testing import CliRunner

from gencore.registry import packages

COMMANDS = [(spec, command) for spec in packages().values() for command in spec.train_commands]
IDS = [f"{spec.name}-{command.name}" for spec, command in COMMANDS]


def _invoke(spec, command, *args: str) -> str:  # noqa: ANN001
    result = CliRunner().invoke(spec.load_cli(), [*command.head(), *args], prog_name=spec.name)
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize(("spec", "command"), COMMANDS, ids=IDS)
@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_printed_config_reads_back_the_same(spec, command, fmt: str, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    sets = [arg for item in command.preset("tiny") for arg in ("--set", item)]
    flags = ["--seed", "7", "--max-steps", "3", "--log-every", "2", "--sample-every", "5", "--checkpoint-every", "0"]
    printed = _invoke(spec, command, *sets, *flags, "--print-config", fmt)
    data = tomllib.loads(printed) if fmt == "toml" else json.loads(printed)
    assert data["train"]["seed"] == 7 and data["train"]["max_steps"] == 3
    assert data["train"]["log_every"] == 2 and data["train"]["sample_every"] == 5
    assert data["train"]["checkpoint_every"] == 0
    path = tmp_path / f"printed.{fmt}"
    path.write_text(printed, encoding="utf-8")
    assert _invoke(spec, command, "--config", str(path), "--print-config", fmt) == printed
    assert list(tmp_path.iterdir()) == [path]  # nothing trained, no run directory


@pytest.mark.parametrize(("spec", "command"), COMMANDS, ids=IDS)
def test_interval_flags_are_on_every_training_command(spec, command) -> None:  # noqa: ANN001
    text = _invoke(spec, command, "--help")
    for flag in ("--print-config", "--log-every", "--eval-every", "--sample-every", "--checkpoint-every"):
        assert flag in text, f"{spec.name} {command.name} has no {flag}"

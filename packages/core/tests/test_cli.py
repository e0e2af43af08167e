from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from gencore.checkpoint import list_checkpoints, verify_dir
from gencore.cli import main
from gencore.train import PREEMPTED_EXIT_CODE

FAST = [
    "--set",
    "num_images=256",
    "--set",
    "train.log_every=5",
    "--set",
    "train.progress_bar=false",
    "--set",
    "train.report_to=none",
]


def run(args):
    return CliRunner().invoke(main, args)


def test_help_explains_the_options():
    result = run(["demo", "--help"])
    assert result.exit_code == 0
    for option in (
        "--config",
        "--set",
        "--output-dir",
        "--seed",
        "--resume",
        "--max-steps",
        "--batch-size",
        "--precision",
        "--channels-last",
        "--compile",
        "--debug",
    ):
        assert option in result.output


def test_demo_trains_writes_outputs_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = [
        "demo",
        "--output-dir",
        str(out),
        "--batch-size",
        "32",
        *FAST,
        "--set",
        "train.eval_every=10",
        "--set",
        "train.sample_every=10",
        "--set",
        "train.checkpoint_every=10",
    ]
    result = run([*args, "--max-steps", "20"])
    assert result.exit_code == 0, result.output
    assert (out / "samples" / "prior_step_000020.png").is_file()
    assert (out / "losses.png").is_file() and (out / "metrics.csv").is_file()
    verify_dir(out / "model")
    result = run([*args, "--max-steps", "30", "--resume", "auto"])
    assert result.exit_code == 0, result.output
    assert "resumed from" in result.output and "step_000020" in result.output
    assert list_checkpoints(out / "checkpoints")[-1].name == "step_000030"


def test_a_resumed_run_keeps_its_own_settings_and_only_the_command_line_changes_them(tmp_path, monkeypatch):
    """--resume continues the run as it was started: a setting given then (here --seed, --set kl_warmup_steps) or
    a default that changed since (simulated by editing the checkpoint's config, plus a key this version does not
    know) is kept; --set and flags on the resume command still change what they name."""
    out = tmp_path / "run"
    first = ["demo", "--output-dir", str(out), "--batch-size", "16", *FAST, "--seed", "5",
             "--set", "kl_warmup_steps=17", "--set", "train.checkpoint_every=4"]  # fmt: skip
    assert run([*first, "--max-steps", "4"]).exit_code == 0
    saved = out / "checkpoints" / "step_000004" / "config.json"
    data = json.loads(saved.read_text())
    data["val_fraction"], data["eval"]["gone_key"] = 0.25, 1  # "an earlier default", "an earlier key"
    from gencore.checkpoint import _write_manifest

    def save(config):
        saved.write_text(json.dumps(config))
        (saved.parent / "manifest.json").unlink()
        _write_manifest(saved.parent, "gencore checkpoint")

    save({**data, "loss": {"beta": 1}})  # a section this config does not have: another package's run
    foreign = run(["demo", "--output-dir", str(out), "--resume", "auto", "--print-config", "json"])
    assert json.loads(foreign.output)["train"]["seed"] == 0  # not taken: the Trainer refuses it as before
    save(data)
    elsewhere = tmp_path / "copy" / "step_000004"
    import shutil

    shutil.copytree(saved.parent, elsewhere)
    warm = run(["demo", "--output-dir", str(tmp_path / "new"), "--resume", str(elsewhere), "--print-config", "json"])
    assert json.loads(warm.output)["train"]["seed"] == 0  # a checkpoint of another run: this command's settings
    again = ["demo", "--output-dir", str(out), *FAST, "--resume", "auto", "--max-steps", "6", "--print-config", "json"]
    shown = json.loads(run(again).output)
    assert shown["train"]["seed"] == 5 and shown["kl_warmup_steps"] == 17 and shown["val_fraction"] == 0.25
    assert shown["train"]["max_steps"] == 6 and shown["train"]["output_dir"] == str(out)
    assert "gone_key" not in shown["eval"]
    changed = run([*again[:-2], "--set", "kl_warmup_steps=3", "--seed", "6", "--print-config", "json"])
    assert json.loads(changed.output)["kl_warmup_steps"] == 3 and json.loads(changed.output)["train"]["seed"] == 6
    fresh = json.loads(run(["demo", "--output-dir", str(tmp_path / "new"), "--print-config", "json"]).output)
    assert fresh["train"]["seed"] == 0 and fresh["val_fraction"] == 0.1  # a fresh start takes the defaults
    done = run(again[:-2])
    assert done.exit_code == 0, done.output
    note = next(line for line in done.output.splitlines() if "config differs" in line)
    assert note.endswith("eval.gone_key: 1 -> (absent); train.max_steps: 4 -> 6"), note  # only what was asked or gone


def test_layout_and_compile_flags_reach_the_run(tmp_path):
    out = tmp_path / "run"
    args = ["demo", "--output-dir", str(out), "--max-steps", "4", "--channels-last", "--compile", "aot_eager", *FAST]
    result = run(args)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())["train"]
    assert saved["channels_last"] is True and saved["compile"] == "aot_eager"
    verify_dir(out / "model")
    result = run(["demo", "--output-dir", str(tmp_path / "bad"), "--max-steps", "2", "--compile", "turbo", *FAST])
    assert result.exit_code == 2 and "compile='turbo'" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.max_stpes=3"], "unknown config key train.max_stpes (did you mean train.max_steps?)"),
        (["--set", "optim.lr=fast"], "optim.lr: expected a number, got 'fast'"),
        (["--config", "/nonexistent/c.toml"], "config file not found: /nonexistent/c.toml"),
        (["--resume", "/nonexistent/ck"], "checkpoint not found: /nonexistent/ck"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, message):
    result = run(["demo", "--output-dir", str(tmp_path / "r"), *args])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {message}"
    assert not (tmp_path / "r").exists()


def test_debug_shows_the_exception(tmp_path):
    result = run(["demo", "--set", "nope=1", "--debug"])
    assert result.exit_code != 0 and result.exception is not None


def test_verify_reports_truncation(tmp_path):
    out = tmp_path / "run"
    assert run(["demo", "--output-dir", str(out), "--max-steps", "5", *FAST]).exit_code == 0
    weights = out / "model" / "model.safetensors"
    assert run(["verify", str(out / "model")]).output.startswith("ok:")
    weights.write_bytes(weights.read_bytes()[:-10])
    result = run(["verify", str(out / "model")])
    assert result.exit_code == 2 and "truncated" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_sigterm_saves_a_resumable_checkpoint_and_exits_for_requeue(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "gencore",
        "demo",
        "--output-dir",
        str(out),
        "--max-steps",
        "1000000",
        *FAST,
        "--set",
        "train.checkpoint_every=0",
        "--set",
        "train.eval_every=0",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    deadline = time.time() + 120
    while not (out / "metrics.csv").is_file() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    sent = time.time()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert time.time() - sent < 30
    assert proc.returncode == PREEMPTED_EXIT_CODE, output
    assert "resume with --resume auto" in output
    (ckpt,) = list_checkpoints(out / "checkpoints")
    verify_dir(ckpt)
    stopped_at = int(ckpt.name.split("_")[1])
    result = run(["demo", "--output-dir", str(out), "--max-steps", str(stopped_at + 5), "--resume", "auto", *FAST])
    assert result.exit_code == 0, result.output
    assert list_checkpoints(out / "checkpoints")[-1].name == f"step_{stopped_at + 5:06d}"


def test_unknown_early_stop_metric_is_a_config_error(tmp_path):
    result = run(
        [
            "demo",
            "--output-dir",
            str(tmp_path / "r"),
            "--max-steps",
            "2",
            *FAST,
            "--set",
            "train.early_stop_metric='nope'",
            "--set",
            "train.patience=1",
        ]
    )
    assert result.exit_code == 2
    assert "early_stop_metric 'nope' is not among the evaluation metrics" in result.output


def test_an_alias_runs_the_command_hidden_and_says_its_new_name():
    import click
    from click.testing import CliRunner

    from gencore.cli import Group, add_alias

    @click.group(cls=Group)
    def cli() -> None:
        """A group."""

    @cli.command("render")
    @click.argument("n", type=int)
    def render(n: int) -> None:
        """Render N things."""
        click.echo(f"rendered {n}")

    add_alias(cli, render, "make", "render")
    listed = CliRunner().invoke(cli, ["--help"]).output
    assert "render" in listed and "make" not in listed
    result = CliRunner().invoke(cli, ["make", "3"])
    assert result.exit_code == 0 and "rendered 3" in result.stdout
    assert "note: 'make' is an older name of 'render'" in result.stderr
    assert CliRunner().invoke(cli, ["render", "2"]).stderr == ""


def test_preset_auto_picks_by_the_device_training_will_use(monkeypatch):
    """--preset auto: the CPU preset where the Accelerator would train on the CPU (no GPU, train.cpu, or
    `accelerate launch --cpu`), the other where it finds a GPU; a preset given by name is kept."""
    import torch

    from gencore import cli

    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    monkeypatch.setattr(cli, "_auto_device", lambda: torch.device("cuda"))  # as on a GPU machine
    assert not cli.trains_on_cpu() and cli.pick_preset("auto", "cpu", "original") == "original"
    assert cli.pick_preset(None, "cpu", "original") == "original"
    assert cli.pick_preset("auto", "cpu", "original", cpu=True) == "cpu"  # train.cpu=true
    assert cli.pick_preset("cpu", "cpu", "original") == "cpu"
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")  # what `accelerate launch --cpu` sets
    assert cli.pick_preset("auto", "cpu", "original") == "cpu"
    monkeypatch.delenv("ACCELERATE_USE_CPU")
    monkeypatch.setattr(cli, "_auto_device", lambda: torch.device("cpu"))
    assert cli.trains_on_cpu() and cli.pick_preset("", "cpu", "original") == "cpu"
    assert cli.pick_preset("original", "cpu", "original") == "original"

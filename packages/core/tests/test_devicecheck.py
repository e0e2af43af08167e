"""The device-placement dry run: it passes correct code and stops at a CPU tensor meeting an accelerator one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gencore.config import build_config
from gencore.demo import DemoConfig, build_trainer
from gencore.devicecheck import check_device_placement, meta_device
from gencore.train import TrainConfig, Trainer


def _trainer(run_dir, step) -> Trainer:
    net = nn.Linear(2, 2)
    config = TrainConfig(output_dir=str(run_dir), max_steps=1, batch_size=4, progress_bar=False, tensorboard=False)
    return Trainer(config, {"net": net}, {"net": torch.optim.Adam(net.parameters())}, step, torch.zeros(8, 2),
                   ema={"net": 0.9})  # fmt: skip


def _step(make_noise):
    def step(ctx, x):
        loss = (ctx.models["net"](x + make_noise(ctx))).pow(2).mean()
        ctx.update("net", loss)
        return {"loss": loss, "as_float": float(loss)}  # a host read gives a placeholder, not an error

    return step


def test_demo_runs_an_update_samples_and_evaluation_on_the_meta_device(tmp_path):
    overrides = ["num_images=64", "train.batch_size=8", "iw_samples=2", f"train.output_dir={str(tmp_path)!r}"]
    report = check_device_placement(lambda: build_trainer(build_config(DemoConfig, overrides=overrides)))
    assert report["models"] == {"vae": "meta"} and report["updated"] == ["vae"]
    assert report["samples"] == ["prior", "reconstruction"] and "nll_bits_per_dim" in report["eval"]
    assert report["fit"] == "max_steps" and report["resumed_at"] == 3


def test_noise_made_on_the_device_passes(tmp_path):
    # the step also returns a Python float: the Trainer's log must bring it to the device (it once did not)
    report = check_device_placement(lambda: _trainer(tmp_path, _step(lambda ctx: torch.randn(4, 2, device=ctx.device))))
    assert report["updated"] == ["net"] and report["fit"] == "max_steps" and report["resumed_at"] == 3
    assert (tmp_path / "metrics.csv").is_file() and (tmp_path / "checkpoints" / "step_000003").is_dir()


@pytest.mark.parametrize(
    "make_noise, message",
    [
        (lambda ctx: torch.randn(4, 2), "not on the expected device"),
        (lambda ctx: torch.randn(4, 2, generator=torch.Generator(), device=ctx.device), "CPU random generator"),
    ],
    ids=["cpu-tensor", "cpu-generator"],
)
def test_a_cpu_tensor_or_generator_meeting_the_device_is_an_error(tmp_path, make_noise, message):
    with pytest.raises(RuntimeError, match=message):
        check_device_placement(lambda: _trainer(tmp_path, _step(make_noise)))


def test_host_reads_give_ones_and_zero_dim_cpu_tensors_may_meet_the_device():
    with meta_device() as device:
        x = torch.zeros(2, 3, device=device)
        assert x.sum().item() == 1.0 and bool(x[0, 0]) and x.tolist() == [[1.0] * 3] * 2
        assert np.array_equal(x.cpu().numpy(), np.ones((2, 3), np.float32))
        assert (x * torch.tensor(2.0)).device == device  # as a CUDA tensor may meet a CPU scalar
        assert torch.bincount(torch.zeros(5, dtype=torch.long, device=device), minlength=7).shape == (7,)
        assert x[x > 0].shape == (6,)  # a mask selects every element


def test_device_option_resolves_and_refuses_in_one_line():
    import click
    from click.testing import CliRunner

    from gencore.cli import Command, device_option, resolve_device
    from gencore.devicecheck import check_command

    @click.command(cls=Command)
    @device_option
    def run(device):
        where = resolve_device(device)
        click.echo(f"{where} {float((torch.zeros(2, device=where) + 1).sum())}")

    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("CPU") == torch.device("cpu")
    assert CliRunner().invoke(run, []).output.startswith("cuda" if torch.cuda.is_available() else ("mps", "cpu"))
    for spelling, message in [("gpu", "unknown device"), ("cuda:x", "unknown device"), ("cpu:0", "unknown device")]:
        result = CliRunner().invoke(run, ["--device", spelling])
        assert result.exit_code == 2 and message in result.output and len(result.output.splitlines()) == 1
    if not torch.cuda.is_available():
        result = CliRunner().invoke(run, ["--device", "cuda"])
        assert result.exit_code == 2 and "--device cuda: no CUDA device is available here" in result.output
    else:
        result = CliRunner().invoke(run, ["--device", f"cuda:{torch.cuda.device_count()}"])
        assert result.exit_code == 2 and "CUDA device(s)" in result.output
    assert check_command(run, []).startswith("meta")  # --device auto means the meta device in a dry run

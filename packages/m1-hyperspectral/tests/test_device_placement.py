"""Training, sampling, evaluation, checkpoints and resume keep every tensor on the accelerator (gencore.devicecheck)."""

from __future__ import annotations

import pytest

from gencore.devicecheck import check_device_placement
from m1_hyperspectral.train import build_trainer


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli", "bounded01"])
def test_one_update_sampling_and_evaluation_stay_on_the_device(tmp_path, tiny_config, likelihood):
    config = tiny_config(tmp_path, f"model.likelihood={likelihood!r}")
    report = check_device_placement(lambda: build_trainer(config))
    assert report["fit"] == "max_steps" and report["resumed_at"] == 3  # the loop, checkpoints, resume
    assert report["models"] == {"M1": "meta"} and report["updated"] == ["M1"]
    assert report["samples"] == ["scene", "spectra"] and report["eval"] == ["valid_ll"]


def test_the_inference_commands_keep_every_tensor_on_the_device(tmp_path, tiny_config):
    """extract, classify, evaluate and sample with --device auto, which gencore.devicecheck makes the meta device:
    a CPU tensor meeting the model's raises as on CUDA (the figures and arrays are placeholders)."""
    from gencore.devicecheck import check_command
    from m1_hyperspectral.cli import main
    from m1_hyperspectral.train import run_training

    run = tmp_path / "run"
    run_training(tiny_config(run, "train.max_steps=1"))
    check_command(main, ["extract", str(run), "-o", str(tmp_path / "f.h5"), "--batch-size", "7", "--variance"])
    assert (tmp_path / "f.h5").is_file()
    out = check_command(main, ["classify", str(run), "--labels-per-class", "2", "--repeats", "1", "--z", "sample",
                               "-o", str(tmp_path / "c.json"), "--batch-size", "7"])  # fmt: skip
    assert "raw spectra" in out
    check_command(main, ["evaluate", str(run), "-k", "3", "-o", str(tmp_path / "e.json"), "--batch-size", "5"])
    check_command(main, ["sample", str(run), "-n", "3", "-o", str(tmp_path / "s.png"), "--npy",
                         str(tmp_path / "s.npy")])  # fmt: skip
    assert (tmp_path / "e.json").is_file() and (tmp_path / "s.npy").is_file()

"""Training, sampling, evaluation, checkpoints and resume keep every tensor on the accelerator (gencore.devicecheck)."""

from __future__ import annotations

import pytest

from dcgan_tutorial.train import build_trainer
from gencore.devicecheck import check_device_placement


@pytest.mark.parametrize("kind, loss", [("dcgan", "nonsaturating"), ("dcgan", "wgan-gp"), ("fc", "hinge")])
def test_one_update_sampling_and_evaluation_stay_on_the_device(tmp_path, tiny_config, kind, loss):
    tips = ["tips.instance_noise=0.1", "optim.ema_decay=0.9", "tips.real_label=0.9"]
    config = tiny_config(tmp_path, f"model.kind={kind!r}", f"tips.loss={loss!r}", *tips)
    report = check_device_placement(lambda: build_trainer(config))
    assert report["fit"] == "max_steps" and report["resumed_at"] == 3  # the loop, checkpoints, resume
    assert report["models"] == {"G": "meta", "D": "meta"} and report["updated"] == ["D", "G"]
    assert report["samples"] and {"fd", "kid"} <= set(report["eval"])


def test_the_inference_commands_keep_every_tensor_on_the_device(tmp_path, tiny_config):
    """sample, evaluate and stylize with --device auto, which gencore.devicecheck makes the meta device: a CPU
    tensor meeting the model's raises as on CUDA (the figures and images are placeholders)."""
    import shutil

    import numpy as np
    from PIL import Image

    from dcgan_tutorial.cli import main
    from dcgan_tutorial.train import run_training
    from gencore.devicecheck import check_command

    run = tmp_path / "run"
    run_training(tiny_config(run, "train.max_steps=1", "eval.feature_steps=2", "eval.feature_cache=false"))
    out = check_command(main, ["sample", str(run), "-n", "5", "-o", str(tmp_path / "s.png"), "--save-dir",
                               str(tmp_path / "each"), "--batch-size", "2"])  # fmt: skip
    assert "wrote" in out and len(list((tmp_path / "each").glob("*.png"))) == 5
    shutil.rmtree(run / "feature_net", ignore_errors=True)  # so that evaluate trains it, on the device
    check_command(main, ["evaluate", str(run), "-n", "16", "-o", str(tmp_path / "eval"), "--batch-size", "8"])
    assert (tmp_path / "eval" / "evaluation.json").is_file()
    rng = np.random.default_rng(0)
    for name in ("content", "style"):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    for init in ("content", "noise"):
        images = [str(tmp_path / "content.png"), str(tmp_path / "style.png")]
        check_command(main, ["stylize", *images, "-o", str(tmp_path / f"{init}.png"), "--size", "32", "--steps", "2",
                             "--init", init])  # fmt: skip
        assert (tmp_path / f"{init}.png").is_file()

"""Training, sampling, evaluation, checkpoints and resume keep every tensor on the accelerator (gencore.devicecheck)."""

from __future__ import annotations

import pytest

from ganwriting_music.train import build_trainer
from gencore.devicecheck import check_device_placement


@pytest.mark.parametrize(
    "extra",
    [[], ["loss.diff_augment='translation,cutout,color'", "model.class_projection=false", "model.writer_head=false"]],
    ids=["default", "diffaugment-plain-d"],
)
def test_one_update_sampling_and_evaluation_stay_on_the_device(tmp_path, tiny_config, extra):
    report = check_device_placement(lambda: build_trainer(tiny_config(tmp_path, *extra)))
    assert report["fit"] == "max_steps" and report["resumed_at"] == 3  # the loop, checkpoints, resume
    assert report["models"] == {"G": "meta", "D": "meta", "R": "meta"} and report["updated"] == ["D", "R", "G"]
    assert report["samples"] == [""] and {"rec_acc_fake", "rec_acc_real"} <= set(report["eval"])


def test_the_inference_commands_keep_every_tensor_on_the_device(tmp_path, tiny_config):
    """generate, evaluate and classifier-study with --device auto, which gencore.devicecheck makes the meta device:
    a CPU tensor meeting the networks' raises as on CUDA (the images and figures are placeholders)."""
    from ganwriting_music.cli import main
    from ganwriting_music.train import run_training
    from gencore.devicecheck import check_command

    run = tmp_path / "run"
    run_training(tiny_config(run, "train.max_steps=1"))
    out = check_command(main, ["generate", str(run), "-n", "5", "--batch-size", "2", "-o", str(tmp_path / "g.png"),
                               "--save-dir", str(tmp_path / "each")])  # fmt: skip
    assert "wrote" in out and len(list((tmp_path / "each").rglob("*.png"))) == 5
    check_command(main, ["evaluate", str(run), "--classifier-steps", "2"])
    assert (run / "eval" / "evaluation.json").is_file()
    check_command(main, ["classifier-study", str(run), "--steps", "1"])
    assert (run / "study" / "classifier_study.json").is_file()

"""Training, sampling, evaluation, checkpoints and resume keep every tensor on the accelerator (gencore.devicecheck)."""

from __future__ import annotations

import pytest

from gencore.devicecheck import check_device_placement
from vqgan_negatives import train, train_transformer


@pytest.mark.parametrize(
    "extra",
    [[], ["model.quantizer.ema=true", "model.quantizer.kmeans_init=true", "loss.disc_loss='nonsaturating'"]],
    ids=["default", "ema-kmeans-nonsaturating"],
)
def test_first_stage_update_sampling_and_evaluation_stay_on_the_device(tmp_path, tiny_vq_config, extra):
    config = tiny_vq_config(tmp_path, "loss.disc_start=0", *extra)  # the discriminator's update too
    report = check_device_placement(lambda: train.build_trainer(config)[0])
    assert report["fit"] == "max_steps" and report["resumed_at"] == 3  # the loop, checkpoints, resume
    assert report["models"] == {"vq": "meta", "D": "meta"} and report["updated"] == ["vq", "D"]
    assert report["samples"] and {"perplexity", "usage"} <= set(report["eval"])


def test_prior_update_sampling_and_evaluation_stay_on_the_device(tmp_path, tiny_vq_config, tiny_gpt_config):
    train.run_training(tiny_vq_config(tmp_path / "vq", "train.max_steps=1"))  # a first stage, really trained
    config = tiny_gpt_config(tmp_path / "gpt", tmp_path / "vq")
    report = check_device_placement(lambda: train_transformer.build_trainer(config)[0])
    assert report["fit"] == "max_steps" and report["resumed_at"] == 3  # the loop, checkpoints, resume
    assert report["models"] == {"gpt": "meta"} and report["updated"] == ["gpt"]
    assert report["samples"] == [""] and report["eval"] == ["val_loss"]


def test_the_inference_commands_keep_every_tensor_on_the_device(tmp_path, trained_pipeline, monkeypatch):
    """sample, experiment, make-negatives and classifier-study with --device auto, which gencore.devicecheck makes
    the meta device: a CPU tensor meeting the model's raises as on CUDA (the images and figures are placeholders)."""
    from gencore.devicecheck import check_command
    from vqgan_negatives import negatives
    from vqgan_negatives.cli import main

    real_clean = negatives.clean

    def keep_all(images, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        real_clean(images, *args, **kwargs)  # the filters run (and the classifier scores): placeholders are blank
        return ["kept"] * len(images)

    monkeypatch.setattr(negatives, "clean", keep_all)

    _, gpt = trained_pipeline
    out = check_command(main, ["sample", str(gpt), "-n", "3", "--batch-size", "2", "--top-k", "8", "-o",
                               str(tmp_path / "s.png"), "--save-dir", str(tmp_path / "each")])  # fmt: skip
    assert "wrote" in out and len(list((tmp_path / "each").glob("*.png"))) == 3
    check_command(main, ["experiment", "--model", str(gpt), "--condition", "gaussian", "-n", "4", "--top-k", "8",
                         "-o", str(tmp_path / "exp")])  # fmt: skip
    assert (tmp_path / "exp" / "scores.csv").is_file()
    study = tmp_path / "study"
    check_command(main, ["make-negatives", str(gpt), "-n", "2", "-o", str(tmp_path / "neg"), "--top-k", "8"])
    check_command(main, ["classifier-study", "--negatives", str(tmp_path / "neg"), "--heldout-model", str(gpt),
                         "-o", str(study), "--n-train", "16", "--n-test", "8", "--steps", "2", "--seeds", "0",
                         "--size", "16"])  # fmt: skip
    assert (study / "study.json").is_file() and (study / "ordinary" / "model.safetensors").is_file()
    check_command(main, ["make-negatives", str(gpt), "-n", "2", "-o", str(tmp_path / "neg2"), "--top-k", "8",
                         "--classifier", str(study / "ordinary"), "--max-molecule-score", "2"])  # fmt: skip

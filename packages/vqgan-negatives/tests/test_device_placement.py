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

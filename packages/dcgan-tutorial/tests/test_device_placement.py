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

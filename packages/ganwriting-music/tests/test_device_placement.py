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

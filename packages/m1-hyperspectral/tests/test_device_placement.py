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

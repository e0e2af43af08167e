"""Training, sampling, evaluation, checkpoints and resume keep every tensor on the accelerator (gencore.devicecheck)."""

from __future__ import annotations

import pytest

from gencore.devicecheck import check_device_placement
from hvae_captcha.cli import CONDITIONED_DEFAULTS
from hvae_captcha.train import build_trainer

VARIANTS = {
    "unconditioned": [],
    "text-aware": ["model.conditioned=true", *CONDITIONED_DEFAULTS],
    "vector-bernoulli-sn": ["model.latent='vector'", "model.likelihood='bernoulli'", "model.spectral_norm=true"],
    "three-term": ["model.conditioned=true", "loss.objective='three-term'"],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_one_update_sampling_and_evaluation_stay_on_the_device(tmp_path, tiny_config, variant):
    config = tiny_config(tmp_path, *VARIANTS[variant])
    report = check_device_placement(lambda: build_trainer(config))
    assert report["fit"] == "max_steps" and report["resumed_at"] == 3  # the loop, checkpoints, resume
    assert report["models"] == {"hvae": "meta"} and report["updated"] == ["hvae"]
    assert report["samples"] == ["prior", "reconstruction"] and "nll_bits_per_dim" in report["eval"]

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


@pytest.mark.parametrize("variant", ["unconditioned", "text-aware"])
def test_the_inference_commands_keep_every_tensor_on_the_device(tmp_path, tiny_config, variant):
    """sample, reconstruct and evaluate (with the text reader) with --device auto, which gencore.devicecheck makes
    the meta device: a CPU tensor meeting the model's raises as on CUDA (figures and images are placeholders)."""
    from gencore.devicecheck import check_command
    from hvae_captcha.cli import main
    from hvae_captcha.train import run_training

    run = tmp_path / "run"
    run_training(tiny_config(run, "train.max_steps=1", *VARIANTS[variant]))
    out = check_command(main, ["sample", str(run), "-n", "5", "--batch-size", "2", "-o", str(tmp_path / "s.png"),
                               "--save-dir", str(tmp_path / "each")])  # fmt: skip
    assert "wrote" in out and len(list((tmp_path / "each").glob("*.png"))) == 5
    if variant == "text-aware":
        check_command(main, ["sample", str(run), "-n", "2", "--text", "2b6qa", "-o", str(tmp_path / "t.png")])
    check_command(main, ["reconstruct", str(run), "-n", "3", "--batch-size", "2", "-o", str(tmp_path / "r.png")])
    assert (tmp_path / "r.png").is_file()
    extra = ["--text-accuracy", "--reader-steps", "2"] if variant == "text-aware" else []
    check_command(main, ["evaluate", str(run), "-k", "2", "-n", "4", "--batch-size", "2", *extra])
    assert (run / "eval" / "evaluation.json").is_file()

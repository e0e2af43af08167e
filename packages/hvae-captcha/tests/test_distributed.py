"""A real 2-process CPU run (gloo) of ``accelerate launch -m hvae_captcha.train``.

Checks the world size, that the ranks end with the same state (fingerprints recorded at each checkpoint), that
only rank 0 prints and writes, and that the bits/dim the run logged — evaluated with the held-out images split
over the two ranks and gathered — equals the same evaluation redone here in one process on the saved model.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from gencore.checkpoint import list_checkpoints, verify_dir
from gencore.config import from_dict
from gencore.testing import assert_ranks_in_sync, launch_cpu_processes, read_metrics
from hvae_captcha.config import HVAEConfig
from hvae_captcha.evaluate import evaluate_model
from hvae_captcha.model import HVAE
from hvae_captcha.train import prepare_data

# 36 training images, batch 8 per rank: 2 updates per epoch; 8 held-out images in batches of 3 -> rank 0 gets
# images 0-5, rank 1 images 6-7 (uneven, so a padded or repeated sample would show)
EXTRA = ["train.max_steps=4", "train.eval_every=2", "eval.batch_size=3"]


@pytest.mark.slow
def test_two_process_cpu_training(tmp_path, tiny_cli):
    run = tmp_path / "run"
    args = ["--output-dir", str(run), *tiny_cli, *(a for item in EXTRA for a in ("--set", item))]
    proc = launch_cpu_processes(["-m", "hvae_captcha.train", *args], timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    checkpoints = list_checkpoints(run / "checkpoints")
    assert [p.name for p in checkpoints] == ["step_000002", "step_000004"]
    for path in checkpoints:  # world size 2, same weights/EMA/optimizer on both ranks, per-rank noise
        assert_ranks_in_sync(path)
    verify_dir(run / "model")

    # rank 0 alone prints and logs: one line per logged step, one final line, one CSV row per step
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == ["2", "4"]
    assert len(re.findall(r"^step 4/4 ", proc.stdout, re.M)) == 1 and proc.stdout.count("done (") == 1
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.json", "losses.png", "metrics.csv",
                                                     "model", "samples", "text_prior.json"]  # fmt: skip
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["prior_step_000004.png",
                                                                   "reconstruction_step_000004.png"]  # fmt: skip

    # the same evaluation in one process on the saved (EMA) weights: equal to the digits metrics.csv keeps
    config = from_dict(HVAEConfig, json.loads((run / "config.json").read_text()))  # the default: text-aware
    assert config.model.conditioned
    _, holdout = prepare_data(config)
    evaluated = holdout.subset(list(range(config.eval.samples)))
    model = HVAE.from_pretrained(run / "model")
    if config.train.channels_last:  # evaluated in the run's own layout, rounding included (the default: NHWC)
        model = model.to(memory_format=torch.channels_last)
    again = evaluate_model(model, evaluated, config.eval.iw_samples, config.eval.batch_size,
                           seed=config.train.seed + 1)  # fmt: skip
    for key in ("nll_bits_per_dim", "elbo_bits_per_dim", "psnr_db", "kl_level1_nats"):
        assert rows[-1][f"eval/{key}"] == f"{again[key]:.6g}", key

"""A real 2-process CPU run (gloo) of ``accelerate launch -m dcgan_tutorial.train``.

Checks the world size, that the ranks end with the same state (fingerprints recorded at each checkpoint, which
covers the BatchNorm statistics of G and D), that only rank 0 prints and writes, and that the diagnostics the run
logged — with the generated images split over the two ranks and gathered — equal the same evaluation redone
here in one process on the saved generator.
"""

from __future__ import annotations

import re

import pytest

from dcgan_tutorial.diagnostics import feature_diagnostics
from dcgan_tutorial.features import FeatureNet
from dcgan_tutorial.model import DCGANGenerator
from dcgan_tutorial.package import SPEC
from dcgan_tutorial.train import generated_features, prepare_data
from gencore.checkpoint import list_checkpoints
from gencore.testing import assert_ranks_in_sync, launch_cpu_processes, read_metrics

# the tiny preset of the package registry (what conftest builds too); EXTRA below overrides its steps and cadence
TINY = SPEC.preset("tiny")
# 76 training images, batch 16 per rank: 2 updates per epoch; 64 generated images in batches of 24 -> rank 0
# makes images 0-47, rank 1 images 48-63
EXTRA = ["train.max_steps=4", "train.checkpoint_every=2", "train.eval_every=2", "eval.batch_size=24"]


@pytest.mark.slow
def test_two_process_cpu_training(tmp_path, tiny_config):
    run = tmp_path / "run"
    args = ["--output-dir", str(run), *(a for item in [*TINY, *EXTRA] for a in ("--set", item))]
    proc = launch_cpu_processes(["-m", "dcgan_tutorial.train", *args])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    checkpoints = list_checkpoints(run / "checkpoints")
    assert [p.name for p in checkpoints] == ["step_000002", "step_000004"]
    for path in checkpoints:  # world size 2, same G/D/optimizers (and BatchNorm buffers) on both ranks
        assert_ranks_in_sync(path)

    rows = read_metrics(run)  # rank 0 alone prints and logs
    assert [r["step"] for r in rows] == ["2", "4"]
    assert len(re.findall(r"^step 4/4 ", proc.stdout, re.M)) == 1 and proc.stdout.count("done (") == 1
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000004.png"]

    # the step-4 diagnostics in one process, from the saved generator and feature network
    config = tiny_config(run, *EXTRA)
    train_set, holdout = prepare_data(config)
    net = FeatureNet.from_pretrained(run / "feature_net").eval()
    generator = DCGANGenerator.from_pretrained(run / "model" / "generator")
    f_fake, p_fake = generated_features(generator, net, config.eval.samples, seed=1, batch_size=config.eval.batch_size)
    again = feature_diagnostics(net, f_fake, p_fake, net.predict(holdout.images)[0], len(train_set.classes))
    assert {"diversity", "fd", "kid"} <= set(again)
    for key, value in again.items():
        assert rows[-1][f"eval/{key}"] == f"{value:.6g}", key

"""A real 2-process CPU run (gloo) of ``accelerate launch -m m1_hyperspectral.train``.

Checks the world size, that the ranks end with the same state (fingerprints recorded at each checkpoint), that
only rank 0 prints and writes, and that the validation ELBO the run logged — with the validation pixels split
over the two ranks and gathered — equals the same evaluation redone here in one process on the checkpoint.
"""

from __future__ import annotations

import re

import pytest
import torch

from gencore.checkpoint import list_checkpoints
from gencore.testing import assert_ranks_in_sync, launch_cpu_processes, read_metrics
from m1_hyperspectral.model import M1
from m1_hyperspectral.package import SPEC
from m1_hyperspectral.train import mean_elbo, prepare_data

# the tiny preset of the package registry (what conftest builds too); EXTRA below overrides its steps and cadence
TINY = SPEC.preset("tiny")
# 16x16 pixels: about 25 validation pixels in batches of 4, so rank 0 takes 4 batches and rank 1 the other 3
EXTRA = ["train.max_steps=10", "train.checkpoint_every=5", "eval.batch_size=4"]


@pytest.mark.slow
def test_two_process_cpu_training(tmp_path, tiny_config):
    run = tmp_path / "run"
    config = tiny_config(run, *EXTRA)
    args = ["--output-dir", str(run), *(a for item in [*TINY, *EXTRA] for a in ("--set", item))]
    proc = launch_cpu_processes(["-m", "m1_hyperspectral.train", *args], timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    checkpoints = list_checkpoints(run / "checkpoints")
    assert [p.name for p in checkpoints] == ["step_000005", "step_000010"]
    trees = [assert_ranks_in_sync(path) for path in checkpoints]  # world size 2, same state, per-rank noise

    # rank 0 alone prints and logs
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == ["5", "10"]
    assert len(re.findall(r"^step 10/10 ", proc.stdout, re.M)) == 1 and proc.stdout.count("done (") == 1
    assert proc.stdout.count(" pixels x ") == 1

    # the last evaluation in one process on the step-10 weights: the digits metrics.csv keeps
    prep = prepare_data(config)
    model = M1.from_pretrained(run / "model")  # the best weights; replaced by the checkpoint's below
    model.load_state_dict(trees[-1]["models"]["M1"])
    x_valid = model.normalize(torch.from_numpy(prep.pixels.spectra[prep.valid]))
    assert 20 < len(x_valid) < 32
    again = mean_elbo(model, x_valid, config.train.seed, config.eval.batch_size)
    assert rows[-1]["eval/valid_ll"] == f"{again:.6g}"

"""Real 2-process CPU runs (gloo) of ``accelerate launch -m vqgan_negatives.train`` (and the transformer stage).

Checks the world size, that the ranks end with the same state (fingerprints recorded at each checkpoint, which
covers the codebook statistics the quantizer keeps in sync), that only rank 0 prints and writes, and that the
figures the run logged — with the held-out images split over the two ranks and gathered — equal the same
evaluation redone here in one process on the saved model.
"""

from __future__ import annotations

import re

import pytest

from gencore.checkpoint import list_checkpoints
from gencore.testing import assert_ranks_in_sync, launch_cpu_processes, read_metrics
from vqgan_negatives.model import VQModel
from vqgan_negatives.package import SPEC
from vqgan_negatives.train import evaluate_vq, prepare_data

# the tiny presets of the package registry (what conftest builds too); EXTRA_* override their steps and cadence
TINY_VQ = list(SPEC.preset("tiny", "train-vqgan"))
# 32 training images, batch 8 per rank: 2 updates per epoch; the adversarial part starts at step 2 so both models
# train on both ranks; 8 held-out images in batches of 3 -> rank 0 gets images 0-5, rank 1 images 6-7
EXTRA_VQ = ["train.max_steps=4", "train.checkpoint_every=2", "train.eval_every=2", "loss.disc_start=2",
            "eval.samples=8", "eval.batch_size=3"]  # fmt: skip


def sets(items: list[str]) -> list[str]:
    return [a for item in items for a in ("--set", item)]


@pytest.mark.slow
def test_two_process_first_stage(tmp_path, tiny_vq_config):
    run = tmp_path / "vq"
    proc = launch_cpu_processes(["-m", "vqgan_negatives.train", "--output-dir", str(run), *sets(TINY_VQ + EXTRA_VQ)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    checkpoints = list_checkpoints(run / "checkpoints")
    assert [p.name for p in checkpoints] == ["step_000002", "step_000004"]
    for path in checkpoints:  # world size 2, same weights/codebook/optimizers on both ranks, per-rank noise
        assert_ranks_in_sync(path)

    rows = read_metrics(run)  # rank 0 alone prints and logs
    assert [r["step"] for r in rows] == ["2", "4"]
    assert len(re.findall(r"^step 4/4 ", proc.stdout, re.M)) == 1 and proc.stdout.count("done (") == 1
    assert (run / "perceptual.txt").read_text().count("\n") == 1

    config = tiny_vq_config(run, *EXTRA_VQ)
    _, holdout = prepare_data(config)
    again = evaluate_vq(VQModel.from_pretrained(run / "model" / "vqgan"), holdout[: config.eval.samples],
                        config.eval.batch_size)  # fmt: skip
    for key in ("psnr", "l1", "usage", "perplexity"):
        assert rows[-1][f"eval/{key}"] == f"{again[key]:.6g}", key


TINY_GPT = list(SPEC.preset("tiny", "train-transformer"))
# 32 training pairs, batch 8 per rank: 2 updates per epoch; 8 held-out pairs in batches of 3, as above
EXTRA_GPT = ["train.max_steps=4", "train.checkpoint_every=2", "train.eval_every=2", "eval.batch_size=3"]


@pytest.mark.slow
def test_two_process_transformer(tmp_path, trained_pipeline, tiny_gpt_config):
    from vqgan_negatives.train_transformer import load_vqgan, make_pairs, validation_loss
    from vqgan_negatives.transformer import CondGPT

    vq_run, _ = trained_pipeline
    run = tmp_path / "gpt"
    args = ["--output-dir", str(run), "--vqgan", str(vq_run), *sets(TINY_GPT + EXTRA_GPT)]
    proc = launch_cpu_processes(["-m", "vqgan_negatives.train_transformer", *args])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    checkpoints = list_checkpoints(run / "checkpoints")
    assert [p.name for p in checkpoints] == ["step_000002", "step_000004"]
    for path in checkpoints:
        assert_ranks_in_sync(path)
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == ["2", "4"]
    assert len(re.findall(r"^step 4/4 ", proc.stdout, re.M)) == 1 and proc.stdout.count("done (") == 1

    config = tiny_gpt_config(run, vq_run, *EXTRA_GPT)
    _, holdout = make_pairs(config, load_vqgan(run))
    again = validation_loss(CondGPT.from_pretrained(run / "model" / "gpt"), holdout, config.eval.batch_size)
    assert rows[-1]["eval/val_loss"] == f"{again:.6g}"

"""A real 2-process CPU run (gloo) of ``accelerate launch -m ganwriting_music.train 0``.

``accelerate launch --cpu --num_processes 2`` silently starts ONE process (see DESIGN.md), so this uses the launch
that gives two ranks and asserts the world size recorded in the checkpoint. It also checks that the ranks end
with the same state (fingerprints recorded at each checkpoint), that only rank 0 prints and logs, and that the
recognizer accuracies the run logged — with the generated images split over the two ranks and gathered — equal
the same evaluation redone here in one process on the saved networks.
"""

from __future__ import annotations

import pytest

from ganwriting_music.data import StyleDataset
from ganwriting_music.train import eval_inputs, evaluate_generator, load_networks, prepare_data, read_epochs
from gencore.checkpoint import verify_dir
from gencore.testing import assert_ranks_in_sync, launch_cpu_processes, read_metrics

# 24 training images, batch 8 per rank, 2 ranks: 1 update per epoch. The 8 test images are evaluated in batches
# of 3 -> rank 0 takes images 0-5, rank 1 images 6-7 (uneven, so a padded or repeated sample would show).
EXTRA = ["train.batch_size=8", "eval.batch_size=3"]


@pytest.mark.slow
def test_two_process_cpu_training(tmp_path, tiny_cli, tiny_config):
    run = tmp_path / "run"
    args = ["--output-dir", str(run), *tiny_cli, *(a for item in EXTRA for a in ("--set", item))]
    proc = launch_cpu_processes(["-m", "ganwriting_music.train", "0", *args], timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "on 2 process(es)" in proc.stdout and proc.stdout.count("ganwriting-music:") == 1  # rank 0 prints
    epochs = read_epochs(run / "checkpoints")
    assert epochs == {"1": "step_000001", "2": "step_000002"}
    for name in epochs.values():  # world size 2, same G/D/R and optimizers on both ranks, per-rank noise
        assert_ranks_in_sync(run / "checkpoints" / name)
    verify_dir(run / "model")

    rows = [r for r in read_metrics(run) if r.get("eval/rec_acc_fake")]
    assert [r["step"] for r in rows] == ["1", "2"]
    # the step-2 evaluation in one process, from the saved networks (the model directory holds the final state)
    config = tiny_config(run, *EXTRA)
    train_set, test_set = prepare_data(config)
    nets = load_networks(run)
    n = min(config.eval.samples, len(test_set))
    refs, z, pick = eval_inputs(nets.gen, StyleDataset(train_set, config.model.k_refs), test_set, n,
                                config.train.seed + 1)  # fmt: skip
    again = evaluate_generator(nets.gen, nets.rec, refs, test_set.labels[pick], z, test_set.floats(pick),
                               batch_size=config.eval.batch_size)  # fmt: skip
    for key, value in again.items():
        assert rows[-1][f"eval/{key}"] == f"{value:.6g}", key

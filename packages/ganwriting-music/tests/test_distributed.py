"""A real 2-process CPU run (gloo) of ``accelerate launch -m ganwriting_music.train 0``.

``accelerate launch --cpu --num_processes 2`` silently starts ONE process (see DESIGN.md), so this uses the launch
that gives two ranks and asserts the world size recorded in the checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ganwriting_music.train import read_epochs
from gencore.checkpoint import load_tree, verify_dir


@pytest.mark.slow
def test_two_process_cpu_training(tmp_path, tiny_cli):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           "-m", "ganwriting_music.train"]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    # 24 training images, batch 8 per rank, 2 ranks: 1 update per epoch
    args = ["--output-dir", str(run), *tiny_cli, "--set", "train.batch_size=8"]
    proc = subprocess.run([*cmd, "0", *args], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "on 2 process(es)" in proc.stdout and proc.stdout.count("ganwriting-music:") == 1  # rank 0 prints
    epochs = read_epochs(run / "checkpoints")
    assert epochs == {"1": "step_000001", "2": "step_000002"}
    tree = load_tree(run / "checkpoints" / epochs["2"])
    assert tree["trainer"]["world_size"] == 2 and len(tree["rng"]) == 2
    verify_dir(run / "model")

"""A real 2-process run on CPU (gloo) through `accelerate launch`.

`accelerate launch --cpu --num_processes 2` silently starts ONE process (see DESIGN.md), so the launch below is
the one that really gives two ranks, and the test asserts the world size it got.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gencore.checkpoint import list_checkpoints
from gencore.distributed import sharded_map
from gencore.testing import assert_ranks_in_sync

SCRIPT = Path(__file__).parent / "distributed" / "toy_gan.py"
SHARDED = Path(__file__).parent / "distributed" / "sharded_map.py"


def launch_two_cpu_processes(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """`accelerate launch` with two gloo processes on this machine's CPU."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
           *args]  # fmt: skip
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_two_processes_stay_in_sync_and_only_rank0_writes(tmp_path):
    proc = launch_two_cpu_processes([str(SCRIPT), str(tmp_path)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = [json.loads((tmp_path / f"result_{r}.json").read_text()) for r in (0, 1)]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["world"] == 2 for r in results)
    assert all(r["step"] == 8 for r in results)
    assert results[0]["sha"] == results[1]["sha"], "ranks ended with different parameters"
    seen0, seen1 = (r["seen"] for r in sorted(results, key=lambda r: r["rank"]))
    assert not set(seen0) & set(seen1), "ranks saw the same samples"
    assert len(seen0) == len(seen1) == 16  # 40 points, batch 8, 2 ranks: 2 full rounds, the tail is dropped

    main_dir, other_dir = tmp_path / "rank_0", tmp_path / "rank_1"
    assert (main_dir / "metrics.csv").is_file() and (main_dir / "config.json").is_file()
    assert [p.name for p in list_checkpoints(main_dir / "checkpoints")] == ["step_000004", "step_000008"]
    # the fingerprints each rank took of its own state while saving agree with each other and with the saved state
    assert_ranks_in_sync(main_dir / "checkpoints" / "step_000008")
    assert not other_dir.exists() or not any(other_dir.rglob("*")), "rank 1 wrote files"


@pytest.mark.slow
def test_sharded_map_gathers_every_sample_once_over_two_processes(tmp_path):
    proc = launch_two_cpu_processes([str(SHARDED), str(tmp_path)], timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = [json.loads((tmp_path / f"sharded_{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in results] == [2, 2]
    assert results[0]["calls"] == [[0, 2], [2, 4]] and results[1]["calls"] == [[4, 6], [6, 7]]
    # the same input, seeded the same way, in one process: what both ranks must have got back
    one = sharded_map(None, 7, lambda a, b: torch.randn(b - a, 2), batch_size=2, seed=11)
    for r in results:
        assert r["index"] == list(range(7))  # 7 items, none padded or repeated, in order
        assert r["from_rank"] == [0, 0, 0, 0, 1, 1, 1]  # each rank did its own contiguous share
        assert torch.equal(torch.tensor(r["noise"]), one)  # per-batch seeds: independent of the number of ranks
        assert r["few"] == [0, 10, 20]  # rank 1 had no batch and still got everything
        assert r["running_mean"] == [1.0, 1.0] and r["flag"] is True  # rank 0's buffers everywhere


@pytest.mark.slow
def test_gencore_demo_on_two_processes_evaluates_each_image_once(tmp_path):
    """`accelerate launch -m gencore.demo`: ranks in sync, rank 0 alone writes, and the logged bound (13 validation
    images in batches of 4: rank 0 gets 0-7, rank 1 8-12) equals the one-process evaluation of the checkpoint."""
    import re

    import torch

    from gencore.checkpoint import load_tree
    from gencore.config import build_config
    from gencore.data import split_indices
    from gencore.demo import DemoConfig, ShapesVAE, draw_shapes
    from gencore.distributed import sharded_map
    from gencore.metrics import bits_per_dim, iw_elbo
    from gencore.testing import assert_ranks_in_sync, launch_cpu_processes, read_metrics

    run = tmp_path / "run"
    sets = ["num_images=128", "eval.iw_samples=3", "eval.batch_size=4", "train.eval_every=3",
            "train.checkpoint_every=3", "train.max_steps=6", "train.batch_size=8", "train.progress_bar=false",
            "train.report_to=none", "train.log_every=3"]  # fmt: skip
    proc = launch_cpu_processes(["-m", "gencore.demo", "--output-dir", str(run),
                                 *(a for s in sets for a in ("--set", s))])  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    checkpoints = list_checkpoints(run / "checkpoints")
    assert [p.name for p in checkpoints] == ["step_000003", "step_000006"]
    for path in checkpoints:
        assert_ranks_in_sync(path)
    assert len(re.findall(r"^step 6/6 ", proc.stdout, re.M)) == 1 and proc.stdout.count("done (") == 1
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == ["3", "6"]

    config = build_config(DemoConfig, overrides=sets)
    images = draw_shapes(config.num_images, seed=config.train.seed)
    _, val_idx = split_indices(len(images), [1 - config.val_fraction, config.val_fraction], config.train.seed)
    val = images[val_idx]
    assert len(val) == 13
    vae = ShapesVAE(config.model)
    tree = load_tree(checkpoints[-1])
    vae.load_state_dict(tree["ema"]["vae"])
    with torch.no_grad():
        out = sharded_map(None, len(val), lambda a, b: {"iw": iw_elbo(vae.log_weights(val[a:b], 3))}, 4,
                          seed=config.train.seed + 1)  # fmt: skip
    assert rows[-1]["eval/nll_bits_per_dim"] == f"{bits_per_dim(out['iw'], val[0].numel()):.6g}"

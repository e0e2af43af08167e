"""Run by tests/test_distributed.py under `accelerate launch` with 2 CPU processes: gencore.distributed.

Writes <base>/sharded_<rank>.json with what this rank computed itself, what it got back from sharded_map, and its
buffers after broadcast_buffers.
"""

import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

from gencore.distributed import broadcast_buffers, sharded_map

base = Path(sys.argv[1])
acc = Accelerator(cpu=True)
rank = acc.process_index
calls = []


def per_sample(start: int, stop: int) -> dict[str, torch.Tensor]:
    calls.append([start, stop])
    idx = torch.arange(start, stop)
    return {"index": idx, "rank": torch.full((stop - start,), rank), "noise": torch.randn(stop - start, 2)}


# 7 items in batches of 2 over 2 ranks: 2 batches each, the last one short
seven = sharded_map(acc, 7, per_sample, batch_size=2, seed=11)
seven_calls, calls = calls, []
# a single batch: rank 1 has nothing to do but still gets the result
few = sharded_map(acc, 3, lambda a, b: torch.arange(a, b) * 10, batch_size=8)

bn = torch.nn.BatchNorm1d(2)
bn.running_mean.fill_(float(rank + 1))
flag = torch.nn.Module()
flag.register_buffer("on", torch.tensor(rank == 0))
broadcast_buffers(acc, [bn, flag])

(base / f"sharded_{rank}.json").write_text(
    json.dumps(
        {
            "rank": rank,
            "world": acc.num_processes,
            "calls": seven_calls,
            "index": seven["index"].tolist(),
            "from_rank": seven["rank"].tolist(),
            "noise": seven["noise"].tolist(),
            "few": few.tolist(),
            "running_mean": bn.running_mean.tolist(),
            "flag": bool(flag.on),
        }
    )
)
# leave together and close the process group: a rank that exits while gloo's threads still talk to the other one
# can abort ("terminate called without an active exception", seen once on a clean CI run)
acc.wait_for_everyone()
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()

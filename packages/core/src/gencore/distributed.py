"""Helpers for runs on several processes: evaluation split over ranks, buffer sync and a check that ranks agree.

* :func:`sharded_map` runs a per-sample function over ``range(n_items)`` with each rank doing its own contiguous
  share, gathers the results and gives every rank all of them, in order, each sample exactly once;
* :func:`broadcast_buffers` copies rank 0's buffers (BatchNorm statistics, codebook counters...) to every rank:
  DDP only does that at the start of a forward pass, so between passes each rank holds its own statistics;
* :func:`replica_digest` fingerprints the state that every rank must hold identically, so that a run can record
  (and a test can check) that its ranks did not drift apart.

Every function also works without an accelerator or with a single process, where it does no communication.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from gencore.progress import progress

__all__ = [
    "shard_chunks", "sharded_map", "broadcast_buffers", "replica_digest", "tree_digest", "REPLICATED",
    "is_launch_main",
]  # fmt: skip


def is_launch_main() -> bool:
    """Whether this process is rank 0 of its launched job, known before any Accelerator exists (from the
    launcher's ``RANK``; a plain ``python`` run is rank 0): for work done before the Trainer is built, such as
    saving a feature network or printing what a data set read once."""
    return os.environ.get("RANK", "0") == "0"

Output = torch.Tensor | dict[str, torch.Tensor]

#: The parts of ``Trainer.state_dict()`` that must be equal on every rank (the RNG state is per rank on purpose).
REPLICATED = ("models", "ema", "optimizers", "schedulers")


def shard_chunks(n_items: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[tuple[int, int]]:
    """The ``(start, stop)`` batches of ``range(n_items)`` that ``rank`` of ``world_size`` processes handles.

    The range is cut into batches of ``batch_size`` first (the last may be shorter) and the batches are then dealt
    out as contiguous runs, so every rank gets a contiguous, un-padded slice, and the batches themselves (hence
    the numbers computed on them) do not depend on the number of processes. A rank may get no batch at all when
    there are fewer batches than processes.
    """
    if n_items < 0 or batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad sharding: n_items={n_items}, batch_size={batch_size}, rank={rank}/{world_size}")
    chunks = [(start, min(start + batch_size, n_items)) for start in range(0, n_items, batch_size)]
    # ceiling division: when the batches do not split evenly, the first ranks take one more
    first, last = -(-len(chunks) * rank // world_size), -(-len(chunks) * (rank + 1) // world_size)
    return chunks[first:last]


def sharded_map(
    accelerator: Accelerator | None,
    n_items: int,
    fn: Callable[[int, int], Output],
    batch_size: int,
    *,
    seed: int | None = None,
    desc: str | None = None,
) -> Output:
    """``fn(start, stop)`` over this rank's batches of ``range(n_items)``, gathered from all ranks, in order.

    Args:
        accelerator: the run's accelerator; ``None`` (or one process) runs every batch here, without communication.
        n_items: how many samples there are (at least 1).
        fn: returns per-sample results for samples ``start..stop-1``: a tensor, or a dict of tensors, whose first
            dimension is ``stop - start``. It must not communicate with other ranks (a rank may have no batch).
        batch_size: samples per ``fn`` call; see :func:`shard_chunks` for how batches are dealt out.
        seed: when given, each call runs with the torch RNG (CPU and the accelerator's device) seeded with
            ``seed + start`` and restored afterwards, so random draws in ``fn`` are reproducible and the same
            whatever the number of processes (the first batch gets ``seed`` itself).
        desc: when given, a progress bar of that name counts rank 0's batches (:func:`gencore.progress.progress`:
            only when stderr is a terminal).

    Returns:
        On every rank, the results of all ``n_items`` samples concatenated along the first dimension, on the CPU,
        in the order of ``range(n_items)``: each sample exactly once, no padding.
    """
    if n_items < 1:
        raise ValueError("sharded_map needs at least one item")
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    device = accelerator.device if accelerator is not None else torch.device("cpu")
    pieces = []
    chunks = list(shard_chunks(n_items, batch_size, rank, world))
    if desc is not None:
        chunks = progress(chunks, total=len(chunks), desc=desc, disable=rank != 0, unit="batch")
    for start, stop in chunks:
        with _seeded(seed, start, device):
            out = fn(start, stop)
        pieces.append((start, _per_sample_cpu(out, stop - start)))
    if world > 1:
        from accelerate.utils import gather_object

        pieces = gather_object(pieces)  # a flat list of every rank's (start, output) pairs
    pieces.sort(key=lambda piece: piece[0])
    starts = [start for start, _ in pieces]
    expected = [start for start, _ in shard_chunks(n_items, batch_size)]
    if starts != expected:  # a missing or repeated batch would silently bias every metric computed from it
        raise RuntimeError(f"sharded_map gathered batches starting at {starts}, expected {expected}")
    outputs = [out for _, out in pieces]
    if isinstance(outputs[0], dict):
        return {key: torch.cat([out[key] for out in outputs]) for key in outputs[0]}
    return torch.cat(outputs)


def _per_sample_cpu(out: Output, n: int) -> Output:
    items = out.items() if isinstance(out, Mapping) else [("", out)]
    for key, value in items:
        if not isinstance(value, torch.Tensor) or value.ndim == 0 or len(value) != n:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            what = f" for {key!r}" if key else ""
            raise ValueError(f"sharded_map: fn must return {n} per-sample rows{what}, got {shape}")
    if isinstance(out, Mapping):
        return {key: value.detach().cpu() for key, value in out.items()}
    return out.detach().cpu()


@contextlib.contextmanager
def _seeded(seed: int | None, start: int, device: torch.device) -> Iterator[None]:
    """``torch.manual_seed(seed + start)`` inside, the previous RNG states back outside; nothing when seed is None."""
    if seed is None:
        yield
        return
    devices = [device] if device.type not in ("cpu", "meta") else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        torch.manual_seed(seed + start)
        yield


def broadcast_buffers(accelerator: Accelerator | None, modules: Iterable[nn.Module]) -> None:
    """Overwrite every buffer of ``modules`` with rank 0's values (a collective: call it on every rank)."""
    if accelerator is None or accelerator.num_processes == 1:
        return
    import torch.distributed as dist

    for module in modules:
        for buffer in module.buffers():
            # bool is not a type every backend can broadcast (sent as uint8), and broadcast needs contiguous memory
            wire = buffer.to(torch.uint8) if buffer.dtype == torch.bool else buffer.contiguous()
            dist.broadcast(wire, src=0)
            if wire is not buffer:
                buffer.copy_(wire.to(buffer.dtype))


def tree_digest(tree: Any) -> str:
    """SHA-256 over a nested dict/list/tuple of tensors and plain values (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    _feed(digest, tree, "")
    return digest.hexdigest()


def _feed(digest: Any, obj: Any, path: str) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        digest.update(f"{path}:{t.dtype}:{tuple(t.shape)}:".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, Mapping):
        for key in sorted(obj, key=str):
            _feed(digest, obj[key], f"{path}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _feed(digest, value, f"{path}.{i}")
    else:
        digest.update(f"{path}={obj!r};".encode())


def replica_digest(state: Mapping[str, Any]) -> str:
    """:func:`tree_digest` of the :data:`REPLICATED` parts of a Trainer state (live, or loaded from a checkpoint)."""
    return tree_digest({key: state[key] for key in REPLICATED if key in state})

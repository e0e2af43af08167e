"""gencore.distributed in one process; the 2-process runs are in tests/test_distributed.py at the top level."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gencore.checkpoint import load_tree
from gencore.distributed import broadcast_buffers, replica_digest, shard_chunks, sharded_map, tree_digest
from gencore.testing import make_gan_trainer


@given(n=st.integers(0, 60), batch=st.integers(1, 9), world=st.integers(1, 5))
def test_shard_chunks_cover_every_item_once_in_contiguous_slices(n, batch, world):
    everyone = [shard_chunks(n, batch, r, world) for r in range(world)]
    flat = [i for chunks in everyone for a, b in chunks for i in range(a, b)]
    assert flat == list(range(n))  # in order, no gaps, no repeats, no padding
    assert [c for chunks in everyone for c in chunks] == shard_chunks(n, batch)  # the same batches in any world


def test_shard_chunks_uneven_split():
    assert shard_chunks(7, 2, 0, 2) == [(0, 2), (2, 4)]
    assert shard_chunks(7, 2, 1, 2) == [(4, 6), (6, 7)]
    assert shard_chunks(3, 8, 1, 2) == []  # one batch for two ranks: the second has nothing to do
    with pytest.raises(ValueError):
        shard_chunks(5, 0)


def test_sharded_map_single_process_concatenates_in_order():
    calls = []

    def fn(start, stop):
        calls.append((start, stop))
        idx = torch.arange(start, stop)
        return {"index": idx, "square": (idx**2).float()[:, None]}

    out = sharded_map(None, 7, fn, batch_size=3)
    assert calls == [(0, 3), (3, 6), (6, 7)]
    assert out["index"].tolist() == list(range(7)) and out["square"].shape == (7, 1)
    assert torch.equal(sharded_map(None, 5, lambda a, b: torch.arange(a, b), 2), torch.arange(5))


def test_sharded_map_seeds_each_batch_and_restores_the_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    noise = sharded_map(None, 7, lambda a, b: torch.randn(b - a), batch_size=3, seed=5)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's stream is untouched
    torch.manual_seed(5)
    assert torch.equal(noise[:3], torch.randn(3))  # the first batch gets the seed itself
    torch.manual_seed(5 + 3)
    assert torch.equal(noise[3:6], torch.randn(3))
    again = sharded_map(None, 7, lambda a, b: torch.randn(b - a), batch_size=3, seed=5)
    assert torch.equal(noise, again)


def test_sharded_map_rejects_results_that_are_not_per_sample():
    with pytest.raises(ValueError, match="3 per-sample rows"):
        sharded_map(None, 5, lambda a, b: torch.zeros(1), batch_size=3)
    with pytest.raises(ValueError, match="'loss'"):
        sharded_map(None, 5, lambda a, b: {"loss": torch.tensor(1.0)}, batch_size=3)
    with pytest.raises(ValueError):
        sharded_map(None, 0, lambda a, b: torch.zeros(b - a), batch_size=3)


def test_broadcast_buffers_is_a_no_op_in_one_process():
    bn = torch.nn.BatchNorm1d(3)
    bn.running_mean.fill_(2.0)
    broadcast_buffers(None, [bn])
    assert torch.equal(bn.running_mean, torch.full((3,), 2.0))


def test_tree_digest_sees_values_names_and_dtypes():
    a = {"w": torch.ones(3), "n": 2, "sub": [torch.zeros(2, dtype=torch.long)]}
    assert tree_digest(a) == tree_digest({"sub": [torch.zeros(2, dtype=torch.long)], "n": 2, "w": torch.ones(3)})
    assert tree_digest(a) != tree_digest({**a, "w": torch.tensor([1.0, 1.0, 1.0 + 1e-7])})
    assert tree_digest(a) != tree_digest({**a, "w": torch.ones(3, dtype=torch.float64)})
    assert tree_digest(a) != tree_digest({**a, "v": torch.ones(3)})
    assert tree_digest(a) != tree_digest({**a, "n": 3})


def test_replica_digest_survives_the_checkpoint_round_trip(tmp_path):
    trainer = make_gan_trainer(tmp_path / "run", max_steps=2, checkpoint_every=2)
    trainer.fit()
    tree = load_tree(tmp_path / "run" / "checkpoints" / "step_000002")
    assert replica_digest(tree) == replica_digest(trainer.state_dict())
    assert "rank_digests" not in tree  # recorded only when there are several processes

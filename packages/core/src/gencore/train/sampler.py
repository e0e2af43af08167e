"""Deterministic, resumable, rank-sharded batches: the data position is just (epoch, batch index)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from gencore.errors import DataError
from gencore.seeding import torch_seed


class ShardedBatchSampler(Sampler[list[int]]):
    """Yields this rank's batches of a seeded per-epoch permutation, starting at a given batch index.

    Every rank draws the same permutation (seed + epoch) and takes every ``world_size``-th batch, so the ranks
    see disjoint data. With ``drop_last`` the tail that does not fill a batch on every rank is dropped; without it
    the permutation is padded by wrapping around, so all ranks run the same number of steps.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        if num_samples < 1:
            raise DataError("the data set is empty")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle, self.drop_last = seed, shuffle, drop_last
        self.epoch, self.start = 0, 0
        if len(self) == 0:
            raise DataError(
                f"{num_samples} samples are too few for batch size {batch_size} on {world_size} process(es) "
                "with drop_last (use a smaller batch size or train.drop_last=false)"
            )

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the permutation of ``epoch`` and skip its first ``start`` batches of this rank."""
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        """Batches per epoch for one rank (before skipping)."""
        per_round = self.batch_size * self.world_size
        rounds = self.num_samples // per_round if self.drop_last else -(-self.num_samples // per_round)
        return rounds

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(torch_seed(self.seed * 1_000_003 + self.epoch))
            order = torch.randperm(self.num_samples, generator=gen).tolist()
        else:
            order = list(range(self.num_samples))
        needed = len(self) * self.batch_size * self.world_size
        while len(order) < needed:
            order += order[: needed - len(order)]
        for b in range(self.start, len(self)):
            first = (b * self.world_size + self.rank) * self.batch_size
            yield order[first : first + self.batch_size]

"""Seeded randomness for a small training loop that runs beside the Trainer (a feature network, a text reader, a
study's classifier), without touching the caller's random state.

:func:`local_rng` gives the loop a ``torch.Generator`` of its own for what it draws itself (batch indices,
augmentation) and seeds the global CPU generator only for the ``with`` block, where what the loop cannot hand a
generator draws from it (a module's initial weights, dropout); on exit the global CPU state is put back. So the
loop's result depends on its seed alone, and the code around it draws the same numbers whether the loop ran or not
(a cached network loaded instead of trained leaves the same stream behind). CUDA generators are not touched: the
loops run on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["local_rng"]


@contextlib.contextmanager
def local_rng(seed: int) -> Iterator[torch.Generator]:
    """``with local_rng(seed) as gen:`` the block's own CPU generator ``gen`` (seeded with ``seed``) and the global
    CPU generator seeded with ``seed`` too; the global state is restored on exit, also after an exception::

        with local_rng(seed) as gen:
            model = Classifier(config)  # initial weights from the global generator, seeded here
            for _ in range(steps):
                idx = torch.randint(len(images), (batch_size,), generator=gen)
                ...
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)

"""Which copy of a trained model samples: the weight average when the run keeps one, else the trained weights.

Samples, evaluations and exports of every package read the same copy::

    from gencore.sampling import sampling_model

    generator = sampling_model(trainer, "G")  # trainer.ema["G"].shadow with ema={"G": ...}, else trainer.unwrap("G")
    with torch.no_grad(), evaluating(generator):
        images = generator(z)

The EMA copy is always in eval mode; the trained model is in training mode during ``fit()``, so callers switch
it with :func:`gencore.nn.evaluating`. Standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from gencore.train import Trainer

__all__ = ["sampling_model"]


def sampling_model(trainer: Trainer, name: str) -> nn.Module:
    """``trainer.ema[name].shadow`` when the trainer keeps an EMA of model ``name``, else ``trainer.unwrap(name)``
    (the bare module, without a DDP or compile wrapper)."""
    return trainer.ema[name].shadow if name in trainer.ema else trainer.unwrap(name)

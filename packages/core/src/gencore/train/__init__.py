"""Training: one :class:`Trainer` on ``accelerate.Accelerator`` for every package."""

from gencore.train.config import TrainConfig
from gencore.train.ema import EMA
from gencore.train.sampler import ShardedBatchSampler
from gencore.train.trainer import PREEMPTED_EXIT_CODE, FitResult, StepContext, Trainer, seed_everything

__all__ = [
    "EMA",
    "PREEMPTED_EXIT_CODE",
    "FitResult",
    "ShardedBatchSampler",
    "StepContext",
    "TrainConfig",
    "Trainer",
    "seed_everything",
]

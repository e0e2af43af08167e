"""Training: one :class:`Trainer` on ``accelerate.Accelerator`` for every package."""

from gencore.train.config import TrainConfig
from gencore.train.ema import EMA
from gencore.train.hooks import ExportHook, TrainerHook
from gencore.train.sampler import ShardedBatchSampler
from gencore.train.trainer import (
    INTERRUPTED_EXIT_CODE,
    PREEMPTED_EXIT_CODE,
    FitResult,
    StepContext,
    Trainer,
    seed_everything,
)

__all__ = [
    "EMA",
    "ExportHook",
    "INTERRUPTED_EXIT_CODE",
    "PREEMPTED_EXIT_CODE",
    "FitResult",
    "ShardedBatchSampler",
    "StepContext",
    "TrainConfig",
    "Trainer",
    "TrainerHook",
    "seed_everything",
]

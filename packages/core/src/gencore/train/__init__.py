"""Training: one :class:`Trainer` on ``accelerate.Accelerator`` for every package.

Names are imported on first access (:mod:`gencore.lazy`), so ``from gencore.train import TrainConfig`` in a
package's config module loads no torch: configs, ``--help`` and ``--print-config`` stay light.
"""

from typing import TYPE_CHECKING

from gencore.lazy import lazy_exports

if TYPE_CHECKING:
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

__getattr__, __dir__ = lazy_exports(
    __name__,
    submodules=["config", "ema", "hooks", "logger", "rundir", "sampler", "trackers", "trainer"],
    from_modules={
        "gencore.train.config": ["TrainConfig"],
        "gencore.train.ema": ["EMA"],
        "gencore.train.hooks": ["ExportHook", "TrainerHook"],
        "gencore.train.sampler": ["ShardedBatchSampler"],
        "gencore.train.trainer": [
            "INTERRUPTED_EXIT_CODE", "PREEMPTED_EXIT_CODE", "FitResult", "StepContext", "Trainer", "seed_everything",
        ],
    },
)  # fmt: skip

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

"""The options every training run shares; packages nest this dataclass in their own config as ``train``."""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from typing import Any, ClassVar, Literal

from gencore.config import Renamed
from gencore.errors import ConfigError

#: The experiment trackers ``train.report_to`` can name (metrics.csv is always written besides them).
TRACKERS = ("tensorboard", "wandb", "mlflow")
#: The words ``train.report_to`` takes on its own (not in a list).
REPORT_TO_WORDS = ("auto", "all", "none")


def parse_report_to(text: str) -> tuple[str, ...]:
    """The words of a ``train.report_to`` value: ``("auto",)``, ``("all",)``, ``()`` for none, or tracker names
    from a comma list (``"tensorboard,wandb"``); ValueError naming what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"report_to must be a string, got {text!r}")
    names = [part.strip() for part in text.split(",")]
    if len(names) == 1 and names[0] in REPORT_TO_WORDS:
        return () if names[0] == "none" else (names[0],)
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ValueError(
            f"report_to: unknown tracker {unknown[0]!r} (one of {', '.join(TRACKERS)}, a comma list of them, "
            f"or {', '.join(REPORT_TO_WORDS)})"
        )
    return tuple(dict.fromkeys(names))


def _legacy_tensorboard(value: Any) -> str:
    """``train.tensorboard`` of an earlier layout as ``train.report_to``: it meant TensorBoard when installed."""
    if not isinstance(value, bool):
        raise ConfigError(f"train.tensorboard (now train.report_to): expected true or false, got {value!r}")
    return "auto" if value else "none"


@dataclass
class TrainConfig:
    """Options of :class:`gencore.train.Trainer`. Steps count optimizer updates (after gradient accumulation)."""

    output_dir: str = "runs/default"  # run directory: config.json, metrics.csv, samples/, checkpoints/
    seed: int = 0  # data order uses seed; per-process noise uses seed + process index
    max_steps: int = 1000  # stop after this many updates
    max_epochs: int | None = None  # or after this many passes over the data, whichever comes first
    batch_size: int = 32  # per process and per micro-batch
    num_workers: int = 0  # DataLoader workers
    shuffle: bool = True
    drop_last: bool = True
    grad_accum_steps: int = 1  # micro-batches per update
    precision: Literal["no", "fp16", "bf16"] = "no"  # mixed precision (autocast + loss scaling for fp16)
    channels_last: bool = False  # NHWC weights (and so activations) for the convolutions; same values, faster on GPU
    compile: str = "no"  # torch.compile backend of the trained models' forward: "no", "inductor", "aot_eager", ...
    grad_clip: float | None = None  # clip each model's gradient norm to this before its update (None: off)
    log_every: int = 10  # console line and metrics.csv row every N updates
    sample_every: int = 0  # sample grid every N updates (0: only at the end)
    eval_every: int = 0  # evaluation every N updates (0: only at the end)
    checkpoint_every: int = 500  # full training state every N updates (0: only at the end)
    sample_every_epochs: int = 0  # also a sample grid at the end of every N-th epoch (0: off)
    eval_every_epochs: int = 0  # also an evaluation at the end of every N-th epoch (0: off)
    checkpoint_every_epochs: int = 0  # also a checkpoint at the end of every N-th epoch (0: off)
    keep_checkpoints: int = 3  # keep the newest K checkpoints (0: keep all)
    early_stop_metric: str | None = None  # evaluation metric watched for early stopping
    early_stop_mode: Literal["min", "max"] = "min"
    patience: int = 0  # stop after this many evaluations without improvement (0: never)
    # trackers besides metrics.csv: auto (TensorBoard when installed), tensorboard, wandb, mlflow, a comma list,
    # all (every installed one) or none
    report_to: str = "auto"
    progress_bar: bool = True  # a tqdm bar on the main process when stderr is a terminal (GENCORE_PROGRESS=0: never)
    cpu: bool = False  # train on CPU even when an accelerator is present
    check_finite: bool = True  # refuse to apply a NaN/inf loss (costs one device sync per update)
    # the earlier name of report_to, still taken from Python: True = "auto", False = "none"
    tensorboard: InitVar[bool | None] = None

    renamed_keys: ClassVar[tuple[Renamed, ...]] = (Renamed("tensorboard", "report_to", _legacy_tensorboard),)

    def __post_init__(self, tensorboard: bool | None = None) -> None:
        if tensorboard is not None:
            if self.report_to != "auto":
                raise ValueError("tensorboard is the earlier name of report_to: give report_to only")
            self.report_to = _legacy_tensorboard(bool(tensorboard))
        parse_report_to(self.report_to)
        for name in ("max_steps", "batch_size", "grad_accum_steps", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("sample_every", "eval_every", "checkpoint_every", "keep_checkpoints", "patience", "num_workers",
                     "sample_every_epochs", "eval_every_epochs", "checkpoint_every_epochs"):  # fmt: skip
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ValueError(f"max_epochs must be at least 1 (or unset), got {self.max_epochs}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be positive, got {self.grad_clip}")
        if not isinstance(self.compile, str) or not self.compile:
            raise ValueError(f"compile must name a torch.compile backend or be 'no', got {self.compile!r}")
        if self.patience and not self.early_stop_metric:
            raise ValueError("patience needs early_stop_metric")

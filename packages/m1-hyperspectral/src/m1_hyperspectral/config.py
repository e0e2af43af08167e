"""Configuration of an m1-hyperspectral run. Every field is an option (``--set key=value`` or a TOML/JSON/YAML file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from gencore.config import Renamed
from gencore.errors import ConfigError
from gencore.train import TrainConfig

Likelihood = Literal["gaussian", "bernoulli", "bounded01"]


@dataclass
class SynthConfig:
    """The embedded synthetic scene (see ``m1_hyperspectral.synth`` for exactly how it is made)."""

    height: int = 96
    width: int = 96
    bands: int = 100  # evenly spaced from 400 to 2500 nm
    endmembers: int = 5  # 1..6 of: vegetation, soil, water, concrete, clay mineral, dry grass
    scale: float = 24.0  # Perlin cell size in pixels of the abundance maps (larger = bigger patches)
    octaves: int = 3
    sharpness: float = 6.0  # softmax temperature of the abundances: larger = purer pixels
    noise_std: float = 0.005  # reflectance noise (higher in the water-vapour absorption bands)
    labeled_purity: float = 0.5  # pixels whose dominant abundance is below this get label 0 (background)
    seed: int = 0

    def __post_init__(self) -> None:  # each a one-line error here, not a traceback while the scene is made
        checks = [("height", self.height >= 1, "at least 1"), ("width", self.width >= 1, "at least 1"),
                  ("bands", self.bands >= 2, "at least 2"), ("endmembers", 1 <= self.endmembers <= 6, "1 to 6"),
                  ("scale", self.scale > 0, "positive"), ("octaves", self.octaves >= 1, "at least 1"),
                  ("sharpness", self.sharpness > 0, "positive"), ("noise_std", self.noise_std >= 0, "not negative"),
                  ("labeled_purity", 0 <= self.labeled_purity <= 1, "between 0 and 1")]  # fmt: skip
        for key, ok, what in checks:
            if not ok:
                raise ConfigError(f"data.synth.{key} must be {what}, got {getattr(self, key)}")


@dataclass
class DataConfig:
    """Which pixels to train on and how they are split."""

    paths: list[str] = field(default_factory=list)  # cube files; empty = the embedded synthetic scene
    cube_key: str | None = None  # variable/dataset name of the cube (auto-detected when None)
    gt_key: str | None = None  # ... of the ground truth (auto-detected when None; optional)
    valid_fraction: float = 0.1  # of all pixels (labeled or not), for the validation log-likelihood
    test_fraction: float = 0.1  # held out for `evaluate`
    # binarise the normalised training inputs: "stochastic" draws x ~ Bernoulli(x) anew at every update (the
    # original's bernoulli_x; the validation pixels keep their values), "threshold" takes x > 0.5 (training and
    # validation), "none" keeps the values
    binarize: Literal["none", "stochastic", "threshold"] = "none"
    synth: SynthConfig = field(default_factory=SynthConfig)

    def __post_init__(self) -> None:
        if not (0 < self.valid_fraction < 1 and 0 <= self.test_fraction < 1):
            raise ValueError("valid_fraction must be in (0, 1) and test_fraction in [0, 1)")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError("valid_fraction + test_fraction must leave some pixels for training")


@dataclass
class ModelConfig:
    """The M1 networks (the paper's setting: 500-500 softplus MLPs and 50 latent units)."""

    hidden: list[int] = field(default_factory=lambda: [500, 500])  # encoder widths; the decoder mirrors them
    latent: int = 50
    activation: Literal["softplus", "tanh", "relu"] = "softplus"
    likelihood: Likelihood = "gaussian"  # p(x|z) of the band values, normalised to [0, 1] per band

    def __post_init__(self) -> None:
        if not self.hidden or any(width < 1 for width in self.hidden):
            raise ConfigError(f"model.hidden must be a non-empty list of widths of at least 1, got {self.hidden}")
        if self.latent < 1:
            raise ConfigError(f"model.latent must be at least 1, got {self.latent}")


@dataclass
class OptimConfig:
    """Adam with the paper code's betas (0.9, 0.999), and its Gaussian prior on the weights."""

    lr: float = 3e-4  # Adam learning rate
    weight_prior_sd: float = 1.0  # N(0, sd^2) prior on weights, its log density scaled by batch/train size (0: off)

    def __post_init__(self) -> None:
        if self.weight_prior_sd < 0:
            raise ConfigError(f"optim.weight_prior_sd must not be negative (0: off), got {self.weight_prior_sd}")


@dataclass
class EvalConfig:
    """The validation log-likelihood (all validation pixels at every evaluation)."""

    batch_size: int = 4096  # validation pixels per batch; the batches are split over the processes

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"eval.batch_size must be at least 1, got {self.batch_size}")


@dataclass
class LogConfig:
    """The original's text log and run-directory name (gpulearn_z_x.py), on top of metrics.csv and the console."""

    hook_txt: bool = False  # also write the original's hook.txt in the run directory: one line per evaluation
    # name the run directory as the original's logdir, under train.output_dir:
    # gpulearn_z_x_<data>_<latent>-<hidden>_<comment>_<unix time> (--resume auto continues the newest such one)
    auto_name: bool = False
    comment: str = ""  # the original's comment, a part of the auto-named run directory
    at_evaluations: bool = False  # log once per evaluation: train.log_every becomes the evaluation cadence in updates

    def __post_init__(self) -> None:
        # a part of one folder name: a "/" would put the run elsewhere, even outside train.output_dir
        if any(c in self.comment for c in "/\\\0"):
            raise ConfigError(f"log.comment becomes part of a folder name and cannot hold '/', '\\' or NUL, got "
                              f"{self.comment!r}")  # fmt: skip


@dataclass
class M1RunConfig:
    """A whole run: model, data, optimiser, evaluation and the shared Trainer options."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            output_dir="runs/m1-hyperspectral",
            max_steps=100_000,
            batch_size=1000,
            drop_last=False,
            log_every=10,
            eval_every=10,
            sample_every=500,
            checkpoint_every=500,
            early_stop_metric="valid_ll",
            early_stop_mode="max",
            patience=100,
        )  # fmt: skip
    )

    #: Keys of earlier versions, read under their new names (gencore.config.migrate_keys).
    renamed_keys: ClassVar[tuple[Renamed, ...]] = (
        Renamed("lr", "optim.lr"),
        Renamed("weight_prior_sd", "optim.weight_prior_sd"),
        Renamed("eval_batch", "eval.batch_size"),
    )


#: ``--preset`` of ``m1-hyperspectral train`` (the CLI applies one under --config, --set and the flags).
#: ``original``: the schedule of gpulearn_z_x.py, where a step of the log and of the patience is an epoch: an
#: evaluation every 10 epochs, training stops at the 1001st evaluation in a row without a better validation value
#: (the original's ``ll_valid_stats[1] > 1000``), epochs without end otherwise (its ``n_epochs=9999999``), the
#: last weights saved at every evaluation; the log once per evaluation, its hook.txt and its logdir name.
PRESETS: dict[str, list[str]] = {
    "original": [
        "train.eval_every=0", "train.eval_every_epochs=10", "train.patience=1001", "train.max_epochs=9999998",
        "train.max_steps=1000000000000", "train.checkpoint_every=0", "train.checkpoint_every_epochs=10",
        "log.hook_txt=true", "log.auto_name=true", "log.at_evaluations=true",
    ],
}

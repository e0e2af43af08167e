"""Configuration of a dcgan-tutorial run. Every field is a documented option (``--set key=value``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

from gencore.config import Renamed, check_betas
from gencore.train import TrainConfig


@dataclass
class ModelConfig:
    """Generator/discriminator architecture."""

    kind: Literal["dcgan", "fc"] = "dcgan"  # DCGAN (Radford et al. 2015) or the lesson's fully connected GAN
    image_size: int = 32  # a power of two from 16 to 256 (DCGAN); any size for "fc"
    channels: int = 1  # 1 = grey, 3 = colour
    nz: int = 100  # noise dimension
    ngf: int = 32  # generator width (DCGAN: channels of the last hidden layer; the reference uses 64)
    ndf: int = 32  # discriminator width (DCGAN: channels of the first layer; the reference uses 64)
    fc_hidden: tuple[int, int, int] = (256, 512, 1024)  # the lesson's FC GAN: 100 -> 256 -> 512 -> 1024 -> pixels

    def __post_init__(self) -> None:
        size = self.image_size
        if self.kind == "dcgan" and (size < 16 or size > 256 or size & (size - 1)):
            raise ValueError(f"image_size must be a power of two from 16 to 256 for DCGAN, got {size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {self.channels}")


@dataclass
class TipsConfig:
    """The lesson's training tips, each off by default except where the lesson itself uses it."""

    loss: Literal["nonsaturating", "hinge", "lsgan", "wgan-gp"] = "nonsaturating"  # GAN loss
    real_label: float = 1.0  # < 1 gives one-sided label smoothing (e.g. 0.9); fake labels stay 0
    instance_noise: float = 0.0  # std of Gaussian noise added to D's inputs (real and fake), annealed to 0
    instance_noise_steps: int = 2000  # updates over which the instance noise decays linearly to 0
    d_skip_below: float = 0.0  # skip D's update while its loss is below this (0 = never skip)
    gp_weight: float = 10.0  # gradient-penalty weight for loss = "wgan-gp"


@dataclass
class OptimConfig:
    """Adam for G and D (the lesson's settings); two learning rates are the two-time-scale rule (TTUR)."""

    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # discriminator learning rate (TTUR: larger than lr_g)
    beta1: float = 0.5  # Adam's betas
    beta2: float = 0.999
    ema_decay: float = 0.0  # EMA of the generator's weights, used for samples, evaluation and model/ (0 = off)

    def __post_init__(self) -> None:
        check_betas(self)
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"optim.ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class DataConfig:
    """Training data: a built-in set made from images scikit-image ships, a folder, or a torchvision set."""

    # textures | faces | photos | a folder path | mnist:ROOT, fashionmnist:ROOT, cifar10:ROOT, celeba:ROOT
    source: str = "textures"
    num_images: int = 4096  # crops drawn for "textures"/"photos" (faces: all 100 of lfw_subset, flipped)
    holdout_fraction: float = 0.2  # held out for evaluation (real-vs-real floor, Fréchet distance)


#: Training-time evaluation sized to the run (:func:`sized_eval`): runs shorter than EVAL_MIN_STEPS updates do not
#: evaluate unless asked, and the feature network gets one step per FEATURE_STEP_EVERY updates, from
#: MIN_FEATURE_STEPS to FULL_FEATURE_STEPS (the full length, also what `dcgan-tutorial evaluate` trains for a run
#: that did not evaluate). With these the evaluation stays under a tenth of a default run's time (README).
EVAL_MIN_STEPS = 1000
FEATURE_STEP_EVERY = 50
MIN_FEATURE_STEPS = 20
FULL_FEATURE_STEPS = 300


@dataclass
class EvalConfig:
    """The periodic diversity/coverage diagnostic and the final evaluation's feature network."""

    samples: int = 512  # generated images per evaluation
    batch_size: int = 256  # generated images per batch; the batches are split over the processes
    # training steps of the evaluation feature network (see features.py); unset = sized to the run: one per 50
    # updates, from 20 to 300 (`dcgan-tutorial evaluate` on a run that did not evaluate: 300)
    feature_steps: int | None = None
    # reuse a feature network trained before on the same data, classes, steps and seed (kept in the user's cache,
    # $GENCORE_CACHE or ~/.cache/gencore; verified before use); false = train one for this run
    feature_cache: bool = True
    # evaluate during and at the end of training (feature network, real-vs-real floor, eval/* metrics); unset =
    # when the run has at least 1,000 updates or eval.feature_steps is set; false = never (`evaluate` still works)
    during_training: bool | None = None

    def __post_init__(self) -> None:
        if self.samples < 2 or self.batch_size < 1 or (self.feature_steps is not None and self.feature_steps < 0):
            raise ValueError("eval.samples must be >= 2, eval.batch_size >= 1 and eval.feature_steps >= 0")


def _train_defaults() -> TrainConfig:
    return TrainConfig(
        output_dir="runs/dcgan-tutorial", max_steps=3000, batch_size=64, log_every=50, sample_every=500,
        eval_every=500, checkpoint_every=500,
        channels_last=True,  # NHWC convolutions: 1.17x faster updates on CPU, same metrics over seeds (README "Speed")
    )  # fmt: skip


@dataclass
class GANConfig:
    """A whole run: model, tips, optimiser, data, evaluation and the shared Trainer options."""

    model: ModelConfig = field(default_factory=ModelConfig)
    tips: TipsConfig = field(default_factory=TipsConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=_train_defaults)

    #: Keys of earlier versions, read under their new names (gencore.config.migrate_keys).
    renamed_keys: ClassVar[tuple[Renamed, ...]] = (
        Renamed("tips.lr_g", "optim.lr_g"), Renamed("tips.lr_d", "optim.lr_d"),
        Renamed("tips.beta1", "optim.beta1"), Renamed("tips.beta2", "optim.beta2"),
        Renamed("tips.ema_decay", "optim.ema_decay"), Renamed("eval_samples", "eval.samples"),
        Renamed("eval_batch", "eval.batch_size"), Renamed("feature_steps", "eval.feature_steps"),
    )  # fmt: skip


def sized_eval(config: GANConfig) -> EvalConfig:
    """``config.eval`` with the values that default to the run's length filled in: ``during_training`` (true from
    EVAL_MIN_STEPS updates on, or when ``feature_steps`` is set) and, when the run evaluates, ``feature_steps``
    (one per FEATURE_STEP_EVERY updates, clamped to [MIN_FEATURE_STEPS, FULL_FEATURE_STEPS]). Values set by the
    user are kept as they are; a run that does not evaluate keeps ``feature_steps`` unset."""
    e, steps = config.eval, config.train.max_steps
    during = e.during_training
    if during is None:
        during = steps >= EVAL_MIN_STEPS or e.feature_steps is not None
    feature_steps = e.feature_steps
    if during and feature_steps is None:
        feature_steps = min(max(steps // FEATURE_STEP_EVERY, MIN_FEATURE_STEPS), FULL_FEATURE_STEPS)
    return replace(e, during_training=during, feature_steps=feature_steps)

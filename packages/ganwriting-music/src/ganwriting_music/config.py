"""Configuration of a ganwriting-music run.

The defaults are the original project's values (128×128 grey images, batch 92, Adam with learning rates 1e-4 for
the generator, 1e-5 for the discriminator and the recognizer, recognizer weight 2.5 with label smoothing 0.1,
gradient penalty 0.3). ``PRESETS["cpu"]`` is the small configuration that trains on a CPU thread in about 40 minutes
at 64×64, 30 epochs (the README's budget; ``make demo`` stops it at 10 epochs).
Everything is a config key: ``--set optim.lr_g=2e-4``, or a TOML/JSON/YAML file with ``--config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from gencore.augment import parse_policy
from gencore.config import Renamed, check_betas
from gencore.errors import ConfigError
from gencore.train import TrainConfig

#: The original's 20 classes (SMuFL glyph names), in the sorted order that gives the label indices.
CLASSES: tuple[str, ...] = tuple(sorted([
    "accidentalFlat", "accidentalNatural", "accidentalSharp", "barlineSingle", "beam", "cClef", "fClef",
    "flag16thDown", "flag16thUp", "flag8thDown", "flag8thUp", "gClef", "noteheadBlack", "noteheadHalf",
    "noteheadWhole", "rest8th", "restHalf", "restQuarter", "restWhole", "stem",
]))  # fmt: skip

#: The music fonts that the verovio wheel ships; each one is a "writer" of the embedded data.
FONTS: tuple[str, ...] = ("Bravura", "Leipzig", "Leland", "Gootville", "Petaluma")


@dataclass
class DataConfig:
    """Where the symbols come from and how they are prepared."""

    # "fonts" = the embedded default (glyphs of the verovio fonts, augmented); otherwise a path: an index file
    # (path<TAB>class[<TAB>writer]), a folder of class folders (<root>/<class>/*.png or <root>/<writer>/<class>/),
    # or a HOMUS folder (one .txt per symbol).
    source: str = "fonts"
    image_size: int = 128  # square grey images (the original: 128×128)
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    fonts: list[str] = field(default_factory=lambda: list(FONTS[:4]))  # writers the GAN trains on
    holdout_writers: list[str] = field(default_factory=lambda: ["Petaluma"])  # never seen by GAN or classifier
    samples_per_class: int = 48  # embedded data: augmented renderings per (font, class)
    test_fraction: float = 0.1  # held out per (writer, class) for evaluation (the original had no split)
    # handwriting-like augmentation of the embedded glyphs
    rotation: float = 8.0  # degrees, uniform in ±rotation
    scale: tuple[float, float] = (0.8, 1.05)
    shear: float = 0.15
    elastic: float = 0.035  # amplitude of the smooth random displacement, in units of the image side
    elastic_grid: int = 5  # control points per side of the displacement field
    stroke: tuple[int, int] = (-1, 2)  # stroke width change in pixels of the 2× master raster (erode/dilate)
    # embedded data: strength of each font's fixed habits (slant, tilt, width/height, stroke width; see
    # data.writer_pen): 0 = every font gets the same random augmentation, so the "writers" differ only in their
    # glyph designs, which the augmentation mostly hides
    writer_pen: float = 0.0
    homus_stroke: int = 3  # HOMUS: line width in pixels at image_size (MusicSymbolClassifier uses 3)
    bad_files: str = "raise"  # "raise" or "skip" unreadable images

    def __post_init__(self) -> None:
        self.scale = tuple(self.scale)
        self.stroke = tuple(self.stroke)
        if self.image_size < 8:
            raise ConfigError(f"data.image_size must be at least 8, got {self.image_size}")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ConfigError("data.classes must be a non-empty list without repeats")
        if self.samples_per_class < 2:
            raise ConfigError(f"data.samples_per_class must be at least 2, got {self.samples_per_class}")
        if not 0 <= self.test_fraction < 1:
            raise ConfigError(f"data.test_fraction must be in [0, 1), got {self.test_fraction}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ConfigError(f"data.scale must be (low, high) with 0 < low <= high, got {self.scale}")
        if self.stroke[0] > self.stroke[1]:
            raise ConfigError(f"data.stroke must be (low, high), got {self.stroke}")
        if self.bad_files not in ("raise", "skip"):
            raise ConfigError(f"data.bad_files must be 'raise' or 'skip', got {self.bad_files!r}")
        for name in [*self.fonts, *self.holdout_writers]:
            if self.source == "fonts" and name not in FONTS:
                raise ConfigError(f"unknown font {name!r} (the verovio wheel ships {', '.join(FONTS)})")
        both = set(self.fonts) & set(self.holdout_writers)
        if both:
            raise ConfigError(f"writer(s) {sorted(both)} are both in data.fonts and data.holdout_writers")


@dataclass
class ModelConfig:
    """Generator (style encoder + class + noise -> AdaIN decoder), discriminator and recognizer widths."""

    k_refs: int = 8  # reference images of one writer fed to the style encoder (GANwriting: 15)
    style_dim: int = 128
    class_dim: int = 64  # class embedding size
    noise_dim: int = 32
    noise_std: float = 1.0  # std of the generator noise (the original: 3)
    gen_channels: int = 64  # widest decoder layer is gen_channels * 4
    style_channels: int = 0  # width of the style encoder (0 = gen_channels); it runs on B·K images
    dis_channels: int = 64
    rec_channels: int = 32
    writer_head: bool = True  # discriminator also classifies the writer (GANwriting's W) and G matches it
    class_projection: bool = True  # class-conditional D (projection); the original's D is unconditional
    rec_downsample: int = 2  # the recognizer reads images average-pooled by this factor (1 = full resolution)
    # how many decoder blocks, coarsest first, read the class template's features (U-Net skips at S/16, S/8, S/4,
    # S/2): 4 = all, 0 = the class enters by its embedding alone (the original: one-hot planes, no template)
    template_skips: int = 4
    # a linear head that names the writer from the style vector (trained with G, weight loss.w_style_writer);
    # not in the original, whose style encoder had no writer supervision of its own
    style_writer_head: bool = False

    def __post_init__(self) -> None:
        for name in ("k_refs", "style_dim", "class_dim", "noise_dim", "gen_channels", "dis_channels", "rec_channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        if self.rec_downsample < 1:
            raise ConfigError(f"model.rec_downsample must be at least 1, got {self.rec_downsample}")
        if not 0 <= self.template_skips <= 4:
            raise ConfigError(f"model.template_skips must be in 0..4, got {self.template_skips}")
        if self.style_channels < 0:
            raise ConfigError(f"model.style_channels must be >= 0, got {self.style_channels}")
        if self.noise_std < 0:
            raise ConfigError(f"model.noise_std must be >= 0, got {self.noise_std}")


@dataclass
class LossConfig:
    """Loss weights. G: w_dis·adversarial + w_rec·CE(R(fake), requested class) + w_writer·CE(W(fake), writer)
    + w_l1·|fake - a real image of that writer and class|. D: adversarial + w_gp·gradient penalty + writer CE."""

    w_dis: float = 1.0
    w_rec: float = 2.5
    w_writer: float = 1.0
    w_l1: float = 0.0  # the original's default; the cpu preset turns it on (paired target of the same writer)
    w_gp: float = 0.3
    label_smoothing: float = 0.1
    # extra weight of the writer term in G's loss only (G: w_writer * w_writer_gen; D keeps w_writer)
    w_writer_gen: float = 1.0
    # Not in the original (0 = off): mode seeking on the noise (Mao et al. 2019), bounded at ms_tau like Yang et
    # al. 2019's diversity-sensitive loss: -min(|G(z1) - G(z2)| / |z1 - z2|, ms_tau) for the same class and refs
    w_ms: float = 0.0
    # 0.15 ≈ the mean |difference| of two real images of one font and class (0.17-0.20 at 64×64) over the mean
    # |z1 - z2| of unit-variance noise (1.13): no reward for more variation than the data has
    ms_tau: float = 0.15
    ms_pool: int = 1  # compare the two images average-pooled by this factor (1 = pixel by pixel, as in MSGAN)
    # Not in the original (0 = off): style reconstruction, |E(G(refs, y, z)) - E(refs)| with the style encoder E
    # detached, relative to the spread of the batch's reference styles
    w_style: float = 0.0
    w_style_writer: float = 1.0  # CE of the style writer head on the references (only with model.style_writer_head)
    # Not in the original ("" = off): DiffAugment (Zhao et al. 2020) on everything D and R see, real and generated
    # alike, e.g. "translation,cutout" (gencore.augment); shifted-in and cut-out pixels are background
    diff_augment: str = ""
    augment_translation: float = 0.125  # largest shift, as a fraction of the image size
    augment_cutout: float = 0.25  # side of the cut-out square, as a fraction of the image size

    def __post_init__(self) -> None:
        for name in (
            "w_dis",
            "w_rec",
            "w_writer",
            "w_l1",
            "w_gp",
            "w_writer_gen",
            "w_ms",
            "ms_tau",
            "w_style",
            "w_style_writer",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        parse_policy(self.diff_augment)
        for name in ("augment_translation", "augment_cutout"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"loss.{name} is a fraction of the image size in [0, 1), got {getattr(self, name)}")
        if self.ms_pool < 1:
            raise ConfigError(f"loss.ms_pool must be at least 1, got {self.ms_pool}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"loss.label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass
class OptimConfig:
    """Adam for the three networks; learning rates are floats (the original parsed them as integers)."""

    lr_g: float = 1e-4  # learning rate of the generator (with its style encoder)
    lr_d: float = 1e-5  # learning rate of the discriminator (with its writer head)
    lr_r: float = 1e-5  # learning rate of the recognizer
    beta1: float = 0.5  # Adam's betas, the same for the three
    beta2: float = 0.999
    # exponential moving average of the generator's weights, used for samples, evaluations and the saved model
    # (0 = off, as in the original)
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        check_betas(self)
        for name in ("lr_g", "lr_d", "lr_r"):
            value = getattr(self, name)
            if not isinstance(value, float) or value <= 0:
                raise ConfigError(f"optim.{name} must be a positive number, got {value!r}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"optim.ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class EvalConfig:
    """The evaluation of generated images by the run's recognizer (and the real test images beside them)."""

    samples: int = 200  # generated images per evaluation
    batch_size: int = 64  # images per generator call; the batches are split over the processes

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"eval.batch_size must be at least 1, got {self.batch_size}")
        if self.samples < 2:
            raise ConfigError(f"eval.samples must be at least 2, got {self.samples}")


def _train_defaults() -> TrainConfig:
    # The original counts in epochs: the run length is max_epochs (max_steps is a ceiling; --max-steps shortens a
    # run); checkpoint/eval/sample every 10 epochs are its MODEL_SAVE_EPOCH/EVAL_EPOCH; every checkpoint is kept
    # (each is a start epoch of `train N`).
    return TrainConfig(
        output_dir="runs/ganwriting-music", max_steps=10**9, max_epochs=100, batch_size=92, log_every=20,
        checkpoint_every=0, keep_checkpoints=0, eval_every=0, sample_every=0, checkpoint_every_epochs=10,
        eval_every_epochs=10, sample_every_epochs=10,
    )  # fmt: skip


@dataclass
class GanwritingConfig:
    """A whole run. It counts in epochs: ``train.max_epochs``, ``train.checkpoint_every_epochs`` (each checkpoint
    is a start epoch of ``train N``), ``train.eval_every_epochs`` and ``train.sample_every_epochs``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=_train_defaults)

    #: Keys of earlier versions, read under their new names (gencore.config.migrate_keys).
    renamed_keys: ClassVar[tuple[Renamed, ...]] = (
        Renamed("optim.lr_gen", "optim.lr_g"), Renamed("optim.lr_dis", "optim.lr_d"),
        Renamed("optim.lr_rec", "optim.lr_r"), Renamed("optim.betas", ("optim.beta1", "optim.beta2")),
        Renamed("ema_decay", "optim.ema_decay"), Renamed("eval_samples", "eval.samples"),
        Renamed("eval_batch", "eval.batch_size"), Renamed("epochs", "train.max_epochs"),
        Renamed("save_every_epochs", "train.checkpoint_every_epochs"),
        # the earlier key set both cadences (an evaluation and a sample grid)
        Renamed("eval_every_epochs", ("train.eval_every_epochs", "train.sample_every_epochs"), lambda v: (v, v)),
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.train.max_epochs is None:
            raise ConfigError("train.max_epochs must be set: ganwriting-music counts its run in epochs")
        if self.train.checkpoint_every_epochs < 1:
            raise ConfigError(
                f"train.checkpoint_every_epochs must be at least 1 (each checkpoint is a start epoch), got "
                f"{self.train.checkpoint_every_epochs}"
            )
        if self.data.image_size < 16 or self.data.image_size % 16:
            raise ConfigError(
                f"data.image_size must be a multiple of 16 (the networks halve it four times), got "
                f"{self.data.image_size}"
            )


#: Named starting points; ``--preset NAME`` applies these ``key=value`` overrides before ``--config``/``--set``.
PRESETS: dict[str, list[str]] = {
    "original": [],
    "cpu": [
        "data.image_size=64", "data.samples_per_class=32", "train.batch_size=32", "model.k_refs=4",
        "model.gen_channels=16", "model.style_channels=16", "model.dis_channels=32", "model.rec_channels=16",
        "model.style_dim=64", "model.class_dim=32", "optim.lr_d=2e-4", "optim.lr_g=2e-4", "optim.lr_r=5e-4",
        "loss.w_l1=5.0", "train.max_epochs=30", "train.checkpoint_every_epochs=5", "train.eval_every_epochs=5",
        "train.sample_every_epochs=5",
        # against the collapse to one picture per class (README "Results"): fonts with fixed habits, so that
        # there is a style to follow; the writer named from the style vector; mild mode seeking on the noise,
        # compared at quarter resolution; samples from the weight-averaged generator
        "data.writer_pen=1.0", "model.style_writer_head=true", "loss.w_ms=1.0", "loss.ms_pool=4",
        "optim.ema_decay=0.99",
    ],
}  # fmt: skip

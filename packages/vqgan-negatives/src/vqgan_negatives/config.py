"""Configuration of vqgan-negatives runs. Every field is a documented option (``--set key=value``).

Two runs: the first stage (:class:`VQGANConfig`: autoencoder + codebook + discriminator) and the conditional prior
(:class:`TransformerRunConfig`: a GPT over the codes of a frozen first stage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from gencore.config import Renamed, check_betas
from gencore.train import TrainConfig


@dataclass
class RenderConfig:
    """Molecule depictions rendered with RDKit from the SMILES list RDKit ships (NCI, 5,000 molecules)."""

    size: int = 64  # output side in pixels (square)
    supersample: int = 3  # RDKit draws at size * supersample, then the image is downscaled (anti-aliasing)
    line_width: float = 2.0  # bond line width in output pixels
    max_rotation: float = 180.0  # each molecule is rotated by a random angle in [-max_rotation, max_rotation]
    atom_labels: bool = True  # draw heteroatom labels (O, N, Cl, ...); False draws the bare skeleton
    colour: bool = False  # RDKit's coloured atom palette; False = black and white


@dataclass
class DataConfig:
    """Training images: RDKit molecule depictions ("molecules") or a folder of images (any layout, recursive)."""

    source: str = "molecules"  # "molecules" or a folder path
    num_images: int = 2000  # molecules rendered (first N of the SMILES list, shuffled by seed); folder: all
    channels: int = 1  # 1 = grey, 3 = colour
    holdout_fraction: float = 0.1  # held out for evaluation (PSNR, codebook usage on unseen images)
    render: RenderConfig = field(default_factory=RenderConfig)

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")


@dataclass
class QuantizerConfig:
    """The codebook and its health remedies (see quantize.py)."""

    codebook_size: int = 256  # number of codes
    codebook_dim: int = 8  # dimension of a code; the encoder output is projected down to it (1x1 conv)
    beta: float = 0.25  # commitment weight: beta * ||z - sg(e)||^2 (on the commitment term, not the codebook term)
    beta_on_codebook: bool = False  # taming's "legacy" loss: ||sg(e) - z||^2 + beta * ||e - sg(z)||^2 (not with ema)
    l2_normalize: bool = True  # compare codes and encoder outputs on the unit sphere (cosine similarity)
    ema: bool = False  # update codes as running means of their assigned vectors instead of by gradient
    ema_decay: float = 0.99
    kmeans_init: bool = False  # initialise the codebook by k-means on the first training batch
    kmeans_iters: int = 10
    restart_dead: bool = True  # re-seed codes that went unused with encoder outputs of the current batch
    restart_every: int = 20  # check for dead codes every N training forward passes
    dead_threshold: float = 0.03  # a code is dead when its running mean of assignments per batch falls below this
    usage_decay: float = 0.95  # decay of that running mean

    def __post_init__(self) -> None:
        if self.codebook_size < 2 or self.codebook_dim < 1:
            raise ValueError("codebook_size must be >= 2 and codebook_dim >= 1")
        if not 0.0 < self.ema_decay < 1.0 or not 0.0 < self.usage_decay < 1.0:
            raise ValueError("ema_decay and usage_decay must be in (0, 1)")
        if self.beta_on_codebook and self.ema:
            raise ValueError("beta_on_codebook needs a codebook term: it cannot be combined with ema")


@dataclass
class VQModelConfig:
    """Encoder/decoder architecture (taming's layout, scaled down) plus the quantizer."""

    in_channels: int = 1
    resolution: int = 64  # training image side; attention resolutions refer to feature-map sides
    ch: int = 16  # channels of the first level (taming: 128)
    ch_mult: tuple[int, ...] = (1, 2, 2, 4)  # one level per entry; len - 1 downsamplings (f = 2^(len-1))
    num_res_blocks: int = 1  # residual blocks per level in the encoder (the decoder has one more, as in taming)
    attn_resolutions: tuple[int, ...] = (8,)  # feature-map sides with self-attention (besides the middle block)
    z_channels: int = 64  # encoder output channels before the projection to codebook_dim
    dropout: float = 0.0
    stem_channels: int | None = None  # output of the encoder's first conv; None = ch * ch_mult[0] (taming: ch)
    asymmetric_downsample: bool = False  # pad right/bottom by 1, then a stride-2 conv without padding (taming)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)

    def __post_init__(self) -> None:
        f = 2 ** (len(self.ch_mult) - 1)
        if not self.ch_mult or self.resolution % f:
            raise ValueError(f"resolution {self.resolution} must be divisible by 2^(len(ch_mult)-1) = {f}")
        if self.stem_channels is not None and self.stem_channels < 1:
            raise ValueError(f"stem_channels must be >= 1 or None, got {self.stem_channels}")

    @property
    def code_side(self) -> int:
        """Side of the code grid (resolution / f)."""
        return self.resolution // 2 ** (len(self.ch_mult) - 1)


@dataclass
class DiscriminatorConfig:
    """PatchGAN discriminator (pix2pix NLayer layout, as in taming)."""

    in_channels: int = 1  # set from the data by the training code
    ndf: int = 32  # channels of the first layer (taming: 64)
    n_layers: int = 3


@dataclass
class LossConfig:
    """Weights of the first-stage losses and the delayed adversarial start."""

    l1_weight: float = 1.0
    perceptual_weight: float = 1.0
    # perceptual loss; auto: LPIPS if its weights are on disk, else random VGG features
    perceptual: Literal["auto", "lpips", "random", "none"] = "auto"
    vgg_weights: str | None = None  # torchvision VGG16 weights file; default: the torch hub cache if present
    lpips_weights: str | None = None  # LPIPS linear-head file (vgg.pth); default: the lpips/torchmetrics package
    codebook_weight: float = 1.0
    disc_weight: float = 0.8  # multiplies the adaptive weight
    disc_start: int = 1000  # updates before the discriminator and the generator's GAN term start
    disc_loss: Literal["hinge", "nonsaturating"] = "hinge"


@dataclass
class OptimConfig:
    """Adam for the autoencoder (with its codebook) and for the discriminator; taming: Adam(0.5, 0.9) for both."""

    lr_g: float = 2e-4  # learning rate of the autoencoder and its codebook
    lr_d: float = 2e-4  # learning rate of the discriminator
    beta1: float = 0.5  # Adam's betas
    beta2: float = 0.9

    def __post_init__(self) -> None:
        check_betas(self)


@dataclass
class EvalConfig:
    """PSNR and codebook usage on held-out images at each evaluation."""

    samples: int = 512  # held-out images evaluated (at most the hold-out size)
    batch_size: int = 64  # held-out images per batch; the batches are split over the processes

    def __post_init__(self) -> None:
        if self.samples < 1 or self.batch_size < 1:
            raise ValueError("eval.samples and eval.batch_size must be at least 1")


def _vq_train_defaults() -> TrainConfig:
    return TrainConfig(
        output_dir="runs/vqgan-negatives/vqgan", max_steps=3000, batch_size=16, log_every=50, sample_every=500,
        eval_every=500, checkpoint_every=500,
    )  # fmt: skip


@dataclass
class VQGANConfig:
    """A first-stage run: data, model, discriminator, losses and the shared Trainer options."""

    data: DataConfig = field(default_factory=DataConfig)
    model: VQModelConfig = field(default_factory=VQModelConfig)
    disc: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=_vq_train_defaults)

    #: Keys of earlier versions, read under their new names (gencore.config.migrate_keys).
    renamed_keys: ClassVar[tuple[Renamed, ...]] = (
        Renamed("loss.lr", "optim.lr_g"), Renamed("loss.lr_disc", "optim.lr_d"),
        Renamed("loss.beta1", "optim.beta1"), Renamed("loss.beta2", "optim.beta2"),
        Renamed("eval_images", "eval.samples"), Renamed("eval_batch", "eval.batch_size"),
    )  # fmt: skip


@dataclass
class ConditionConfig:
    """How a training pair's conditioning image is made from the target molecule image.

    Perlin images are blobby; to teach the prior to turn blobs into strokes, the conditioning image of a
    molecule is its blurred ink map, contrast-stretched, mixed with some Perlin noise so that pure noise at
    generation time is not out of distribution.
    """

    blur_sigma: float = 3.0  # Gaussian blur of the target, in pixels
    noise_mix: float = 0.3  # weight of the Perlin noise mixed in (0 = none)
    perlin_scale: float = 16.0
    perlin_octaves: int = 3


@dataclass
class GPTConfig:
    """A minGPT-style decoder over [conditioning codes | target codes]."""

    vocab_size: int = 512  # 2 * codebook_size: conditioning codes are offset by codebook_size (own embeddings)
    block_size: int = 128  # 2 * code_side^2
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.1


@dataclass
class PriorOptimConfig:
    """AdamW of the prior, betas (0.9, 0.95) as in minGPT."""

    lr: float = 3e-4  # learning rate
    weight_decay: float = 0.01


@dataclass
class PriorEvalConfig:
    """The validation loss on held-out pairs (all of them at every evaluation)."""

    batch_size: int = 128  # held-out pairs per batch; the batches are split over the processes

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"eval.batch_size must be at least 1, got {self.batch_size}")


def _gpt_train_defaults() -> TrainConfig:
    return TrainConfig(
        output_dir="runs/vqgan-negatives/transformer", max_steps=2000, batch_size=32, log_every=50,
        sample_every=500, eval_every=500, checkpoint_every=500,
    )  # fmt: skip


@dataclass
class TransformerRunConfig:
    """A conditional-prior run on top of a trained first stage (``vqgan``: its run or model directory)."""

    vqgan: str = "runs/vqgan-negatives/vqgan"  # the trained first stage: its run or model directory
    data: DataConfig = field(default_factory=DataConfig)
    condition: ConditionConfig = field(default_factory=ConditionConfig)
    gpt: GPTConfig = field(default_factory=GPTConfig)
    optim: PriorOptimConfig = field(default_factory=PriorOptimConfig)
    temperature: float = 1.0  # sampling during training (sample grids)
    top_k: int | None = 100
    eval: PriorEvalConfig = field(default_factory=PriorEvalConfig)
    train: TrainConfig = field(default_factory=_gpt_train_defaults)

    #: Keys of earlier versions, read under their new names (gencore.config.migrate_keys).
    renamed_keys: ClassVar[tuple[Renamed, ...]] = (
        Renamed("lr", "optim.lr"), Renamed("weight_decay", "optim.weight_decay"),
        Renamed("eval_batch", "eval.batch_size"),
    )

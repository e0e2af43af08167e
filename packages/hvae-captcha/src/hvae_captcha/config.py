"""Configuration of an hvae-captcha run, and the layer language that builds the model.

The architecture is written as in the original project: ``outer_config`` is a list of ``(kind, arg)`` pairs for the
input block q(z1|x) (the output block p(x|z1) mirrors it), ``inner_config`` a list of such lists, one per deeper
latent level. Kinds:

=============  =====  ======================================================================================
kind           arg    layer
=============  =====  ======================================================================================
conv           n      3×3 convolution to n channels + activation
conv-bn        n      3×3 convolution + batch norm + activation
convt          n      3×3 transposed convolution (stride 1) to n channels + activation  (inner blocks only)
convt-bn       n      the same + batch norm                                              (inner blocks only)
pool           k      k×k max-pooling
upsample       k      ×k nearest-neighbour upsampling                                    (inner blocks only)
skip-up        i      remember the current activation as skip i                          (inner blocks only)
skip-down      i      concatenate skip i and mix back to the current width (1×1 conv)    (inner blocks only)
=============  =====  ======================================================================================

In files: ``outer_config = [["conv-bn", 32], ["pool", 2]]`` (TOML or JSON); on the command line
``--set 'model.outer_config=[["conv", 32], ["pool", 2]]'`` or the short form ``--outer "conv 32, pool 2"`` /
``--inner "conv 32, pool 2; conv 64"`` (``;`` separates inner blocks, see :func:`parse_layers`).
Every block is checked when the config is built: unknown kinds, skip indices with no earlier ``skip-up``,
skips joining activations of different sizes and sizes pooled to nothing raise :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from gencore.config import Added, Renamed, check_betas
from gencore.errors import ConfigError
from gencore.train import TrainConfig

Layer = tuple[str, int]
Block = list[Layer]

CONV_KINDS = ("conv", "conv-bn", "convt", "convt-bn")
INNER_KINDS = (*CONV_KINDS, "pool", "upsample", "skip-up", "skip-down")
OUTER_KINDS = ("conv", "conv-bn", "pool")

#: The original's character vocabulary for conditioning (lower-case letters plus the digits 2 and 6).
ORIGINAL_VOCABULARY = "qwertyuiopasdfghjklzxcvbnm26"


# --- the layer language --------------------------------------------------------------------------------------


def parse_layers(text: str) -> list[Block]:
    """Parse the short form ``"conv 32, pool 2; conv 64"`` into blocks (``;`` separates blocks).

    Within a block, kinds and integers alternate; ``conv:32`` and ``(conv, 32)`` read the same. Returns a list of
    blocks (one for an outer config).
    """
    blocks: list[Block] = []
    for chunk in text.split(";"):
        tokens = re.findall(r"[A-Za-z][A-Za-z-]*|-?\d+|\S", chunk)
        tokens = [t for t in tokens if t not in "(),:'\"[]"]
        if len(tokens) % 2:
            raise ConfigError(f"cannot read layers {chunk.strip()!r}: expected 'KIND N, KIND N, ...'")
        block: Block = []
        for kind, arg in zip(tokens[::2], tokens[1::2]):
            if not re.fullmatch(r"-?\d+", arg) or re.fullmatch(r"-?\d+", kind):
                raise ConfigError(f"cannot read layers {chunk.strip()!r}: expected 'KIND N', got {kind!r} {arg!r}")
            block.append((kind, int(arg)))
        blocks.append(block)
    return blocks


@dataclass(frozen=True)
class LayerShape:
    """One row of a traced block: the layer and the activation shape after it."""

    kind: str
    arg: int
    channels: int
    height: int
    width: int


def trace_block(
    block: Block, channels: int, size: tuple[int, int], key: str, allowed: tuple[str, ...] = INNER_KINDS
) -> list[LayerShape]:
    """Check ``block`` and return the activation shape after every layer, starting from ``channels`` × ``size``.

    ``key`` names the block in error messages (``model.inner_config[0]``).
    """
    h, w = size
    c = channels
    skips: dict[int, tuple[int, int, int, int]] = {}  # index -> (channels, height, width, position)
    rows = []
    for i, layer in enumerate(block):
        where = f"{key}[{i}]"
        if not isinstance(layer, (tuple, list)) or len(layer) != 2:
            raise ConfigError(f"{where}: expected a (kind, arg) pair, got {layer!r}")
        kind, arg = layer
        if kind not in INNER_KINDS:
            raise ConfigError(f"{where}: unknown layer kind {kind!r} (known: {', '.join(INNER_KINDS)})")
        if kind not in allowed:
            raise ConfigError(f"{where}: {kind!r} is not allowed here (allowed: {', '.join(allowed)})")
        if not isinstance(arg, int) or isinstance(arg, bool):
            raise ConfigError(f"{where}: the argument of {kind!r} must be an integer, got {arg!r}")
        if kind in CONV_KINDS:
            if arg < 1:
                raise ConfigError(f"{where}: {kind} needs at least 1 channel, got {arg}")
            c = arg
        elif kind in ("pool", "upsample"):
            if arg < 1:
                raise ConfigError(f"{where}: {kind} factor must be at least 1, got {arg}")
            if kind == "pool":
                if h // arg < 1 or w // arg < 1:
                    raise ConfigError(f"{where}: pool {arg} of a {h}×{w} activation leaves nothing")
                h, w = h // arg, w // arg
            else:
                h, w = h * arg, w * arg
        elif kind == "skip-up":
            if arg < 0:
                raise ConfigError(f"{where}: skip index must be >= 0, got {arg}")
            if arg in skips:
                raise ConfigError(f"{where}: skip index {arg} is already used by {key}[{skips[arg][3]}]")
            skips[arg] = (c, h, w, i)
        else:  # skip-down
            if arg not in skips:
                known = ", ".join(str(k) for k in sorted(skips)) or "none"
                raise ConfigError(
                    f"{where}: ('skip-down', {arg}) is out of range: no earlier ('skip-up', {arg}) in this block "
                    f"(skip-up indices so far: {known})"
                )
            sc, sh, sw, at = skips[arg]
            if (sh, sw) != (h, w):
                raise ConfigError(
                    f"{where}: ('skip-down', {arg}) joins a {h}×{w} activation with ('skip-up', {arg}) at "
                    f"{key}[{at}], which is {sh}×{sw}: pool and upsample between them must cancel"
                )
        rows.append(LayerShape(kind, arg, c, h, w))
    return rows


def mirror_block(block: Block, in_channels: int) -> list[tuple[str, int, int]]:
    """The mirror of ``block`` (which starts from ``in_channels``) as ``(kind, arg, out_channels)`` triples.

    Order reversed; every convolution c_in→c_out becomes a transposed convolution c_out→c_in (a transposed one
    becomes a plain one), pooling becomes upsampling (to the exact size the forward block had) and vice versa,
    ``skip-up i`` and ``skip-down i`` swap roles. The mirror ends with ``in_channels`` channels.
    """
    channels_before = []
    c = in_channels
    for kind, arg in block:
        channels_before.append(c)
        if kind in CONV_KINDS:
            c = arg
    swap = {"conv": "convt", "conv-bn": "convt-bn", "convt": "conv", "convt-bn": "conv-bn", "pool": "upsample",
            "upsample": "pool", "skip-up": "skip-down", "skip-down": "skip-up"}  # fmt: skip
    return [(swap[kind], arg, channels_before[i]) for i, (kind, arg) in reversed(list(enumerate(block)))]


def _as_block(value: object, key: str) -> Block:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key}: expected a list of (kind, arg) pairs, got {value!r}")
    out = []
    for i, layer in enumerate(value):
        if not isinstance(layer, (list, tuple)) or len(layer) != 2:
            raise ConfigError(f"{key}[{i}]: expected a (kind, arg) pair, got {layer!r}")
        out.append((layer[0], layer[1]))
    return out


# --- the config dataclasses ------------------------------------------------------------------------------------

COMPACT_OUTER: Block = [("conv", 32), ("pool", 2), ("conv", 64), ("pool", 2), ("conv", 64), ("pool", 2), ("conv", 64)]
COMPACT_INNER: list[Block] = [
    [("pool", 2), ("conv", 64), ("conv", 64)],
    [("pool", 2), ("conv", 64)],
]

ORIGINAL_OUTER: Block = [("conv-bn", 32), ("pool", 2), ("conv-bn", 64), ("pool", 2), ("conv-bn", 64)]
ORIGINAL_INNER: list[Block] = [
    [("conv-bn", 32), ("skip-up", 0), ("pool", 2), ("conv-bn", 64), ("skip-up", 1), ("pool", 2),
     ("conv-bn", 64), ("conv-bn", 64), ("upsample", 2), ("skip-down", 1), ("conv-bn", 32),
     ("upsample", 2), ("skip-down", 0), ("conv-bn", 1)],
]  # fmt: skip


@dataclass
class ModelConfig:
    """Architecture of the hierarchical VAE (see the module docstring for the layer language)."""

    channels: int = 1  # 1 = grey (the default, for CPU speed), 3 = RGB (the original)
    height: int = 32  # model input size; images of any size are resized to it (the original: 50×250)
    width: int = 128
    outer_config: list[tuple[str, int]] = field(default_factory=lambda: list(COMPACT_OUTER))
    inner_config: list[list[tuple[str, int]]] = field(default_factory=lambda: [list(b) for b in COMPACT_INNER])
    # "spatial": each level's latent is a map of latent_dim channels at its block's output resolution, the
    # generation inner blocks mirror the inference ones. "vector": the original's latent vectors of latent_dim,
    # fully connected layers to and from inner_size maps, inference and generation inner blocks built identically.
    latent: Literal["spatial", "vector"] = "spatial"
    latent_dim: int = 8
    inner_size: tuple[int, int] = (24, 24)  # vector latents only: the map each inner block starts from
    activation: Literal["relu", "silu", "elu", "lrelu"] = "silu"
    spectral_norm: bool = False  # on the inference path's convolutions and linear layers (the original: True)
    # Which layers spectral_norm covers. "inference": every convolution and linear layer of the inference path.
    # "original": as the original applied it (hvae-captcha import-original): the inference path less its skip-down
    # mixes, plus the fully connected layers before and after each generation inner block (vector latents).
    spectral_norm_scope: Literal["inference", "original"] = "inference"
    likelihood: Literal["logistic", "gaussian", "bernoulli"] = "logistic"  # bernoulli binarizes the pixels
    logvar_bound: float = 8.0  # log-variances are soft-clamped to (-bound, bound): no exp overflow, no NaN
    # (0 = not clamped, as the original: imported models only; training may then overflow)
    # Pixels the inference path sees: "signed" = the data's [-1, 1]; "unit" = mapped to [0, 1] first, as the
    # original's inputs (ToTensor) were. The likelihood always reads the data as it is.
    input_range: Literal["signed", "unit"] = "signed"
    # Upsampling layers of the output block (the mirror of outer_config): "exact" = back to the size each pooling
    # received (odd sizes come back exactly); "scale" = ×factor each, the last one to the input size (the original:
    # 12×62 -> 24×124 -> 50×250 for its 50×250 input, where "exact" gives 12×62 -> 25×125 -> 50×250).
    output_upsample: Literal["exact", "scale"] = "exact"
    conditioned: bool = False  # feed the CAPTCHA text to the prior and the decoder
    vocabulary: str = ORIGINAL_VOCABULARY  # characters of the text one-hot (conditioned models)
    text_length: int = 6  # longest text a conditioned model accepts (shorter ones are padded)
    # Conditioned spatial models also get a text *map*: character k's embedding laid out across the width as a
    # Gaussian bump at its slot, added (through a 3×3 convolution) to the top prior, the input of every
    # generation block, every prior head and the output block, each at its own resolution. Without it the text
    # only shifts whole channels (global), and the decoder has to learn from a 5-symbol code where each glyph
    # goes. 0 = no map (global conditioning only, the behaviour before the map existed).
    text_map_channels: int = 32
    # Where the text lies across the width (fractions of it): the captcha library (0.7.1, 200×50 canvas, 5
    # characters, its default fonts) puts character k's centre at 0.134 + 0.161·k on average (std 0.05-0.07, from
    # 500 renders), i.e. n equal slots over (0.054, 0.857). Slot k of an n-character text is centred at
    # start + (k + 0.5)·(end - start)/n.
    text_span: tuple[float, float] = (0.054, 0.857)
    text_slot_width: float = 0.5  # std of each character's bump, in slot widths (covers the renderer's jitter)
    # The renderer inserts a space before each character with probability 1/2, so a glyph lies up to about one
    # slot from its average place. > 0: the top latent moves every bump by up to this many slot widths
    # (tanh of a linear map of z_L), so the layout is drawn with the sample; 0 = bumps stay at the slots.
    text_map_shift: float = 0.0
    # "slots": the bumps sit at the fixed slots above. "rendered": at the true centre of each character, which the
    # renderer records for every training image (data.source = "render" only); for sampling, a layout is drawn by
    # rendering the requested text with the run's data settings, so the model need not guess where a glyph went.
    # "auto" (default): a run resolves it to "rendered" for rendered data and to "slots" for a folder; a model
    # saved before this option existed has no value and reads as "auto", which the model treats as "slots".
    text_layout: Literal["auto", "slots", "rendered"] = "auto"
    # Paint each character's glyph (drawn upright once, in text_glyph_font, at the model's height) into the text
    # map at its centre, so the decoder is shown what the letter looks like, not only where it is (textmap.py).
    text_glyphs: bool = False
    text_glyph_font: str = ""  # a TrueType file; "" = DroidSansMono, the captcha library's default font
    # Also add the text map after every upsampling of the output block (else only at its input, z_1's resolution).
    text_map_every_stage: bool = False
    # Latent levels (1 = the bottom, z_1) whose prior is autoregressive over the map's positions instead of
    # factorized (arprior.py): a prior sample then commits to one glyph shape instead of mixing codes cell by cell.
    # Spatial latents only; [] = every prior factorized (the Ladder VAE).
    ar_prior_levels: list[int] = field(default_factory=list)
    ar_prior_width: int = 64  # channels of the causal convolution stack
    ar_prior_layers: int = 5  # causal convolutions (kernel 3, dilations 1, 2, 4, ...): sees 2^layers - 1 positions

    def __post_init__(self) -> None:
        self.outer_config = _as_block(self.outer_config, "model.outer_config")
        if not isinstance(self.inner_config, (list, tuple)):
            raise ConfigError(f"model.inner_config: expected a list of blocks, got {self.inner_config!r}")
        self.inner_config = [_as_block(b, f"model.inner_config[{i}]") for i, b in enumerate(self.inner_config)]
        self.inner_size = tuple(self.inner_size)
        self.text_span = tuple(self.text_span)
        if self.channels not in (1, 3):
            raise ConfigError(f"model.channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if self.height < 4 or self.width < 4:
            raise ConfigError(f"model input must be at least 4×4, got {self.height}×{self.width}")
        if self.latent_dim < 1:
            raise ConfigError(f"model.latent_dim must be at least 1, got {self.latent_dim}")
        if self.logvar_bound < 0:
            raise ConfigError(f"model.logvar_bound must be positive (or 0: no clamp), got {self.logvar_bound}")
        if self.spectral_norm_scope not in ("inference", "original"):
            raise ConfigError(f"model.spectral_norm_scope must be inference or original, got "
                              f"{self.spectral_norm_scope!r}")  # fmt: skip
        if self.input_range not in ("signed", "unit"):
            raise ConfigError(f"model.input_range must be signed or unit, got {self.input_range!r}")
        if self.output_upsample not in ("exact", "scale"):
            raise ConfigError(f"model.output_upsample must be exact or scale, got {self.output_upsample!r}")
        if self.conditioned and (not self.vocabulary or len(set(self.vocabulary)) != len(self.vocabulary)):
            raise ConfigError(f"model.vocabulary must be non-empty with no repeated character, got {self.vocabulary!r}")
        if self.text_length < 1:
            raise ConfigError(f"model.text_length must be at least 1, got {self.text_length}")
        if self.text_map_channels < 0:
            raise ConfigError(f"model.text_map_channels must be >= 0, got {self.text_map_channels}")
        if self.conditioned and self.text_map_channels and self.latent == "vector":
            raise ConfigError("model.text_map_channels needs spatial latents: set it to 0 with model.latent='vector'")
        start, end = self.text_span if len(self.text_span) == 2 else (1.0, 0.0)
        if not 0 <= start < end <= 1:
            raise ConfigError(f"model.text_span must be two fractions 0 <= start < end <= 1, got {self.text_span}")
        if self.text_map_shift < 0:
            raise ConfigError(f"model.text_map_shift must be >= 0, got {self.text_map_shift}")
        if self.text_slot_width <= 0:
            raise ConfigError(f"model.text_slot_width must be positive, got {self.text_slot_width}")
        if self.text_layout not in ("auto", "slots", "rendered"):
            raise ConfigError(f"model.text_layout must be auto, slots or rendered, got {self.text_layout!r}")
        if self.conditioned and self.text_layout == "rendered" and not self.text_map_channels:
            raise ConfigError("model.text_layout='rendered' places the text map: it needs model.text_map_channels > 0")
        if self.conditioned and (self.text_glyphs or self.text_map_every_stage) and not self.text_map_channels:
            raise ConfigError("model.text_glyphs and model.text_map_every_stage extend the text map: they need "
                              "model.text_map_channels > 0")  # fmt: skip
        if self.ar_prior_levels and self.latent == "vector":
            raise ConfigError("model.ar_prior_levels needs spatial latents: set it to [] with model.latent='vector'")
        bad = [level for level in self.ar_prior_levels if not 1 <= level <= self.levels]
        if bad or len(set(self.ar_prior_levels)) != len(self.ar_prior_levels):
            raise ConfigError(f"model.ar_prior_levels must be distinct levels from 1 (bottom) to {self.levels}, got "
                              f"{self.ar_prior_levels}")  # fmt: skip
        if self.ar_prior_width < 1 or self.ar_prior_layers < 1:
            raise ConfigError(f"model.ar_prior_width and model.ar_prior_layers must be >= 1, got "
                              f"{self.ar_prior_width} and {self.ar_prior_layers}")  # fmt: skip
        # kinds first: an unknown kind is the real mistake, not the missing convolution it leads to
        trace_block(self.outer_config, self.channels, (self.height, self.width), "model.outer_config", OUTER_KINDS)
        if not any(kind in CONV_KINDS for kind, _ in self.outer_config):
            raise ConfigError("model.outer_config needs at least one convolution (the output block mirrors it)")
        self.trace()  # every block is checked now, with the key in the message

    @property
    def levels(self) -> int:
        """Number of latent levels: one for the outer block plus one per inner block."""
        return 1 + len(self.inner_config)

    def trace(self) -> dict[str, list[LayerShape]]:
        """Activation shapes of the inference path: ``{"outer": rows, "inner[0]": rows, ...}`` (validates)."""
        rows = {"outer": trace_block(self.outer_config, self.channels, (self.height, self.width),
                                     "model.outer_config", OUTER_KINDS)}  # fmt: skip
        last = rows["outer"][-1]
        c, h, w = _last_conv_channels(rows["outer"], self.channels), last.height, last.width
        for i, block in enumerate(self.inner_config):
            if self.latent == "vector":
                c, (h, w) = 1, self.inner_size  # the original starts every inner block from a 1×H×W map
            key = f"model.inner_config[{i}]"
            if not block:
                raise ConfigError(f"{key}: an inner block needs at least one layer")
            block_rows = trace_block(block, c, (h, w), key)
            rows[f"inner[{i}]"] = block_rows
            c, h, w = block_rows[-1].channels, block_rows[-1].height, block_rows[-1].width
        return rows


def _last_conv_channels(rows: list[LayerShape], default: int) -> int:
    return rows[-1].channels if rows else default


@dataclass
class LossConfig:
    """The objective. ``elbo``: reconstruction + sum of per-level KLs, all per image (a valid bound).

    ``three-term``: the original's split, reconstruction + prior_weight(epoch) · KL of the top level ("prior
    matching") + consistency_weight(epoch) · KLs of the lower levels ("consistency"), with the original's
    per-epoch schedules as linear ramps; with both weights at 1 it is the ELBO.
    """

    objective: Literal["elbo", "three-term"] = "elbo"
    kl_warmup_steps: int = 500  # elbo: KL weight ramps linearly from 0 to 1 over these updates (0 = off)
    free_bits: float = 0.1  # nats per latent unit (batch mean) below which a unit's KL is not penalised
    prior_weight_start: float = 1.0  # three-term: prior_weight(epoch) ramps from this to 1 ...
    prior_weight_epochs: int = 0  # ... over this many epochs (0 = constant 1, the original's default)
    consistency_start: float = 1.0  # three-term: warmup(epoch) of the consistency term, same scheme
    consistency_epochs: int = 0
    # Per-level KL weights, bottom level (z_1) first; empty = all 1 (the ELBO). A weight > 1 on z_1 makes a nat
    # in z_1 cost more than a nat in the levels above, which p(z_1|z_2) can then predict: it moves structure up
    # the hierarchy, where a prior sample keeps it coherent. Training then optimises a weighted bound (β-VAE);
    # evaluate always reports the true ELBO and IWAE.
    kl_weights: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if any(w < 0 for w in self.kl_weights):
            raise ConfigError(f"loss.kl_weights must be >= 0, got {self.kl_weights}")
        if self.kl_warmup_steps < 0 or self.prior_weight_epochs < 0 or self.consistency_epochs < 0:
            raise ConfigError("loss: warm-up lengths must be >= 0")
        if self.free_bits < 0:
            raise ConfigError(f"loss.free_bits must be >= 0, got {self.free_bits}")


@dataclass
class OptimConfig:
    """AdamW, skipping of exploding updates (VDVAE practice; the clipping is train.grad_clip), EMA of the weights."""

    lr: float = 2e-3  # AdamW learning rate (reached after the warm-up)
    weight_decay: float = 0.0
    beta1: float = 0.9  # AdamW's betas
    beta2: float = 0.99
    lr_warmup_steps: int = 100  # linear learning-rate warm-up
    skip_threshold: float = 2000.0  # skip an update whose (unclipped) gradient norm exceeds this; 0 = never
    ema_decay: float = 0.995  # 0 = off; samples and evaluation use the averaged weights

    def __post_init__(self) -> None:
        check_betas(self)
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be positive, got {self.lr}")
        if self.skip_threshold < 0:
            raise ConfigError("optim.skip_threshold must be >= 0")
        if not (self.ema_decay == 0 or 0 < self.ema_decay < 1):
            raise ConfigError(f"optim.ema_decay must be 0 (off) or in (0, 1), got {self.ema_decay}")


#: data.render_format values: 1 = one random stream for the whole rendered set, 2 = a stream per image.
RENDER_FORMATS = (1, 2)


@dataclass
class DataConfig:
    """Training data: CAPTCHAs rendered with the ``captcha`` library, or a folder of ``<text>.png`` images."""

    source: str = "render"  # "render" or a folder of images whose file-name stem is the text (2b827.png)
    # "original": the whole file name less its last 5 characters (".jpeg"; of "2b827.png" it leaves "2b82"), then
    # the last 6 characters of that, as the original project cut its labels
    label_rule: Literal["stem", "original"] = "stem"  # "stem": up to the first "_"; "original": name[:-5][-6:]
    keep_case: bool = False  # keep the case of folder texts; off = lower-case them, as the original did
    num_images: int = 8192  # rendered images (source = render)
    text_length: int = 5  # characters per rendered CAPTCHA
    alphabet: str = ""  # characters to draw from; "" = model.vocabulary
    render_width: int = 200  # canvas the captcha library draws on (then resized to the model input)
    render_height: int = 50
    font_sizes: list[int] = field(default_factory=lambda: [42, 50, 56])  # the captcha library's defaults
    fonts: list[str] = field(default_factory=list)  # TrueType files; [] = the fonts that ship with captcha
    noise_dots: int = 30  # random dots per image (the library's default)
    noise_curve: bool = True  # one random arc through the text
    holdout_fraction: float = 0.1  # held out for evaluation (test bits/dim)
    # how rendering draws its randomness: 2 = a stream per image (each renderable alone: a first run renders them as
    # training uses them); 1 = one stream for the whole set, rendered before training (the runs saved before format
    # 2 was added read as 1, so that they resume on their own images; the README's earlier figures are format 1)
    render_format: int = 2

    def __post_init__(self) -> None:
        if self.render_format not in RENDER_FORMATS:
            raise ConfigError(f"data.render_format must be one of {', '.join(map(str, RENDER_FORMATS))}, got "
                              f"{self.render_format!r}")  # fmt: skip
        if self.num_images < 2:
            raise ConfigError(f"data.num_images must be at least 2, got {self.num_images}")
        if self.text_length < 1:
            raise ConfigError(f"data.text_length must be at least 1, got {self.text_length}")
        if not 0 < self.holdout_fraction < 1:
            raise ConfigError(f"data.holdout_fraction must be between 0 and 1, got {self.holdout_fraction}")
        if self.render_width < 8 or self.render_height < 8 or not self.font_sizes:
            raise ConfigError("data: render size must be at least 8×8 and font_sizes non-empty")
        if not all(isinstance(size, int) and size >= 1 for size in self.font_sizes):
            raise ConfigError(f"data.font_sizes must be positive integers, got {self.font_sizes}")
        if not 0 <= self.noise_dots <= 10_000:  # the captcha library loops until it has drawn them
            raise ConfigError(f"data.noise_dots must be between 0 and 10000 (as data make's --noise-dots), got "
                              f"{self.noise_dots}")  # fmt: skip


@dataclass
class EvalConfig:
    """Periodic and final evaluation on the held-out images."""

    iw_samples: int = 16  # K importance samples of the IWAE bound
    samples: int = 256  # held-out images evaluated (at most the hold-out size)
    batch_size: int = 64  # held-out images per batch; the batches are split over the processes

    def __post_init__(self) -> None:
        for key in ("iw_samples", "samples", "batch_size"):  # checked here: else a run fails at its last evaluation
            if getattr(self, key) < 1:
                raise ConfigError(f"eval.{key} must be at least 1, got {getattr(self, key)}")


def _train_defaults() -> TrainConfig:
    return TrainConfig(
        output_dir="runs/hvae-captcha", max_steps=3000, batch_size=32, log_every=50, sample_every=500,
        eval_every=1000, checkpoint_every=500, grad_clip=200.0,  # of the per-dimension loss
        # NHWC convolutions: 1.44x faster updates on CPU with the same metrics over seeds (README "Speed")
        channels_last=True,
    )  # fmt: skip


@dataclass
class HVAEConfig:
    """A whole run: model, loss, optimiser, data, evaluation and the shared Trainer options."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=_train_defaults)

    #: Keys of earlier versions, read under their new names (gencore.config.migrate_keys).
    renamed_keys: ClassVar[tuple[Renamed, ...]] = (
        Renamed("optim.grad_clip", "train.grad_clip", lambda v: None if v == 0 else v),  # 0 meant off
        Renamed("optim.betas", ("optim.beta1", "optim.beta2")),
        Renamed("eval.num_images", "eval.samples"),
    )
    #: Keys added later whose default differs from what earlier runs did (gencore.config.fill_added_keys).
    added_keys: ClassVar[tuple[Added, ...]] = (Added("data.render_format", 1),)

    def __post_init__(self) -> None:
        if self.loss.kl_weights and len(self.loss.kl_weights) != self.model.levels:
            raise ConfigError(
                f"loss.kl_weights has {len(self.loss.kl_weights)} weights for {self.model.levels} latent levels "
                "(one per level, bottom first)"
            )
        rendered = self.data.source == "render"  # data.text_length is the rendered texts' length
        if self.model.conditioned and rendered and self.data.text_length > self.model.text_length:
            raise ConfigError(
                f"data.text_length {self.data.text_length} exceeds model.text_length {self.model.text_length}"
            )

    def resolve_text_layout(self) -> None:
        """Turn ``model.text_layout = "auto"`` into what this run uses: "rendered" for a conditioned text-map model
        on rendered data, else "slots" (here and not in ``__post_init__``: the defaults must keep "auto")."""
        if self.model.text_layout == "auto":
            m = self.model
            rendered = m.conditioned and m.text_map_channels > 0 and m.latent != "vector"
            m.text_layout = "rendered" if rendered and self.data.source == "render" else "slots"


#: Named starting points; ``--preset NAME`` applies these ``key=value`` overrides before ``--config``/``--set``.
PRESETS: dict[str, list[str]] = {
    "compact": [],
    "original": [
        "model.channels=3", "model.height=50", "model.width=250", "model.latent='vector'", "model.latent_dim=512",
        "model.inner_size=[24, 24]", f"model.outer_config={[list(x) for x in ORIGINAL_OUTER]}".replace("'", '"'),
        "model.inner_config=" + str([[list(x) for x in b] for b in ORIGINAL_INNER]).replace("'", '"'),
        "model.activation='relu'", "model.spectral_norm=true", "model.likelihood='bernoulli'",
        "optim.lr=5e-5", "optim.weight_decay=0.01", "optim.beta2=0.999", "optim.lr_warmup_steps=0",
        "optim.ema_decay=0", "loss.objective='three-term'", "loss.kl_warmup_steps=0", "model.text_map_channels=0",
    ],
}  # fmt: skip

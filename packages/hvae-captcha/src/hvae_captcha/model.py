"""The hierarchical VAE, built from the layer config (see :mod:`hvae_captcha.config`).

Levels are numbered from the image up: z_1 sits at the output of the outer block, z_{l+1} at the output of inner
block l, z_L is the top. Inference is top-down, as in the Ladder VAE (Sønderby et al. 2016):

* a deterministic bottom-up pass computes, for every level, Gaussian parameters (mu_d, logvar_d) from x;
* the top-down pass starts at q(z_L|x) = N(mu_d, var_d), p(z_L) = N(0, I) (or a text-conditioned prior);
  for l = L-1 … 1 the generation block maps z_{l+1} to the prior p(z_l|z_{l+1}) = N(mu_p, var_p), and the
  posterior q(z_l|x, z_{l+1}) is the precision-weighted combination of the bottom-up and prior Gaussians;
* the output block decodes the *posterior* sample z_1 into the parameters of p(x|z_1).

So ELBO = log p(x|z_1) - Σ_l KL(q(z_l|x, z_{l+1}) || p(z_l|z_{l+1})) is a valid bound, with every KL analytic.
The bottom-up and prior heads are the original's two sets of mean/log-variance layers (L inference heads, L-1
generation heads), so the original's configuration builds with the original's layers and shapes.

Two latent layouts (``ModelConfig.latent``):

* ``vector`` (the original): latents are vectors of ``latent_dim``; every block ends in two fully connected layers
  to 2·latent_dim features, every inner block starts from a 1×inner_size map made by two fully connected layers,
  and inference and generation inner blocks are built identically.
* ``spatial`` (the compact default): latents are maps of ``latent_dim`` channels at the resolution of their block's
  output; heads are 3×3 convolutions and a generation inner block is the mirror of its inference block (so a block
  that pools on the way up upsamples on the way down). No fully connected layer touches an image-sized tensor.

Text conditioning (``conditioned``): an embedding of the per-position one-hot sets the top prior and shifts every
generation block's input per channel (global); spatial models also get the text map of :mod:`hvae_captcha.textmap`
(``text_map_channels``), which places each character's features at its slot across the width, at every
generation stage; with ``text_glyphs`` it also paints each character's drawn glyph there, and with
``text_map_every_stage`` it is added after every upsampling of the output block too.

Autoregressive priors (``ar_prior_levels``, :mod:`hvae_captcha.arprior`): the chosen levels' priors become
autoregressive over their map's positions, corrected from the factorized head's Gaussian; q is unchanged (it
merges with the factorized head), the prior is evaluated at the posterior sample, and the KL stays analytic per unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from gencore.checkpoint import PretrainedMixin
from gencore.losses import bernoulli_log_likelihood, gaussian_kl_between, gaussian_log_likelihood, soft_clamp
from hvae_captcha.arprior import AutoregressivePrior
from hvae_captcha.config import CONV_KINDS, ModelConfig
from hvae_captcha.textmap import TextMap, render_glyphs

if TYPE_CHECKING:
    from hvae_captcha.data import CaptchaData

def add_spectral_norm(module: nn.Module, types: tuple[type, ...] = (nn.Conv2d, nn.Linear)) -> nn.Module:
    """Apply spectral normalisation to every layer of ``types`` inside ``module`` (in place); returns it."""
    for name, child in list(module.named_children()):
        if isinstance(child, types):
            setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            add_spectral_norm(child, types)
    return module


def clamp_logvar(logvar: torch.Tensor, bound: float) -> torch.Tensor:
    """Soft-clamp a log-variance to (-bound, bound); ``bound == 0`` leaves it as it is (imported originals)."""
    return soft_clamp(logvar, bound) if bound else logvar


_ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "elu": nn.ELU, "lrelu": lambda: nn.LeakyReLU(0.2)}
_LOG_2PI = math.log(2 * math.pi)
HALF_BIN = 1.0 / 255.0  # half the width of one 8-bit level on the [-1, 1] scale


# --- likelihoods -----------------------------------------------------------------------------------------------


def discretized_logistic_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(x) of 8-bit pixels x in [-1, 1] under a logistic discretized to 256 bins (PixelCNN++), per example.

    The end bins take the whole tails, so the probabilities of the 256 levels sum to one: bits/dim from this is a
    true discrete likelihood.
    """
    centred = x - mean
    inv_scale = torch.exp(-log_scale)
    plus = inv_scale * (centred + HALF_BIN)
    minus = inv_scale * (centred - HALF_BIN)
    log_cdf_plus = plus - F.softplus(plus)  # log sigmoid(plus): the mass below the top edge (x = -1 bin)
    log_one_minus_cdf_minus = -F.softplus(minus)  # mass above the bottom edge (x = 1 bin)
    # log(sigmoid(plus) - sigmoid(minus)) without cancellation, from the identity
    # sigmoid(a) - sigmoid(b) = sigmoid(a) · sigmoid(-b) · (1 - exp(b - a)).
    log_delta = log_cdf_plus - F.softplus(minus) + torch.log((-torch.expm1(minus - plus)).clamp(min=1e-12))
    log_prob = torch.where(x < -1 + HALF_BIN, log_cdf_plus, torch.where(x > 1 - HALF_BIN, log_one_minus_cdf_minus,
                                                                         log_delta))  # fmt: skip
    return log_prob.flatten(1).sum(1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed per example (for importance weights)."""
    return (-0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))).flatten(1).sum(1)


def merge_gaussians(
    mu_a: torch.Tensor, logvar_a: torch.Tensor, mu_b: torch.Tensor, logvar_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Precision-weighted product of two diagonal Gaussians (the Ladder VAE posterior), in log-variance form."""
    weight_a = torch.sigmoid(logvar_b - logvar_a)  # = precision_a / (precision_a + precision_b)
    mu = weight_a * mu_a + (1 - weight_a) * mu_b
    logvar = -torch.logaddexp(-logvar_a, -logvar_b)
    return mu, logvar


# --- blocks built from the layer language ---------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpec:
    """One layer to build: kind, config argument, output channels and output size."""

    kind: str
    arg: int
    channels: int
    size: tuple[int, int]


class LayerBlock(nn.Module):
    """Layers from a config list, run in order; ``skip-up i`` remembers, ``skip-down i`` concatenates and mixes.

    ``plain_last``: the last convolution has no norm and no activation (it outputs distribution parameters).
    """

    def __init__(self, specs: list[LayerSpec], in_channels: int, act: type[nn.Module], plain_last: bool = False):
        super().__init__()
        self.kinds = [s.kind for s in specs]
        self.args = [s.arg for s in specs]
        self.channels = [s.channels for s in specs]  # after each layer
        last_conv = max((i for i, s in enumerate(specs) if s.kind in CONV_KINDS), default=-1)
        layers: list[nn.Module] = []
        skip_channels: dict[int, int] = {}
        c = in_channels
        for i, spec in enumerate(specs):
            if spec.kind in CONV_KINDS:
                conv_cls = nn.ConvTranspose2d if spec.kind.startswith("convt") else nn.Conv2d
                conv = conv_cls(c, spec.channels, 3, padding=1)
                if plain_last and i == last_conv:
                    layers.append(conv)
                else:
                    norm = [nn.BatchNorm2d(spec.channels)] if spec.kind.endswith("-bn") else []
                    layers.append(nn.Sequential(conv, *norm, act()))
                c = spec.channels
            elif spec.kind == "pool":
                layers.append(nn.MaxPool2d(spec.arg))
            elif spec.kind == "upsample":
                layers.append(nn.Upsample(size=spec.size, mode="nearest"))  # exact size: mirrors undo odd pools
            elif spec.kind == "skip-up":
                layers.append(nn.Identity())
                skip_channels[spec.arg] = c
            else:  # skip-down: the original's per-pixel linear layer over [x, skip], i.e. a 1×1 convolution
                layers.append(nn.Conv2d(c + skip_channels[spec.arg], c, 1))
        self.layers = nn.ModuleList(layers)
        self.out_channels = c

    def forward(self, x: torch.Tensor, after_upsample=None) -> torch.Tensor:  # noqa: ANN001 - optional hook
        """Run the layers; ``after_upsample(i, x)``, when given, replaces x after every upsampling layer i."""
        skips: dict[int, torch.Tensor] = {}
        for i, (kind, arg, layer) in enumerate(zip(self.kinds, self.args, self.layers)):
            if kind == "skip-up":
                skips[arg] = x
            elif kind == "skip-down":
                x = layer(torch.cat([x, skips[arg]], 1))
            else:
                x = layer(x)
                if kind == "upsample" and after_upsample is not None:
                    x = after_upsample(i, x)
        return x


def _scaled_upsampling(
    specs: list[LayerSpec], start: tuple[int, int], size: tuple[int, int]
) -> list[LayerSpec]:
    """``specs`` (a mirrored outer block) with every upsampling ×factor from ``start``, the last to ``size``."""
    last = max((i for i, s in enumerate(specs) if s.kind == "upsample"), default=-1)
    (h, w), out = start, []
    for i, spec in enumerate(specs):
        if spec.kind == "upsample":
            h, w = size if i == last else (h * spec.arg, w * spec.arg)
        out.append(LayerSpec(spec.kind, spec.arg, spec.channels, (h, w)))
    return out


def forward_specs(block: list[tuple[str, int]], channels: int, size: tuple[int, int]) -> list[LayerSpec]:
    """Specs of a block as written (shapes traced from ``channels`` × ``size``)."""
    specs, c, (h, w) = [], channels, size
    for kind, arg in block:
        if kind in CONV_KINDS:
            c = arg
        elif kind == "pool":
            h, w = h // arg, w // arg
        elif kind == "upsample":
            h, w = h * arg, w * arg
        specs.append(LayerSpec(kind, arg, c, (h, w)))
    return specs


def mirror_specs(block: list[tuple[str, int]], channels: int, size: tuple[int, int]) -> list[LayerSpec]:
    """Specs of the mirror of ``block`` (see :func:`hvae_captcha.config.mirror_block`), ending at ``channels`` ×
    ``size``: each mirrored layer outputs the shape its forward twin received."""
    forward = forward_specs(block, channels, size)
    before = [(channels, size)] + [(s.channels, s.size) for s in forward[:-1]]
    swap = {"conv": "convt", "conv-bn": "convt-bn", "convt": "conv", "convt-bn": "conv-bn", "pool": "upsample",
            "upsample": "pool", "skip-up": "skip-down", "skip-down": "skip-up"}  # fmt: skip
    out = []
    for spec, (c_in, size_in) in zip(reversed(forward), reversed(before)):
        out.append(LayerSpec(swap[spec.kind], spec.arg, c_in, size_in))
    # Channels of non-convolution layers are whatever flows through; fix them to the running value.
    running, fixed = forward[-1].channels, []
    for spec in out:
        running = spec.channels if spec.kind in CONV_KINDS else running
        fixed.append(LayerSpec(spec.kind, spec.arg, running, spec.size))
    return fixed


def _fc_features(in_features: int, width: int, act: type[nn.Module]) -> nn.Sequential:
    """The original's block tail: flatten -> width -> act -> width -> act."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), act(), nn.Linear(width, width), act())


def _fc_to_map(latent_dim: int, shape: tuple[int, int, int], act: type[nn.Module]) -> nn.Sequential:
    """The original's block head: latent -> 2·latent -> act -> C·H·W -> act -> (C, H, W)."""
    c, h, w = shape
    return nn.Sequential(nn.Linear(latent_dim, 2 * latent_dim), act(), nn.Linear(2 * latent_dim, c * h * w), act(),
                         nn.Unflatten(1, (c, h, w)))  # fmt: skip


class GaussianHead(nn.Module):
    """Mean and (soft-clamped) log-variance of a diagonal Gaussian: two linear layers or two 3×3 convolutions."""

    def __init__(self, in_features: int, latent_dim: int, spatial: bool, bound: float) -> None:
        super().__init__()
        self.bound = bound
        if spatial:
            self.mu, self.logvar = (nn.Conv2d(in_features, latent_dim, 3, padding=1) for _ in range(2))
        else:
            self.mu, self.logvar = (nn.Linear(in_features, latent_dim) for _ in range(2))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), clamp_logvar(self.logvar(h), self.bound)


# --- the model --------------------------------------------------------------------------------------------------


@dataclass
class LevelStats:
    """One latent level in a pass: sample, posterior and prior parameters (posterior None when sampling)."""

    z: torch.Tensor
    mu_q: torch.Tensor | None
    logvar_q: torch.Tensor | None
    mu_p: torch.Tensor
    logvar_p: torch.Tensor

    def kl(self) -> torch.Tensor:
        """Analytic KL(q || p) per latent unit, shape (B, ...)."""
        return gaussian_kl_between(self.mu_q, self.logvar_q, self.mu_p, self.logvar_p, reduce=False)

    def log_q_minus_log_p(self) -> torch.Tensor:
        """log q(z) - log p(z) of the sample, per example (the importance-weight term)."""
        return gaussian_log_density(self.z, self.mu_q, self.logvar_q) - gaussian_log_density(
            self.z, self.mu_p, self.logvar_p
        )


def encode_texts(config: ModelConfig, texts: list[str], layouts: list[list[float]] | None = None) -> torch.Tensor:
    """The conditioning vectors of ``texts`` for a model of ``config``, on the CPU (no model needed: the data set
    encodes each item with it): one-hot per character position (B, text_length · (vocabulary + 1)); unknown
    characters raise.

    Models with ``text_layout = "rendered"`` take each text's character centres too (fractions of the width,
    as :func:`hvae_captcha.data.render_captchas` returns them); they follow the one-hot (B, text_length more).
    """
    cfg = config
    index = {ch: i for i, ch in enumerate(cfg.vocabulary)}
    pad = len(cfg.vocabulary)
    out = torch.zeros(len(texts), cfg.text_length, pad + 1)
    for b, text in enumerate(texts):
        if len(text) > cfg.text_length:
            raise ValueError(f"text {text!r} is longer than the model's text_length {cfg.text_length}")
        for t in range(cfg.text_length):
            ch = text[t] if t < len(text) else None
            if ch is not None and ch not in index:
                raise ValueError(f"character {ch!r} of {text!r} is not in the vocabulary {cfg.vocabulary!r}")
            out[b, t, index[ch] if ch is not None else pad] = 1.0
    out = out.flatten(1)
    if cfg.text_layout == "rendered":
        if layouts is None or len(layouts) != len(texts):
            raise ValueError("this model places each character where the renderer drew it: pass the layouts")
        centres = torch.zeros(len(texts), cfg.text_length)
        for b, (text, layout) in enumerate(zip(texts, layouts)):
            if len(layout) != len(text):
                raise ValueError(f"layout of {text!r} has {len(layout)} centres for {len(text)} characters")
            centres[b, : len(layout)] = torch.tensor(layout, dtype=torch.float32)
        out = torch.cat([out, centres], 1)
    return out

class HVAE(PretrainedMixin, nn.Module):
    """Hierarchical VAE with top-down inference; ``forward(x, y)`` returns log p(x|z_1) and the level statistics."""

    config_class = ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        act = _ACTIVATIONS[cfg.activation]
        spatial = cfg.latent == "spatial"
        k, bound = cfg.latent_dim, cfg.logvar_bound
        wide = 2 * k  # the original's feature width between a block and its heads
        self.params_per_pixel = 1 if cfg.likelihood == "bernoulli" else 2

        # Shapes of the inference path (validated by the config), one (C, H, W) per level.
        rows = cfg.trace()
        size = (cfg.height, cfg.width)
        outer_out = (rows["outer"][-1].channels, rows["outer"][-1].height, rows["outer"][-1].width)
        level_shapes = [outer_out] + [
            (rows[f"inner[{i}]"][-1].channels, rows[f"inner[{i}]"][-1].height, rows[f"inner[{i}]"][-1].width)
            for i in range(len(cfg.inner_config))
        ]
        inner_in = [(1, *cfg.inner_size) if not spatial else level_shapes[i] for i in range(len(cfg.inner_config))]
        self.level_shapes = level_shapes
        self.latent_shapes = [(k, h, w) if spatial else (k,) for _, h, w in level_shapes]

        # Inference (bottom-up) path: outer block, inner blocks, per-level feature tails and heads.
        self.outer = LayerBlock(forward_specs(cfg.outer_config, cfg.channels, size), cfg.channels, act)
        self.enc_in = nn.ModuleList(
            [nn.Identity() if spatial else _fc_to_map(k, inner_in[i], act) for i in range(len(cfg.inner_config))]
        )
        self.enc_inner = nn.ModuleList(
            [LayerBlock(forward_specs(b, inner_in[i][0], inner_in[i][1:]), inner_in[i][0], act)
             for i, b in enumerate(cfg.inner_config)]
        )  # fmt: skip
        self.enc_fc = nn.ModuleList(
            [nn.Identity() if spatial else _fc_features(c * h * w, wide, act) for c, h, w in level_shapes]
        )
        self.q_heads = nn.ModuleList(
            [GaussianHead(c if spatial else wide, k, spatial, bound) for c, _, _ in level_shapes]
        )
        if cfg.spectral_norm:  # the original normalises the inference path only (and see below)
            for module in (self.outer, self.enc_in, self.enc_inner, self.enc_fc, self.q_heads):
                if module is self.enc_inner and cfg.spectral_norm_scope == "original":  # skip-down mixes stay plain
                    for block in self.enc_inner:
                        for kind, layer in zip(block.kinds, block.layers):
                            if kind != "skip-down":
                                add_spectral_norm(layer)
                else:
                    add_spectral_norm(module)

        # Generation (top-down) path: for level l < L, z_{l+1} -> block -> prior head of z_l.
        dec_in, dec_inner, dec_fc, p_heads = [], [], [], []
        for i, block in enumerate(cfg.inner_config):
            c_out, h_out, w_out = level_shapes[i + 1]
            if spatial:
                c_in = level_shapes[i][0]
                dec_in.append(nn.Sequential(nn.Conv2d(k, c_out, 3, padding=1), act()))
                dec_inner.append(LayerBlock(mirror_specs(block, c_in, level_shapes[i][1:]), c_out, act))
                dec_fc.append(nn.Identity())
                p_heads.append(GaussianHead(c_in, k, spatial, bound))
            else:
                dec_in.append(_fc_to_map(k, inner_in[i], act))
                dec_inner.append(LayerBlock(forward_specs(block, inner_in[i][0], inner_in[i][1:]), 1, act))
                dec_fc.append(_fc_features(c_out * h_out * w_out, wide, act))
                p_heads.append(GaussianHead(wide, k, spatial, bound))
        self.dec_in, self.dec_inner = nn.ModuleList(dec_in), nn.ModuleList(dec_inner)
        self.dec_fc, self.p_heads = nn.ModuleList(dec_fc), nn.ModuleList(p_heads)
        if cfg.spectral_norm and cfg.spectral_norm_scope == "original":  # the original's encoder_norm there too
            add_spectral_norm(self.dec_in)
            add_spectral_norm(self.dec_fc)

        # Output block p(x|z_1): the mirror of the outer block, its last convolution emitting the pixel parameters.
        c1 = outer_out[0]
        self.out_in = nn.Sequential(nn.Conv2d(k, c1, 3, padding=1), act()) if spatial else _fc_to_map(k, outer_out, act)
        out_specs = mirror_specs(cfg.outer_config, cfg.channels * self.params_per_pixel, size)
        if cfg.output_upsample == "scale":
            out_specs = _scaled_upsampling(out_specs, outer_out[1:], size)
        self.out_block = LayerBlock(out_specs, c1, act, plain_last=True)

        # Text conditioning: a one-hot of every character position -> an embedding that sets the top prior and
        # shifts the input of every generation block (per channel).
        if cfg.conditioned:
            symbols = len(cfg.vocabulary) + 1  # + padding for texts shorter than text_length
            emb = 2 * k if not spatial else 128
            self.text_embed = nn.Sequential(nn.Linear(cfg.text_length * symbols, emb), act(), nn.Linear(emb, emb),
                                            act())  # fmt: skip
            top = math.prod(self.latent_shapes[-1])
            self.cond_prior = nn.Linear(emb, 2 * top)
            nn.init.zeros_(self.cond_prior.weight)  # start at N(0, I)
            nn.init.zeros_(self.cond_prior.bias)
            shift_channels = [m[0].out_channels if spatial else inner_in[i][0] for i, m in enumerate(self.dec_in)]
            shift_channels.append(c1)
            self.cond_shift = nn.ModuleList([nn.Linear(emb, c) for c in shift_channels])
        # The spatial text map (textmap.py) tells every generation stage which character goes where: a 3×3
        # convolution of the map is added to the top prior's parameters, to each generation block's input, to
        # each prior head's input and to the output block's input, all at their own resolutions.
        self.text_map = None
        if cfg.conditioned and cfg.text_map_channels and spatial:
            d = cfg.text_map_channels
            glyphs = render_glyphs(cfg.vocabulary, cfg.height, cfg.text_glyph_font) if cfg.text_glyphs else None
            self.text_map = TextMap(len(cfg.vocabulary) + 1, cfg.text_length, d, cfg.text_span, cfg.text_slot_width,
                                    with_layout=cfg.text_layout == "rendered", glyphs=glyphs,
                                    image_width=cfg.width)  # fmt: skip
            self.map_top = nn.Conv2d(d, 2 * k, 3, padding=1)
            nn.init.zeros_(self.map_top.weight)  # start at N(0, I), as the global prior does
            nn.init.zeros_(self.map_top.bias)
            self.map_in = nn.ModuleList([nn.Conv2d(d, c, 3, padding=1) for c in shift_channels])
            self.map_head = nn.ModuleList([nn.Conv2d(d, level_shapes[i][0], 3, padding=1)
                                           for i in range(len(cfg.inner_config))])  # fmt: skip
            if cfg.text_map_every_stage:  # a 3×3 convolution of the map after each upsampling of the output block
                self.map_out = nn.ModuleDict({
                    str(i): nn.Conv2d(d, self.out_block.channels[i], 3, padding=1)
                    for i, kind in enumerate(self.out_block.kinds) if kind == "upsample"
                })  # fmt: skip
            if cfg.text_map_shift > 0:  # the layout as part of the sample: z_L -> per-character offsets
                self.map_offset = nn.Linear(math.prod(self.latent_shapes[-1]), cfg.text_length)
                nn.init.zeros_(self.map_offset.weight)  # start at the fixed slots
                nn.init.zeros_(self.map_offset.bias)
        # Autoregressive priors (arprior.py), keyed by 0-based level; a level below the top also sees the features
        # its prior head reads (z_{l+1} and the text), the top only its own prior's parameters.
        top = len(self.latent_shapes) - 1
        self.ar_priors = nn.ModuleDict({
            str(level - 1): AutoregressivePrior(k, 0 if level - 1 == top else p_heads[level - 1].mu.in_channels,
                                                cfg.ar_prior_width, cfg.ar_prior_layers, bound)
            for level in cfg.ar_prior_levels
        })  # fmt: skip

    # --- text ------------------------------------------------------------------------------------------------

    def encode_text(self, texts: list[str], layouts: list[list[float]] | None = None) -> torch.Tensor:
        """:func:`encode_texts` for this model, on its device."""
        return encode_texts(self.config, texts, layouts).to(self.device)

    def encode_data(self, data: CaptchaData, start: int = 0, stop: int | None = None) -> torch.Tensor | None:
        """The conditioning vectors of images ``start:stop`` of ``data`` (texts, and layouts where the model uses
        them); None for an unconditioned model."""
        if not self.config.conditioned:
            return None
        layouts = data.layouts[start:stop] if data.layouts is not None else None
        if self.config.text_layout == "rendered" and layouts is None:
            raise ValueError("this model places each character where the renderer drew it: these images have no "
                             "recorded layout (only rendered data does)")  # fmt: skip
        return self.encode_text(data.texts[start:stop], layouts)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # --- passes ----------------------------------------------------------------------------------------------

    def bottom_up(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Deterministic pass: the bottom-up Gaussian (mu_d, logvar_d) of every level, bottom first."""
        h = self.outer((x + 1) / 2 if self.config.input_range == "unit" else x)
        out = [self.q_heads[0](self.enc_fc[0](h))]
        for i, block in enumerate(self.enc_inner):
            # Vector latents continue from the previous level's mean (as the original continued from its
            # sample, but deterministic, so q stays a proper density); spatial ones from the features.
            h = block(self.enc_in[i](out[-1][0] if self.config.latent == "vector" else h))
            out.append(self.q_heads[i + 1](self.enc_fc[i + 1](h)))
        return out

    def _top_prior(
        self, n: int, cond: torch.Tensor | None, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (n, *self.latent_shapes[-1])
        if cond is None:
            zeros = torch.zeros(shape, device=self.device)
            return zeros, zeros
        params = self.cond_prior(cond).reshape(n, 2 * shape[1], *shape[2:])
        if self.text_map is not None:
            params = params + self.map_top(self.text_map(y, shape[2:]))
        mu, logvar = params.chunk(2, dim=1)
        return mu, clamp_logvar(logvar, self.config.logvar_bound)

    def _shift(
        self, h: torch.Tensor, cond: torch.Tensor | None, y: torch.Tensor | None, index: int,
        offsets: torch.Tensor | None,
    ) -> torch.Tensor:  # fmt: skip
        """Add the text conditioning to the input of generation block ``index`` (the last one: the output block)."""
        if cond is None:
            return h
        h = h + self.cond_shift[index](cond)[:, :, None, None]
        if self.text_map is not None:
            h = h + self.map_in[index](self.text_map(y, h.shape[-2:], offsets))
        return h

    def _onehot(self, y: torch.Tensor) -> torch.Tensor:
        """The one-hot part of a conditioning vector (rendered-layout models append the centres)."""
        return y[:, : self.config.text_length * (len(self.config.vocabulary) + 1)]

    def _offsets(self, z_top: torch.Tensor) -> torch.Tensor | None:
        """Per-character bump offsets (slot widths) drawn with the top latent, or None (fixed slots)."""
        if self.text_map is None or self.config.text_map_shift <= 0:
            return None
        return self.config.text_map_shift * torch.tanh(self.map_offset(z_top.flatten(1)))

    def top_down(
        self,
        n: int,
        bottom_up: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
        y: torch.Tensor | None = None,
        temperature: float = 1.0,
        noise: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[LevelStats]]:
        """Sample z_L … z_1 from the posterior (given ``bottom_up``) or the prior (``temperature`` scales its std).

        ``noise``: the standard normal draws to use, one tensor per level, top first (default: fresh draws), so a
        pass can be repeated exactly or compared with another implementation fed the same noise.

        Returns the parameters of p(x|z_1) and the level statistics, top level first.
        """
        cond = self.text_embed(self._onehot(y)) if (self.config.conditioned and y is not None) else None
        if self.config.conditioned and cond is None:
            raise ValueError("this model is conditioned on text: pass the one-hot text y (see encode_text)")
        levels = []
        mu_p, logvar_p = self._top_prior(n, cond, y)
        top = len(self.latent_shapes) - 1
        offsets = None
        for level in range(top, -1, -1):
            h = None
            if level < top:
                i = level  # generation block i maps z_{i+2} (0-based z[level+1]) to the prior of z[level]
                h = self.dec_fc[i](self.dec_inner[i](self._shift(self.dec_in[i](levels[-1].z), cond, y, i, offsets)))
                if self.text_map is not None:
                    h = h + self.map_head[i](self.text_map(y, h.shape[-2:], offsets))
                mu_p, logvar_p = self.p_heads[i](h)
            ar = self.ar_priors[str(level)] if str(level) in self.ar_priors else None
            if bottom_up is not None:
                # q merges the bottom-up Gaussian with the factorized prior; an autoregressive prior is then
                # evaluated at the sample, so the per-unit KLs stay analytic (arprior.py)
                mu_d, logvar_d = bottom_up[level]
                mu_q, logvar_q = (mu_d, logvar_d) if level == top else merge_gaussians(mu_d, logvar_d, mu_p, logvar_p)
                z = mu_q + _draw(noise, top - level, mu_q) * torch.exp(0.5 * logvar_q)
                if ar is not None:
                    mu_p, logvar_p = ar(z, mu_p, logvar_p, h)
            else:
                mu_q = logvar_q = None
                if ar is not None:
                    z, mu_p, logvar_p = ar.sample(mu_p, logvar_p, h, temperature)
                else:
                    z = mu_p + temperature * _draw(noise, top - level, mu_p) * torch.exp(0.5 * logvar_p)
            levels.append(LevelStats(z, mu_q, logvar_q, mu_p, logvar_p))
            if level == top and cond is not None:
                offsets = self._offsets(z)
        h = self._shift(self.out_in(levels[-1].z), cond, y, len(self.dec_in), offsets)
        hook = None
        if cond is not None and self.text_map is not None and self.config.text_map_every_stage:

            def hook(i: int, x: torch.Tensor) -> torch.Tensor:
                return x + self.map_out[str(i)](self.text_map(y, x.shape[-2:], offsets))

        return self.out_block(h, hook), levels

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, list[LevelStats]]:
        """Posterior pass on images x in [-1, 1]: (log p(x|z_1) per example, level statistics top first)."""
        params, levels = self.top_down(len(x), self.bottom_up(x), y)
        return self.log_likelihood(x, params), levels

    # --- the likelihood ---------------------------------------------------------------------------------------

    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x|z_1) per example, in nats, of 8-bit images x in [-1, 1] (see ModelConfig.likelihood)."""
        kind = self.config.likelihood
        if kind == "bernoulli":
            return bernoulli_log_likelihood(params, (x > 0).to(params.dtype))  # binarized at mid-grey
        mean, second = params.chunk(2, dim=1)
        if kind == "logistic":
            return discretized_logistic_log_likelihood(x, mean, clamp_logvar(second, self.config.logvar_bound))
        # Gaussian density on dequantized pixels; + log(bin width) per dimension makes it a bound on the
        # discrete likelihood (Theis et al. 2016), comparable in bits/dim with the others.
        noisy = x + (torch.rand_like(x) * 2 - 1) * HALF_BIN
        logvar = clamp_logvar(second, self.config.logvar_bound)
        return gaussian_log_likelihood(noisy, mean, logvar) + x[0].numel() * math.log(2 * HALF_BIN)

    def mean_image(self, params: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image in [0, 1] (what sample grids show)."""
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(params)
        return (params.chunk(2, dim=1)[0].clamp(-1, 1) + 1) / 2

    def binarize_if_needed(self, x: torch.Tensor) -> torch.Tensor:
        """The data as the likelihood sees it, in [0, 1] (binarized for Bernoulli)."""
        return (x > 0).float() if self.config.likelihood == "bernoulli" else (x + 1) / 2

    # --- evaluation ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, k: int, y: torch.Tensor | None = None, max_batch: int = 256) -> torch.Tensor:
        """(k, B) importance log weights log p(x, z) - log q(z|x) with z drawn from the posterior.

        The bottom-up pass runs once; the k top-down passes run as batches of up to ``max_batch`` rows.
        """
        bu = self.bottom_up(x)
        b = len(x)
        per_pass = max(1, max_batch // b)
        out = []
        for start in range(0, k, per_pass):
            n = min(per_pass, k - start)
            bu_n = [(_repeat(m, n), _repeat(v, n)) for m, v in bu]
            params, levels = self.top_down(n * b, bu_n, _repeat(y, n) if y is not None else None)
            log_w = self.log_likelihood(_repeat(x, n), params)
            for level in levels:
                log_w = log_w - level.log_q_minus_log_p()
            out.append(log_w.view(n, b))
        return torch.cat(out)

    @torch.no_grad()
    def sample(
        self, n: int, texts: list[str] | None = None, temperature: float = 1.0,
        layouts: list[list[float]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """``n`` draws from the prior: (mean images in [0, 1], decoder parameters); ``layouts`` as in
        :meth:`encode_text`."""
        y = self.encode_text(texts, layouts) if texts is not None else None
        params, _ = self.top_down(n, None, y, temperature)
        return self.mean_image(params), params

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean images in [0, 1] decoded from one posterior sample."""
        params, _ = self.top_down(len(x), self.bottom_up(x), y)
        return self.mean_image(params)


def _draw(noise: list[torch.Tensor] | None, index: int, like: torch.Tensor) -> torch.Tensor:
    """``noise[index]`` (checked against ``like``'s shape), or a fresh standard normal draw shaped like ``like``."""
    if noise is None:
        return torch.randn_like(like)
    if tuple(noise[index].shape) != tuple(like.shape):
        raise ValueError(f"noise[{index}] has shape {tuple(noise[index].shape)}, expected {tuple(like.shape)}")
    return noise[index].to(like)


def _repeat(t: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` copies of a batch, sample-major: row s·B + i is item i."""
    return t.repeat(n, *([1] * (t.ndim - 1)))


def parameter_table(model: HVAE) -> list[tuple[str, str, int]]:
    """Rows (module path, layer, parameters): every layer with parameters, every pooling, upsampling, reshaping
    and skip connection, in build order (activations left out)."""
    rows = []
    for name, module in model.named_modules():
        if ".parametrizations" in name or name.endswith("parametrizations"):
            continue
        children = [n for n, _ in module.named_children() if n != "parametrizations"]
        if children:
            continue
        if isinstance(module, nn.Identity) and ".layers." not in name:
            continue  # pass-throughs of the spatial layout, not layers of the config
        label = _describe(module)
        if label is None:
            continue
        rows.append((name, label, sum(p.numel() for p in module.parameters())))
    return rows


def _describe(module: nn.Module) -> str | None:
    sn = "+SN" if nn.utils.parametrize.is_parametrized(module) else ""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        kind = "ConvT" if isinstance(module, nn.ConvTranspose2d) else "Conv"
        k = module.kernel_size
        return f"{kind}{k[0]}x{k[1]}({module.in_channels}->{module.out_channels}){sn}"
    if isinstance(module, nn.Conv1d):
        return f"Conv1d{module.kernel_size[0]}(dil {module.dilation[0]}, {module.in_channels}->{module.out_channels})"
    if isinstance(module, nn.Linear):
        return f"Linear({module.in_features}->{module.out_features}){sn}"
    if isinstance(module, nn.BatchNorm2d):
        return f"BatchNorm({module.num_features})"
    if isinstance(module, nn.MaxPool2d):
        return f"MaxPool({module.kernel_size})"
    if isinstance(module, nn.Upsample):
        return f"Upsample(to {module.size[0]}x{module.size[1]})"
    if isinstance(module, nn.Unflatten):
        return f"Unflatten{tuple(module.unflattened_size)}"
    if isinstance(module, nn.Identity):
        return "skip-up (keeps the activation)"
    return None
